"""Access (GDPR Art. 15) and erasure (Art. 17) requests by user id or client id.

The identifier exists only in memory: its keyed hash is computed under every kept epoch of the
site's key (current and retired, see :mod:`collector.privacy.keyring`) with the very functions
the collector uses (:mod:`collector.hashing`). Neither the identifier nor its hashes are written
to the audit log.

Cookieless visitors are keyed by (site, IP address, user agent) under a daily key, not by any
identifier a person can give, and that key is destroyed within 48 hours: such rows can never be
matched to a request, which every report says explicitly.

An erasure also deletes every export kept on the server that holds any of the erased rows
(:mod:`collector.privacy.kept_exports`), the subject's own access exports included.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, Literal

import msgspec

from collector import hashing
from collector.privacy import kept_exports, keyring
from collector.privacy.export import write_signed
from collector.privacy.instance import Instance
from collector.privacy.manifest import Format, Manifest, Period, Request
from collector.storage.ports import PrivacyStore
from collector.storage.rows import Deleted, ErasureScope, SubjectColumn, SubjectHash

Identifier = Literal["user-id", "client-id"]


class Subject(msgspec.Struct, frozen=True, kw_only=True):
    """Who a request is about. ``value`` is the raw identifier: never stored, never logged."""

    site: str
    identifier: Identifier
    value: str

    def __repr__(self) -> str:
        return f"Subject(site={self.site!r}, identifier={self.identifier!r}, value=<redacted>)"


class DsarReport(msgspec.Struct, frozen=True, kw_only=True):
    site: str
    identifier: Identifier
    epochs_searched: list[int]
    events_found: int
    visits_found: int
    deleted: Deleted | None = None
    #: Rows still found by searching again after an erasure (0 proves it).
    events_after: int | None = None
    #: Exports kept on the server that held erased rows, deleted (relative to the data
    #: directory).
    exports_deleted: list[str] = []
    #: What an erasure did to leave no copy of the deleted rows on disk, and anything left.
    reclaimed: str | None = None
    cookieless_notice: str


def cookieless_notice(inst: Instance) -> str:
    days = keyring.daily_key_days(inst.keys.keys_dir)
    kept = ", ".join(days) if days else "none"
    return (
        "Cookieless visitors (exempt hits without browser storage) are hashed from the IP address "
        "and user agent under a daily key, never from a user id or client id, so they cannot be "
        "found by this request; their daily keys are destroyed within 48 hours (days whose key "
        f"still exists: {kept}), after which nobody can link those rows to anyone."
    )


def subject_hashes(inst: Instance, subject: Subject) -> tuple[SubjectColumn, list[SubjectHash]]:
    """The subject's keyed hash under every kept epoch, and the column it is stored in."""
    inst.require_site(subject.site)
    if subject.identifier == "user-id":
        keys = keyring.kept_keys(inst.keys, subject.site, "user")
        return "user", [
            SubjectHash(epoch=k.epoch, digest=hashing.user(k.key, subject.site, subject.value))
            for k in keys
        ]
    keys = keyring.kept_keys(inst.keys, subject.site, "client")
    return "visitor", [
        SubjectHash(
            epoch=k.epoch, digest=hashing.client_visitor(k.key, subject.site, subject.value)
        )
        for k in keys
    ]


def access(
    inst: Instance, db: PrivacyStore, subject: Subject, *, out: Path, fmt: Format, actor: str
) -> tuple[DsarReport, Manifest]:
    """Write everything stored under the subject's hashes to a signed export in ``out``: their
    events, one file per month, and the visits those events belong to."""
    column, hashes = subject_hashes(inst, subject)
    rows = db.subject_rows(subject.site, column, hashes)
    visits = db.visits_by_id([row["visit"] for row in rows if row["visit"] is not None])
    today = inst.clock().date().isoformat()
    days = [_day(row["ts"]) for row in rows] or [today]
    notice = cookieless_notice(inst)
    epochs = [h.epoch for h in hashes]
    manifest = write_signed(
        inst,
        db,
        [(subject.site, rows)],
        kind="access",
        sites=[subject.site],
        period=Period(first_day=min(days), last_day=max(days)),
        fmt=fmt,
        out=out,
        actor=actor,
        request=Request(
            identifier=subject.identifier, epochs_searched=epochs, cookieless_notice=notice
        ),
        visits=visits,
    )
    inst.audit.append(
        "dsar.access",
        concerns=[subject.site],
        by=actor,
        site=subject.site,
        identifier=subject.identifier,
        epochs=",".join(map(str, epochs)),
        events=str(len(rows)),
        out=str(out),
    )
    report = DsarReport(
        site=subject.site,
        identifier=subject.identifier,
        epochs_searched=epochs,
        events_found=len(rows),
        visits_found=len(visits),
        cookieless_notice=notice,
    )
    return report, manifest


def erase(inst: Instance, db: PrivacyStore, subject: Subject, *, actor: str) -> DsarReport:
    """Delete the subject's rows and their visits, then search again to prove it."""
    column, hashes = subject_hashes(inst, subject)
    rows = db.subject_rows(subject.site, column, hashes)
    visits = {row["visit"] for row in rows if row["visit"] is not None}
    scope = db.erasure_scope(subject.site, column, hashes)
    deleted = db.erase_subject(subject.site, column, hashes)
    # The deleted rows are zeroed in the database file (secure_delete); their old page images
    # must leave the write-ahead log too, which a running collector keeps open (on ClickHouse:
    # the parts the deletion replaced must leave the disk).
    reclaimed = db.reclaim_space(vacuum=False)
    after = len(db.subject_rows(subject.site, column, hashes))
    # Copies go too: every export kept on the server that holds any of the erased rows.
    exports = kept_exports.holding(
        kept_exports.kept_exports(inst.config.data_dir),
        partial(_erased, scope),
        sites={subject.site},
    )
    kept_exports.delete(exports)
    exports_deleted = [export.name(inst.config.data_dir) for export in exports]
    epochs = [h.epoch for h in hashes]
    inst.audit.append(
        "dsar.erase",
        concerns=[subject.site],
        by=actor,
        site=subject.site,
        identifier=subject.identifier,
        epochs=",".join(map(str, epochs)),
        subject_events=str(deleted.subject_events),
        visit_events=str(deleted.visit_events),
        visits=str(deleted.visits),
        events_after=str(after),
        exports_deleted=" ".join(exports_deleted),
    )
    return DsarReport(
        site=subject.site,
        identifier=subject.identifier,
        epochs_searched=epochs,
        events_found=len(rows),
        visits_found=len(visits),
        deleted=deleted,
        events_after=after,
        exports_deleted=exports_deleted,
        reclaimed=reclaimed,
        cookieless_notice=cookieless_notice(inst),
    )


def _erased(scope: ErasureScope, row: dict[str, Any], table: str) -> bool:
    """A row of an export file is one of the erased rows (or a file that cannot be read)."""
    if row is kept_exports.UNREADABLE:
        return True
    if table == "visits":
        return kept_exports.number(row, "id") in scope.visit_ids
    return (
        kept_exports.number(row, "id") in scope.event_ids
        or kept_exports.number(row, "visit") in scope.visit_ids
    )


def _day(ts_ms: int) -> str:
    return datetime.fromtimestamp(ts_ms / 1000, UTC).date().isoformat()
