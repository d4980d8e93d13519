"""Exports kept on the server: they expire, and they follow erasures and retention.

An export kept on the server is a directory under the data directory: each directory in
``DATA/exports/`` (where the privacy API writes them), and any other directory of the data
directory that holds an export manifest (``mesure export --out`` pointed inside it). Such a
directory is deleted, whole,

- once it is older than ``exports-keep-days`` (the manifest's ``exported_at``; the directory's
  modification time when it has no readable manifest), by every retention run, the collector's
  own included (at start-up and daily);
- when it holds a row a retention run deletes (a row past its retention must not outlive it in
  a copy);
- when it holds any row of an erasure (the subject's events, their visits, those visits' other
  events), found by row id: ids are never reused while a row lives, so a match can only be too
  eager (an id that a deleted row had), never miss a copy.

A file that cannot be read (a Parquet export without pyarrow installed) counts as holding the
rows: it is deleted rather than kept unchecked. Exports written outside the data directory have
left Mesure's keeping; ``mesure export`` says so when it writes one.
"""

from __future__ import annotations

import csv
import importlib.util
import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec

from collector.config import KEYS_DIR
from collector.privacy.manifest import MANIFEST_FILE, Manifest, manifest_decoder

EXPORTS_DIR = "exports"
#: A row of an export file and the table it comes from (``events`` or ``visits``).
RowTest = Callable[[dict[str, Any], str], bool]


@dataclass(frozen=True)
class KeptExport:
    path: Path
    written: datetime
    manifest: Manifest | None

    def name(self, data_dir: Path) -> str:
        """The directory relative to the data directory, as reports and the audit log say it."""
        return self.path.relative_to(data_dir).as_posix()


def kept_exports(data_dir: Path) -> list[KeptExport]:
    """Every export directory kept under ``data_dir``, by path."""
    found: dict[Path, KeptExport] = {}
    root = data_dir / EXPORTS_DIR
    if root.is_dir() and not root.is_symlink():
        for child in root.iterdir():
            if child.is_dir() and not child.is_symlink():
                found[child] = _kept(child)
    for here, dirs, files in os.walk(data_dir):
        path = Path(here)
        # Key files are never exports; an export's own directory is not searched again.
        dirs[:] = [d for d in dirs if not (path == data_dir and d == KEYS_DIR)]
        if path in found:
            dirs[:] = []
            continue
        if MANIFEST_FILE in files:
            export = _kept(path)
            if export.manifest is not None:
                found[path] = export
                dirs[:] = []
    return sorted(found.values(), key=lambda export: export.path)


def holding(
    exports: list[KeptExport], test: RowTest, *, sites: set[str] | None = None
) -> list[KeptExport]:
    """The ``exports`` with a row for which ``test`` is true (``sites``: skip exports whose
    manifest names none of them)."""
    found = []
    for export in exports:
        if sites is not None and export.manifest and not sites & set(export.manifest.sites):
            continue
        try:
            hit = any(test(row, table) for table, row in _rows(export))
        except (TypeError, ValueError):  # a cell that is not what its column holds
            hit = True
        if hit:
            found.append(export)
    return found


def delete(exports: list[KeptExport]) -> None:
    for export in exports:
        shutil.rmtree(export.path, ignore_errors=True)


def _kept(path: Path) -> KeptExport:
    manifest: Manifest | None = None
    try:
        manifest = manifest_decoder.decode((path / MANIFEST_FILE).read_bytes())
        written = datetime.fromisoformat(manifest.exported_at).astimezone(UTC)
    except (OSError, ValueError, msgspec.DecodeError, msgspec.ValidationError):
        manifest = None
        written = datetime.fromtimestamp(path.stat().st_mtime, UTC)
    return KeptExport(path=path, written=written, manifest=manifest)


class _Unreadable(Exception):
    pass


#: A row standing for a file that cannot be read: every test of an erasure or a retention run
#: is true for it.
UNREADABLE: dict[str, Any] = {"unreadable": True}


def _rows(export: KeptExport) -> Iterator[tuple[str, dict[str, Any]]]:
    if export.manifest is not None:
        files = [(entry.path, entry.table) for entry in export.manifest.files]
    else:
        files = [
            (path.name, "visits" if path.name.startswith("visits-") else "events")
            for path in sorted(export.path.iterdir())
            if path.name.startswith(("events-", "visits-"))
        ]
    for name, table in files:
        path = export.path / name
        if not path.is_file():
            continue
        try:
            for row in _read(path):
                yield table, row
        except (_Unreadable, OSError, ValueError, msgspec.DecodeError, csv.Error):
            yield table, UNREADABLE


def _read(path: Path) -> Iterator[dict[str, Any]]:
    if path.suffix == ".ndjson":
        with path.open("rb") as file:
            for line in file:
                if line.strip():
                    yield msgspec.json.decode(line)
    elif path.suffix == ".csv":
        with path.open(newline="", encoding="utf-8") as file:
            yield from csv.DictReader(file)
    elif path.suffix == ".parquet" and importlib.util.find_spec("pyarrow") is not None:
        import pyarrow.parquet as pq

        yield from pq.read_table(path).to_pylist()
    else:
        raise _Unreadable(path.name)


def number(row: dict[str, Any], column: str) -> int | None:
    """An integer cell as any format holds it (a CSV cell is text; empty is ``None``)."""
    value = row.get(column)
    if value is None or value == "":
        return None
    return int(value)
