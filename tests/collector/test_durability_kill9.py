"""A ``kill -9`` of ``mesure serve`` under load loses no acknowledged hit (DESIGN.md §6)."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import threading
from pathlib import Path

import httpx

from tests.support import ROOT, browser_client, free_port, mesure_command, start_mesure_serve

ACKS_BEFORE_KILL = 300
CLIENT_THREADS = 3


def _start(data: Path, port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return start_mesure_serve(data, port, env, workers=2)


def _kill9(process: subprocess.Popen[bytes]) -> None:
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def test_acknowledged_hits_survive_kill9_with_two_workers(tmp_path: Path) -> None:
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
    process = _start(data, port, env)

    acked: list[str] = []
    acked_lock = threading.Lock()
    enough = threading.Event()
    stop = threading.Event()

    def hammer(worker: int) -> None:
        with browser_client(f"http://127.0.0.1:{port}") as client:
            number = 0
            while not stop.is_set():
                path = f"/w{worker}/n{number}"
                number += 1
                body = {"site": "example.com", "url": f"https://example.com{path}"}
                try:
                    response = client.post("/api/hit", json=body, timeout=10)
                except httpx.TransportError:
                    continue  # the server is gone: this hit was never acknowledged
                if response.status_code == 202:
                    with acked_lock:
                        acked.append(path)
                        if len(acked) >= ACKS_BEFORE_KILL:
                            enough.set()

    threads = [threading.Thread(target=hammer, args=(n,)) for n in range(CLIENT_THREADS)]
    for thread in threads:
        thread.start()
    try:
        enough.wait()
        _kill9(process)  # while the clients are still sending
    finally:
        stop.set()
        for thread in threads:
            thread.join()
        if process.poll() is None:
            _kill9(process)

    with acked_lock:
        acknowledged = list(acked)
    assert len(acknowledged) >= ACKS_BEFORE_KILL

    restarted = _start(data, port, env)  # recovery from the WAL happens here
    try:
        with browser_client(f"http://127.0.0.1:{port}") as client:
            after = client.post(
                "/api/hit", json={"site": "example.com", "url": "https://example.com/after"}
            )
            assert after.status_code == 202
    finally:
        restarted.send_signal(signal.SIGTERM)
        restarted.wait()

    conn = sqlite3.connect(data / "mesure.db")
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        stored = [row[0] for row in conn.execute("SELECT path FROM events")]
    finally:
        conn.close()
    counts: dict[str, int] = {}
    for path in stored:
        counts[path] = counts.get(path, 0) + 1
    missing = [path for path in acknowledged if counts.get(path) != 1]
    assert missing == []
    assert counts.get("/after") == 1
