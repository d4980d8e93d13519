"""The everyday reports: aggregate, time series, breakdowns and real time.

Each function takes an open :class:`ReportStore`, the configuration, the query, the sites
the caller may see (already checked) and ``now``; the dashboard calls them directly.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from collector.config import Config
from collector.errors import ReportParameterError
from collector.reports.query import (
    Interval,
    ReportQuery,
    Scope,
    add_months,
    local_midnight_ms,
    resolve_scope,
    to_ms,
)
from collector.reports.results import (
    AggregateReport,
    BreakdownReport,
    BreakdownRow,
    EngagedTime,
    Metrics,
    PeriodOut,
    RealtimePage,
    RealtimeReport,
    TimePoint,
    TimeseriesReport,
    metrics_from,
    ratio,
)
from collector.storage.rows import Bucket, Filter, Goal, MetricRow, check_dimension

if TYPE_CHECKING:
    from collector.storage.ports import ReportStore

REALTIME_WINDOW_MS = 30 * 60 * 1000
MAX_HOUR_BUCKET_DAYS = 31
MAX_LIMIT = 1000
COOKIELESS_NOTE = (
    "cookieless visitors (exempt mode without storage) use a daily identifier: "
    "a returning cookieless visitor counts once per day"
)
DENIED_NOTE = "denied hits have no identifier: they count as pageviews, not as visitors or visits"


def period_out(scope: Scope) -> PeriodOut:
    return PeriodOut(first_day=scope.first_day, last_day=scope.last_day)


def aggregate(
    db: ReportStore,
    config: Config,
    query: ReportQuery,
    *,
    sites: Sequence[str],
    now: datetime,
    goal: Goal | None = None,
) -> AggregateReport:
    scope = resolve_scope(query, config, sites, now)
    metrics = _total(db, scope, query, goal)
    report = AggregateReport(sites=tuple(sites), period=period_out(scope), metrics=metrics)
    report.engaged = _engaged(db, scope, query, metrics)
    if query.compare == "previous_period":
        before = resolve_scope(query, config, sites, now, previous=True)
        report.previous_period = period_out(before)
        report.previous = _total(db, before, query, goal)
        report.previous_engaged = _engaged(db, before, query, report.previous)
    cookieless = db.visitor_kind_seen(scope.ranges, query.filters, "cookieless")
    notes = [COOKIELESS_NOTE] if cookieless else []
    if metrics.unidentified_pageviews:
        notes.append(DENIED_NOTE)
    report.notes = tuple(notes)
    return report


def _engaged(db: ReportStore, scope: Scope, query: ReportQuery, metrics: Metrics) -> EngagedTime:
    total = db.engaged_time(scope.ranges, query.filters)
    return EngagedTime(total_ms=total, per_visit_ms=ratio(total, metrics.visits))


def _total(db: ReportStore, scope: Scope, query: ReportQuery, goal: Goal | None) -> Metrics:
    rows = db.metrics(scope.ranges, query.filters, goal=goal)
    return metrics_from(rows[0] if rows else None, with_goal=goal is not None)


def buckets(scope: Scope, interval: Interval) -> tuple[list[str], list[Bucket]]:
    """Labels and per-site ranges of each bucket; weeks start on Monday, and the first and
    last buckets are cut to the period."""
    days = (scope.last_day - scope.first_day).days + 1
    if interval == "hour" and days > MAX_HOUR_BUCKET_DAYS:
        raise ReportParameterError(
            f"interval=hour covers at most {MAX_HOUR_BUCKET_DAYS} days", field="interval"
        )
    starts = _bucket_starts(scope.first_day, scope.last_day, interval)
    labels: list[str] = []
    found: list[Bucket] = []
    first_zone = ZoneInfo(scope.ranges[0].timezone)
    if interval == "hour":
        count = (scope.ranges[0].end_ms - scope.ranges[0].start_ms) // 3_600_000
        for index in range(count):
            hour_ms = scope.ranges[0].start_ms + index * 3_600_000
            local = datetime.fromtimestamp(hour_ms / 1000, first_zone)
            labels.append(local.strftime("%Y-%m-%dT%H:00"))
        for site_range in scope.ranges:
            for index in range(count):
                hour_ms = site_range.start_ms + index * 3_600_000
                end_ms = min(hour_ms + 3_600_000, site_range.end_ms)
                found.append(Bucket(index, site_range.site, hour_ms, end_ms))
        return labels, found
    ends = [*starts[1:], scope.last_day + timedelta(days=1)]
    labels = [start.isoformat() for start in starts]
    for site_range in scope.ranges:
        zone = ZoneInfo(site_range.timezone)
        for index, (start, end) in enumerate(zip(starts, ends, strict=True)):
            found.append(
                Bucket(
                    index,
                    site_range.site,
                    local_midnight_ms(start, zone),
                    local_midnight_ms(end, zone),
                )
            )
    return labels, found


def _bucket_starts(first: date, last: date, interval: Interval) -> list[date]:
    starts = [first]
    while True:
        current = starts[-1]
        if interval == "day":
            following = current + timedelta(days=1)
        elif interval == "week":
            following = current + timedelta(days=7 - current.weekday())
        else:
            following = add_months(current, 1)
        if following > last:
            return starts
        starts.append(following)


def timeseries(
    db: ReportStore,
    config: Config,
    query: ReportQuery,
    *,
    sites: Sequence[str],
    now: datetime,
    interval: Interval = "day",
    goal: Goal | None = None,
) -> TimeseriesReport:
    scope = resolve_scope(query, config, sites, now)
    report = TimeseriesReport(
        sites=tuple(sites),
        period=period_out(scope),
        interval=interval,
        points=_points(db, scope, query, interval, goal),
    )
    if query.compare == "previous_period":
        before = resolve_scope(query, config, sites, now, previous=True)
        report.previous_period = period_out(before)
        report.previous = _points(db, before, query, interval, goal)
    return report


def _points(
    db: ReportStore, scope: Scope, query: ReportQuery, interval: Interval, goal: Goal | None
) -> list[TimePoint]:
    labels, ranges = buckets(scope, interval)
    rows = {
        row.key: row for row in db.metrics(scope.ranges, query.filters, buckets=ranges, goal=goal)
    }
    return [
        TimePoint(bucket=label, metrics=metrics_from(rows.get(index), with_goal=goal is not None))
        for index, label in enumerate(labels)
    ]


def breakdown(
    db: ReportStore,
    config: Config,
    query: ReportQuery,
    *,
    sites: Sequence[str],
    now: datetime,
    by: str,
    limit: int = 100,
    page: int = 1,
    goal: Goal | None = None,
) -> BreakdownReport:
    """Rows by ``by`` ordered by visitors then pageviews; ``page`` counts from 1."""
    check_dimension(by, field="by")
    if not 1 <= limit <= MAX_LIMIT:
        raise ReportParameterError(f"limit must be between 1 and {MAX_LIMIT}", field="limit")
    if page < 1:
        raise ReportParameterError("page must be 1 or more", field="page")
    scope = resolve_scope(query, config, sites, now)
    found = db.metrics(
        scope.ranges,
        query.filters,
        dimension=by,
        goal=goal,
        limit=limit + 1,
        offset=(page - 1) * limit,
    )
    with_goal = goal is not None
    rows = [
        BreakdownRow(value=_text(r.key), metrics=metrics_from(r, with_goal=with_goal))
        for r in found[:limit]
    ]
    report = BreakdownReport(
        sites=tuple(sites),
        period=period_out(scope),
        by=by,
        page=page,
        limit=limit,
        has_more=len(found) > limit,
        rows=rows,
    )
    if query.compare == "previous_period":
        before = resolve_scope(query, config, sites, now, previous=True)
        report.previous_period = period_out(before)
        previous: dict[str | None, MetricRow] = {
            _text(r.key): r
            for r in db.metrics(before.ranges, query.filters, dimension=by, goal=goal)
        }
        for row in rows:
            row.previous = metrics_from(previous.get(row.value), with_goal=with_goal)
    return report


def _text(key: str | int | None) -> str | None:
    return None if key is None else str(key)


def realtime(
    db: ReportStore,
    *,
    sites: Sequence[str],
    now: datetime,
    filters: Sequence[Filter] = (),
) -> RealtimeReport:
    """Visitors and pages of the last 30 minutes (the period does not apply; filters do)."""
    until = to_ms(now)
    since = until - REALTIME_WINDOW_MS
    found = db.recent_pages_where(sites, since, until, filters)
    return RealtimeReport(
        sites=tuple(sites),
        since=since,
        until=until,
        visitors=found["visitors"],
        pageviews=found["pageviews"],
        pages=[RealtimePage(path=p, visitors=v, pageviews=n) for p, v, n in found["pages"]],
    )
