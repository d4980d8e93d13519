"""Retention: cohorts of new visitors by week or month and the share returning later.

Only identifiers that persist across days can be followed: client-stored ids (granted, and
exempt with storage). Cookieless daily identifiers cannot, so the report states its coverage:
the share of the period's identified visitors it could follow.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Literal
from zoneinfo import ZoneInfo

from collector.config import Config
from collector.reports.core import period_out
from collector.reports.query import ReportQuery, add_months, resolve_scope
from collector.reports.results import PeriodOut, Result, ratio

if TYPE_CHECKING:
    from collector.storage.ports import ReportStore

Cohorts = Literal["week", "month"]


class Cohort(Result):
    start: date
    visitors: int
    #: ``retained[k]``: visitors of the cohort with a visit in period k after it (k = 1, 2, …),
    #: up to the last period that has started.
    retained: list[int]
    rates: list[float]


class RetentionReport(Result):
    sites: tuple[str, ...]
    period: PeriodOut
    cohorts_by: str
    cohorts: list[Cohort]
    followed_visitors: int
    identified_visitors: int
    coverage: float
    coverage_note: str


def cohort_start(day: date, by: Cohorts) -> date:
    if by == "week":
        return day - timedelta(days=day.weekday())
    return day.replace(day=1)


def _index(start: date, later: date, by: Cohorts) -> int:
    if by == "week":
        return (later - start).days // 7
    return (later.year - start.year) * 12 + later.month - start.month


def retention(
    db: ReportStore,
    config: Config,
    query: ReportQuery,
    *,
    sites: Sequence[str],
    now: datetime,
    by: Cohorts = "week",
) -> RetentionReport:
    """Cohorts whose first visit falls in the period; returns counted up to ``now``."""
    scope = resolve_scope(query, config, sites, now)
    zones = {r.site: ZoneInfo(r.timezone) for r in scope.ranges}
    first_cohort = cohort_start(scope.first_day, by)
    last_cohort = cohort_start(scope.last_day, by)
    today = now.astimezone(zones[sites[0]]).date()
    current = cohort_start(today, by)
    first_seen: dict[tuple[str, bytes], date] = {}
    returns: dict[tuple[str, bytes], set[date]] = {}
    visits = db.client_visit_starts(scope.ranges, _now_ms(now), query.filters)
    for site, visitor, start_ts in visits:
        day = datetime.fromtimestamp(start_ts / 1000, zones[site]).date()
        key = (site, visitor)
        if key not in first_seen:
            first_seen[key] = day
            returns[key] = set()
        returns[key].add(cohort_start(day, by))
    sizes: dict[date, int] = {}
    retained: dict[date, dict[int, int]] = {}
    for key, first in first_seen.items():
        cohort = cohort_start(first, by)
        if not first_cohort <= cohort <= last_cohort or first < scope.first_day:
            continue
        if first > scope.last_day:
            continue
        sizes[cohort] = sizes.get(cohort, 0) + 1
        for later in returns[key]:
            offset = _index(cohort, later, by)
            if offset > 0:
                retained.setdefault(cohort, {})
                retained[cohort][offset] = retained[cohort].get(offset, 0) + 1
    cohorts: list[Cohort] = []
    start = first_cohort
    while start <= last_cohort:
        periods = _index(start, current, by)
        counts = [retained.get(start, {}).get(k, 0) for k in range(1, periods + 1)]
        size = sizes.get(start, 0)
        cohorts.append(
            Cohort(
                start=start,
                visitors=size,
                retained=counts,
                rates=[ratio(count, size) for count in counts],
            )
        )
        start = start + timedelta(days=7) if by == "week" else add_months(start, 1)
    kinds = db.visitor_kinds(scope.ranges, query.filters)
    followed = kinds.get("client", 0)
    identified = sum(kinds.values())
    return RetentionReport(
        sites=tuple(sites),
        period=period_out(scope),
        cohorts_by=by,
        cohorts=cohorts,
        followed_visitors=followed,
        identified_visitors=identified,
        coverage=ratio(followed, identified),
        coverage_note=(
            "only client-stored identifiers (granted, exempt with storage) can be followed "
            "across days; cookieless and denied visitors are not in any cohort"
        ),
    )


def _now_ms(now: datetime) -> int:
    return int(now.timestamp() * 1000) + 1
