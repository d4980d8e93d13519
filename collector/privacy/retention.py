"""Retention: delete what is older than the site allows, per consent mode, and reclaim space.

Exempt and denied data older than the site's ``retention-exempt-days`` (never more than 25
months, whatever the configuration says) and granted data older than
``retention-granted-days`` are deleted, then visits left without events. Runs at start-up and
daily inside the server, and on demand with ``mesure retention run [--dry-run]``.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import msgspec

from collector.privacy.instance import Instance
from collector.storage.privacy_sqlite import PrivacyDatabase, PurgeCount
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
    #: ``vacuum`` or ``incremental_vacuum``; ``None`` on a dry run or when nothing was deleted.
    reclaimed: str | None


def cutoffs(inst: Instance, now: datetime) -> list[SiteCutoff]:
    found = []
    for site in inst.config.sites:
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
    inst: Instance, db: PrivacyDatabase, *, now: datetime, dry_run: bool, actor: str
) -> RetentionReport:
    """Delete (or, with ``dry_run``, count) every row past its retention; audit-logged."""
    plan = cutoffs(inst, now)
    deleted: list[PurgeCount] = []
    for cutoff in plan:
        before_ms = int(datetime.fromisoformat(cutoff.before).timestamp() * 1000)
        if dry_run:
            deleted += db.count_before(cutoff.site, [cutoff.mode], before_ms)
        else:
            deleted += db.purge_before(cutoff.site, [cutoff.mode], before_ms)
    total = sum(count.events for count in deleted)
    reclaimed = db.reclaim_space() if total and not dry_run else None
    inst.audit.append(
        "retention.dry-run" if dry_run else "retention.run",
        by=actor,
        now=now.isoformat(timespec="seconds"),
        events=str(total),
        detail=" ".join(f"{c.site}/{c.mode}={c.events}" for c in deleted),
    )
    return RetentionReport(
        now=now.isoformat(timespec="seconds"),
        dry_run=dry_run,
        cutoffs=plan,
        deleted=deleted,
        reclaimed=reclaimed,
    )
