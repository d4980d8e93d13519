"""A hit is in the report rollups as soon as it is acknowledged (they are kept up to date in
its commit), and the writer rebuilds the days queued for a rebuild (an erasure's, a time zone
change's, the upgrade's) once no hit waits."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable

import httpx

from collector.storage.sqlite import rollups as rollups_sqlite
from tests.support import Clock, LiveServer

UA = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"


def _site_rows(server: LiveServer) -> tuple[int, int]:
    """``(queued days, hits of the whole site's day rows)``, the changes waiting in the log to
    be merged into the rows included (as the reports add them)."""
    conn = sqlite3.connect(server.config.database_path)
    try:
        conn.execute("BEGIN")
        queued = conn.execute("SELECT count(*) FROM rollup_pending_days").fetchone()[0]
        hits = conn.execute("SELECT coalesce(SUM(hits), 0) FROM day_rollups WHERE dim = 0")
        rolled = int(hits.fetchone()[0])
        logged = rollups_sqlite.read_log(conn).rows.items()
        rolled += sum(delta.sums[rollups_sqlite.HITS] for key, delta in logged if key[1] == 0)
    finally:
        conn.close()
    return int(queued), rolled


def test_hits_are_rolled_up_in_their_commit_and_queued_days_rebuilt_when_idle(
    serve: Callable[..., LiveServer], clock: Clock
) -> None:
    server = serve(clock=clock)
    with httpx.Client(base_url=server.url, headers={"user-agent": UA}) as client:
        for visitor in ("one", "two", "three"):
            hit = {"site": "example", "url": "https://example.com/", "mode": "granted"}
            response = client.post("/api/hit", json={**hit, "cid": visitor})
            assert response.status_code == 202, response.text
    assert len(server.visits()) == 3
    assert _site_rows(server) == (0, 3)
    # A day queued with wrong rows (as an erasure or a time zone change leaves it to the
    # writer): rebuilt from the events within moments of the writer being idle.
    conn = sqlite3.connect(server.config.database_path)
    with conn:
        conn.execute("UPDATE day_rollups SET hits = hits + 100, pageviews = pageviews + 100")
        conn.execute(
            "INSERT INTO rollup_pending_days (site, day) SELECT DISTINCT s.site, r.day "
            "FROM day_rollups r JOIN rollup_sites s ON s.code = r.site"
        )
    conn.close()
    # The writer looks at the queue once idle after a commit (days are queued when the
    # database is opened, or by the storage module in a write): one more hit.
    with httpx.Client(base_url=server.url, headers={"user-agent": UA}) as client:
        hit = {"site": "example", "url": "https://example.com/b", "mode": "granted", "cid": "four"}
        assert client.post("/api/hit", json=hit).status_code == 202
    waited = threading.Event()
    for _ in range(200):
        if _site_rows(server) == (0, 4):
            break
        waited.wait(0.05)
    assert _site_rows(server) == (0, 4)
