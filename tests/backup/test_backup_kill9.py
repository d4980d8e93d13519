"""``kill -9`` of ``mesure backup``, once while it copies the database and once while it writes
the archive: the live data directory is untouched, nothing under the name asked for exists and
nothing left verifies; the next backup clears the remains and completes."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from collector.config import load_config
from collector.storage.sqlite.events import open_storage
from tests.backup.support import (
    COMMAND_TIMEOUT,
    ENV,
    identity_file,
    init,
    mesure,
    stored_paths,
    tree,
)
from tests.reports.dataset import event
from tests.support import ROOT, mesure_command

#: Events of about 4 KB stored with their rollups: a database of about 150 MB, whose backup
#: takes long enough (over a second on the CI machine) to be killed in each phase.
EVENTS = 8_000


def _fill(data: Path) -> None:
    config = load_config(data, {})
    storage = open_storage(config.database_path)
    start = int(datetime(2026, 3, 1, tzinfo=UTC).timestamp() * 1000)
    try:
        storage.import_events(
            [
                event(
                    start + number * 1000,
                    None,
                    path=f"/page/{number}/" + "x" * 1500,
                    site="example.com",
                    props={"blob": os.urandom(750).hex()},
                )
                for number in range(EVENTS)
            ]
        )
    finally:
        storage.close()


def _partial(backups: Path) -> Path | None:
    found = [path for path in backups.glob(".nightly.mesure-partial-*")] if backups.exists() else []
    return found[0] if len(found) == 1 else None


def _database_copy_started(backups: Path) -> bool:
    partial = _partial(backups)
    return partial is not None and (partial / "mesure.db.copy").exists()


def _archive_started(backups: Path) -> bool:
    partial = _partial(backups)
    archive = None if partial is None else partial / "data.tar.age"
    return archive is not None and archive.exists() and archive.stat().st_size > 1 << 20


def _kill_when(
    command: list[str], ready: Callable[[], bool], what: str
) -> subprocess.CompletedProcess[bytes]:
    process = subprocess.Popen(
        command, cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        for _attempt in range(20_000):  # a bound, not a timing: normally a few hundred polls
            if ready() or process.poll() is not None:
                break
            threading.Event().wait(0.001)
        assert process.poll() is None, f"the backup ended before {what}"
        assert ready(), f"never saw {what}"
        process.send_signal(signal.SIGKILL)
        out, err = process.communicate(timeout=COMMAND_TIMEOUT)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == -signal.SIGKILL, (out, err)
    return subprocess.CompletedProcess(command, process.returncode, out, err)


def test_kill9_of_a_backup_leaves_the_data_intact_and_nothing_that_verifies(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    init(data)
    _fill(data)
    mesure("keys", "public", "--data", str(data))  # the export key exists before the backups
    live_before = tree(data)
    identity = tmp_path / "identity.txt"
    recipient = identity_file(identity)
    backups = tmp_path / "backups"
    out = backups / "nightly"
    command = mesure_command(
        "backup", "--data", str(data), "--out", str(out), "--recipient", recipient
    )

    for ready, phase in (
        (lambda: _database_copy_started(backups), "the database copy"),
        (lambda: _archive_started(backups), "the archive being written"),
    ):
        _kill_when(command, ready, phase)
        assert not out.exists()
        # One left: each backup removes what an earlier, killed one left beside it.
        (leftover,) = backups.iterdir()
        verify = mesure("backup", "verify", str(leftover), "--identity", str(identity), expect=1)
        assert "manifest.json: missing: not a complete backup" in verify.stdout
        assert "backup NOT verified" in verify.stdout

    live_after = tree(data)
    # Keys, configuration and audit log byte for byte; the database passes its integrity check
    # and still holds every event.
    assert {
        path: body for path, body in live_after.items() if not path.startswith("mesure.db")
    } == {path: body for path, body in live_before.items() if not path.startswith("mesure.db")}
    integrity, paths = stored_paths(data / "mesure.db")
    assert integrity == "ok"
    assert len(paths) == EVENTS
    mesure("audit", "verify", "--data", str(data))

    done = mesure("backup", "--data", str(data), "--out", str(out), "--recipient", recipient)
    assert f"removed {leftover}, left by an interrupted backup or restore" in done.stdout
    assert sorted(path.name for path in backups.iterdir()) == ["nightly"]
    mesure("backup", "verify", str(out), "--identity", str(identity))
