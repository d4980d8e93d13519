"""Account and token management (``mesure user``/``mesure token``) and logins to the API are
appended to the hash-chained audit log, without any password, session or token secret."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import httpx
from click.testing import CliRunner

from collector.audit import verify
from collector.cli.main import main
from collector.config import Config
from tests.privacy.support import write_data_dir
from tests.support import Clock, LiveServer

PASSWORD = "a long enough password"
NEW_PASSWORD = "another long password"
Live = Callable[[Config, Clock], LiveServer]


def _mesure(data: Path, *args: str, stdin: str | None = None) -> str:
    result = CliRunner().invoke(main, [*args, "--data", str(data)], input=stdin)
    assert result.exit_code == 0, result.output
    return result.output


def test_account_changes_and_logins_are_audited(tmp_path: Path, clock: Clock, live: Live) -> None:
    config = write_data_dir(tmp_path / "data")
    data = config.data_dir
    _mesure(data, "user", "add", "Dpo@Shop.example", "--role", "dpo", stdin=f"{PASSWORD}\n" * 2)
    _mesure(data, "user", "passwd", "dpo@shop.example", stdin=f"{NEW_PASSWORD}\n" * 2)
    token_output = _mesure(data, "token", "create", "--role", "analyst", "--name", "grafana")
    secret = token_output.splitlines()[-1]
    _mesure(data, "token", "revoke", "1")

    server = live(config, clock)
    with httpx.Client(base_url=server.url) as client:
        refused = client.post("/login", json={"email": "dpo@shop.example", "password": PASSWORD})
        assert refused.status_code == 401
        accepted = client.post(
            "/login", json={"email": "dpo@shop.example", "password": NEW_PASSWORD}
        )
        assert accepted.status_code == 200
        session = accepted.cookies["mesure_session"]

    text = config.audit_path.read_text()
    entries = [json.loads(line) for line in text.splitlines()]
    managed = [
        (entry["action"], {k: v for k, v in entry["detail"].items() if k != "by"})
        for entry in entries
        if entry["action"].startswith(("user.", "token.", "login"))
    ]
    everywhere = "all sites"
    assert managed == [
        ("user.add", {"user": "dpo@shop.example", "role": "dpo", "sites": everywhere}),
        ("user.passwd", {"user": "dpo@shop.example"}),
        ("token.create", {"token": "1", "name": "grafana", "role": "analyst", "sites": everywhere}),
        ("token.revoke", {"token": "1"}),
        ("login", {"user": "dpo@shop.example"}),
    ]
    login = next(entry for entry in entries if entry["action"] == "login")
    assert login["at"] == clock().isoformat(timespec="seconds")
    changes = [entry for entry in entries if entry["action"].startswith(("user.", "token."))]
    assert all(entry["detail"]["by"].endswith("(cli)") for entry in changes)
    for secret_text in (PASSWORD, NEW_PASSWORD, secret, session):
        assert secret_text not in text
    assert verify(config.audit_path) is None
