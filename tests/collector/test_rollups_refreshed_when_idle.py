"""The writer refreshes the report rollups once no hit waits: a hit's 202 never waits for
them, and a moment later the dashboard's fast path holds the new visit."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable

import httpx

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
