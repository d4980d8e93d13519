"""Signed exports of the pseudonymized events, exactly as stored: one file per site and month.

Hashes are written as hex, ``NULL`` as JSON ``null`` (ndjson) or an empty cell (csv). A csv
text cell that starts like a spreadsheet formula gets a quote in front
(:mod:`collector.csv_cells`): the one change to the stored values, which the manifest states.
Months are UTC months. Parquet needs the optional extra ``mesure[parquet]`` (pyarrow); nothing
heavy is installed by default.
"""

from __future__ import annotations

import csv
import hashlib
import importlib.util
import itertools
from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import IO, Any

import msgspec

from collector import csv_cells
from collector.errors import PrivacyToolError
from collector.privacy import keyring
from collector.privacy.audit_check import check as check_audit
from collector.privacy.instance import Instance, mesure_version, residency
from collector.privacy.manifest import (
    MANIFEST_FILE,
    MANIFEST_VERSION,
    SIGNATURE_FILE,
    VISIT_COLUMN_MEANINGS,
    AuditHead,
    Column,
    CsvCells,
    ExportFile,
    ExportKind,
    Format,
    KeyEpochs,
    Manifest,
    Period,
    Request,
    SiteTerms,
    columns_of,
)
from collector.storage.ports import PrivacyStore
from consent.site_policy import MAX_EXEMPT_RETENTION_DAYS

CSV_FORMULA_CELLS = CsvCells(
    starting_with=list(csv_cells.FORMULA_STARTS),
    prefix=csv_cells.PREFIX,
    to_undo=f"drop the first character of every text cell that starts with {csv_cells.PREFIX}",
)


def day_bounds_ms(first_day: date, last_day: date) -> tuple[int, int]:
    """``[first_day 00:00 UTC, last_day + 1 00:00 UTC)`` in epoch milliseconds."""
    if last_day < first_day:
        raise PrivacyToolError(f"--to {last_day} is before --from {first_day}")
    start = datetime(first_day.year, first_day.month, first_day.day, tzinfo=UTC)
    end = datetime(last_day.year, last_day.month, last_day.day, tzinfo=UTC) + timedelta(days=1)
    return int(start.timestamp() * 1000), int(end.timestamp() * 1000)


def export_events(
    inst: Instance,
    db: PrivacyStore,
    *,
    sites: list[str],
    first_day: date,
    last_day: date,
    fmt: Format,
    out: Path,
    actor: str,
) -> Manifest:
    """Export the events of ``sites`` in the period to ``out`` and sign the manifest."""
    for site in sites:
        inst.require_site(site)
    start_ms, end_ms = day_bounds_ms(first_day, last_day)
    rows = ((site, db.export_rows(site, start_ms, end_ms)) for site in sites)
    manifest = write_signed(
        inst,
        db,
        rows,
        kind="export",
        sites=sites,
        period=Period(first_day=first_day.isoformat(), last_day=last_day.isoformat()),
        fmt=fmt,
        out=out,
        actor=actor,
    )
    inst.audit.append(
        "export",
        concerns=sites,
        by=actor,
        sites=",".join(sites),
        period=f"{first_day}..{last_day}",
        format=fmt,
        rows=str(manifest.total_rows),
        out=str(out),
    )
    return manifest


def write_signed(
    inst: Instance,
    db: PrivacyStore,
    rows_by_site: Iterable[tuple[str, Iterable[dict[str, Any]]]],
    *,
    kind: ExportKind,
    sites: list[str],
    period: Period,
    fmt: Format,
    out: Path,
    actor: str,
    request: Request | None = None,
    visits: list[dict[str, Any]] | None = None,
) -> Manifest:
    """Write ``rows_by_site`` (each site's rows in time order), ``visits`` (an access request's
    visits, one file) and the signed manifest."""
    if fmt == "parquet" and importlib.util.find_spec("pyarrow") is None:
        raise PrivacyToolError(
            "parquet exports need pyarrow: pip install --require-hashes -r "
            "requirements/parquet.txt (the locked set of mesure[parquet]), or use ndjson or csv"
        )
    if out.exists() and any(out.iterdir()):
        raise PrivacyToolError(f"{out} is not empty: exports go to a new directory")
    out.mkdir(mode=0o700, parents=True, exist_ok=True)
    columns = columns_of(db.event_columns())
    files: list[ExportFile] = []
    epochs: dict[str, tuple[set[int], set[int], set[int]]] = {
        s: (set(), set(), set()) for s in sites
    }
    for site, rows in rows_by_site:
        client, cookieless, user = epochs[site]
        for month, month_rows in _by_month(rows):
            tracked = _track_epochs(month_rows, client, cookieless, user)
            name = f"events-{site}-{month}.{fmt}"
            files.append(_write_file(out, name, site, month, fmt, columns, tracked))
    visit_columns = None
    if visits is not None:
        visit_columns = columns_of(db.visit_columns(), VISIT_COLUMN_MEANINGS)
        name = f"visits-{sites[0]}.{fmt}"
        written = _write_file(out, name, sites[0], "all", fmt, visit_columns, iter(visits))
        files.append(msgspec.structs.replace(written, table="visits"))
    key_private = keyring.export_key(inst.keys.keys_dir, inst.audit)
    head = check_audit(inst.config.audit_path)
    manifest = Manifest(
        manifest_version=MANIFEST_VERSION,
        kind=kind,
        mesure_version=mesure_version(),
        exported_at=inst.clock().astimezone(UTC).isoformat(timespec="seconds"),
        exported_by=actor,
        sites=sites,
        period=period,
        format=fmt,
        columns=columns,
        files=files,
        total_rows=sum(file.rows for file in files if file.table == "events"),
        terms=[_terms(inst, site, *epochs[site]) for site in sites],
        residency=residency(inst.config),
        audit_head=AuditHead(seq=head.head_seq, sha256=head.head_sha256),
        signature_algorithm="Ed25519",
        public_key=keyring.public_key_hex(key_private),
        request=request,
        visit_columns=visit_columns,
        csv_formula_cells=CSV_FORMULA_CELLS if fmt == "csv" else None,
    )
    body = msgspec.json.format(msgspec.json.encode(manifest), indent=2) + b"\n"
    (out / MANIFEST_FILE).write_bytes(body)
    (out / SIGNATURE_FILE).write_text(key_private.sign(body).hex() + "\n", encoding="ascii")
    return manifest


def _terms(
    inst: Instance, site: str, client: set[int], cookieless: set[int], user: set[int]
) -> SiteTerms:
    found = inst.config.site(site)
    assert found is not None  # checked by the callers before any row is read
    policy = found.consent
    exempt = min(policy.retention_exempt_days, MAX_EXEMPT_RETENTION_DAYS)
    return SiteTerms(
        site=site,
        consent=policy,
        retention_days={
            "denied": exempt,
            "exempt": exempt,
            "granted": policy.retention_granted_days,
        },
        key_epochs=KeyEpochs(
            client=sorted(client), cookieless_days=sorted(cookieless), user=sorted(user)
        ),
    )


def _by_month(
    rows: Iterable[dict[str, Any]],
) -> Iterator[tuple[str, Iterator[dict[str, Any]]]]:
    """Consecutive rows grouped by UTC month (``YYYY-MM``), streamed; rows come in time order."""
    return itertools.groupby(rows, key=lambda row: _month(row["ts"]))


def _month(ts_ms: int) -> str:
    return datetime.fromtimestamp(ts_ms / 1000, UTC).strftime("%Y-%m")


def _track_epochs(
    rows: Iterator[dict[str, Any]], client: set[int], cookieless: set[int], user: set[int]
) -> Iterator[dict[str, Any]]:
    for row in rows:
        if row.get("key_epoch") is not None:
            (client if row.get("visitor_kind") == "client" else cookieless).add(row["key_epoch"])
        if row.get("user_epoch") is not None:
            user.add(row["user_epoch"])
        yield row


def _cell(value: Any) -> Any:
    return value.hex() if isinstance(value, bytes) else value


def _write_file(
    out: Path,
    name: str,
    site: str,
    month: str,
    fmt: Format,
    columns: list[Column],
    rows: Iterator[Any],
) -> ExportFile:
    path = out / name
    names = [column.name for column in columns]
    count = 0
    if fmt == "parquet":
        count = _write_parquet(path, names, rows)
    else:
        with path.open("w", encoding="utf-8", newline="") as file:
            count = (_write_ndjson if fmt == "ndjson" else _write_csv)(file, names, rows)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return ExportFile(
        path=name, site=site, month=month, rows=count, bytes=path.stat().st_size, sha256=digest
    )


def _write_ndjson(file: IO[str], names: list[str], rows: Iterator[dict[str, Any]]) -> int:
    count = 0
    for row in rows:
        record = {name: _cell(row.get(name)) for name in names}
        file.write(msgspec.json.encode(record).decode() + "\n")
        count += 1
    return count


def _write_csv(file: IO[str], names: list[str], rows: Iterator[dict[str, Any]]) -> int:
    writer = csv.writer(file, lineterminator="\n")
    writer.writerow(names)
    count = 0
    for row in rows:
        writer.writerow([_csv_cell(row.get(name)) for name in names])
        count += 1
    return count


def _csv_cell(value: Any) -> Any:
    if value is None:
        return ""
    # Text comes from visitors (names, paths, campaigns, properties): it must not run as a
    # formula where the file is opened. Hashes (hex) and numbers cannot start like one.
    return csv_cells.defuse(value) if isinstance(value, str) else _cell(value)


def _write_parquet(path: Path, names: list[str], rows: Iterator[dict[str, Any]]) -> int:
    import pyarrow as pa  # the optional extra, checked before any file is written
    import pyarrow.parquet as pq

    records = [{name: _cell(row.get(name)) for name in names} for row in rows]
    pq.write_table(pa.Table.from_pylist(records), path)
    return len(records)
