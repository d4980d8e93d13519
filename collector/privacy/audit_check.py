"""Checking the audit log's hash chain and saying what broke it; listing its entries.

:func:`collector.audit.verify` gives the first broken line; :func:`check` gives the same line
and a diagnosis a DPO can act on: an entry altered, an entry deleted, entries reordered, or a
line that is not an entry at all. The chain cannot show the removal of the *last* entries
or an edit of the very last one (nothing links to it yet): export manifests therefore record
the log's head (sequence number and hash), which their signature then vouches for.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from pathlib import Path
from typing import Literal

import msgspec

from collector.audit import GENESIS, AuditEntry

Problem = Literal["altered", "deleted", "reordered", "malformed"]


class BrokenLink(msgspec.Struct, frozen=True, kw_only=True):
    #: 1-based line of the first entry whose link does not hold.
    line: int
    problem: Problem
    explanation: str


class AuditCheck(msgspec.Struct, frozen=True, kw_only=True):
    path: str
    entries: int
    ok: bool
    #: Sequence number and SHA-256 of the last line: what an outside record can pin.
    head_seq: int
    head_sha256: str
    broken: BrokenLink | None = None


def check(path: Path) -> AuditCheck:
    """Recompute the chain of the log at ``path``; report its head and the first broken link."""
    lines = path.read_bytes().splitlines() if path.exists() else []
    entries: list[AuditEntry | None] = []
    for line in lines:
        try:
            entries.append(msgspec.json.decode(line, type=AuditEntry))
        except (msgspec.DecodeError, msgspec.ValidationError):
            entries.append(None)
    previous = GENESIS
    broken: BrokenLink | None = None
    for number, (line, entry) in enumerate(zip(lines, entries, strict=True), start=1):
        broken = _diagnose(number, entry, previous, entries)
        if broken is not None:
            break
        previous = hashlib.sha256(line).hexdigest()
    return AuditCheck(
        path=str(path),
        entries=len(lines),
        ok=broken is None,
        head_seq=len(lines),
        head_sha256=hashlib.sha256(lines[-1]).hexdigest() if lines else GENESIS,
        broken=broken,
    )


def _diagnose(
    number: int, entry: AuditEntry | None, previous: str, entries: list[AuditEntry | None]
) -> BrokenLink | None:
    if entry is None:
        return BrokenLink(
            line=number,
            problem="malformed",
            explanation=f"line {number} is not a valid audit entry (edited by hand?)",
        )
    if entry.seq != number:
        later = any(other is not None and other.seq == number for other in entries[number:])
        if later or entry.seq < number:
            return BrokenLink(
                line=number,
                problem="reordered",
                explanation=f"line {number} holds entry {entry.seq}: entries were moved "
                f"(entry {number} appears later in the file)"
                if later
                else f"line {number} holds entry {entry.seq} again: entries were moved or copied",
            )
        return BrokenLink(
            line=number,
            problem="deleted",
            explanation=f"line {number} holds entry {entry.seq}: entries {number}"
            f"{'' if entry.seq == number + 1 else f'–{entry.seq - 1}'} were deleted",
        )
    if entry.prev != previous:
        return BrokenLink(
            line=number,
            problem="altered",
            explanation=f"entry {number} does not link to the entry before it: entry "
            f"{number - 1} (or this entry's link) was altered after it was written",
        )
    return None


def entries_since(path: Path, since: datetime | None) -> list[AuditEntry]:
    """The log's entries at or after ``since`` (all of them without it); unreadable lines are
    left to :func:`check` to report."""
    found = []
    for line in path.read_bytes().splitlines() if path.exists() else []:
        try:
            entry = msgspec.json.decode(line, type=AuditEntry)
        except (msgspec.DecodeError, msgspec.ValidationError):
            continue
        if since is None or datetime.fromisoformat(entry.at) >= since:
            found.append(entry)
    return found


def format_entry(entry: AuditEntry) -> str:
    detail = " ".join(f"{key}={value}" for key, value in sorted(entry.detail.items()))
    return f"{entry.seq:>6}  {entry.at}  {entry.action:<22} {detail}".rstrip()
