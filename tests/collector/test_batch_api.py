"""``POST /api/batch``: many events at once, timestamps clamped, ``ip``/``ua`` only with a token."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from collector.config import token_sha256
from tests.support import Clock, LiveServer, browser_client

TOKEN = "batch-token-for-tests"


def _serve(serve: Callable[..., LiveServer], clock: Clock) -> LiveServer:
    return serve(
        clock=clock, site_options={"example": {"ingest-token-sha256": token_sha256(TOKEN)}}
    )


def test_batch_stores_every_event_with_clamped_timestamps(
    serve: Callable[..., LiveServer], clock: Clock
) -> None:
    server = _serve(serve, clock)
    now_ms = int(clock().timestamp() * 1000)
    hour_ago = now_ms - 3_600_000
    events = [
        {"site": "example", "url": "https://example.com/a", "ts": hour_ago, "mode": "denied"},
        {"site": "example", "url": "https://example.com/b", "ts": 0, "mode": "denied"},
        {"site": "example", "url": "https://example.com/c", "ts": now_ms + 10**9, "mode": "denied"},
        {"site": "example", "url": "https://example.com/d", "mode": "denied"},
    ]
    with browser_client(server.url) as client:
        response = client.post("/api/batch", json=events)
    assert response.status_code == 202
    assert response.json() == {"received": 4}
    day_ms = int(timedelta(hours=24).total_seconds() * 1000)
    assert [(row["path"], row["ts"]) for row in server.events()] == [
        ("/a", hour_ago),
        ("/b", now_ms - day_ms),
        ("/c", now_ms),
        ("/d", now_ms),
    ]


def test_token_holder_may_pass_each_events_ip_and_user_agent(
    serve: Callable[..., LiveServer], clock: Clock
) -> None:
    server = _serve(serve, clock)
    base = {"site": "example", "url": "https://example.com/app", "mode": "exempt"}
    events = [
        {**base, "ip": "198.51.100.7", "ua": "App/1.0"},
        {**base, "ip": "198.51.100.7", "ua": "App/1.0"},
        {**base, "ip": "203.0.113.9", "ua": "App/1.0"},
    ]
    with browser_client(server.url) as client:
        refused = client.post("/api/batch", json=events)
        accepted = client.post(
            "/api/batch", json=events, headers={"authorization": f"Bearer {TOKEN}"}
        )
    assert refused.status_code == 403
    assert accepted.status_code == 202
    first, second, third = server.events()
    assert first["visitor"] == second["visitor"] != third["visitor"]
    assert first["visitor_kind"] == "cookieless"


def test_a_batch_with_one_foreign_event_stores_nothing(
    serve: Callable[..., LiveServer], clock: Clock
) -> None:
    server = _serve(serve, clock)
    events = [
        {"site": "example", "url": "https://example.com/ok"},
        {"site": "example", "url": "https://elsewhere.test/"},
    ]
    with browser_client(server.url) as client:
        response = client.post("/api/batch", json=events)
    assert response.status_code == 403
    assert response.json()["field"] == "$[1].url"
    assert server.events() == []
