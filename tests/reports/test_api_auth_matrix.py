"""Every ``/api/v1`` route × {anonymous, analyst, dpo, owner, API token, wrong-site grant,
revoked token} through a live server, plus CSRF on state-changing requests."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.reports.live import Accounts, start

REPORTS = {
    "aggregate": "/api/v1/aggregate?site=example",
    "timeseries": "/api/v1/timeseries?site=example&interval=day",
    "breakdown": "/api/v1/breakdown?site=example&by=page",
    "breakdown-csv": "/api/v1/breakdown?site=example&by=page&format=csv",
    "goals": "/api/v1/goals?site=example",
    "funnel": "/api/v1/funnel?site=example&step=page:/a&step=event:signup",
    "retention": "/api/v1/retention?site=example",
    "experiment": "/api/v1/experiment?site=example&property=exp&goal=event:signup",
    "consent": "/api/v1/consent?site=example",
    "attribution": "/api/v1/attribution?site=example&goal=event:signup",
    "rfm": "/api/v1/rfm?site=example",
    "realtime": "/api/v1/realtime?site=example",
}
READ_STATUS = {
    "anonymous": 401,
    "revoked-token": 401,
    "analyst": 200,
    "dpo": 200,
    "owner": 200,
    "analyst-token": 200,
    "owner-token": 200,
    "wrong-site": 403,
}
# Defining a goal: owners only (by session with its CSRF token, or by owner token).
WRITE_STATUS = {
    "anonymous": 401,
    "revoked-token": 401,
    "analyst": 403,
    "dpo": 403,
    "owner": 201,
    "analyst-token": 403,
    "owner-token": 201,
    "wrong-site": 403,
}


@pytest.fixture(scope="module")
def callers(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, tuple[httpx.Client, str]]]:
    accounts: Accounts = start(tmp_path_factory.mktemp("auth-matrix"))
    clients: dict[str, tuple[httpx.Client, str]] = {}
    try:
        clients["anonymous"] = (accounts.client(), "")
        for who in ("analyst", "dpo", "owner", "wrong-site"):
            clients[who] = accounts.login(who)
        for name in ("analyst-token", "owner-token", "revoked-token"):
            clients[name] = (accounts.bearer(name), "")
        yield clients
    finally:
        for client, _csrf in clients.values():
            client.close()
        accounts.server.stop()


@pytest.mark.parametrize("caller", list(READ_STATUS))
@pytest.mark.parametrize("route", list(REPORTS))
def test_report_route_access(
    callers: dict[str, tuple[httpx.Client, str]], route: str, caller: str
) -> None:
    client, _csrf = callers[caller]
    response = client.get(REPORTS[route])
    assert response.status_code == READ_STATUS[caller], response.text
    if response.status_code == 401:
        assert response.headers["www-authenticate"].startswith("Bearer")
    if response.status_code == 403:
        assert response.json()["field"] == "site"


@pytest.mark.parametrize("caller", list(WRITE_STATUS))
def test_goal_definition_access(callers: dict[str, tuple[httpx.Client, str]], caller: str) -> None:
    client, csrf = callers[caller]
    body = {"site": "example", "name": f"Signup {caller}", "kind": "event", "match": "signup"}
    headers = {"x-csrf-token": csrf} if csrf else {}
    response = client.post("/api/v1/goals", json=body, headers=headers)
    assert response.status_code == WRITE_STATUS[caller], response.text
    if response.status_code == 201:
        names = [g["name"] for g in client.get("/api/v1/goals?site=example").json()["goals"]]
        assert body["name"] in names


def test_cookie_session_needs_its_csrf_token_to_write(
    callers: dict[str, tuple[httpx.Client, str]],
) -> None:
    client, csrf = callers["owner"]
    body = {"site": "example", "name": "No CSRF", "kind": "page", "match": "/x*"}
    missing = client.post("/api/v1/goals", json=body)
    wrong = client.post("/api/v1/goals", json=body, headers={"x-csrf-token": "0" * 64})
    assert (missing.status_code, wrong.status_code) == (403, 403)
    assert missing.json()["field"] == "x-csrf-token"
    right = client.post("/api/v1/goals", json=body, headers={"x-csrf-token": csrf})
    assert right.status_code == 201


def test_group_view_shows_only_granted_sites(
    callers: dict[str, tuple[httpx.Client, str]],
) -> None:
    stranger, _ = callers["wrong-site"]
    assert stranger.get("/api/v1/aggregate").json()["sites"] == ["other"]
    owner, _ = callers["owner"]
    assert owner.get("/api/v1/aggregate?site=all").json()["sites"] == ["example", "other"]
    assert owner.get("/api/v1/aggregate?site=example,other").json()["sites"] == [
        "example",
        "other",
    ]
    analyst, _ = callers["analyst"]
    assert analyst.get("/api/v1/aggregate?site=example,other").status_code == 403


DELETE_STATUS = {
    "anonymous": 401,
    "revoked-token": 401,
    "analyst": 403,
    "dpo": 403,
    "analyst-token": 403,
    "wrong-site": 403,
    "owner": 204,
    "owner-token": 204,
}


@pytest.mark.parametrize("caller", list(DELETE_STATUS))
def test_goal_deletion_access(callers: dict[str, tuple[httpx.Client, str]], caller: str) -> None:
    owner, _ = callers["owner-token"]
    body = {"site": "example", "name": f"Doomed {caller}", "kind": "event", "match": "x"}
    assert owner.post("/api/v1/goals", json=body).status_code == 201
    client, csrf = callers[caller]
    headers = {"x-csrf-token": csrf} if csrf else {}
    query = {"site": "example", "name": body["name"]}
    response = client.delete("/api/v1/goals", params=query, headers=headers)
    assert response.status_code == DELETE_STATUS[caller], response.text
    again = owner.delete("/api/v1/goals", params=query)
    expected = (400, "name") if response.status_code == 204 else (204, None)
    assert (again.status_code, again.json()["field"] if again.content else None) == expected
