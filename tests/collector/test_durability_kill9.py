"""A ``kill -9`` of ``mesure serve`` under load loses no acknowledged hit (docs/design.md §6).

Five rounds on one data directory, each killed at a different, random moment while client
threads keep sending single hits and batches; after every restart each hit that got a 202 is
stored exactly once and the database passes ``PRAGMA integrity_check``.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import threading
from collections import Counter
from pathlib import Path

import httpx

from tests.support import ROOT, browser_client, free_port, mesure_command, start_mesure_serve

ROUNDS = 5
HIT_THREADS = 2
BATCH_SIZE = 25


def _kill9(process: subprocess.Popen[bytes]) -> None:
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def _stored_paths(database: Path) -> tuple[str, Counter[str]]:
    conn = sqlite3.connect(database)
    try:
        integrity = conn.execute("PRAGMA integrity_check").fetchone()[0]
        paths = Counter(row[0] for row in conn.execute("SELECT path FROM events"))
    finally:
        conn.close()
    return integrity, paths


class Load:
    """Client threads sending hits (and batches) with unique paths; records what got a 202."""

    def __init__(self, port: int, round_: int) -> None:
        self.url = f"http://127.0.0.1:{port}"
        self.round = round_
        self.acked: list[str] = []
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.threads = [
            *(threading.Thread(target=self._hits, args=(n,)) for n in range(HIT_THREADS)),
            threading.Thread(target=self._batches),
        ]

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def join(self) -> list[str]:
        self.stop.set()
        for thread in self.threads:
            thread.join()
        with self.lock:
            return list(self.acked)

    def count(self) -> int:
        with self.lock:
            return len(self.acked)

    def _send(self, client: httpx.Client, path: str, body: object, paths: list[str]) -> None:
        try:
            response = client.post(path, json=body, timeout=10)
        except httpx.TransportError:
            return  # the server is gone: this request was never acknowledged
        if response.status_code == 202:
            with self.lock:
                self.acked.extend(paths)

    def _hits(self, worker: int) -> None:
        with browser_client(self.url) as client:
            number = 0
            while not self.stop.is_set():
                path = f"/r{self.round}/w{worker}/n{number}"
                number += 1
                body = {"site": "example.com", "url": f"https://example.com{path}"}
                self._send(client, "/api/hit", body, [path])

    def _batches(self) -> None:
        with browser_client(self.url) as client:
            number = 0
            while not self.stop.is_set():
                paths = [f"/r{self.round}/b{number}/e{n}" for n in range(BATCH_SIZE)]
                number += 1
                body = [{"site": "example.com", "url": f"https://example.com{p}"} for p in paths]
                self._send(client, "/api/batch", body, paths)


def test_acknowledged_hits_survive_kill9_at_random_moments(tmp_path: Path) -> None:
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
    seed = random.randrange(1 << 32)
    rng = random.Random(seed)
    acknowledged: list[str] = []
    for round_ in range(ROUNDS):
        # Two worker processes sharing the file in some rounds, one in the others.
        process = start_mesure_serve(data, port, env, workers=1 + round_ % 2)
        # The kill comes after a random number of acknowledgements, then a random extra
        # delay: sometimes between two commits, sometimes in the middle of one.
        wanted_acks = rng.randrange(1, 400)
        extra_delay = rng.uniform(0, 0.05)
        load = Load(port, round_)
        load.start()
        try:
            while load.count() < wanted_acks and all(t.is_alive() for t in load.threads):
                threading.Event().wait(0.002)
            threading.Event().wait(extra_delay)
            _kill9(process)  # while the clients are still sending
        finally:
            acked = load.join()
            if process.poll() is None:
                _kill9(process)
        context = f"seed {seed}, round {round_}, kill after {wanted_acks} acks + {extra_delay}s"
        assert len(acked) >= wanted_acks, context
        acknowledged += acked

        integrity, stored = _stored_paths(data / "mesure.db")  # recovery from the WAL here
        assert integrity == "ok", context
        assert [path for path in acknowledged if stored[path] != 1] == [], context
        assert [path for path, count in stored.items() if count != 1] == [], context

    restarted = start_mesure_serve(data, port, env)
    try:
        with browser_client(f"http://127.0.0.1:{port}") as client:
            after = client.post(
                "/api/hit", json={"site": "example.com", "url": "https://example.com/after"}
            )
            assert after.status_code == 202
    finally:
        restarted.send_signal(signal.SIGTERM)
        restarted.wait()
    integrity, stored = _stored_paths(data / "mesure.db")
    assert integrity == "ok"
    assert stored["/after"] == 1
    assert [path for path in acknowledged if stored[path] != 1] == []
