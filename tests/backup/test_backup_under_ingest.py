"""A backup taken while ``mesure serve`` ingests holds every hit acknowledged before it started;
a restored directory serves the same report numbers as the original; a restore refuses the
directory of a running collector."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from tests.backup.support import (
    ENV,
    SITE,
    Sender,
    identity_file,
    init,
    mesure,
    stop_process,
    stored_paths,
)
from tests.support import browser_client, free_port, start_mesure_serve

REPORTS = [
    ("/api/v1/aggregate", {"period": "7d"}),
    ("/api/v1/timeseries", {"period": "7d", "interval": "day"}),
    ("/api/v1/breakdown", {"period": "7d", "by": "page", "limit": "1000"}),
    ("/api/v1/breakdown", {"period": "7d", "by": "browser"}),
    ("/api/v1/consent", {"period": "7d"}),
]


def _reports(port: int, token: str) -> list[Any]:
    with browser_client(
        f"http://127.0.0.1:{port}", headers={"authorization": f"Bearer {token}"}
    ) as client:
        answers = []
        for route, params in REPORTS:
            response = client.get(route, params={"site": SITE, **params}, timeout=30)
            assert response.status_code == 200, (route, response.text)
            answers.append(response.json())
    return answers


def test_a_backup_under_ingest_holds_every_hit_acknowledged_before_it_started(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    init(data)
    token = mesure("token", "create", "--role", "owner", "--data", str(data)).stdout.split()[-1]
    identity = tmp_path / "identity.txt"
    recipient = identity_file(identity)
    port = free_port()
    collector = start_mesure_serve(data, port, ENV)
    restored_collector: subprocess.Popen[bytes] | None = None
    try:
        sender = Sender(port)
        sender.start()
        try:
            sender.wait_for(300)
            before = sender.acknowledged()  # every 202 received before the command starts
            during = tmp_path / "during"
            mesure("backup", "--data", str(data), "--out", str(during), "--recipient", recipient)
            at_end = sender.acknowledged()
            sender.wait_for(len(at_end) + 50)
        finally:
            sender.stop()
        assert sender.refused == 0
        # Hits kept being acknowledged while the backup ran: it did not stall the collector.
        assert len(at_end) > len(before)

        refused = mesure(
            "restore", str(during), "--data", str(data), "--identity", str(identity), expect=2
        )
        assert f"a collector is using {data}" in refused.stderr

        restored = tmp_path / "restored"
        mesure("restore", str(during), "--data", str(restored), "--identity", str(identity))
        integrity, paths = stored_paths(restored / "mesure.db")
        assert integrity == "ok"
        assert [path for path in before if path not in paths] == []
        assert paths <= set(sender.acknowledged())  # nothing made up, nothing half-written

        # Ingest over: a backup now, restored and served, gives the same numbers.
        quiet = tmp_path / "quiet"
        mesure("backup", "--data", str(data), "--out", str(quiet), "--recipient", recipient)
        served = tmp_path / "served"
        mesure("restore", str(quiet), "--data", str(served), "--identity", str(identity))
        restored_port = free_port()
        restored_collector = start_mesure_serve(served, restored_port, ENV)
        original = _reports(port, token)
        assert original[0]["metrics"]["pageviews"] == len(sender.acknowledged())
        assert _reports(restored_port, token) == original
    finally:
        stop_process(collector)
        if restored_collector is not None:
            stop_process(restored_collector)
