"""Breakdowns by custom property and by browser version, property filters, and conversions
per breakdown row; the query-string forms of filters."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from starlette.datastructures import QueryParams

from collector.config import Config
from collector.errors import BadRequestError
from collector.reports import Filter, ReportQuery, aggregate, breakdown
from collector.reports.params import report_query
from collector.storage.rows import Goal
from tests.reports.dataset import config_for, event, ms, opened, store

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


@pytest.fixture
def config(tmp_path: Path) -> Config:
    config = config_for(tmp_path)
    store(
        config,
        [
            event(
                ms(2026, 3, 10, 9),
                "V1",
                path="/pricing",
                props={"plan": "pro"},
                browser="Firefox",
                browser_version="128",
            ),
            event(
                ms(2026, 3, 10, 9, 1),
                "V1",
                "signup",
                path="/pricing",
                props={"plan": "pro"},
                browser="Firefox",
                browser_version="128",
            ),
            event(
                ms(2026, 3, 10, 9),
                "V2",
                path="/pricing",
                props={"plan": "free"},
                browser="Firefox",
                browser_version="127",
            ),
            event(ms(2026, 3, 10, 9), "V3", path="/home", browser="Chrome", browser_version="120"),
            event(
                ms(2026, 3, 10, 9),
                "V4",
                path="/pricing",
                props={"plan": "pro", "n": 3},
                browser="Chrome",
                browser_version="120",
            ),
        ],
    )
    return config


def test_breakdown_by_property_with_conversions_per_row(config: Config) -> None:
    goal = Goal(name="signup", kind="event", match="signup")
    with opened(config) as db:
        report = breakdown(
            db,
            config,
            ReportQuery(period="today"),
            sites=["example"],
            now=NOW,
            by="prop:plan",
            goal=goal,
        )
    rows = [
        (
            r.value,
            r.metrics.visitors,
            r.metrics.events,
            r.metrics.conversions,
            r.metrics.conversion_rate,
        )
        for r in report.rows
    ]
    # Ties on visitors and pageviews are ordered by value; "no property" sorts first.
    assert rows == [("pro", 2, 1, 1, 0.5), (None, 1, 0, 0, 0.0), ("free", 1, 0, 0, 0.0)]


def test_breakdown_by_browser_version(config: Config) -> None:
    with opened(config) as db:
        report = breakdown(
            db,
            config,
            ReportQuery(period="today"),
            sites=["example"],
            now=NOW,
            by="browser_version",
        )
    assert [(r.value, r.metrics.visitors) for r in report.rows] == [
        ("Chrome 120", 2),
        ("Firefox 127", 1),
        ("Firefox 128", 1),
    ]


@pytest.mark.parametrize(
    ("text", "visitors"),
    [
        ("prop:plan:is:pro", 2),
        ("prop:n:is:3", 1),
        ("prop:plan:is_not:pro", 2),
        ("prop:plan:contains:r", 3),
        ("browser:is:Firefox", 2),
    ],
)
def test_property_filters_from_the_query_string(config: Config, text: str, visitors: int) -> None:
    query = report_query(QueryParams({"period": "today", "filter": text}))
    with opened(config) as db:
        assert aggregate(db, config, query, sites=["example"], now=NOW).metrics.visitors == visitors


def test_filter_forms() -> None:
    query = report_query(QueryParams([("filter", "page:is:/a:b"), ("filter", "prop:x:contains:")]))
    assert query.filters == (
        Filter(dimension="page", op="is", value="/a:b"),
        Filter(dimension="prop:x", op="contains", value=""),
    )
    with pytest.raises(BadRequestError, match="dimension:operator:value"):
        report_query(QueryParams({"filter": "prop:x:is"}))
