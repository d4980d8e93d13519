"""The reports API end to end: events sent through ``POST /api/batch`` (the real ingest path),
read back through ``/api/v1``; CSV download; 400s naming the parameter; login, logout, cookie
flags and rate-limited login attempts on the injected clock."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.reports.live import INGEST_TOKEN, PASSWORD, USERS, Accounts, start

MINUTE = 60_000


@pytest.fixture
def accounts(tmp_path: Path) -> Iterator[Accounts]:
    running = start(tmp_path)
    try:
        yield running
    finally:
        running.server.stop()


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Accounts]:
    """One server for the tests that only read (the parameter checks)."""
    running = start(tmp_path_factory.mktemp("reports-params"))
    try:
        yield running
    finally:
        running.server.stop()


def ingest(accounts: Accounts) -> None:
    """Today (March 10): v1 views /a then /b five minutes later and signs up; v2 bounces on
    /a; one denied pageview of /a. Yesterday: v1 bounces, from a campaign named like a
    spreadsheet formula."""
    now = int(accounts.clock().timestamp() * 1000)

    def at(minutes_ago: int) -> int:
        return now - minutes_ago * MINUTE

    visitor = {"mode": "granted", "cid": "visitor-one"}
    rows = [
        {"url": "https://example.com/a?utm_campaign=%3D1%2B2", "ts": at(23 * 60), **visitor},
        {"url": "https://example.com/a", "ts": at(120), **visitor},
        {"url": "https://example.com/b", "ts": at(115), **visitor},
        {"url": "https://example.com/b", "ts": at(114), "name": "signup", **visitor},
        {"url": "https://example.com/a", "ts": at(60), "mode": "granted", "cid": "visitor-two"},
        {"url": "https://example.com/a", "ts": at(50), "mode": "denied"},
    ]
    with accounts.client({"authorization": f"Bearer {INGEST_TOKEN}"}) as client:
        response = client.post("/api/batch", json=[{"site": "example", **r} for r in rows])
    assert response.status_code == 202, response.text


def test_reports_of_ingested_events(accounts: Accounts) -> None:
    ingest(accounts)
    with accounts.bearer("analyst-token") as client:
        today = client.get(
            "/api/v1/aggregate",
            params={"site": "example", "period": "today", "compare": "previous_period"},
        ).json()
        assert today["metrics"] == {
            "visitors": 2,
            "visits": 2,
            "pageviews": 4,
            "unidentified_pageviews": 1,
            "views_per_visit": 1.5,
            "bounce_rate": 0.5,
            "visit_duration_ms": (6 * MINUTE + 0) / 2,
            "events": 1,
            "conversions": None,
            "conversion_rate": None,
        }
        assert (today["previous"]["visitors"], today["previous"]["bounce_rate"]) == (1, 1.0)
        converted = client.get(
            "/api/v1/aggregate", params={"period": "today", "goal": "event:signup"}
        ).json()
        assert (converted["metrics"]["conversions"], converted["metrics"]["conversion_rate"]) == (
            1,
            0.5,
        )
        filtered = client.get(
            "/api/v1/aggregate", params={"period": "today", "filter": "page:is:/b"}
        ).json()
        assert (filtered["metrics"]["visitors"], filtered["metrics"]["pageviews"]) == (1, 1)
        series = client.get("/api/v1/timeseries", params={"period": "7d"}).json()
        assert [p["metrics"]["visits"] for p in series["points"]] == [0, 0, 0, 0, 0, 1, 2]
        download = client.get(
            "/api/v1/breakdown", params={"period": "today", "by": "page", "format": "csv"}
        )
        assert download.headers["content-type"].startswith("text/csv")
        assert 'filename="breakdown-page.csv"' in download.headers["content-disposition"]
        table = list(csv.reader(io.StringIO(download.text)))
        assert table[0][:4] == ["page", "visitors", "visits", "pageviews"]
        assert [row[:4] for row in table[1:]] == [["/a", "2", "2", "3"], ["/b", "1", "1", "1"]]


def test_csv_cells_cannot_start_a_formula(accounts: Accounts) -> None:
    ingest(accounts)
    with accounts.bearer("analyst-token") as client:
        download = client.get(
            "/api/v1/breakdown", params={"period": "7d", "by": "utm_campaign", "format": "csv"}
        )
        as_json = client.get("/api/v1/breakdown", params={"period": "7d", "by": "utm_campaign"})
    assert "=1+2" in [row["value"] for row in as_json.json()["rows"]]
    cells = [row[0] for row in csv.reader(io.StringIO(download.text))][1:]
    assert "'=1+2" in cells
    assert all(not cell.startswith(("=", "+", "-", "@")) for cell in cells)


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("period=fortnight", "period"),
        ("period=custom&from=2026-03-01", "to"),
        ("period=custom&from=2026-03-05&to=2026-03-01", "to"),
        ("period=custom&from=yesterday&to=2026-03-01", "from"),
        ("filter=page:equals:/a", "filter"),
        ("filter=nope:is:x", "filter"),
        ("filter=page", "filter"),
        ("compare=last_year", "compare"),
        ("site=nowhere", "site"),
        ("colour=red", "colour"),
        ("goal=Unknown goal", "goal"),
    ],
)
def test_bad_parameters_are_named(shared: Accounts, query: str, field: str) -> None:
    with shared.bearer("owner-token") as client:
        response = client.get(f"/api/v1/aggregate?{query}")
    assert response.status_code == 400, response.text
    assert response.json()["field"] == field


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/api/v1/breakdown", "by"),
        ("/api/v1/breakdown?by=shoe_size", "by"),
        ("/api/v1/breakdown?by=page&limit=0", "limit"),
        ("/api/v1/breakdown?by=page&page=x", "page"),
        ("/api/v1/breakdown?by=page&format=xml", "format"),
        ("/api/v1/timeseries?interval=minute", "interval"),
        ("/api/v1/timeseries?interval=hour&period=year", "interval"),
        ("/api/v1/funnel?step=page:/a", "step"),
        ("/api/v1/funnel?step=page:/a&step=nothing", "step"),
        ("/api/v1/funnel?step=page:/a&step=page:/b&within=forever", "within"),
        ("/api/v1/retention?cohorts=day", "cohorts"),
        ("/api/v1/experiment?goal=event:x", "property"),
        ("/api/v1/experiment?property=exp", "goal"),
        ("/api/v1/attribution", "goal"),
        ("/api/v1/rfm?currency=euro", "currency"),
    ],
)
def test_report_specific_parameters(shared: Accounts, path: str, field: str) -> None:
    with shared.bearer("owner-token") as client:
        response = client.get(path)
    assert response.status_code == 400, response.text
    assert response.json()["field"] == field


def test_login_sets_a_safe_cookie_and_logout_ends_the_session(accounts: Accounts) -> None:
    with accounts.client() as client:
        response = client.post(
            "/login", json={"email": "Analyst@Example.test", "password": PASSWORD}
        )
        assert response.status_code == 200
        cookie = response.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=lax" in cookie and "secure" not in cookie
        csrf = response.json()["csrf_token"]
        assert client.get("/api/v1/realtime").status_code == 200
        assert client.post("/logout").status_code == 403  # no CSRF token
        assert client.post("/logout", headers={"x-csrf-token": csrf}).status_code == 204
        assert client.get("/api/v1/realtime").status_code == 401


def test_form_login_redirects_only_to_local_paths(accounts: Accounts) -> None:
    form = {"email": USERS["owner"][0], "password": PASSWORD}
    with accounts.client() as client:
        local = client.post("/login", data={**form, "next": "/reports?x=1"})
        remote = client.post("/login", data={**form, "next": "https://evil.example/"})
    assert (local.status_code, local.headers["location"]) == (303, "/reports?x=1")
    assert (remote.status_code, remote.headers["location"]) == (303, "/")


def test_login_attempts_are_rate_limited_per_account(accounts: Accounts) -> None:
    wrong = {"email": USERS["dpo"][0], "password": "not the password"}
    right = {"email": USERS["dpo"][0], "password": PASSWORD}
    with accounts.client() as client:
        statuses = [client.post("/login", json=wrong).status_code for _ in range(5)]
        assert statuses == [401] * 5
        throttled = client.post("/login", json=right)
        assert throttled.status_code == 429
        # A back-off from 1 s, not a lock (tests/reports/test_login_throttling.py).
        assert int(throttled.headers["retry-after"]) == 1
        # Another account is not affected.
        other = client.post("/login", json={"email": USERS["owner"][0], "password": PASSWORD})
        assert other.status_code == 200
        accounts.clock.advance(minutes=15, seconds=1)
        assert client.post("/login", json=right).status_code == 200


def test_unknown_account_and_missing_fields(accounts: Accounts) -> None:
    with accounts.client() as client:
        unknown = client.post("/login", json={"email": "nobody@x.test", "password": PASSWORD})
        empty = client.post("/login", json={"email": "", "password": ""})
        garbage = client.post("/login", content=b"{", headers={"content-type": "application/json"})
    assert unknown.status_code == 401
    assert (empty.status_code, empty.json()["field"]) == (400, "email")
    assert garbage.status_code == 400


def test_ingest_endpoints_stay_public(accounts: Accounts) -> None:
    with httpx.Client(base_url=accounts.server.url) as client:
        assert client.get("/healthz").status_code == 200
        assert client.get("/api/v1/aggregate").status_code == 401
