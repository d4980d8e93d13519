"""Issue 13, finding 7: exports kept on the server expire. A collector starting 31 days after
they were written deletes every export under the data directory (``DATA/exports/`` and any
other directory there holding an export manifest, a half-written one by its age), audits it, and
leaves alone what was written outside the data directory, which ``mesure export`` said."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from collector.audit import AuditLog
from collector.config import Config
from tests.privacy.support import run_mesure, send, write_data_dir
from tests.support import Clock, LiveServer

Live = Callable[[Config, Clock], LiveServer]


def test_a_starting_collector_deletes_the_exports_past_exports_keep_days(
    tmp_path: Path, live: Live
) -> None:
    now = datetime.now(UTC)
    config = write_data_dir(tmp_path / "data", server={"exports-keep-days": 30})
    data = config.data_dir
    server = live(config, Clock(now))
    send(server, {"mode": "exempt", "cid": "kept-exports-cid"})
    server.stop()
    day = now.date().isoformat()
    period = ("export", "--from", day, "--to", day)
    inside = run_mesure(data, *period, "--out", str(data / "exports" / "first"))
    assert "kept on the server: deleted after 30 day(s)" in inside
    run_mesure(data, *period, "--out", str(data / "archive" / "second"))
    outside = run_mesure(data, *period, "--out", str(tmp_path / "outside"))
    assert f"note: {tmp_path / 'outside'} is outside the data directory" in outside
    # An export interrupted before its manifest: known by the directory's age.
    half = data / "exports" / "half"
    half.mkdir()
    (half / "events-shop-2026-01.ndjson").write_text("{}\n")
    old = time.time() - 40 * 86400
    os.utime(half, (old, old))

    # A day before the limit nothing goes; after it, the start-up run deletes them.
    live(config, Clock(now + timedelta(days=29))).stop()
    assert sorted(path.name for path in (data / "exports").iterdir()) == ["first"]
    assert (data / "archive" / "second").is_dir()
    live(config, Clock(now + timedelta(days=31))).stop()
    assert list((data / "exports").iterdir()) == []
    assert list((data / "archive").iterdir()) == []
    assert (tmp_path / "outside" / "manifest.json").is_file()
    runs = [
        entry.detail
        for entry in AuditLog(config.audit_path, datetime.now).entries()
        if entry.action == "retention.run"
    ]
    assert [run["exports_deleted"] for run in runs] == [
        "",
        "exports/half",
        "archive/second exports/first",
    ]
    assert all(run["by"] == "server (start-up)" for run in runs)
    assert json.loads((tmp_path / "outside" / "manifest.json").read_bytes())["kind"] == "export"
