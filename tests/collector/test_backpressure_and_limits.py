"""Rate limits (429), a full write queue and a failed commit (503): never a silent drop."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from collector.config import token_sha256
from tests.support import Clock, LiveServer, browser_client


def _hit(path: str) -> dict[str, str]:
    return {"site": "example", "url": f"https://example.com{path}", "mode": "denied"}


@contextmanager
def _database_locked(database: Path) -> Iterator[None]:
    """Hold SQLite's write lock from another connection, as another process would."""
    conn = sqlite3.connect(database, isolation_level=None)
    conn.execute("BEGIN EXCLUSIVE")
    try:
        yield
    finally:
        conn.execute("ROLLBACK")
        conn.close()


def _wait_for(client: httpx.Client, **state: int) -> None:
    while True:
        health = client.get("/healthz").json()
        if all(health[key] == value for key, value in state.items()):
            return
        threading.Event().wait(0.01)


def test_client_rate_limit_answers_429_until_the_next_minute(
    serve: Callable[..., LiveServer], clock: Clock
) -> None:
    server = serve(clock=clock, client_rate_per_minute=3)
    clock.set(clock().replace(second=0))
    with browser_client(server.url) as client:
        statuses = [client.post("/api/hit", json=_hit(f"/{n}")).status_code for n in range(4)]
        limited = client.post("/api/hit", json=_hit("/limited"))
        clock.advance(minutes=1)
        after = client.post("/api/hit", json=_hit("/after"))
    assert statuses == [202, 202, 202, 429]
    assert limited.status_code == 429
    assert limited.headers["retry-after"] == "60"
    assert after.status_code == 202
    assert [row["path"] for row in server.events()] == ["/0", "/1", "/2", "/after"]
    assert sum(server.dropped_hits().values()) == 0


def test_without_a_configured_header_forwarded_addresses_are_not_trusted(
    serve: Callable[..., LiveServer], clock: Clock
) -> None:
    server = serve(clock=clock, client_rate_per_minute=2)
    clock.set(clock().replace(second=0))
    with browser_client(server.url) as client:
        answers = [
            client.post(
                "/api/hit", json=_hit(f"/{n}"), headers={"x-forwarded-for": f"198.51.100.{n}"}
            )
            for n in range(3)
        ]
        plain = client.get("/m.js")
    # One client (the socket's address) whatever the header says: the third hit is over its limit.
    assert [answer.status_code for answer in answers] == [202, 202, 429]
    assert "server" not in plain.headers  # no software banner


def test_site_rate_limit_applies_across_clients_and_trusted_batches(
    serve: Callable[..., LiveServer], clock: Clock
) -> None:
    token = "site-ingest-token"
    server = serve(
        clock=clock,
        site_rate_per_minute=4,
        client_ip_header="x-forwarded-for",
        site_options={"example": {"ingest-token-sha256": token_sha256(token)}},
    )
    clock.set(clock().replace(second=30))
    with browser_client(server.url) as client:
        statuses = [
            client.post(
                "/api/hit", json=_hit(f"/{n}"), headers={"x-forwarded-for": f"192.0.2.{n}"}
            ).status_code
            for n in range(3)
        ]
        batch = [_hit("/batch-1"), _hit("/batch-2")]
        trusted = client.post(
            "/api/batch", json=batch, headers={"authorization": f"Bearer {token}"}
        )
        other = client.post("/api/hit", json=_hit("/4"), headers={"x-forwarded-for": "192.0.2.9"})
    assert statuses == [202, 202, 202]
    # The token lifts the per-client limit, not the site's: the batch's second event is over it.
    assert trusted.status_code == 429
    assert trusted.headers["retry-after"] == "30"
    assert other.status_code == 429
    assert trusted.json()["error"] == other.json()["error"] == "too many hits, retry later"
    assert [row["path"] for row in server.events()] == ["/0", "/1", "/2"]


def test_full_queue_answers_503_and_queued_hits_are_still_committed(
    serve: Callable[..., LiveServer],
) -> None:
    server = serve(queue_size=1, write_timeout_ms=60_000)
    results: dict[str, int] = {}

    def send(path: str) -> None:
        with browser_client(server.url, timeout=120) as client:
            results[path] = client.post("/api/hit", json=_hit(path)).status_code

    with browser_client(server.url) as client:
        with _database_locked(server.config.database_path):
            first = threading.Thread(target=send, args=("/first",))
            first.start()
            _wait_for(client, committing=1)  # the writer holds /first, waiting for the lock
            second = threading.Thread(target=send, args=("/second",))
            second.start()
            _wait_for(client, queued=1)  # /second fills the queue
            refused = client.post("/api/hit", json=_hit("/refused"))
            assert refused.status_code == 503
            assert refused.headers["retry-after"] == "2"
        first.join()
        second.join()
    assert results == {"/first": 202, "/second": 202}
    assert [row["path"] for row in server.events()] == ["/first", "/second"]


def test_failed_commit_answers_503_and_acknowledges_nothing(
    serve: Callable[..., LiveServer],
) -> None:
    server = serve(write_timeout_ms=100)
    with browser_client(server.url) as client:
        with _database_locked(server.config.database_path):
            failed = client.post("/api/hit", json=_hit("/during-lock"))
        later = client.post("/api/hit", json=_hit("/after-lock"))
    assert failed.status_code == 503
    assert failed.json()["error"].startswith("storage write failed")
    assert "retry-after" in failed.headers
    assert later.status_code == 202
    assert [row["path"] for row in server.events()] == ["/after-lock"]
