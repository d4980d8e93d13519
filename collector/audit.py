"""The audit log: append-only JSON lines, each carrying the SHA-256 of the line before it.

Any edit, insertion or deletion of an earlier line breaks the chain at that point, which
:func:`verify` reports. Appends take an exclusive ``flock`` so worker processes do not interleave.

An entry may say which sites it concerns (``sites``), so that the privacy API shows a privacy
officer granted some sites only the entries about those; an entry without it (every entry
written before it existed, and those about the whole instance) concerns every site.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
from collections.abc import Callable, Collection, Sequence
from datetime import datetime
from pathlib import Path

import msgspec

from collector.errors import AuditLogError

GENESIS = "0" * 64


class AuditEntry(
    msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, omit_defaults=True
):
    seq: int
    at: str  # ISO 8601, UTC
    action: str
    detail: dict[str, str]
    prev: str  # SHA-256 (hex) of the previous line, without its newline
    #: The sites the entry concerns; ``None`` (left out of the line): every site.
    sites: tuple[str, ...] | None = None

    def concerns_only(self, visible: Collection[str]) -> bool:
        """Whether the sites this entry concerns are all in ``visible``: never for an entry about
        every site, which only a caller who sees every site may read."""
        return self.sites is not None and all(site in visible for site in self.sites)


class AuditLog:
    """The log at ``path``; ``clock`` gives the time of each entry."""

    def __init__(self, path: Path, clock: Callable[[], datetime]) -> None:
        self.path = path
        self._clock = clock

    def append(
        self, action: str, /, *, concerns: Sequence[str] | None = None, **detail: str
    ) -> AuditEntry:
        """Append ``action`` with ``detail``; ``concerns``: the sites it is about (``None``:
        every site, or none in particular)."""
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        except OSError as exc:
            raise AuditLogError(f"cannot open {self.path}: {exc}") from exc
        with os.fdopen(fd, "r+b") as file:
            fcntl.flock(file, fcntl.LOCK_EX)
            file.seek(0)
            lines = file.read().splitlines()
            last = lines[-1] if lines else None
            entry = AuditEntry(
                seq=len(lines) + 1,
                at=self._clock().isoformat(timespec="seconds"),
                action=action,
                detail=detail,
                prev=hashlib.sha256(last).hexdigest() if last is not None else GENESIS,
                sites=None if concerns is None else tuple(sorted(set(concerns))),
            )
            file.write(msgspec.json.encode(entry) + b"\n")
            file.flush()
            os.fsync(file.fileno())
        return entry

    def entries(self) -> list[AuditEntry]:
        if not self.path.exists():
            return []
        return [msgspec.json.decode(line, type=AuditEntry) for line in _lines(self.path)]

    def last(self, action: str) -> AuditEntry | None:
        matching = [entry for entry in self.entries() if entry.action == action]
        return matching[-1] if matching else None


def verify(path: Path) -> int | None:
    """The line number (1-based) of the first entry whose link is broken, or ``None``."""
    if not path.exists():
        return None
    previous = GENESIS
    for number, line in enumerate(_lines(path), start=1):
        try:
            entry = msgspec.json.decode(line, type=AuditEntry)
        except (msgspec.DecodeError, msgspec.ValidationError):
            return number
        if entry.prev != previous or entry.seq != number:
            return number
        previous = hashlib.sha256(line).hexdigest()
    return None


def _lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines()
