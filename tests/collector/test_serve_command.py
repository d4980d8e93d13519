"""``mesure serve`` on a directory that does not exist yet: a working demo collector."""

from __future__ import annotations

import os
import re
import signal
from datetime import datetime
from pathlib import Path

from collector.audit import AuditLog, verify
from tests.support import browser_client, free_port, start_mesure_serve


def test_serve_initializes_a_missing_data_directory_and_collects(tmp_path: Path) -> None:
    data = tmp_path / "fresh"
    port = free_port()
    process = start_mesure_serve(data, port, {**os.environ})
    try:
        with browser_client(f"http://127.0.0.1:{port}") as client:
            hit = {"site": "localhost", "url": f"http://localhost:{port}/", "mode": "denied"}
            assert client.post("/api/hit", json=hit).status_code == 202
            # The demo owner account printed at start-up logs in to the dashboard.
            printed = (tmp_path / "serve.log").read_text()
            password = printed.split("Dashboard account owner@localhost, password ")[1].split()[0]
            login = client.post("/login", json={"email": "owner@localhost", "password": password})
            assert login.status_code == 200, login.text
            assert client.get("/", follow_redirects=False).status_code == 200
    finally:
        process.send_signal(signal.SIGTERM)
        # uvicorn shuts down gracefully, then re-raises the signal it caught.
        assert process.wait() in (0, -signal.SIGTERM)
    output = (tmp_path / "serve.log").read_text()
    assert f"No mesure.toml in {data}: initializing it with a demo site." in output
    assert f"Mesure listening on http://127.0.0.1:{port}" in output
    assert f"Data directory: {data}" in output
    assert 'data-site="localhost"' in output
    # With the origin left at its default, the tags point at where this server listens.
    assert f'src="http://127.0.0.1:{port}/m.js"' in output
    assert f"Dashboard: http://127.0.0.1:{port}/ (accounts: mesure user add EMAIL" in output
    assert (data / "mesure.db").exists()
    assert sorted(p.name for p in (data / "keys").iterdir())[:2] == [
        "daily",
        "localhost.client.json",
    ]


def test_a_config_change_is_audited_at_the_next_start(tmp_path: Path) -> None:
    data = tmp_path / "data"
    port = free_port()
    for queue_size in ("10000", "10000", "500"):  # start, restart unchanged, restart changed
        if (data / "mesure.toml").exists():
            toml = data / "mesure.toml"
            toml.write_text(
                re.sub(r"queue-size = \d+", f"queue-size = {queue_size}", toml.read_text())
            )
        process = start_mesure_serve(data, port, {**os.environ})
        process.send_signal(signal.SIGTERM)
        process.wait()
    log = data / "audit.log"
    changes = [
        entry for entry in AuditLog(log, datetime.now).entries() if entry.action == "config.change"
    ]
    assert len(changes) == 2
    assert changes[0].detail["sha256"] != changes[1].detail["sha256"]
    assert verify(log) is None
