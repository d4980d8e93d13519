"""The writer refreshes the report rollups once no hit waits: a hit's 202 never waits for
them, and a moment later the dashboard's fast path holds the new visit."""

from __future__ import annotations

import itertools
import sqlite3
import threading
import time
from collections.abc import Callable

import httpx

from collector.ingest.writer import IDLE_SECONDS
from tests.support import Clock, LiveServer

UA = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"


def _pending_and_rolled(server: LiveServer) -> tuple[int, int]:
    conn = sqlite3.connect(server.config.database_path)
    try:
        pending = conn.execute("SELECT count(*) FROM rollup_pending").fetchone()[0]
        rolled = conn.execute("SELECT count(DISTINCT visit) FROM visit_keys").fetchone()[0]
    finally:
        conn.close()
    return int(pending), int(rolled)


def test_the_writer_refreshes_rollups_when_idle(
    serve: Callable[..., LiveServer], clock: Clock
) -> None:
    server = serve(clock=clock)
    with httpx.Client(base_url=server.url, headers={"user-agent": UA}) as client:
        for visitor in ("one", "two", "three"):
            hit = {"site": "example", "url": "https://example.com/", "mode": "granted"}
            response = client.post("/api/hit", json={**hit, "cid": visitor})
            assert response.status_code == 202, response.text
    assert len(server.visits()) == 3
    # Bounded wait for the idle writer (it refreshes within milliseconds of the last commit).
    waited = threading.Event()
    for _ in range(200):
        if _pending_and_rolled(server) == (0, 3):
            break
        waited.wait(0.05)
    assert _pending_and_rolled(server) == (0, 3)


def test_steady_traffic_without_a_quiet_moment_still_gets_the_rollups_refreshed(
    serve: Callable[..., LiveServer], clock: Clock
) -> None:
    """Hits every few milliseconds from two clients leave the writer no quiet time: the rollups
    are refreshed between commits all the same (a busy site's dashboard read the events for
    good before), while the hits keep coming."""
    server = serve(clock=clock)
    sent: list[float] = []
    lock = threading.Lock()
    stop = threading.Event()

    def send(prefix: str) -> None:
        with httpx.Client(base_url=server.url, headers={"user-agent": UA}) as client:
            number = 0
            while not stop.is_set():
                hit = {"site": "example", "url": "https://example.com/", "mode": "granted"}
                with lock:
                    sent.append(time.monotonic())
                response = client.post("/api/hit", json={**hit, "cid": f"{prefix}-{number}"})
                assert response.status_code == 202, response.text
                number += 1
                stop.wait(0.02)

    senders = [threading.Thread(target=send, args=(name,)) for name in ("a", "b")]
    for sender in senders:
        sender.start()
    rolled_while_sending = 0
    try:
        for _ in range(300):  # a bound, not a timing: normally within a second
            stop.wait(0.02)
            rolled_while_sending = _pending_and_rolled(server)[1]
            if rolled_while_sending and len(sent) > 60:
                break
    finally:
        stop.set()
        for sender in senders:
            sender.join(timeout=30)
    arrivals = sorted(sent)
    longest_gap = max(later - earlier for earlier, later in itertools.pairwise(arrivals))
    # Never a quiet moment the writer could have used (else this proves nothing).
    assert longest_gap < IDLE_SECONDS, longest_gap
    assert rolled_while_sending > 0
