"""``mesure retention run``: exempt and denied data go after 25 months (760 days), granted data
after the site's own limit; a dry run only counts; both are audit-logged. The server runs it
itself at start-up and once per UTC day."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

from collector.audit import AuditLog
from collector.config import Config
from collector.keys import KeyStore
from collector.privacy.retention import ServerRetention
from tests.privacy.support import SITE, events, run, send, write_data_dir
from tests.support import Clock, LiveServer

Live = Callable[[Config, Clock], LiveServer]


def _as_of(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S")


def _deleted(output: str) -> dict[str, int]:
    report = json.loads(output)
    return {count["mode"]: count["events"] for count in report["deleted"]}


def test_retention_edges_per_mode(tmp_path: Path, clock: Clock, live: Live) -> None:
    config = write_data_dir(tmp_path / "data", {"retention-granted-days": 30})
    start = clock()
    server = live(config, clock)
    send(server, {"mode": "exempt"}, {"mode": "denied"}, {"mode": "granted", "cid": "cid-g1"})
    clock.advance(days=40)
    send(server, {"mode": "granted", "cid": "cid-g2"}, {"mode": "exempt"})
    server.stop()
    edge = start + timedelta(days=760)

    just_before = _as_of(edge - timedelta(minutes=1))
    output = run(config.data_dir, "retention", "run", "--dry-run", "--as-of", just_before, "--json")
    assert _deleted(output) == {"denied": 0, "exempt": 0, "granted": 2}
    assert len(events(config)) == 5  # a dry run deletes nothing

    just_after = _as_of(edge + timedelta(minutes=1))
    output = run(config.data_dir, "retention", "run", "--dry-run", "--as-of", just_after, "--json")
    assert _deleted(output) == {"denied": 1, "exempt": 1, "granted": 2}

    output = run(config.data_dir, "retention", "run", "--as-of", just_after)
    assert f"{SITE:<20} exempt      760 days" in output
    assert "space reclaimed (vacuum)" in output
    left = events(config)
    assert [(row["mode"], row["ts"]) for row in left] == [
        ("exempt", int((start + timedelta(days=40)).timestamp() * 1000))
    ]
    audit = [json.loads(line) for line in (config.data_dir / "audit.log").read_text().splitlines()]
    runs = [
        entry
        for entry in audit
        if entry["action"].startswith("retention") and entry["detail"]["by"] != "server (start-up)"
    ]
    assert [entry["action"] for entry in runs] == [
        "retention.dry-run",
        "retention.dry-run",
        "retention.run",
    ]
    assert runs[-1]["detail"]["events"] == "4"


def test_exempt_retention_is_capped_at_25_months(tmp_path: Path, clock: Clock, live: Live) -> None:
    config = write_data_dir(tmp_path / "data", {"retention-exempt-days": 900})
    start = clock()
    server = live(config, clock)
    send(server, {"mode": "exempt"})
    server.stop()
    output = run(
        config.data_dir,
        "retention",
        "run",
        "--dry-run",
        "--json",
        "--as-of",
        _as_of(start + timedelta(days=761)),
    )
    assert _deleted(output)["exempt"] == 1
    assert json.loads(output)["cutoffs"][1]["retention_days"] == 760


def _server_runs(config: Config) -> list[tuple[str, str]]:
    entries = [json.loads(line) for line in config.audit_path.read_text().splitlines()]
    return [
        (entry["detail"]["by"], entry["detail"]["events"])
        for entry in entries
        if entry["action"] == "retention.run"
    ]


def test_the_server_runs_retention_at_start_up(tmp_path: Path, clock: Clock, live: Live) -> None:
    config = write_data_dir(tmp_path / "data")
    server = live(config, clock)
    send(server, {"mode": "exempt"}, {"mode": "denied"}, {"mode": "granted", "cid": "cid-s1"})
    server.stop()
    clock.advance(days=761)
    server.start()  # nothing else: the start-up run alone deletes the expired rows
    assert events(config) == []
    assert server.visits() == []
    assert _server_runs(config) == [("server (start-up)", "0"), ("server (start-up)", "3")]


def test_the_server_runs_retention_again_each_utc_day(
    tmp_path: Path, clock: Clock, live: Live
) -> None:
    config = write_data_dir(tmp_path / "data")
    server = live(config, clock)
    send(server, {"mode": "exempt"})
    server.stop()
    keys = KeyStore.open(config.keys_dir, AuditLog(config.audit_path, clock), [SITE])
    retention = ServerRetention(config, keys, clock)
    expiry = clock() + timedelta(days=760)  # the exempt row expires at noon, 25 months later
    clock.set(expiry.replace(hour=0, minute=30))
    assert retention.run_if_due() is not None
    clock.set(expiry.replace(hour=23, minute=50))
    assert retention.run_if_due() is None  # once a day only, even though the row has expired
    clock.set(expiry.replace(hour=0, minute=30) + timedelta(days=1))  # the next UTC day
    report = retention.run_if_due()
    assert report is not None and report.reclaimed == "wal_checkpoint"
    assert events(config) == []
    assert _server_runs(config)[-2:] == [("server (start-up)", "0"), ("server (daily)", "1")]
