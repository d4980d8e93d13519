"""Funnels (out-of-order steps, within a visit or N days) and weekly/monthly retention cohorts
(cohort edges, returns in the first week, cookieless visitors outside coverage), by hand."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from collector.config import Config
from collector.reports import ReportQuery, funnel, retention
from collector.reports.funnels import _glob
from collector.storage.rows import Goal
from tests.reports.dataset import config_for, event, ms, opened, store

MINUTE = 60_000
STEPS = [
    Goal(name="landing", kind="page", match="/a"),
    Goal(name="product", kind="page", match="/b*"),
    Goal(name="buy", kind="event", match="buy"),
]


@pytest.fixture
def funnel_config(tmp_path: Path) -> Config:
    config = config_for(tmp_path)
    store(
        config,
        [
            # V1 completes the funnel in one visit: 5 then 1 minute between steps.
            event(ms(2026, 3, 10, 10, 0), "V1", path="/a"),
            event(ms(2026, 3, 10, 10, 5), "V1", path="/b/shoes"),
            event(ms(2026, 3, 10, 10, 6), "V1", "buy", path="/b/shoes"),
            # V2 in the wrong order: /b before /a, so only step 1 counts.
            event(ms(2026, 3, 10, 10, 0), "V2", path="/b"),
            event(ms(2026, 3, 10, 10, 1), "V2", path="/a"),
            event(ms(2026, 3, 10, 10, 2), "V2", "buy", path="/a"),
            # V3: /a, then /b two hours later in another visit.
            event(ms(2026, 3, 10, 9, 0), "V3", path="/a"),
            event(ms(2026, 3, 10, 11, 0), "V3", path="/b"),
            # V4: steps 1 and 2 ten minutes apart.
            event(ms(2026, 3, 10, 10, 0), "V4", path="/a"),
            event(ms(2026, 3, 10, 10, 10), "V4", path="/b"),
            # A denied hit matches step 1 but has no visitor: it cannot be followed.
            event(ms(2026, 3, 10, 10, 0), None, path="/a"),
        ],
    )
    return config


NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


def test_funnel_within_one_visit(funnel_config: Config) -> None:
    with opened(funnel_config) as db:
        report = funnel(
            db, funnel_config, ReportQuery(period="today"), sites=["example"], now=NOW, steps=STEPS
        )
    assert [s.visitors for s in report.steps] == [4, 2, 1]
    assert [s.dropped for s in report.steps] == [0, 2, 1]
    assert [s.conversion for s in report.steps] == [1.0, 0.5, 0.25]
    assert [s.step_conversion for s in report.steps] == [1.0, 0.5, 0.5]
    assert [s.median_ms_from_previous for s in report.steps] == [
        None,
        (5 + 10) / 2 * MINUTE,
        1 * MINUTE,
    ]


def test_funnel_within_days_joins_visits(funnel_config: Config) -> None:
    with opened(funnel_config) as db:
        report = funnel(
            db,
            funnel_config,
            ReportQuery(period="today"),
            sites=["example"],
            now=NOW,
            steps=STEPS,
            within_days=1,
        )
    assert report.within == "1d"
    assert [s.visitors for s in report.steps] == [4, 3, 1]
    assert report.steps[1].median_ms_from_previous == 10 * MINUTE  # of 5, 10 and 120 minutes


def test_funnel_needs_two_steps(funnel_config: Config) -> None:
    with opened(funnel_config) as db, pytest.raises(ValueError, match="2 to 10 steps"):
        funnel(db, funnel_config, ReportQuery(), sites=["example"], now=NOW, steps=STEPS[:1])


@pytest.mark.parametrize(
    ("pattern", "path", "expected"),
    [
        ("/a", "/a", True),
        ("/a", "/ab", False),
        ("/b*", "/b/shoes", True),
        ("*/shoes", "/b/shoes", True),
        ("/b*s*s", "/b/shoes", True),
        ("/b*x*", "/b/shoes", False),
        ("/ab*ba", "/aba", False),
    ],
)
def test_step_pattern_matching(pattern: str, path: str, expected: bool) -> None:
    assert _glob(pattern, path) is expected


def test_weekly_retention_cohorts(tmp_path: Path) -> None:
    config = config_for(tmp_path)
    store(
        config,
        [
            # R1: new on Monday Feb 2, back the same week (not counted), in week +1 and +3.
            event(ms(2026, 2, 2, 10), "R1"),
            event(ms(2026, 2, 4, 10), "R1"),
            event(ms(2026, 2, 10, 10), "R1"),
            event(ms(2026, 2, 24, 10), "R1"),
            # R2: new late on Sunday Feb 8 (first week), back on Monday morning (week +1).
            event(ms(2026, 2, 8, 23, 50), "R2"),
            event(ms(2026, 2, 9, 8, 0), "R2"),
            # R3: new in the second week, never back.
            event(ms(2026, 2, 9, 12), "R3"),
            # R4: first seen before the period: not a new visitor of any cohort.
            event(ms(2026, 1, 28, 12), "R4"),
            event(ms(2026, 2, 3, 12), "R4"),
            # R5: first seen after the period.
            event(ms(2026, 2, 16, 12), "R5"),
            # K: a cookieless daily identifier cannot be followed (outside coverage).
            event(ms(2026, 2, 3, 12), "K", mode="exempt", kind="cookieless"),
        ],
    )
    query = ReportQuery(period="custom", date_from=date(2026, 2, 2), date_to=date(2026, 2, 15))
    now = datetime(2026, 3, 2, 12, tzinfo=UTC)
    with opened(config) as db:
        report = retention(db, config, query, sites=["example"], now=now, by="week")
    first, second = report.cohorts
    assert (first.start, first.visitors, first.retained) == (date(2026, 2, 2), 2, [2, 0, 1, 0])
    assert first.rates == [1.0, 0.0, 0.5, 0.0]
    assert (second.start, second.visitors, second.retained) == (date(2026, 2, 9), 1, [0, 0, 0])
    # R1, R2, R3, R4 can be followed; K cannot.
    assert (report.followed_visitors, report.identified_visitors) == (4, 5)
    assert report.coverage == 0.8


def test_monthly_retention_cohorts(tmp_path: Path) -> None:
    config = config_for(tmp_path)
    store(
        config,
        [
            event(ms(2026, 1, 31, 23, 0), "M1"),  # January cohort, on its last hour
            event(ms(2026, 2, 1, 0, 0), "M1"),  # 60 minutes later: a new visit, in February
            event(ms(2026, 3, 15), "M1"),
            event(ms(2026, 2, 14), "M2"),
        ],
    )
    query = ReportQuery(period="custom", date_from=date(2026, 1, 1), date_to=date(2026, 2, 28))
    now = datetime(2026, 3, 20, tzinfo=UTC)
    with opened(config) as db:
        report = retention(db, config, query, sites=["example"], now=now, by="month")
    january, february = report.cohorts
    assert (january.visitors, january.retained) == (1, [1, 1])
    assert (february.visitors, february.retained) == (1, [0])


def test_retention_cohorts_follow_the_site_time_zone(tmp_path: Path) -> None:
    config = config_for(tmp_path, {"paris": "Europe/Paris"})
    store(
        config,
        [
            # P1: Sunday Feb 8, 23:30 UTC is Monday Feb 9, 00:30 in Paris: the week of Feb 9.
            event(ms(2026, 2, 8, 23, 30), "P1", site="paris"),
            event(ms(2026, 2, 16, 10, 0), "P1", site="paris"),
            # P2: 22:30 UTC is still Sunday in Paris (week of Feb 2); back on Sunday Feb 15 at
            # 23:59 Paris time (22:59 UTC), in the week of Feb 9.
            event(ms(2026, 2, 8, 22, 30), "P2", site="paris"),
            event(ms(2026, 2, 15, 22, 59), "P2", site="paris"),
        ],
    )
    query = ReportQuery(period="custom", date_from=date(2026, 2, 2), date_to=date(2026, 2, 15))
    now = datetime(2026, 3, 2, 12, tzinfo=UTC)
    with opened(config) as db:
        report = retention(db, config, query, sites=["paris"], now=now, by="week")
    first, second = report.cohorts
    assert (first.start, first.visitors, first.retained) == (date(2026, 2, 2), 1, [1, 0, 0, 0])
    assert (second.start, second.visitors, second.retained) == (date(2026, 2, 9), 1, [1, 0, 0])


@pytest.mark.parametrize(("within", "reached"), [(1, [1, 0]), (2, [1, 1])])
def test_funnel_window_counts_from_the_first_step(
    tmp_path: Path, within: int, reached: list[int]
) -> None:
    config = config_for(tmp_path)
    # /a, then /b 25 hours later: outside a 1-day window, inside a 2-day one.
    store(
        config,
        [event(ms(2026, 3, 8, 10), "W", path="/a"), event(ms(2026, 3, 9, 11), "W", path="/b")],
    )
    query = ReportQuery(period="7d")
    with opened(config) as db:
        report = funnel(
            db, config, query, sites=["example"], now=NOW, steps=STEPS[:2], within_days=within
        )
    assert [s.visitors for s in report.steps] == reached
    expected_gap = 25 * 60 * MINUTE if within == 2 else None
    assert report.steps[1].median_ms_from_previous == expected_gap
