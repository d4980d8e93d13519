"""The dashboard over HTTP: the CSP and security headers on every response, the route access
matrix (anonymous, analyst, dpo, owner), the login/logout/password forms and the saved-funnels
API, against a live collector holding the realistic dataset."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import closing
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from collector import auth
from collector.storage.sqlite.accounts import auth_database
from collector.web.dashboard.pages import PAGES
from tests.dashboard.conftest import Dashboard
from tests.dashboard.dataset import PASSWORD, USERS

PAGE_PATHS = [page.path for page in PAGES]
STATIC = ["/static/app.js", "/static/dashboard.css", "/static/chart.js", "/static/favicon.svg"]
#: Expected status per role of every page; the privacy page is for the dpo and owner only.
ACCESS = {
    "analyst": {path: 403 if path == "/privacy" else 200 for path in PAGE_PATHS},
    "dpo": dict.fromkeys(PAGE_PATHS, 200),
    "owner": dict.fromkeys(PAGE_PATHS, 200),
}


@pytest.fixture(scope="module")
def sessions(dashboard: Dashboard) -> Iterator[dict[str, tuple[httpx.Client, str]]]:
    found = {role: dashboard.login(role) for role in ("analyst", "dpo", "owner")}
    yield found
    for client, _csrf in found.values():
        client.close()


def csp_directives(header: str) -> dict[str, str]:
    return {
        part.strip().split(" ", 1)[0]: part.strip().partition(" ")[2]
        for part in header.split(";")
        if part.strip()
    }


@pytest.mark.parametrize("path", [*PAGE_PATHS, "/login", *STATIC])
def test_every_dashboard_response_carries_a_strict_csp(
    sessions: dict[str, tuple[httpx.Client, str]], path: str
) -> None:
    client, _csrf = sessions["owner"]
    response = client.get(path)
    assert response.status_code == 200, response.text
    policy = csp_directives(response.headers["content-security-policy"])
    assert policy["default-src"] == "'self'"
    assert policy["script-src"] == "'self'"
    assert policy["style-src"] == "'self'"
    assert policy["object-src"] == "'none'"
    assert policy["frame-ancestors"] == "'none'"
    assert "unsafe-inline" not in response.headers["content-security-policy"]
    assert response.headers["x-content-type-options"] == "nosniff"
    if path.startswith("/static/"):
        return
    assert response.headers["cache-control"] == "no-store"
    page = response.text
    # No inline script, no inline style, nothing from another origin.
    assert "<script>" not in page and "style=" not in page and "<style" not in page
    for attribute in ("src=", "href="):
        for value in page.split(attribute)[1:]:
            target = value[1:].split(value[0], 1)[0]
            assert not target.startswith(("http:", "https:", "//")) or "p.gif" in target, target


@pytest.mark.parametrize("path", [*PAGE_PATHS, "/?period=7d&filter=page:is:/pricing"])
def test_anonymous_visitors_are_sent_to_the_login_page(dashboard: Dashboard, path: str) -> None:
    with httpx.Client(base_url=dashboard.url) as client:
        response = client.get(path)
    assert response.status_code == 303
    target = urlsplit(response.headers["location"])
    assert target.path == "/login"
    assert parse_qs(target.query)["next"] == [path]
    assert "content-security-policy" in response.headers


@pytest.mark.parametrize("role", list(ACCESS))
def test_each_role_opens_exactly_its_pages(
    sessions: dict[str, tuple[httpx.Client, str]], role: str
) -> None:
    client, _csrf = sessions[role]
    statuses = {path: client.get(path).status_code for path in PAGE_PATHS}
    assert statuses == ACCESS[role]
    overview = client.get("/").text
    assert ('href="/privacy"' in overview) == (role != "analyst")
    goals = client.get("/goals").text
    assert ('id="goal-form"' in goals) == (role == "owner")  # only owners edit goals
    assert 'id="funnel-form"' in client.get("/funnels").text or role != "owner"


def test_analyst_cannot_reach_the_privacy_api_either(
    sessions: dict[str, tuple[httpx.Client, str]],
) -> None:
    analyst, _ = sessions["analyst"]
    dpo, _ = sessions["dpo"]
    assert analyst.get("/api/v1/privacy/audit").status_code == 403
    audit = dpo.get("/api/v1/privacy/audit")
    assert audit.status_code == 200
    assert audit.json()["check"]["ok"] is True


def test_static_files_are_only_the_shipped_ones(dashboard: Dashboard) -> None:
    with httpx.Client(base_url=dashboard.url) as client:
        app = client.get("/static/app.js")
        assert app.headers["content-type"].startswith("text/javascript")
        again = client.get("/static/app.js", headers={"if-none-match": app.headers["etag"]})
        assert again.status_code == 304
        for path in ("/static/nope.js", "/static/..%2Fdashboard%2Froutes.py", "/static/"):
            assert client.get(path).status_code == 404, path


def test_filter_values_are_escaped_in_the_page(
    sessions: dict[str, tuple[httpx.Client, str]],
) -> None:
    client, _csrf = sessions["analyst"]
    page = client.get("/", params={"filter": 'page:is:/"><script>alert(1)</script>'}).text
    assert "<script>alert(1)" not in page
    assert "Page is /&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_form_login_failures_come_back_to_the_login_page(dashboard: Dashboard) -> None:
    with httpx.Client(base_url=dashboard.url) as client:
        wrong = {"email": USERS["analyst"], "password": "not the password", "next": "/goals"}
        response = client.post("/login", data=wrong)
        assert response.status_code == 303
        assert response.headers["location"] == "/login?error=invalid&next=%2Fgoals"
        page = client.get(response.headers["location"]).text
        assert "Wrong e-mail address or password." in page
        assert 'name="next" value="/goals"' in page
        for _ in range(4):
            client.post("/login", data=wrong)
        throttled = client.post("/login", data={**wrong, "password": PASSWORD})
        assert throttled.status_code == 303
        assert "error=throttled" in throttled.headers["location"]
        assert "Too many failed attempts" in client.get(throttled.headers["location"]).text
        dashboard.clock.advance(minutes=15, seconds=1)
        ok = client.post("/login", data={**wrong, "password": PASSWORD})
        assert (ok.status_code, ok.headers["location"]) == (303, "/goals")
        assert client.get("/goals").status_code == 200


def test_logout_form_ends_the_session(dashboard: Dashboard) -> None:
    client, csrf = dashboard.login("dpo")
    with closing(client):
        assert client.get("/").status_code == 200
        refused = client.post("/logout", data={"csrf_token": "forged"})
        assert refused.status_code == 403
        response = client.post("/logout", data={"csrf_token": csrf})
        assert (response.status_code, response.headers["location"]) == (303, "/login?out=1")
        assert "You are logged out." in client.get("/login?out=1").text
        assert client.get("/").status_code == 303


def test_password_change_form(dashboard: Dashboard) -> None:
    email = "changer@example.test"
    with auth_database(dashboard.server.config.database_path) as db:
        db.add_user(email, "analyst", auth.hash_password(PASSWORD, n=2**12), (), 0)

    def login(password: str) -> httpx.Response:
        return httpx.post(f"{dashboard.url}/login", json={"email": email, "password": password})

    client = httpx.Client(base_url=dashboard.url, cookies=login(PASSWORD).cookies)
    other = httpx.Client(base_url=dashboard.url, cookies=login(PASSWORD).cookies)
    page = client.get("/account").text
    csrf = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    new = "another long passphrase"
    with closing(client), closing(other):
        cases = [
            ({"current": PASSWORD, "new": new, "again": new + "x"}, "mismatch"),
            ({"current": PASSWORD, "new": "short", "again": "short"}, "short"),
            ({"current": "wrong password!", "new": new, "again": new}, "wrong"),
        ]
        for fields, message in cases:
            response = client.post("/account/password", data={"csrf_token": csrf, **fields})
            assert response.headers["location"] == f"/account?msg={message}"
        forged = client.post(
            "/account/password", data={"csrf_token": "x", "current": PASSWORD, "new": new}
        )
        assert forged.status_code == 403
        done = client.post(
            "/account/password",
            data={"csrf_token": csrf, "current": PASSWORD, "new": new, "again": new},
        )
        assert done.headers["location"] == "/account?msg=changed"
        # This browser keeps a fresh session; every other session of the account ended.
        assert "Your password is changed" in client.get("/account?msg=changed").text
        assert other.get("/").status_code == 303
        assert login(PASSWORD).status_code == 401
        assert login(new).status_code == 200


def test_saved_funnels_api(
    dashboard: Dashboard, sessions: dict[str, tuple[httpx.Client, str]]
) -> None:
    owner, csrf = sessions["owner"]
    analyst, analyst_csrf = sessions["analyst"]
    funnel = {"site": "shop", "name": "Buy", "steps": ["page:/shop", "event:purchase"]}
    headers = {"x-csrf-token": csrf}
    assert httpx.get(f"{dashboard.url}/api/v1/funnels").status_code == 401
    assert owner.post("/api/v1/funnels", json=funnel).status_code == 403  # no CSRF token
    refused = analyst.post("/api/v1/funnels", json=funnel, headers={"x-csrf-token": analyst_csrf})
    assert refused.status_code == 403
    bad = owner.post("/api/v1/funnels", json={**funnel, "steps": ["page:/a"]}, headers=headers)
    assert bad.status_code == 400 and "steps" in bad.json()["error"]
    odd = owner.post("/api/v1/funnels", json={**funnel, "within": "0d"}, headers=headers)
    assert (odd.status_code, odd.json()["field"]) == (400, "within")
    unknown = owner.post("/api/v1/funnels", json={**funnel, "site": "nope"}, headers=headers)
    assert (unknown.status_code, unknown.json()["field"]) == (400, "site")
    created = owner.post("/api/v1/funnels", json={**funnel, "within": "7d"}, headers=headers)
    assert created.status_code == 201
    listed = analyst.get("/api/v1/funnels", params={"site": "shop"}).json()["funnels"]
    assert listed == [{**funnel, "within": "7d"}]
    everything = analyst.get("/api/v1/funnels").json()["funnels"]
    assert [f["name"] for f in everything] == ["Pricing to signup", "Buy"]
    # The saved steps run through the funnel report as they are.
    report = analyst.get(
        "/api/v1/funnel", params={"site": "shop", "step": funnel["steps"], "within": "7d"}
    )
    assert report.status_code == 200 and report.json()["steps"][0]["visitors"] > 0
    delete = "/api/v1/funnels?site=shop&name=Buy"
    assert analyst.delete(delete, headers={"x-csrf-token": analyst_csrf}).status_code == 403
    assert owner.delete(delete, headers=headers).status_code == 204
    assert owner.delete(delete, headers=headers).status_code == 400
    assert analyst.get("/api/v1/funnels", params={"site": "shop"}).json()["funnels"] == []


def test_api_bodies_are_bounded_before_they_are_read_and_nothing_is_saved(
    dashboard: Dashboard, sessions: dict[str, tuple[httpx.Client, str]]
) -> None:
    owner, csrf = sessions["owner"]
    headers = {"x-csrf-token": csrf, "content-type": "application/json"}
    # Valid JSON padded past 16 KiB, sent in chunks with no Content-Length to trust.
    funnel = b'{"site": "shop", "name": "Huge", "steps": ["page:/a", "page:/b"]}'
    goal = b'{"site": "shop", "name": "Huge", "kind": "event", "match": "x"}'
    login = f'{{"email": "{USERS["owner"]}", "password": "{PASSWORD}"}}'.encode()

    def chunked(body: bytes) -> Iterator[bytes]:
        padded = body + b" " * (16 * 1024 + 1 - len(body))
        yield from (padded[start : start + 4096] for start in range(0, len(padded), 4096))

    for path, body in [("/api/v1/funnels", funnel), ("/api/v1/goals", goal), ("/login", login)]:
        answer = owner.post(path, content=chunked(body), headers=headers)
        assert answer.status_code == 400, (path, answer.text)
        assert (answer.json()["error"], answer.json()["field"]) == ("body over 16384 bytes", "$")
    names = [f["name"] for f in owner.get("/api/v1/funnels").json()["funnels"]]
    assert "Huge" not in names
    goals = owner.get("/api/v1/goals", params={"site": "shop", "period": "30d"}).json()
    assert "Huge" not in str(goals)
