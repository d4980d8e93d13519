"""SQLite's writer process: it never outlives its collector, and the collector outlives it.

The writer process (``python -m collector.writer_child``) owns the database connection of one
collector process. A ``kill -9`` of the collector alone (not its process group) must end the
writer too, with every acknowledged hit stored; a ``kill -9`` of the writer alone must cost at
most the hits it held (answered 503, never 202) and be replaced by the next hit; a graceful
stop ends it after its last commit.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import httpx

from tests.support import (
    ROOT,
    LiveServer,
    browser_client,
    free_port,
    mesure_command,
    start_mesure_serve,
)


def _writer_processes(parent: int) -> list[int]:
    """Live (not zombie) writer processes whose parent is ``parent``."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmdline = (stat.parent / "cmdline").read_bytes()
        except OSError:
            continue
        if fields[0] != "Z" and fields[1] == str(parent) and b"collector.writer_child" in cmdline:
            found.append(int(stat.parent.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _wait_until(condition: Callable[[], bool]) -> bool:
    """Poll ``condition`` a bounded number of times (a bound, not a timing)."""
    for _ in range(600):
        if condition():
            return True
        threading.Event().wait(0.05)
    return condition()


def _stored(database: Path) -> tuple[str, Counter[str]]:
    conn = sqlite3.connect(database)
    try:
        integrity = conn.execute("PRAGMA integrity_check").fetchone()[0]
        paths = Counter(row[0] for row in conn.execute("SELECT path FROM events"))
    finally:
        conn.close()
    return integrity, paths


def test_writer_process_ends_with_a_killed_collector(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = {**os.environ, "MESURE_CLIENT_RATE_PER_MINUTE": "100000000"}
    subprocess.run(
        mesure_command("init", "--data", str(data), "--site", "example.com"),
        env=env,
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    port = free_port()
    server = start_mesure_serve(data, port, env)
    acknowledged: list[str] = []
    stop = threading.Event()

    def send_hits() -> None:
        with browser_client(f"http://127.0.0.1:{port}") as client:
            number = 0
            while not stop.is_set():
                path = f"/n{number}"
                number += 1
                body = {"site": "example.com", "url": f"https://example.com{path}"}
                try:
                    response = client.post("/api/hit", json=body, timeout=10)
                except httpx.TransportError:
                    return  # the collector is gone
                if response.status_code == 202:
                    acknowledged.append(path)

    writers = _writer_processes(server.pid)
    assert len(writers) == 1
    sender = threading.Thread(target=send_hits)
    sender.start()
    try:
        assert _wait_until(lambda: len(acknowledged) >= 50)
        os.kill(server.pid, signal.SIGKILL)  # the collector alone, under load
        server.wait()
    finally:
        stop.set()
        sender.join()
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
    # Its socket closed by the kernel, the writer finishes what it was doing and exits.
    assert _wait_until(lambda: not _alive(writers[0]))

    integrity, stored = _stored(data / "mesure.db")
    assert integrity == "ok"
    assert [path for path in acknowledged if stored[path] != 1] == []

    restarted = start_mesure_serve(data, port, env)
    try:
        with browser_client(f"http://127.0.0.1:{port}") as client:
            body = {"site": "example.com", "url": "https://example.com/after"}
            assert client.post("/api/hit", json=body).status_code == 202
        writers = _writer_processes(restarted.pid)
        assert len(writers) == 1
        # Killed while idle, this time: the writer waits for a batch and reads the end of file.
        os.kill(restarted.pid, signal.SIGKILL)
        restarted.wait()
    finally:
        if restarted.poll() is None:
            os.killpg(restarted.pid, signal.SIGKILL)
            restarted.wait()
    assert _wait_until(lambda: not _alive(writers[0]))
    integrity, stored = _stored(data / "mesure.db")
    assert integrity == "ok"
    assert stored["/after"] == 1
    assert [path for path in acknowledged if stored[path] != 1] == []


def test_collector_replaces_a_killed_writer_process(serve: Callable[..., LiveServer]) -> None:
    server = serve(client_rate_per_minute=100_000, write_timeout_ms=60_000)
    database = str(server.config.database_path).encode()

    def own_writers() -> list[int]:
        return [
            pid
            for pid in _writer_processes(os.getpid())
            if database in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        ]

    def send(path: str) -> httpx.Response:
        with browser_client(server.url, timeout=120) as client:
            body = {"site": "example", "url": f"https://example.com{path}"}
            return client.post("/api/hit", json=body)

    assert [send(f"/before/{n}").status_code for n in range(5)] == [202] * 5
    (first,) = own_writers()
    in_flight: list[httpx.Response] = []
    # Another connection holds the write lock: the writer waits in its commit, hit in hand.
    conn = sqlite3.connect(server.config.database_path, isolation_level=None)
    conn.execute("BEGIN EXCLUSIVE")
    try:
        sender = threading.Thread(target=lambda: in_flight.append(send("/in-flight")))
        sender.start()
        with browser_client(server.url) as client:
            assert _wait_until(lambda: client.get("/healthz").json()["committing"] == 1)
        os.kill(first, signal.SIGKILL)
        sender.join()
    finally:
        conn.execute("ROLLBACK")
        conn.close()
    (refused,) = in_flight
    assert refused.status_code == 503
    assert refused.json()["error"] == "storage write failed: writer process exited"
    assert refused.headers["retry-after"] == "2"
    # The next hit starts a new writer process and waits for its commit.
    assert [send(f"/after/{n}").status_code for n in range(5)] == [202] * 5
    (second,) = own_writers()
    assert second != first
    server.stop()  # a graceful stop commits what is queued, then ends the writer process
    assert _wait_until(lambda: not _alive(second))
    paths = [row["path"] for row in server.events()]
    assert paths == [f"/before/{n}" for n in range(5)] + [f"/after/{n}" for n in range(5)]
