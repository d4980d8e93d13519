"""Aggregate, time series, breakdowns and goals on a known dataset, computed by hand from
docs/metrics.md: a visit crossing midnight, bounces with an engagement ping, denied hits,
filters, pagination, comparison with the previous period and a group view across time zones."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from collector.config import Config
from collector.reports import Filter, ReportQuery, aggregate, breakdown, goals_report, timeseries
from collector.reports.results import Metrics
from collector.storage.rows import Goal
from collector.storage.sqlite.reports import ReportsDatabase
from tests.reports.dataset import config_for, event, ms, opened, store

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
MINUTE = 60_000


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Config, ReportsDatabase]]:
    config = config_for(
        Path(tmp_path_factory.mktemp("reports")), {"example": "UTC", "paris": "Europe/Paris"}
    )
    store(
        config,
        [
            # A: one visit from 23:50 to 00:15, crossing midnight: it belongs to March 9.
            event(ms(2026, 3, 9, 23, 50), "A", path="/home", source="Google"),
            event(ms(2026, 3, 10, 0, 10), "A", path="/pricing"),
            event(ms(2026, 3, 10, 0, 15), "A", "signup", path="/pricing"),
            # B: two bounces (an engagement ping is not an interaction), 58 minutes apart.
            event(ms(2026, 3, 10, 9, 0), "B", path="/home", utm_source="newsletter"),
            event(ms(2026, 3, 10, 9, 2), "B", "engagement", path="/home", engaged_ms=90_000),
            event(ms(2026, 3, 10, 10, 0), "B", path="/pricing"),
            # C (exempt): two pageviews and an outbound click over 6 minutes.
            event(
                ms(2026, 3, 10, 11, 0),
                "C",
                path="/home",
                mode="exempt",
                source="Bing",
                utm_source="ads",
            ),
            event(ms(2026, 3, 10, 11, 5), "C", path="/docs", mode="exempt"),
            event(ms(2026, 3, 10, 11, 6), "C", "outbound", path="/docs", mode="exempt"),
            # A denied pageview: counted, but no visitor and no visit.
            event(ms(2026, 3, 10, 11, 30), None, path="/home"),
            # D on March 9: a bounce.
            event(ms(2026, 3, 9, 10, 0), "D", path="/home"),
            # P on the Paris site: 23:30 UTC on March 9 is 00:30 on March 10 in Paris.
            event(ms(2026, 3, 9, 23, 30), "P", path="/fr", site="paris"),
            event(ms(2026, 3, 9, 22, 30), "Q", path="/fr", site="paris"),
        ],
    )
    with opened(config) as db:
        yield config, db


def metrics(**values: float) -> Metrics:
    base: dict[str, float] = {
        "visitors": 0,
        "visits": 0,
        "pageviews": 0,
        "unidentified_pageviews": 0,
        "views_per_visit": 0.0,
        "bounce_rate": 0.0,
        "visit_duration_ms": 0.0,
        "events": 0,
    }
    return Metrics(**{**base, **values})  # type: ignore[arg-type]


# Today (March 10): visitors A, B, C; pageviews A 1, B 2, C 2, denied 1; events signup and
# outbound. Visits starting today: B's two bounces and C's visit (A's began on March 9).
TODAY = metrics(
    visitors=3,
    visits=3,
    pageviews=6,
    unidentified_pageviews=1,
    views_per_visit=4 / 3,  # B 1 + B 1 + C 2
    bounce_rate=2 / 3,
    visit_duration_ms=(0 + 0 + 6 * MINUTE) / 3,
    events=2,
)
# March 9: D's bounce and A's 25-minute visit (2 pageviews, a signup).
YESTERDAY = metrics(
    visitors=2,
    visits=2,
    pageviews=2,
    views_per_visit=3 / 2,
    bounce_rate=1 / 2,
    visit_duration_ms=(0 + 25 * MINUTE) / 2,
)


def test_aggregate_today_with_previous_period(dataset: tuple[Config, ReportsDatabase]) -> None:
    config, db = dataset
    query = ReportQuery(period="today", compare="previous_period")
    report = aggregate(db, config, query, sites=["example"], now=NOW)
    assert report.metrics == TODAY
    assert report.previous == YESTERDAY
    assert report.previous_period is not None
    assert str(report.previous_period.first_day) == "2026-03-09"
    assert any("denied" in note for note in report.notes)


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        (
            (Filter(dimension="page", op="is", value="/home"),),
            # B's 9:00 pageview and ping, C's first pageview, the denied pageview.
            metrics(
                visitors=2,
                visits=2,
                pageviews=3,
                unidentified_pageviews=1,
                views_per_visit=3 / 2,
                bounce_rate=1 / 2,
                visit_duration_ms=3 * MINUTE,
            ),
        ),
        (
            (Filter(dimension="page", op="is_not", value="/home"),),
            # A's pageview and signup (visit began yesterday), B's 10:00 bounce, C on /docs.
            metrics(
                visitors=3,
                visits=2,
                pageviews=3,
                views_per_visit=3 / 2,
                bounce_rate=1 / 2,
                visit_duration_ms=3 * MINUTE,
                events=2,
            ),
        ),
        (
            (Filter(dimension="page", op="contains", value="pri"),),
            metrics(visitors=2, visits=1, pageviews=2, views_per_visit=1, bounce_rate=1, events=1),
        ),
        (
            (
                Filter(dimension="page", op="contains", value="o"),
                Filter(dimension="mode", op="is", value="exempt"),
            ),
            metrics(
                visitors=1,
                visits=1,
                pageviews=2,
                views_per_visit=2,
                visit_duration_ms=6 * MINUTE,
                events=1,
            ),
        ),
        (
            (Filter(dimension="source", op="is", value="newsletter"),),
            # utm_source overrides the referrer source for granted hits only.
            metrics(visitors=1, visits=1, pageviews=1, views_per_visit=1, bounce_rate=1),
        ),
        ((Filter(dimension="source", op="is", value="ads"),), metrics()),
    ],
    ids=["page-is", "page-is-not", "page-contains", "combined", "utm-source", "exempt-utm"],
)
def test_aggregate_filters(
    dataset: tuple[Config, ReportsDatabase], filters: tuple[Filter, ...], expected: Metrics
) -> None:
    config, db = dataset
    query = ReportQuery(period="today", filters=filters)
    assert aggregate(db, config, query, sites=["example"], now=NOW).metrics == expected


@pytest.mark.parametrize(
    ("goal", "conversions"),
    [
        (Goal(name="signup", kind="event", match="signup"), 1),
        (Goal(name="pricing", kind="page", match="/pric*"), 2),
        (Goal(name="literal", kind="page", match="/pric?ng"), 0),
    ],
    ids=["event", "page-pattern", "question-mark-is-literal"],
)
def test_goal_conversions(
    dataset: tuple[Config, ReportsDatabase], goal: Goal, conversions: int
) -> None:
    config, db = dataset
    report = aggregate(
        db, config, ReportQuery(period="today"), sites=["example"], now=NOW, goal=goal
    )
    assert report.metrics.conversions == conversions
    assert report.metrics.conversion_rate == conversions / 3


def test_timeseries_days_put_a_visit_in_the_bucket_of_its_first_event(
    dataset: tuple[Config, ReportsDatabase],
) -> None:
    config, db = dataset
    report = timeseries(db, config, ReportQuery(period="7d"), sites=["example"], now=NOW)
    assert [point.bucket for point in report.points] == [f"2026-03-{d:02d}" for d in range(4, 11)]
    assert [point.metrics for point in report.points] == [metrics()] * 5 + [YESTERDAY, TODAY]


def test_timeseries_hours(dataset: tuple[Config, ReportsDatabase]) -> None:
    config, db = dataset
    report = timeseries(
        db, config, ReportQuery(period="today"), sites=["example"], now=NOW, interval="hour"
    )
    assert len(report.points) == 24
    by_hour = {point.bucket[-5:]: point.metrics for point in report.points}
    # A's 00:10 pageview is in hour 0, but its visit belongs to March 9.
    assert (by_hour["00:00"].visitors, by_hour["00:00"].visits) == (1, 0)
    assert (by_hour["09:00"].visits, by_hour["09:00"].bounce_rate) == (1, 1.0)
    assert (by_hour["11:00"].visitors, by_hour["11:00"].pageviews) == (1, 3)
    assert by_hour["11:00"].visit_duration_ms == 6 * MINUTE


def test_timeseries_weeks_are_cut_to_the_period(dataset: tuple[Config, ReportsDatabase]) -> None:
    config, db = dataset
    report = timeseries(
        db, config, ReportQuery(period="month"), sites=["example"], now=NOW, interval="week"
    )
    # March 2026 starts on a Sunday: the first bucket is that single day.
    assert [p.bucket for p in report.points] == [
        "2026-03-01",
        "2026-03-02",
        "2026-03-09",
        "2026-03-16",
        "2026-03-23",
        "2026-03-30",
    ]
    assert report.points[2].metrics.visits == 5  # A, D (March 9) and B twice, C (March 10)
    assert report.points[2].metrics.visitors == 4


def test_breakdown_by_page_paginated(dataset: tuple[Config, ReportsDatabase]) -> None:
    config, db = dataset
    query = ReportQuery(period="today")
    first = breakdown(db, config, query, sites=["example"], now=NOW, by="page", limit=2)
    assert [row.value for row in first.rows] == ["/home", "/pricing"]
    assert first.has_more
    home, pricing = first.rows
    assert (home.metrics.visitors, home.metrics.pageviews, home.metrics.visits) == (2, 3, 2)
    assert home.metrics.bounce_rate == 1 / 2
    assert home.metrics.visit_duration_ms == 3 * MINUTE
    # /pricing: A (its visit started yesterday) and B's 10:00 bounce.
    assert (pricing.metrics.visitors, pricing.metrics.visits, pricing.metrics.bounce_rate) == (
        2,
        1,
        1.0,
    )
    second = breakdown(db, config, query, sites=["example"], now=NOW, by="page", limit=2, page=2)
    assert [(row.value, row.metrics.pageviews) for row in second.rows] == [("/docs", 1)]
    assert not second.has_more


def test_breakdowns_by_source_and_entry_page_with_comparison(
    dataset: tuple[Config, ReportsDatabase],
) -> None:
    config, db = dataset
    query = ReportQuery(period="today", compare="previous_period")
    sources = breakdown(db, config, query, sites=["example"], now=NOW, by="source")
    assert [(r.value, r.metrics.visitors, r.metrics.pageviews) for r in sources.rows] == [
        ("Direct / None", 3, 4),
        ("Bing", 1, 1),
        ("newsletter", 1, 1),
    ]
    previous = {row.value: row.previous for row in sources.rows}
    assert previous["Direct / None"] is not None and previous["Direct / None"].visitors == 1
    entries = breakdown(db, config, query, sites=["example"], now=NOW, by="entry_page")
    assert [(r.value, r.metrics.visits) for r in entries.rows] == [("/home", 2), ("/pricing", 1)]


def test_group_view_across_time_zones(dataset: tuple[Config, ReportsDatabase]) -> None:
    config, db = dataset
    query = ReportQuery(period="today")
    paris = aggregate(db, config, query, sites=["paris"], now=NOW)
    # 23:30 UTC on March 9 is today in Paris; 22:30 UTC is 23:30 on March 9 there.
    assert (paris.metrics.visitors, paris.metrics.visits) == (1, 1)
    both = aggregate(db, config, query, sites=["example", "paris"], now=NOW)
    assert (both.metrics.visitors, both.metrics.visits, both.metrics.pageviews) == (4, 4, 7)


def test_goals_report_lists_saved_goals(dataset: tuple[Config, ReportsDatabase]) -> None:
    config, db = dataset
    db.save_goal("example", Goal(name="Signup", kind="event", match="signup"), ms(2026, 3, 10))
    try:
        report = goals_report(db, config, ReportQuery(period="today"), sites=["example"], now=NOW)
        assert [(g.name, g.conversions, g.visitors) for g in report.goals] == [("Signup", 1, 3)]
    finally:
        assert db.delete_goal("example", "Signup")


@pytest.mark.parametrize(
    ("filters", "total", "per_visit"),
    [
        # B's 90-second engagement ping over today's 3 visits.
        ((), 90_000, 30_000.0),
        # The ping is on /home, as are 2 of today's visits.
        ((Filter(dimension="page", op="is", value="/home"),), 90_000, 45_000.0),
        ((Filter(dimension="mode", op="is", value="exempt"),), 0, 0.0),
    ],
    ids=["all", "page", "exempt"],
)
def test_engaged_time_is_reported_apart(
    dataset: tuple[Config, ReportsDatabase],
    filters: tuple[Filter, ...],
    total: int,
    per_visit: float,
) -> None:
    config, db = dataset
    query = ReportQuery(period="today", filters=filters, compare="previous_period")
    report = aggregate(db, config, query, sites=["example"], now=NOW)
    assert report.engaged is not None and report.previous_engaged is not None
    assert (report.engaged.total_ms, report.engaged.per_visit_ms) == (total, per_visit)
    assert (report.previous_engaged.total_ms, report.previous_engaged.per_visit_ms) == (0, 0.0)


@pytest.mark.parametrize(
    ("filters", "noted"),
    [
        ((), True),
        ((Filter(dimension="page", op="is", value="/kept"),), False),
        ((Filter(dimension="page", op="is", value="/daily"),), True),
        ((Filter(dimension="page", op="is_not", value="/daily"),), False),
    ],
)
def test_the_cookieless_note_follows_the_filters(
    tmp_path: Path, filters: tuple[Filter, ...], noted: bool
) -> None:
    """The note on daily identifiers is there when a visitor the filters select is cookieless,
    whatever the others (the rollups answer without filters, the events with)."""
    config = config_for(tmp_path)
    store(
        config,
        [
            event(ms(2026, 3, 10, 9), "K", path="/kept", mode="granted"),
            event(ms(2026, 3, 10, 9, 30), "D", path="/daily", mode="exempt", kind="cookieless"),
            event(ms(2026, 3, 10, 10), None, path="/daily"),
        ],
    )
    query = ReportQuery(period="today", filters=filters)
    with opened(config) as db:
        report = aggregate(db, config, query, sites=["example"], now=NOW)
    assert any("cookieless" in note for note in report.notes) is noted
    assert report.metrics.visitors == (2 if not filters else 1)
