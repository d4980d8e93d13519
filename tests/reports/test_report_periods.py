"""Periods in the site's time zone, and the period before them for comparisons."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from collector.reports.query import ReportQuery, resolve_scope
from collector.storage.rows import Filter
from tests.reports.dataset import config_for, ms

# 23:30 UTC on Tuesday March 10 is already Wednesday March 11 in Paris.
NOW = datetime(2026, 3, 10, 23, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("query", "current", "previous"),
    [
        (ReportQuery(period="today"), ("2026-03-11", "2026-03-11"), ("2026-03-10", "2026-03-10")),
        (ReportQuery(period="7d"), ("2026-03-05", "2026-03-11"), ("2026-02-26", "2026-03-04")),
        (ReportQuery(period="30d"), ("2026-02-10", "2026-03-11"), ("2026-01-11", "2026-02-09")),
        (ReportQuery(period="month"), ("2026-03-01", "2026-03-31"), ("2026-02-01", "2026-02-28")),
        (ReportQuery(period="year"), ("2026-01-01", "2026-12-31"), ("2025-01-01", "2025-12-31")),
        (
            ReportQuery(period="custom", date_from=date(2026, 1, 30), date_to=date(2026, 2, 2)),
            ("2026-01-30", "2026-02-02"),
            ("2026-01-26", "2026-01-29"),
        ),
    ],
    ids=["today", "7d", "30d", "month", "year", "custom"],
)
def test_periods_and_previous_periods(
    tmp_path: Path, query: ReportQuery, current: tuple[str, str], previous: tuple[str, str]
) -> None:
    config = config_for(tmp_path, {"paris": "Europe/Paris"})
    scope = resolve_scope(query, config, ["paris"], NOW)
    before = resolve_scope(query, config, ["paris"], NOW, previous=True)
    assert (str(scope.first_day), str(scope.last_day)) == current
    assert (str(before.first_day), str(before.last_day)) == previous


def test_site_ranges_follow_each_time_zone_and_daylight_saving(tmp_path: Path) -> None:
    config = config_for(tmp_path, {"paris": "Europe/Paris", "example": "UTC"})
    # March 29, 2026: Paris moves from UTC+1 to UTC+2; the local day lasts 23 hours.
    query = ReportQuery(period="custom", date_from=date(2026, 3, 29), date_to=date(2026, 3, 29))
    paris, utc = resolve_scope(query, config, ["paris", "example"], NOW).ranges
    assert (paris.start_ms, paris.end_ms) == (ms(2026, 3, 28, 23), ms(2026, 3, 29, 22))
    assert (utc.start_ms, utc.end_ms) == (ms(2026, 3, 29), ms(2026, 3, 30))


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"period": "custom"}, "needs `from` and `to`"),
        (
            {"period": "custom", "date_from": date(2026, 3, 2), "date_to": date(2026, 3, 1)},
            "`to` is before `from`",
        ),
        (
            {"period": "custom", "date_from": date(2000, 1, 1), "date_to": date(2026, 3, 1)},
            "at most 3660 days",
        ),
    ],
    ids=["missing-dates", "reversed", "too-long"],
)
def test_invalid_queries(arguments: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ReportQuery(**arguments)  # type: ignore[arg-type]


@pytest.mark.parametrize("dimension", ["shoe_size", "prop:", 'prop:a"b', "prop:" + "x" * 65])
def test_filters_only_name_allowed_dimensions(dimension: str) -> None:
    with pytest.raises(ValueError, match="unknown dimension"):
        Filter(dimension=dimension, op="is", value="x")
