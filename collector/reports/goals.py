"""Goals: pageview path patterns and event names, per site in ``mesure.toml``
(``[[sites.goals]]``) or saved through the API; conversions per goal.

A goal of the configuration wins over an API goal of the same name (the API refuses to
define or delete one)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from collector.config import Config
from collector.errors import ReportParameterError
from collector.reports.core import period_out
from collector.reports.model import parse_goal_spec
from collector.reports.query import ReportQuery, resolve_scope
from collector.reports.results import PeriodOut, Result, ratio
from collector.storage.rows import Goal, GoalKind

if TYPE_CHECKING:
    from collector.storage.ports import ReportStore


class GoalOut(Result):
    site: str
    name: str
    kind: str
    match: str
    #: ``config`` (``[[sites.goals]]``, read-only) or ``api`` (``POST /api/v1/goals``).
    source: str = "api"


class GoalConversion(Result):
    name: str
    kind: str
    match: str
    sites: tuple[str, ...]
    visitors: int
    conversions: int
    conversion_rate: float
    source: str = "api"
    previous_conversions: int | None = None
    previous_conversion_rate: float | None = None


class GoalsReport(Result):
    sites: tuple[str, ...]
    period: PeriodOut
    goals: list[GoalConversion]
    previous_period: PeriodOut | None = None


def stored_goals(db: ReportStore, sites: Sequence[str]) -> list[GoalOut]:
    return [
        GoalOut(site=site, name=name, kind=kind, match=match)
        for site, name, kind, match in db.stored_goals(sites)
    ]


def config_goals(config: Config, sites: Sequence[str]) -> list[GoalOut]:
    """The ``[[sites.goals]]`` of ``sites``, in site then file order."""
    found: list[GoalOut] = []
    for site_id in sites:
        site = config.site(site_id)
        for goal in () if site is None else site.goals:
            found.append(
                GoalOut(
                    site=site_id, name=goal.name, kind=goal.kind, match=goal.match, source="config"
                )
            )
    return found


def site_goals(db: ReportStore, config: Config, sites: Sequence[str]) -> list[GoalOut]:
    """Every goal of ``sites``: the configuration's, then the API's not shadowed by them."""
    configured = config_goals(config, sites)
    taken = {(goal.site, goal.name) for goal in configured}
    saved = [goal for goal in stored_goals(db, sites) if (goal.site, goal.name) not in taken]
    return [*configured, *saved]


def resolve_goal(
    db: ReportStore, sites: Sequence[str], spec: str, *, config: Config | None = None
) -> Goal:
    """``page:/pattern*``, ``event:name``, or the name of a goal of one of ``sites`` (from
    ``config`` when given, then saved through the API)."""
    adhoc = parse_goal_spec(spec)
    if adhoc is not None:
        return adhoc
    known = stored_goals(db, sites) if config is None else site_goals(db, config, sites)
    for saved in known:
        if saved.name == spec:
            kind: GoalKind = "page" if saved.kind == "page" else "event"
            return Goal(name=saved.name, kind=kind, match=saved.match)
    raise ReportParameterError(
        f"no goal named {spec!r} (or use page:PATTERN / event:NAME)", field="goal"
    )


def goals_report(
    db: ReportStore,
    config: Config,
    query: ReportQuery,
    *,
    sites: Sequence[str],
    now: datetime,
) -> GoalsReport:
    """Conversions and conversion rate of every saved goal (one row per goal name)."""
    scope = resolve_scope(query, config, sites, now)
    before = (
        resolve_scope(query, config, sites, now, previous=True)
        if query.compare == "previous_period"
        else None
    )
    by_name: dict[tuple[str, str, str, str], list[str]] = {}
    for saved in site_goals(db, config, sites):
        key = (saved.name, saved.kind, saved.match, saved.source)
        by_name.setdefault(key, []).append(saved.site)
    rows: list[GoalConversion] = []
    for (name, kind, match, source), goal_sites in by_name.items():
        goal = Goal(name=name, kind="page" if kind == "page" else "event", match=match)
        ranges = [r for r in scope.ranges if r.site in goal_sites]
        found = db.metrics(ranges, query.filters, goal=goal)
        visitors = found[0].visitors if found else 0
        converted = found[0].converted if found else 0
        row = GoalConversion(
            name=name,
            kind=kind,
            match=match,
            sites=tuple(goal_sites),
            source=source,
            visitors=visitors,
            conversions=converted,
            conversion_rate=ratio(converted, visitors),
        )
        if before is not None:
            earlier = db.metrics(
                [r for r in before.ranges if r.site in goal_sites], query.filters, goal=goal
            )
            row.previous_conversions = earlier[0].converted if earlier else 0
            row.previous_conversion_rate = (
                ratio(earlier[0].converted, earlier[0].visitors) if earlier else 0.0
            )
        rows.append(row)
    report = GoalsReport(sites=tuple(sites), period=period_out(scope), goals=rows)
    if before is not None:
        report.previous_period = period_out(before)
    return report
