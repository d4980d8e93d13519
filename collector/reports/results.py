"""Report results: what the JSON API encodes and the dashboard renders."""

from __future__ import annotations

from datetime import date

import msgspec

from collector.storage.rows import MetricRow


class Result(msgspec.Struct, kw_only=True):
    """Shared options of report results."""


class PeriodOut(Result):
    first_day: date = msgspec.field(name="from")
    last_day: date = msgspec.field(name="to")


class Metrics(Result):
    """docs/metrics.md, exactly. Rates are fractions (0.25 is 25 %); durations milliseconds."""

    visitors: int
    visits: int
    pageviews: int
    #: Pageviews of ``denied`` hits: counted, but they have no visitor and no visit.
    unidentified_pageviews: int
    views_per_visit: float
    bounce_rate: float
    visit_duration_ms: float
    events: int
    conversions: int | None = None
    conversion_rate: float | None = None


class EngagedTime(Result):
    """The snippet's active, visible time, apart from visit duration (docs/metrics.md)."""

    #: Sum of the period's engagement pings (``engaged_ms``) matching the filters.
    total_ms: int
    #: ``total_ms`` ÷ the period's visits.
    per_visit_ms: float


class AggregateReport(Result):
    sites: tuple[str, ...]
    period: PeriodOut
    metrics: Metrics
    previous_period: PeriodOut | None = None
    previous: Metrics | None = None
    notes: tuple[str, ...] = ()
    engaged: EngagedTime | None = None
    previous_engaged: EngagedTime | None = None


class TimePoint(Result):
    bucket: str
    metrics: Metrics


class TimeseriesReport(Result):
    sites: tuple[str, ...]
    period: PeriodOut
    interval: str
    points: list[TimePoint]
    previous_period: PeriodOut | None = None
    previous: list[TimePoint] | None = None


class BreakdownRow(Result):
    value: str | None
    metrics: Metrics
    previous: Metrics | None = None


class BreakdownReport(Result):
    sites: tuple[str, ...]
    period: PeriodOut
    by: str
    page: int
    limit: int
    has_more: bool
    rows: list[BreakdownRow]
    previous_period: PeriodOut | None = None


class RealtimePage(Result):
    path: str
    visitors: int
    pageviews: int


class RealtimeReport(Result):
    sites: tuple[str, ...]
    since: int
    until: int
    visitors: int
    pageviews: int
    pages: list[RealtimePage]


def ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else 0.0


def metrics_from(row: MetricRow | None, *, with_goal: bool) -> Metrics:
    if row is None:
        row = MetricRow(
            key=None,
            visitors=0,
            pageviews=0,
            events=0,
            visits=0,
            bounces=0,
            duration_ms=0,
            visit_pageviews=0,
            converted=0,
            unidentified_pageviews=0,
        )
    return Metrics(
        visitors=row.visitors,
        visits=row.visits,
        pageviews=row.pageviews,
        unidentified_pageviews=row.unidentified_pageviews,
        views_per_visit=ratio(row.visit_pageviews, row.visits),
        bounce_rate=ratio(row.bounces, row.visits),
        visit_duration_ms=ratio(row.duration_ms, row.visits),
        events=row.events,
        conversions=row.converted if with_goal else None,
        conversion_rate=ratio(row.converted, row.visitors) if with_goal else None,
    )
