"""Through a live server: changing one's own password (CSRF, current password, sessions end),
the Secure cookie flag behind TLS, cross-site login refused, goals of ``mesure.toml`` through
the API, filters on real time; and the ``mesure user``/``mesure token`` commands on the real
``mesure`` group, documented in docs/commands.md, and every report route in docs/reports-api.md."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from collector.cli.accounts import COMMANDS
from collector.cli.main import main
from collector.web.routes import accounts as account_routes
from collector.web.routes import reports as api_routes
from tests.reports.live import INGEST_TOKEN, PASSWORD, USERS, Accounts, start
from tests.support import build_config

NEW_PASSWORD = "a brand new passphrase"
DOCS = Path(__file__).resolve().parents[2] / "docs"


@pytest.fixture(scope="module")
def accounts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Accounts]:
    running = start(
        tmp_path_factory.mktemp("account"),
        goals=[{"name": "Signup", "kind": "event", "match": "signup"}],
    )
    try:
        yield running
    finally:
        running.server.stop()


def test_password_change(accounts: Accounts) -> None:
    # Only this test uses the dpo account: its password changes here.
    email = USERS["dpo"][0]
    client, csrf = accounts.login("dpo")
    other_device, _ = accounts.login("dpo")
    change = {"current_password": PASSWORD, "new_password": NEW_PASSWORD}
    try:
        missing = client.post("/api/v1/account/password", json=change)
        assert (missing.status_code, missing.json()["field"]) == (403, "x-csrf-token")
        headers = {"x-csrf-token": csrf}
        wrong = client.post(
            "/api/v1/account/password",
            json={**change, "current_password": "not it at all"},
            headers=headers,
        )
        assert (wrong.status_code, wrong.json()["field"]) == (403, "current_password")
        short = client.post(
            "/api/v1/account/password", json={**change, "new_password": "short"}, headers=headers
        )
        assert (short.status_code, short.json()["field"]) == (400, "new_password")
        done = client.post("/api/v1/account/password", json=change, headers=headers)
        assert done.status_code == 200, done.text
        assert "httponly" in done.headers["set-cookie"].lower()
        fresh_csrf = done.json()["csrf_token"]
        assert fresh_csrf != csrf
        # This client carries the new session; every older session has ended.
        assert client.get("/api/v1/realtime").status_code == 200
        assert other_device.get("/api/v1/realtime").status_code == 401
        assert client.post("/logout", headers={"x-csrf-token": fresh_csrf}).status_code == 204
    finally:
        client.close()
        other_device.close()
    with accounts.client() as anonymous:
        old = anonymous.post("/login", json={"email": email, "password": PASSWORD})
        new = anonymous.post("/login", json={"email": email, "password": NEW_PASSWORD})
    assert (old.status_code, new.status_code) == (401, 200)


def test_password_change_needs_a_login_session(accounts: Accounts) -> None:
    change = {"current_password": PASSWORD, "new_password": NEW_PASSWORD}
    with accounts.bearer("owner-token") as client:
        assert client.post("/api/v1/account/password", json=change).status_code == 403
    with accounts.client() as client:
        assert client.post("/api/v1/account/password", json=change).status_code == 401


def test_cookie_is_secure_behind_tls(accounts: Accounts) -> None:
    body = {"email": USERS["analyst"][0], "password": PASSWORD}
    with accounts.client() as client:
        response = client.post("/login", json=body, headers={"x-forwarded-proto": "https"})
    assert response.status_code == 200
    flags = [part.strip().lower() for part in response.headers["set-cookie"].split(";")]
    assert {"secure", "httponly", "samesite=lax", "path=/"} <= set(flags)


def test_cross_site_login_is_refused(accounts: Accounts) -> None:
    body = {"email": USERS["analyst"][0], "password": PASSWORD}
    with accounts.client() as client:
        foreign = client.post("/login", data=body, headers={"origin": "https://evil.example"})
        opaque = client.post("/login", data=body, headers={"origin": "null"})
        own = client.post("/login", data=body, headers={"origin": accounts.server.url})
    assert (foreign.status_code, foreign.json()["field"]) == (403, "origin")
    assert "set-cookie" not in foreign.headers
    assert opaque.status_code == 403
    assert own.status_code == 303


def test_config_goals_through_the_api(accounts: Accounts) -> None:
    rows = [
        {"url": "https://example.com/a", "ts": 0, "mode": "granted", "cid": "one"},
        {
            "url": "https://example.com/a",
            "ts": 60_000,
            "mode": "granted",
            "cid": "one",
            "name": "signup",
        },
        {"url": "https://example.com/b", "ts": 0, "mode": "granted", "cid": "two"},
    ]
    today = int(accounts.clock().timestamp() * 1000) - 10 * 60_000  # within real time
    with accounts.client({"authorization": f"Bearer {INGEST_TOKEN}"}) as ingest:
        batch = [{"site": "example", **r, "ts": today + r["ts"]} for r in rows]
        assert ingest.post("/api/batch", json=batch).status_code == 202
    with accounts.bearer("owner-token") as owner:
        listed = owner.get("/api/v1/goals", params={"site": "example", "period": "today"}).json()
        assert [
            (g["name"], g["source"], g["visitors"], g["conversions"]) for g in listed["goals"]
        ] == [("Signup", "config", 2, 1)]
        by_name = owner.get("/api/v1/aggregate", params={"period": "today", "goal": "Signup"})
        assert by_name.json()["metrics"]["conversion_rate"] == 0.5
        shadow = {"site": "example", "name": "Signup", "kind": "page", "match": "/b"}
        refused = owner.post("/api/v1/goals", json=shadow)
        assert (refused.status_code, refused.json()["field"]) == (400, "name")
        kept = owner.delete("/api/v1/goals", params={"site": "example", "name": "Signup"})
        assert (kept.status_code, kept.json()["field"]) == (400, "name")
        live = owner.get("/api/v1/realtime", params={"filter": "page:is:/b"}).json()
        assert (live["visitors"], live["pageviews"]) == (1, 1)


def test_user_and_token_commands_are_on_the_mesure_command(tmp_path: Path) -> None:
    (tmp_path / "mesure.toml").write_text(
        '[[sites]]\nid = "example"\nhostnames = ["example.com"]\n'
    )
    runner = CliRunner()
    answer = f"{PASSWORD}\n{PASSWORD}\n"
    added = runner.invoke(
        main,
        ["user", "add", "o@example.test", "--role", "owner", "--data", str(tmp_path)],
        input=answer,
    )
    assert added.exit_code == 0, added.output
    listed = runner.invoke(main, ["user", "list", "--data", str(tmp_path)])
    assert listed.output.splitlines() == ["o@example.test\towner\tall sites"]
    token = runner.invoke(main, ["token", "create", "--role", "analyst", "--data", str(tmp_path)])
    assert token.exit_code == 0 and token.output.splitlines()[-1].startswith("msr_")


def test_docs_document_accounts_and_every_api_route(tmp_path: Path) -> None:
    commands = (DOCS / "commands.md").read_text(encoding="utf-8")
    text = (DOCS / "reports-api.md").read_text(encoding="utf-8")
    for group in COMMANDS:
        assert isinstance(group, type(main))
        for name in group.commands:
            assert f"`mesure {group.name} {name}" in commands, (group.name, name)
    config = build_config(tmp_path, {"example": ["example.com"]})
    every = [*api_routes.routes(config), *account_routes.routes(config)]
    paths = {route.path for route in every}  # type: ignore[attr-defined]
    for path in paths:
        assert re.search(rf"`(?:[A-Z]+ )?{re.escape(path)}[`?]", text), path


def test_passwords_are_never_taken_from_the_command_line(tmp_path: Path) -> None:
    (tmp_path / "mesure.toml").write_text(
        '[[sites]]\nid = "example"\nhostnames = ["example.com"]\n'
    )
    args = ["user", "add", "p@example.test", "--role", "owner", "--password", PASSWORD]
    refused = CliRunner().invoke(main, [*args, "--data", str(tmp_path)])
    assert refused.exit_code == 2
    assert "No such option '--password'" in refused.output


def test_password_change_from_a_form(accounts: Accounts) -> None:
    # Only this test logs the owner in (the other tests use the owner's API token).
    client, csrf = accounts.login("owner")
    form = {"current_password": PASSWORD, "new_password": NEW_PASSWORD, "next": "/settings"}
    try:
        forged = client.post("/api/v1/account/password", data=form)
        assert (forged.status_code, forged.json()["field"]) == (403, "x-csrf-token")
        done = client.post("/api/v1/account/password", data={**form, "csrf_token": csrf})
        assert (done.status_code, done.headers["location"]) == (303, "/settings")
        assert client.get("/api/v1/realtime").status_code == 200
    finally:
        client.close()
