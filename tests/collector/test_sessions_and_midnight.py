"""Visits: 30 minutes of inactivity end a visit; a visit crossing midnight is not split."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx

from tests.support import Clock, LiveServer

UA = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"


def _send(server: LiveServer, **fields: Any) -> None:
    body = {"site": "example", **fields}
    with httpx.Client(base_url=server.url, headers={"user-agent": UA}) as client:
        response = client.post("/api/hit", json=body)
    assert response.status_code == 202, response.text


def test_thirty_minutes_of_inactivity_start_a_new_visit(
    serve: Callable[..., LiveServer], clock: Clock
) -> None:
    server = serve(clock=clock)
    visitor = {"mode": "granted", "cid": "visitor-one"}
    _send(server, url="https://example.com/a", **visitor)
    clock.advance(minutes=10)
    _send(server, url="https://example.com/a", name="signup", **visitor)
    clock.advance(minutes=29, seconds=59)
    _send(server, url="https://example.com/c", **visitor)
    clock.advance(minutes=30)
    _send(server, url="https://example.com/d", **visitor)
    _send(server, url="https://example.com/x", mode="granted", cid="someone-else")

    events = server.events()
    assert [row["visit"] for row in events] == [1, 1, 1, 2, 3]
    assert len({row["visitor"] for row in events[:4]}) == 1
    first, second, other = server.visits()
    assert (first["entry_path"], first["exit_path"]) == ("/a", "/c")
    assert (first["pageviews"], first["events"]) == (2, 1)
    assert first["last_ts"] - first["start_ts"] == (39 * 60 + 59) * 1000
    assert (second["entry_path"], second["pageviews"], second["start_ts"]) == (
        "/d",
        1,
        events[3]["ts"],
    )
    assert other["visitor"] != first["visitor"]


def test_cookieless_visit_crossing_midnight_keeps_yesterdays_identifier(
    serve: Callable[..., LiveServer],
) -> None:
    clock = Clock(datetime(2026, 3, 10, 23, 50, tzinfo=UTC))
    server = serve(clock=clock)
    _send(server, url="https://example.com/before-midnight", mode="exempt")
    clock.advance(minutes=15)  # 00:05 on the 11th: a new daily key exists now
    _send(server, url="https://example.com/after-midnight", mode="exempt")
    clock.advance(minutes=45)  # 00:50: the visit ended; today's identifier from now on
    _send(server, url="https://example.com/later", mode="exempt")
    clock.advance(minutes=5)
    _send(server, url="https://example.com/later-still", mode="exempt")

    before, after, later, later_still = server.events()
    assert all(row["visitor_kind"] == "cookieless" for row in (before, after, later))
    assert before["visitor"] == after["visitor"]
    assert before["visit"] == after["visit"]
    assert (before["key_epoch"], after["key_epoch"]) == (20260310, 20260310)
    assert later["visitor"] != before["visitor"]
    assert later["key_epoch"] == 20260311
    assert later_still["visit"] == later["visit"] != before["visit"]
    assert [visit["pageviews"] for visit in server.visits()] == [2, 2]


def test_denied_hits_have_no_visitor_and_no_visit(
    serve: Callable[..., LiveServer], clock: Clock
) -> None:
    server = serve(clock=clock)
    _send(server, url="https://example.com/a", mode="denied", cid="abc")
    (row,) = server.events()
    assert (row["visitor"], row["visitor_kind"], row["visit"]) == (None, None, None)
    assert server.visits() == []
