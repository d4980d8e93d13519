"""Every report route takes the common parameters: one site, several or all (the group view),
every period (resolved in the site's time zone, on the server's injected clock), filters and
``compare=previous_period``; through a live server with an owner token."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.reports.live import Accounts, start

ROUTES = {
    "aggregate": "/api/v1/aggregate",
    "timeseries": "/api/v1/timeseries?interval=day",
    "breakdown": "/api/v1/breakdown?by=country",
    "goals": "/api/v1/goals",
    "funnel": "/api/v1/funnel?step=page:/a&step=event:signup&within=7d",
    "retention": "/api/v1/retention?cohorts=month",
    "experiment": "/api/v1/experiment?property=exp&goal=event:signup",
    "consent": "/api/v1/consent",
    "attribution": "/api/v1/attribution?goal=page:/thanks*",
    "rfm": "/api/v1/rfm",
    "realtime": "/api/v1/realtime",
}
# The clock of tests/reports/live.py: Tuesday March 10, 2026, 12:00 UTC (site time zone UTC).
PERIODS = {
    "today": ("2026-03-10", "2026-03-10"),
    "7d": ("2026-03-04", "2026-03-10"),
    "30d": ("2026-02-09", "2026-03-10"),
    "month": ("2026-03-01", "2026-03-31"),
    "year": ("2026-01-01", "2026-12-31"),
    "custom": ("2026-02-01", "2026-02-14"),
}


@pytest.fixture(scope="module")
def accounts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Accounts]:
    running = start(tmp_path_factory.mktemp("common-parameters"))
    try:
        yield running
    finally:
        running.server.stop()


@pytest.mark.parametrize("route", list(ROUTES))
def test_every_period_with_filters_and_comparison(accounts: Accounts, route: str) -> None:
    with accounts.bearer("owner-token") as client:
        for period, (first, last) in PERIODS.items():
            params = {
                "site": "example",
                "period": period,
                "filter": ["country:is_not:DE", "prop:plan:contains:pro"],
                "compare": "previous_period",
            }
            if period == "custom":
                params.update({"from": first, "to": last})
            response = client.get(httpx.URL(ROUTES[route]).copy_merge_params(params))
            assert response.status_code == 200, (period, response.text)
            body = response.json()
            assert body["sites"] == ["example"]
            if route != "realtime":  # the last 30 minutes, whatever the period
                assert (body["period"]["from"], body["period"]["to"]) == (first, last)


@pytest.mark.parametrize("route", list(ROUTES))
@pytest.mark.parametrize("site", ["example,other", "all", None])
def test_several_sites_and_the_group_view(accounts: Accounts, route: str, site: str | None) -> None:
    with accounts.bearer("owner-token") as client:
        extra = {} if site is None else {"site": site}
        response = client.get(httpx.URL(ROUTES[route]).copy_merge_params(extra))
    assert response.status_code == 200, response.text
    assert response.json()["sites"] == ["example", "other"]


@pytest.mark.parametrize("route", list(ROUTES))
@pytest.mark.parametrize(
    ("first", "last", "field"),
    [
        ("9999-12-30", "9999-12-31", "from"),  # one day later overflows the date type
        ("0001-01-01", "0001-01-02", "from"),  # the period before overflows it
        ("1969-12-31", "1970-01-01", "from"),
        ("2999-12-31", "3000-01-01", "to"),
    ],
)
def test_dates_outside_the_supported_range_are_refused(
    accounts: Accounts, route: str, first: str, last: str, field: str
) -> None:
    # Issue 13, finding 8: `from=9999-12-30` answered 500 (OverflowError).
    params = {"period": "custom", "from": first, "to": last, "compare": "previous_period"}
    with accounts.bearer("owner-token") as client:
        response = client.get(httpx.URL(ROUTES[route]).copy_merge_params(params))
    assert (response.status_code, response.json()["field"]) == (400, field), response.text
    assert "1970-01-01" in response.json()["error"]
