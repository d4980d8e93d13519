"""``mesure user disable|enable|grant|remove`` (issue 13, finding 8): run as real ``mesure``
processes next to a live collector, each ends the account's sessions at once (a session cookie
issued before stops working) and is appended to the audit log."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import httpx
import pytest

from collector.audit import verify
from collector.config import Config, load_config
from collector.storage.sqlite.events import open_storage
from tests.conftest import CLOCK_START
from tests.support import BROWSER_UA, ROOT, Clock, LiveServer, mesure_command

PASSWORD = "a long enough password"
EMAIL = "ana@example.test"
TOML = """
[[sites]]
id = "shop"
hostnames = ["shop.example"]

[[sites]]
id = "blog"
hostnames = ["blog.example"]
"""


def mesure(data: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        mesure_command(*args, "--data", str(data)),
        cwd=ROOT,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def live(tmp_path: Path) -> Iterator[tuple[Config, LiveServer]]:
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    (data / "mesure.toml").write_text(TOML)
    config = load_config(data, {})
    open_storage(config.database_path).close()
    added = mesure(data, "user", "add", EMAIL, "--role", "owner", stdin=f"{PASSWORD}\n" * 2)
    assert added.returncode == 0, added.stderr
    server = LiveServer(config, Clock(CLOCK_START))
    server.start()
    try:
        yield config, server
    finally:
        server.stop()


def _logged_in(server: LiveServer) -> httpx.Client:
    client = httpx.Client(base_url=server.url, headers={"user-agent": BROWSER_UA})
    answer = client.post("/login", json={"email": EMAIL, "password": PASSWORD})
    assert answer.status_code == 200, answer.text
    return client


def _login_status(server: LiveServer) -> int:
    with httpx.Client(base_url=server.url, headers={"user-agent": BROWSER_UA}) as client:
        return client.post("/login", json={"email": EMAIL, "password": PASSWORD}).status_code


def test_disable_and_enable_end_sessions_and_refuse_logins(
    live: tuple[Config, LiveServer],
) -> None:
    config, server = live
    with closing(_logged_in(server)) as session:
        assert session.get("/api/v1/realtime").status_code == 200
        disabled = mesure(config.data_dir, "user", "disable", EMAIL)
        assert disabled.returncode == 0, disabled.stderr
        assert session.get("/api/v1/realtime").status_code == 401
    # A disabled account cannot log in, and its answer is the one of a wrong password.
    assert _login_status(server) == 401
    listed = mesure(config.data_dir, "user", "list").stdout
    assert listed.splitlines() == [f"{EMAIL}\towner\tall sites\tdisabled"]
    enabled = mesure(config.data_dir, "user", "enable", EMAIL)
    assert enabled.returncode == 0, enabled.stderr
    assert _login_status(server) == 200
    assert mesure(config.data_dir, "user", "list").stdout.splitlines() == [
        f"{EMAIL}\towner\tall sites"
    ]
    unknown = mesure(config.data_dir, "user", "disable", "nobody@example.test")
    assert unknown.returncode == 1 and "no account" in unknown.stderr


def test_grant_replaces_role_and_sites_and_ends_sessions(
    live: tuple[Config, LiveServer],
) -> None:
    config, server = live
    with closing(_logged_in(server)) as session:
        assert session.get("/api/v1/privacy/audit").status_code == 200
        granted = mesure(
            config.data_dir, "user", "grant", EMAIL, "--role", "analyst", "--site", "shop"
        )
        assert granted.returncode == 0, granted.stderr
        assert "ana@example.test (analyst; shop)" in granted.stdout
        assert session.get("/api/v1/realtime").status_code == 401
    with closing(_logged_in(server)) as session:
        assert session.get("/api/v1/privacy/audit").status_code == 403
        assert session.get("/api/v1/aggregate", params={"site": "shop"}).status_code == 200
        assert session.get("/api/v1/aggregate", params={"site": "blog"}).status_code == 403
    refused = mesure(config.data_dir, "user", "grant", EMAIL, "--role", "dpo", "--site", "nope")
    assert refused.returncode == 2 and "unknown site" in refused.stderr


def test_remove_ends_sessions_and_deletes_the_account(live: tuple[Config, LiveServer]) -> None:
    config, server = live
    with closing(_logged_in(server)) as session:
        removed = mesure(config.data_dir, "user", "remove", EMAIL)
        assert removed.returncode == 0, removed.stderr
        assert session.get("/api/v1/realtime").status_code == 401
    assert _login_status(server) == 401
    assert mesure(config.data_dir, "user", "list").stdout == ""
    again = mesure(config.data_dir, "user", "remove", EMAIL)
    assert again.returncode == 1 and "no account" in again.stderr


def test_every_change_is_audited(live: tuple[Config, LiveServer]) -> None:
    config, _server = live
    for args in (
        ("disable", EMAIL),
        ("enable", EMAIL),
        ("grant", EMAIL, "--role", "dpo", "--site", "blog"),
        ("remove", EMAIL),
    ):
        done = mesure(config.data_dir, "user", *args)
        assert done.returncode == 0, done.stderr
    entries = [json.loads(line) for line in config.audit_path.read_text().splitlines()]
    changes = [
        (entry["action"], {k: v for k, v in entry["detail"].items() if k != "by"})
        for entry in entries
        if entry["action"].startswith("user.") and entry["action"] != "user.add"
    ]
    assert changes == [
        ("user.disable", {"user": EMAIL}),
        ("user.enable", {"user": EMAIL}),
        ("user.grant", {"user": EMAIL, "role": "dpo", "sites": "blog"}),
        ("user.remove", {"user": EMAIL}),
    ]
    assert all(e["detail"]["by"].endswith("(cli)") for e in entries if e["action"] == "user.remove")
    assert verify(config.audit_path) is None
