"""Retention: delete what is older than the site allows, per consent mode, and reclaim space.

Exempt and denied data older than the site's ``retention-exempt-days`` (never more than 25
months, whatever the configuration says) and granted data older than
``retention-granted-days`` are deleted, then visits left without events. Runs at start-up and
daily inside the server (:class:`ServerRetention`), and on demand with
``mesure retention run [--dry-run]``.

Exports kept on the server (:mod:`collector.privacy.kept_exports`) older than
``exports-keep-days``, or holding a row the run deletes, are deleted too.

Deleted rows are overwritten with zeros (``secure_delete``) and the write-ahead log is emptied
in every run. The command also gives the freed pages back to the file system (``VACUUM``); the
server does not, because a ``VACUUM`` would hold up ingestion for as long as it takes: SQLite
reuses the freed pages for new hits.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection
from datetime import UTC, date, datetime, timedelta
from typing import Any

import msgspec

from collector.audit import AuditLog
from collector.config import Config
from collector.keys import KeyStore
from collector.privacy import kept_exports
from collector.privacy.instance import Instance
from collector.storage import privacy_for
from collector.storage.ports import PrivacyStore
from collector.storage.rows import PurgeCount
from consent.site_policy import MAX_EXEMPT_RETENTION_DAYS


class SiteCutoff(msgspec.Struct, frozen=True, kw_only=True):
    site: str
    mode: str
    retention_days: int
    #: Rows strictly older than this instant (ISO 8601, UTC) are deleted.
    before: str


class RetentionReport(msgspec.Struct, frozen=True, kw_only=True):
    now: str
    dry_run: bool
    cutoffs: list[SiteCutoff]
    deleted: list[PurgeCount]
    #: ``vacuum`` or ``incremental_vacuum`` (the command), ``wal_checkpoint`` (the server);
    #: ``None`` on a dry run or when nothing was deleted.
    reclaimed: str | None
    #: Exports kept on the server that the run deleted (would delete, on a dry run), relative
    #: to the data directory: older than ``exports-keep-days``, or holding a row it deleted.
    exports_deleted: list[str] = []


def cutoffs(
    inst: Instance, now: datetime, sites: Collection[str] | None = None
) -> list[SiteCutoff]:
    """Each site's cutoff per mode; only of ``sites`` when given."""
    found = []
    for site in inst.config.sites:
        if sites is not None and site.id not in sites:
            continue
        policy = site.consent
        exempt = min(policy.retention_exempt_days, MAX_EXEMPT_RETENTION_DAYS)
        for mode, days in (
            ("denied", exempt),
            ("exempt", exempt),
            ("granted", policy.retention_granted_days),
        ):
            before = now - timedelta(days=days)
            found.append(
                SiteCutoff(site=site.id, mode=mode, retention_days=days, before=before.isoformat())
            )
    return found


def run_retention(
    inst: Instance,
    db: PrivacyStore,
    *,
    now: datetime,
    dry_run: bool,
    actor: str,
    vacuum: bool = True,
    sites: Collection[str] | None = None,
) -> RetentionReport:
    """Delete (or, with ``dry_run``, count) every row past its retention; audit-logged.

    ``vacuum=False`` (the server) empties the write-ahead log but leaves the freed pages to be
    reused rather than running ``VACUUM``. ``sites``: only these sites (a privacy officer
    granted some sites runs it on those); ``None``: every site.
    """
    plan = cutoffs(inst, now, sites)
    deleted: list[PurgeCount] = []
    for cutoff in plan:
        before_ms = int(datetime.fromisoformat(cutoff.before).timestamp() * 1000)
        if dry_run:
            deleted += db.count_before(cutoff.site, [cutoff.mode], before_ms)
        else:
            deleted += db.purge_before(cutoff.site, [cutoff.mode], before_ms)
    total = sum(count.events for count in deleted)
    reclaimed = db.reclaim_space(vacuum=vacuum) if total and not dry_run else None
    exports = _exports_to_delete(inst, plan, now, sites)
    if not dry_run:
        kept_exports.delete(exports)
    names = [export.name(inst.config.data_dir) for export in exports]
    inst.audit.append(
        "retention.dry-run" if dry_run else "retention.run",
        concerns=None if sites is None else sorted({cutoff.site for cutoff in plan}),
        by=actor,
        now=now.isoformat(timespec="seconds"),
        events=str(total),
        detail=" ".join(f"{c.site}/{c.mode}={c.events}" for c in deleted),
        exports_deleted=" ".join(names),
    )
    return RetentionReport(
        now=now.isoformat(timespec="seconds"),
        dry_run=dry_run,
        cutoffs=plan,
        deleted=deleted,
        reclaimed=reclaimed,
        exports_deleted=names,
    )


def _exports_to_delete(
    inst: Instance, plan: list[SiteCutoff], now: datetime, sites: Collection[str] | None
) -> list[kept_exports.KeptExport]:
    """The kept exports past ``exports-keep-days``, and those holding a row past retention.

    A run for some sites only touches exports whose signed manifest names only those sites.
    """
    before = {
        (cutoff.site, cutoff.mode): int(datetime.fromisoformat(cutoff.before).timestamp() * 1000)
        for cutoff in plan
    }
    exports = [
        export
        for export in kept_exports.kept_exports(inst.config.data_dir)
        if sites is None
        or (export.manifest is not None and set(export.manifest.sites) <= set(sites))
    ]
    limit = now - timedelta(days=inst.config.server.exports_keep_days)
    old = [export for export in exports if export.written < limit]

    def may_hold_old_rows(export: kept_exports.KeptExport) -> bool:
        # The manifest's period bounds its rows: an export whose first day is after every one
        # of its sites' cutoffs need not be read at all, which is most of them.
        if export.manifest is None:
            return True
        first = datetime.fromisoformat(export.manifest.period.first_day).replace(tzinfo=UTC)
        cutoffs = [ms for (site, _), ms in before.items() if site in export.manifest.sites]
        return int(first.timestamp() * 1000) < max(cutoffs, default=0)

    def past_retention(row: dict[str, Any], table: str) -> bool:
        if row is kept_exports.UNREADABLE:
            return True
        ts = kept_exports.number(row, "ts")
        limit = before.get((str(row.get("site")), str(row.get("mode"))))
        return table == "events" and ts is not None and limit is not None and ts < limit

    candidates = [e for e in exports if e not in old and may_hold_old_rows(e)]
    found = old + kept_exports.holding(candidates, past_retention)
    return sorted(found, key=lambda export: export.path)


class ServerRetention:
    """Retention inside the collector: at start-up, then once per UTC day (see ``app.py``)."""

    def __init__(self, config: Config, keys: KeyStore, clock: Callable[[], datetime]) -> None:
        self._config = config
        self._keys = keys
        self._clock = clock
        self._last_day: date | None = None

    def run_if_due(self) -> RetentionReport | None:
        """Run retention unless it already ran today (UTC); ``None`` when it did not run.

        A failure (the database locked for too long, a full disk) is logged and retried at the
        next call: it must not stop the collector.
        """
        now = self._clock()
        today = now.astimezone(UTC).date()
        if self._last_day == today:
            return None
        actor = "server (start-up)" if self._last_day is None else "server (daily)"
        inst = Instance(
            config=self._config,
            audit=AuditLog(self._config.audit_path, self._clock),
            keys=self._keys,
            clock=self._clock,
        )
        try:
            with privacy_for(self._config) as db:
                report = run_retention(inst, db, now=now, dry_run=False, actor=actor, vacuum=False)
        except Exception:
            logging.getLogger("mesure").exception("retention run failed; retrying later")
            return None
        self._last_day = today
        return report
