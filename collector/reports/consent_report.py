"""The consent report (hits, visitors and visits by effective mode per day, the consent rate,
opt-outs, reason codes) and attribution coverage of conversions."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from collector.config import Config
from collector.reports.core import buckets, period_out
from collector.reports.query import ReportQuery, Scope, resolve_scope
from collector.reports.results import PeriodOut, Result, ratio
from collector.storage.rows import Bucket, Goal

if TYPE_CHECKING:
    from collector.storage.ports import ReportStore

MODES = ("granted", "exempt", "denied")


class ModeCounts(Result):
    hits: int = 0
    visitors: int = 0
    visits: int = 0


class ConsentDay(Result):
    day: str
    granted: ModeCounts
    exempt: ModeCounts
    denied: ModeCounts
    optouts: int
    #: granted hits ÷ (granted + exempt + denied) hits.
    consent_rate: float
    #: granted visits ÷ (granted + exempt) visits: denied hits have no visit.
    consent_rate_by_visits: float


class ConsentReport(Result):
    sites: tuple[str, ...]
    period: PeriodOut
    days: list[ConsentDay]
    totals: ConsentDay
    #: How often each reason code of the consent resolution appears, by effective mode.
    reasons: dict[str, dict[str, int]]
    #: Hits not stored, by reason (``optout`` included), over the period.
    dropped: dict[str, int]
    previous_period: PeriodOut | None = None
    #: The totals of the previous period, with ``compare=previous_period``.
    previous: ConsentDay | None = None
    note: str = (
        "visitors and visits are distinct within each day (or the whole period for the "
        "totals) and mode; opt-outs are counted separately: they are not hits, and as they "
        "keep no dimension, filters do not apply to them"
    )


def _day(label: str, counts: dict[str, ModeCounts], optouts: int) -> ConsentDay:
    granted, exempt, denied = (counts.get(mode, ModeCounts()) for mode in MODES)
    return ConsentDay(
        day=label,
        granted=granted,
        exempt=exempt,
        denied=denied,
        optouts=optouts,
        consent_rate=ratio(granted.hits, granted.hits + exempt.hits + denied.hits),
        consent_rate_by_visits=ratio(granted.visits, granted.visits + exempt.visits),
    )


def consent_report(
    db: ReportStore,
    config: Config,
    query: ReportQuery,
    *,
    sites: Sequence[str],
    now: datetime,
) -> ConsentReport:
    scope = resolve_scope(query, config, sites, now)
    labels, day_buckets = buckets(scope, "day")
    per_day: list[dict[str, ModeCounts]] = [{} for _ in labels]
    for index, mode, hits, visitors, visits in db.consent_by_day(day_buckets, query.filters):
        per_day[index][mode] = ModeCounts(hits=hits, visitors=visitors, visits=visits)
    dropped, optouts_by_day = _dropped(db, sites, labels)
    reasons: dict[str, dict[str, int]] = {}
    for mode, codes, hits in db.reason_counts(scope.ranges, query.filters):
        for code in codes.split():
            reasons.setdefault(mode, {})
            reasons[mode][code] = reasons[mode].get(code, 0) + hits
    days = [
        _day(label, per_day[index], optouts_by_day.get(label, 0))
        for index, label in enumerate(labels)
    ]
    report = ConsentReport(
        sites=tuple(sites),
        period=period_out(scope),
        days=days,
        totals=_totals(db, scope, query, dropped),
        reasons=reasons,
        dropped=dropped,
    )
    if query.compare == "previous_period":
        before = resolve_scope(query, config, sites, now, previous=True)
        earlier, _ = _dropped(db, sites, buckets(before, "day")[0])
        report.previous_period = period_out(before)
        report.previous = _totals(db, before, query, earlier)
    return report


def _totals(
    db: ReportStore, scope: Scope, query: ReportQuery, dropped: dict[str, int]
) -> ConsentDay:
    """The whole period as one bucket per site: visitors are distinct over the period."""
    whole = [Bucket(0, r.site, r.start_ms, r.end_ms) for r in scope.ranges]
    totals: dict[str, ModeCounts] = {}
    for _index, mode, hits, visitors, visits in db.consent_by_day(whole, query.filters):
        totals[mode] = ModeCounts(hits=hits, visitors=visitors, visits=visits)
    return _day("total", totals, dropped.get("optout", 0))


def _dropped(
    db: ReportStore, sites: Sequence[str], labels: Sequence[str]
) -> tuple[dict[str, int], dict[str, int]]:
    """Hits not stored by reason over the days ``labels``, and opt-outs per day."""
    dropped: dict[str, int] = {}
    optouts_by_day: dict[str, int] = {}
    for day, reason, hits in db.dropped_by_day(sites, labels[0], labels[-1]):
        dropped[reason] = dropped.get(reason, 0) + hits
        if reason == "optout":
            optouts_by_day[day] = optouts_by_day.get(day, 0) + hits
    return dropped, optouts_by_day


class SourceConversions(Result):
    source: str
    conversions: int


class AttributionTotals(Result):
    conversions: int
    attributable: int
    unattributable: int
    attributable_share: float


class AttributionReport(Result):
    sites: tuple[str, ...]
    period: PeriodOut
    goal: str
    conversions: int
    by_mode: dict[str, int]
    attributable: int
    unattributable: int
    attributable_share: float
    #: Attributable conversions by the source of the visit they happened in.
    sources: list[SourceConversions]
    previous_period: PeriodOut | None = None
    previous: AttributionTotals | None = None
    note: str = (
        "conversions are goal events; only granted ones may be attributed to a source or "
        "campaign (the source of the visit's first event, utm_source first)"
    )


def attribution(
    db: ReportStore,
    config: Config,
    query: ReportQuery,
    *,
    sites: Sequence[str],
    now: datetime,
    goal: Goal,
) -> AttributionReport:
    scope = resolve_scope(query, config, sites, now)
    report = _attribution(db, scope, query, goal)
    if query.compare == "previous_period":
        before = resolve_scope(query, config, sites, now, previous=True)
        earlier = _attribution(db, before, query, goal)
        report.previous_period = earlier.period
        report.previous = AttributionTotals(
            conversions=earlier.conversions,
            attributable=earlier.attributable,
            unattributable=earlier.unattributable,
            attributable_share=earlier.attributable_share,
        )
    return report


def _attribution(
    db: ReportStore, scope: Scope, query: ReportQuery, goal: Goal
) -> AttributionReport:
    by_mode: dict[str, int] = {}
    sources: dict[str, int] = {}
    for mode, source, count in db.conversions_by_mode(scope.ranges, query.filters, goal):
        by_mode[mode] = by_mode.get(mode, 0) + count
        if mode == "granted":
            label = source or "Direct / None"
            sources[label] = sources.get(label, 0) + count
    total = sum(by_mode.values())
    attributable = by_mode.get("granted", 0)
    return AttributionReport(
        sites=scope.sites,
        period=period_out(scope),
        goal=goal.name,
        conversions=total,
        by_mode=by_mode,
        attributable=attributable,
        unattributable=total - attributable,
        attributable_share=ratio(attributable, total),
        sources=[
            SourceConversions(source=name, conversions=count)
            for name, count in sorted(sources.items(), key=lambda item: (-item[1], item[0]))
        ],
    )
