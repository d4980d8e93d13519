"""Breakdowns by every listed dimension, filters on non-page dimensions (alone and combined),
monthly and goal time series, and filters on real time and RFM: one small dataset, every row
worked out by hand from docs/metrics.md."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from collector.config import Config
from collector.reports import Filter, ReportQuery, aggregate, breakdown, realtime, rfm, timeseries
from collector.storage.rows import Event, Goal
from collector.storage.sqlite.reports import ReportsDatabase
from tests.reports.dataset import config_for, event, ms, opened, store, visitor

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
MINUTE = 60_000
TODAY = ReportQuery(period="today")
SIGNUP = Goal(name="signup", kind="event", match="signup")

V1: dict[str, Any] = {
    "referrer": "https://www.google.com/search",
    "source": "Google",
    "utm_source": "news",
    "utm_medium": "email",
    "utm_campaign": "spring",
    "utm_term": "shoes",
    "utm_content": "banner",
    "device": "desktop",
    "browser": "Firefox",
    "browser_version": "128",
    "os": "Linux",
    "country": "FR",
    "screen": "large",
}
V2: dict[str, Any] = {
    "mode": "exempt",
    "device": "mobile",
    "browser": "Chrome",
    "browser_version": "120",
    "os": "Android",
    "os_version": "14",
    "country": "DE",
    "screen": "small",
}
V3: dict[str, Any] = {
    **V2,
    "mode": "granted",
    "browser_version": "121",
    "country": "FR",
    "referrer": "https://news.example/x",
    "source": "news.example",
}


def events() -> list[Event]:
    return [
        # V1: /a, /b four minutes later, a signup: one visit of 5 minutes, not a bounce.
        event(ms(2026, 3, 10, 10, 0), "V1", path="/a", **V1),
        event(ms(2026, 3, 10, 10, 4), "V1", path="/b", **V1),
        event(ms(2026, 3, 10, 10, 5), "V1", "signup", path="/b", **V1),
        # V2 (exempt): a bounce on /a.
        event(ms(2026, 3, 10, 11, 25), "V2", path="/a", **V2),
        # V3: /b then /a ten minutes later: entry /b, exit /a.
        event(ms(2026, 3, 10, 11, 30), "V3", path="/b", **V3),
        event(ms(2026, 3, 10, 11, 40), "V3", path="/a", **V3),
        # V4: a visit from 23:50 on February 28 to 00:10 on March 1 (it belongs to February).
        event(ms(2026, 2, 28, 23, 50), "V4", path="/a"),
        event(ms(2026, 3, 1, 0, 10), "V4", path="/b"),
    ]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Config, ReportsDatabase]]:
    config = config_for(Path(tmp_path_factory.mktemp("dimensions")))
    store(config, events())
    with opened(config) as db:
        yield config, db


Row = tuple[str | None, int, int, int, float, float]
# (value, visitors, visits, pageviews, bounce rate, average visit duration in ms) of today.
# Visits: V1 2 pageviews, 5 min; V2 a bounce; V3 2 pageviews, 10 min.
WITHOUT_V1: tuple[int, int, int, float, float] = (2, 2, 3, 1 / 2, 5 * MINUTE)  # V2 and V3
ONLY_V1: tuple[int, int, int, float, float] = (1, 1, 2, 0.0, 5 * MINUTE)
EXPECTED: dict[str, list[Row]] = {
    # A page row counts the visits with a pageview of it: /a is in all three.
    "page": [("/a", 3, 3, 3, 1 / 3, 5 * MINUTE), ("/b", 2, 2, 2, 0.0, 7.5 * MINUTE)],
    "entry_page": [("/a", 2, 2, 3, 1 / 2, 2.5 * MINUTE), ("/b", 1, 1, 2, 0.0, 10 * MINUTE)],
    "exit_page": [("/a", *WITHOUT_V1), ("/b", *ONLY_V1)],
    "hostname": [("example.com", 3, 3, 5, 1 / 3, 5 * MINUTE)],
    # V1 is granted: its utm_source overrides the referrer source.
    "source": [
        ("news", *ONLY_V1),
        ("news.example", 1, 1, 2, 0.0, 10 * MINUTE),
        ("Direct / None", 1, 1, 1, 1.0, 0.0),
    ],
    "referrer": [
        ("https://news.example/x", 1, 1, 2, 0.0, 10 * MINUTE),
        ("https://www.google.com/search", *ONLY_V1),
        (None, 1, 1, 1, 1.0, 0.0),
    ],
    "utm_source": [(None, *WITHOUT_V1), ("news", *ONLY_V1)],
    "utm_medium": [(None, *WITHOUT_V1), ("email", *ONLY_V1)],
    "utm_campaign": [(None, *WITHOUT_V1), ("spring", *ONLY_V1)],
    "utm_term": [(None, *WITHOUT_V1), ("shoes", *ONLY_V1)],
    "utm_content": [(None, *WITHOUT_V1), ("banner", *ONLY_V1)],
    "device": [("mobile", *WITHOUT_V1), ("desktop", *ONLY_V1)],
    "browser": [("Chrome", *WITHOUT_V1), ("Firefox", *ONLY_V1)],
    "browser_version": [
        ("Chrome 121", 1, 1, 2, 0.0, 10 * MINUTE),
        ("Firefox 128", *ONLY_V1),
        ("Chrome 120", 1, 1, 1, 1.0, 0.0),
    ],
    "os": [("Android", *WITHOUT_V1), ("Linux", *ONLY_V1)],
    # Without a version the row is the OS name alone.
    "os_version": [("Android 14", *WITHOUT_V1), ("Linux", *ONLY_V1)],
    "country": [("FR", 2, 2, 4, 0.0, 7.5 * MINUTE), ("DE", 1, 1, 1, 1.0, 0.0)],
    "screen": [("small", *WITHOUT_V1), ("large", *ONLY_V1)],
    # The signup row: V1's visit, no pageview of its own.
    "event": [("pageview", 3, 3, 5, 1 / 3, 5 * MINUTE), ("signup", 1, 1, 0, 0.0, 5 * MINUTE)],
    "mode": [("granted", 2, 2, 4, 0.0, 7.5 * MINUTE), ("exempt", 1, 1, 1, 1.0, 0.0)],
}


@pytest.mark.parametrize("by", list(EXPECTED))
def test_breakdown_by_every_dimension(dataset: tuple[Config, ReportsDatabase], by: str) -> None:
    config, db = dataset
    report = breakdown(db, config, TODAY, sites=["example"], now=NOW, by=by)
    found = [
        (
            row.value,
            row.metrics.visitors,
            row.metrics.visits,
            row.metrics.pageviews,
            row.metrics.bounce_rate,
            row.metrics.visit_duration_ms,
        )
        for row in report.rows
    ]
    assert found == EXPECTED[by]


def test_conversion_rate_per_country_row(dataset: tuple[Config, ReportsDatabase]) -> None:
    config, db = dataset
    report = breakdown(db, config, TODAY, sites=["example"], now=NOW, by="country", goal=SIGNUP)
    # FR: V1 converted, V3 did not; DE: V2 did not.
    assert [(r.value, r.metrics.conversions, r.metrics.conversion_rate) for r in report.rows] == [
        ("FR", 1, 0.5),
        ("DE", 0, 0.0),
    ]


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ((("country", "is", "FR"), ("browser_version", "contains", "Chrome")), (1, 1, 2, 0)),
        ((("os_version", "is_not", "Android 14"),), (1, 1, 2, 1)),
        ((("device", "is", "mobile"), ("screen", "is_not", "small")), (0, 0, 0, 0)),
        ((("exit_page", "is", "/a"), ("entry_page", "is", "/b")), (1, 1, 2, 0)),
        ((("utm_campaign", "contains", "spr"), ("referrer", "contains", "google")), (1, 1, 2, 1)),
        ((("event", "is_not", "pageview"),), (1, 1, 0, 1)),
        ((("mode", "is", "exempt"), ("source", "is", "Direct / None")), (1, 1, 1, 0)),
    ],
    ids=[
        "country-and-browser",
        "os-version-not",
        "no-match",
        "exit-and-entry",
        "campaign-and-referrer",
        "events-only",
        "mode-and-source",
    ],
)
def test_filters_on_other_dimensions(
    dataset: tuple[Config, ReportsDatabase],
    filters: tuple[tuple[str, str, str], ...],
    expected: tuple[int, int, int, int],
) -> None:
    config, db = dataset
    query = ReportQuery(
        period="today",
        filters=tuple(Filter(dimension=d, op=op, value=v) for d, op, v in filters),  # type: ignore[arg-type]
    )
    found = aggregate(db, config, query, sites=["example"], now=NOW).metrics
    assert (found.visitors, found.visits, found.pageviews, found.events) == expected


def test_monthly_time_series_puts_a_visit_in_the_month_it_began(
    dataset: tuple[Config, ReportsDatabase],
) -> None:
    config, db = dataset
    report = timeseries(
        db, config, ReportQuery(period="year"), sites=["example"], now=NOW, interval="month"
    )
    assert [p.bucket for p in report.points] == [f"2026-{m:02d}-01" for m in range(1, 13)]
    by_month = {p.bucket: p.metrics for p in report.points}
    february, march = by_month["2026-02-01"], by_month["2026-03-01"]
    assert (february.visitors, february.visits, february.pageviews) == (1, 1, 1)
    # V4's March 1 pageview counts in March, its visit does not.
    assert (march.visitors, march.visits, march.pageviews) == (4, 3, 6)
    assert sum(p.metrics.pageviews for p in report.points) == 7


def test_goal_time_series_converts_per_bucket(dataset: tuple[Config, ReportsDatabase]) -> None:
    config, db = dataset
    report = timeseries(
        db, config, ReportQuery(period="7d"), sites=["example"], now=NOW, goal=SIGNUP
    )
    assert [(p.metrics.conversions, p.metrics.conversion_rate) for p in report.points] == [
        (0, 0.0)
    ] * 6 + [(1, 1 / 3)]


def test_realtime_applies_filters(dataset: tuple[Config, ReportsDatabase]) -> None:
    _config, db = dataset
    now = datetime(2026, 3, 10, 11, 45, tzinfo=UTC)  # the window starts at 11:15: V2 and V3
    everyone = realtime(db, sites=["example"], now=now)
    assert (everyone.visitors, everyone.pageviews) == (2, 3)
    assert [(p.path, p.visitors, p.pageviews) for p in everyone.pages] == [
        ("/a", 2, 2),
        ("/b", 1, 1),
    ]
    french = realtime(
        db, sites=["example"], now=now, filters=(Filter(dimension="country", op="is", value="FR"),)
    )
    assert (french.visitors, french.pageviews) == (1, 2)
    assert [(p.path, p.visitors, p.pageviews) for p in french.pages] == [("/a", 1, 1), ("/b", 1, 1)]


def test_rfm_applies_filters(tmp_path: Path) -> None:
    config = config_for(tmp_path)

    def purchase(day: int, user: str, amount: str, country: str) -> Event:
        return event(
            ms(2026, 3, day, 10),
            user.lower(),
            "purchase",
            user=visitor(user),
            revenue_amount=amount,
            revenue_currency="EUR",
            country=country,
        )

    store(
        config,
        [
            purchase(2, "U1", "10", "FR"),
            purchase(5, "U1", "30", "FR"),
            purchase(3, "U2", "99", "DE"),
            purchase(4, "U3", "5", "FR"),
        ],
    )
    query = ReportQuery(
        period="custom",
        date_from=date(2026, 3, 1),
        date_to=date(2026, 3, 10),
        filters=(Filter(dimension="country", op="is", value="FR"),),
    )
    with opened(config) as db:
        report = rfm(db, config, query, sites=["example"], now=NOW)
    # U2 bought in Germany only: out of the filtered report.
    assert report.customers == 2
    assert sorted((c.frequency, c.monetary) for c in report.scores) == [(1, "5"), (2, "40")]
