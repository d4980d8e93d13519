"""A full disk: ingest answers 503 with Retry-After, keeps what it acknowledged, and recovers.

The data directory lives on a small tmpfs mounted by the test (the suite runs as root, as on
the project's machines and CI); a filler file takes the rest of its space.
"""

from __future__ import annotations

import contextlib
import errno
import sqlite3
import subprocess
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import LiveServer, browser_client, build_config

FS_BYTES = 4 * 1024 * 1024


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "small"
    mount.mkdir()
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={FS_BYTES},mode=0700", "tmpfs", str(mount)],
        check=True,
        capture_output=True,
    )
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True, capture_output=True)


def _fill(path: Path) -> None:
    """Write ``path`` until the file system has no byte left."""
    chunk = b"\0" * 65536
    with path.open("wb", buffering=0) as out:
        while True:
            try:
                out.write(chunk)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
                break
        for size in (4096, 512, 1):  # the last partial blocks
            with contextlib.suppress(OSError):
                while True:
                    out.write(b"\0" * size)


def _stored(database: Path) -> tuple[str, Counter[str]]:
    conn = sqlite3.connect(database)
    try:
        integrity = conn.execute("PRAGMA integrity_check").fetchone()[0]
        paths = Counter(row[0] for row in conn.execute("SELECT path FROM events"))
    finally:
        conn.close()
    return integrity, paths


def test_full_disk_answers_503_keeps_acknowledged_hits_and_recovers(small_disk: Path) -> None:
    server = LiveServer(build_config(small_disk / "data", client_rate_per_minute=100_000), None)
    server.start()
    try:
        filler = small_disk / "filler"
        acknowledged: list[str] = []
        refused: list[str] = []
        with browser_client(server.url) as client:

            def send(path: str) -> int:
                body = {"site": "example", "url": f"https://example.com{path}"}
                response = client.post("/api/hit", json=body)
                if response.status_code == 202:
                    acknowledged.append(path)
                elif response.status_code == 503:
                    refused.append(path)
                    assert int(response.headers["retry-after"]) >= 1
                    assert response.json()["error"].startswith("storage write failed")
                return response.status_code

            assert [send(f"/before/{n}") for n in range(20)] == [202] * 20
            _fill(filler)
            # The write-ahead log may still have room for a few commits: send until refused.
            statuses = []
            for n in range(3000):
                statuses.append(send(f"/full/{n}"))
                if statuses[-1] == 503:
                    break
            assert set(statuses) <= {202, 503}
            assert statuses[-1] == 503, "a full disk was never noticed"
            assert [send(f"/still-full/{n}") for n in range(5)] == [503] * 5

            integrity, stored = _stored(server.config.database_path)
            assert [path for path in acknowledged if stored[path] != 1] == []
            assert [path for path in refused if stored[path] != 0] == []

            filler.unlink()  # space comes back
            assert [send(f"/after/{n}") for n in range(20)] == [202] * 20
    finally:
        server.stop()
    integrity, stored = _stored(server.config.database_path)
    assert integrity == "ok"
    assert [path for path in acknowledged if stored[path] != 1] == []
    assert [path for path in refused if stored[path] != 0] == []
    assert sum(stored.values()) == len(acknowledged)
