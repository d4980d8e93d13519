"""A real collector configured with ``storage = "chdb:///…"`` (or the test server): hits over
HTTP land in ClickHouse with the same visits as SQLite would give, a restart reloads the open
visits, an erasure is complete when it returns (the writer forgets the erased visit), and a
ClickHouse failure answers 503 with Retry-After, then recovers by itself."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from collector import auth
from collector.config import Config, load_config
from collector.privacy.dsar import Subject, erase
from collector.privacy.instance import Instance
from collector.storage import privacy_for
from collector.storage.clickhouse.client import client_for
from collector.storage.sqlite.accounts import auth_database
from collector.storage.target import ClickHouseTarget
from tests.clickhouse.synthetic import now_for_tests
from tests.support import Clock, LiveServer

UA = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"


def _dsn(target: ClickHouseTarget) -> str:
    if target.embedded:
        return f"chdb://{target.path}?database={target.database}"
    return target.display().replace(":***@", f":{target.password}@")


@pytest.fixture
def live(tmp_path: Path, ch_target: ClickHouseTarget) -> Iterator[tuple[LiveServer, Clock]]:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "mesure.toml").write_text(
        f'storage = "{_dsn(ch_target)}"\n\n[[sites]]\nid = "example"\n'
        'hostnames = ["example.com"]\n',
        encoding="utf-8",
    )
    config = load_config(data_dir, {})
    assert config.clickhouse == ch_target
    # Yesterday 23:50 UTC: the visits below cross midnight.
    clock = Clock(now_for_tests() - timedelta(hours=12, minutes=10))
    server = LiveServer(config, clock)
    server.start()
    yield server, clock
    server.stop()


def _send(server: LiveServer, expect: int = 202, **fields: Any) -> httpx.Response:
    body = {"site": "example", "url": "https://example.com/", **fields}
    with httpx.Client(base_url=server.url, headers={"user-agent": UA}) as client:
        response = client.post("/api/hit", json=body)
    assert response.status_code == expect, response.text
    return response


def _ids(rows: list[Mapping[str, Any]], key: str) -> list[Any]:
    return [row[key] for row in rows]


def test_hits_are_stored_with_visits_across_midnight_and_a_restart(
    live: tuple[LiveServer, Clock],
) -> None:
    server, clock = live
    one = {"mode": "granted", "cid": "visitor-one"}
    _send(server, url="https://example.com/a", **one)
    _send(server, mode="exempt")  # cookieless
    clock.advance(minutes=15)  # past midnight
    _send(server, url="https://example.com/b", name="signup", **one)
    _send(server, url="https://example.com/c", mode="exempt")  # same cookieless visit
    _send(server, mode="denied")
    _send(server, mode="optout")
    clock.advance(minutes=31)
    _send(server, url="https://example.com/d", **one)  # a new visit

    server.stop()  # the writer's memory is gone; the next one reloads open visits
    clock.advance(minutes=5)
    server.start()
    _send(server, url="https://example.com/e", **one)

    events = server.events()
    assert _ids(events, "id") == [1, 2, 3, 4, 5, 6, 7]
    assert _ids(events, "visit") == [1, 2, 1, 2, None, 3, 3]
    assert (
        _ids(events, "mode")
        == ["granted", "exempt", "granted", "exempt", "denied"] + ["granted"] * 2
    )
    # The cookieless visit keeps the identifier it began with under yesterday's key.
    assert events[1]["visitor"] == events[3]["visitor"]
    visits = server.visits()
    assert [(v["entry_path"], v["exit_path"], v["pageviews"], v["events"]) for v in visits] == [
        ("/a", "/a", 1, 1),
        ("/", "/c", 2, 0),
        ("/d", "/e", 2, 0),
    ]
    assert visits[0]["last_ts"] - visits[0]["start_ts"] == 15 * 60_000
    day = (now_for_tests()).date().isoformat()
    assert server.dropped_hits() == {(day, "optout"): 1}


def test_erasure_is_complete_when_it_returns_and_the_writer_forgets_the_visit(
    live: tuple[LiveServer, Clock],
) -> None:
    server, clock = live
    alice = {"mode": "granted", "cid": "alice-cid-71"}
    _send(server, url="https://example.com/a", **alice)
    _send(server, url="https://example.com/b", **alice)
    _send(server, mode="granted", cid="bob-cid-22")
    config: Config = server.config
    inst = Instance.open(config, clock)
    with privacy_for(config) as db:
        report = erase(
            inst,
            db,
            Subject(site="example", identifier="client-id", value=alice["cid"]),
            actor="test",
        )
    assert report.deleted is not None
    assert (report.deleted.subject_events, report.deleted.visits) == (2, 1)
    assert report.events_after == 0
    assert len(server.events()) == 1
    # Two minutes later Alice comes back: a new visit, not the erased one brought back.
    clock.advance(minutes=2)
    _send(server, url="https://example.com/c", **alice)
    events = server.events()
    assert _ids(events, "visit") == [2, 3]
    assert [(v["id"], v["entry_path"], v["pageviews"]) for v in server.visits()] == [
        (2, "/", 1),
        (3, "/c", 1),
    ]


def test_a_clickhouse_failure_answers_503_and_recovers(live: tuple[LiveServer, Clock]) -> None:
    server, clock = live
    assert server.config.clickhouse is not None
    client = client_for(server.config.clickhouse)
    one = {"mode": "granted", "cid": "visitor-one"}
    _send(server, url="https://example.com/a", **one)
    client.command("DETACH TABLE {db}.events")
    try:
        refused = _send(server, expect=503, url="https://example.com/lost", **one)
        assert refused.headers["retry-after"] == "2"
        assert refused.json()["error"].startswith("storage write failed")
    finally:
        client.command("ATTACH TABLE {db}.events")
    clock.advance(minutes=1)
    _send(server, url="https://example.com/b", **one)  # the client's retry, say
    events = server.events()
    assert [(e["id"], e["path"], e["visit"]) for e in events] == [(1, "/a", 1), (2, "/b", 1)]
    (visit,) = server.visits()
    assert (visit["pageviews"], visit["exit_path"]) == (2, "/b")


def test_the_json_api_reports_the_same_on_both_backends(
    live: tuple[LiveServer, Clock], tmp_path: Path
) -> None:
    server, clock = live
    sqlite_config = load_config(_sqlite_copy(server.config, tmp_path / "sqlite"), {})
    other = LiveServer(sqlite_config, clock)
    other.start()
    try:
        tokens = []
        for each in (server, other):
            for minutes, fields in enumerate(
                [
                    {"mode": "granted", "cid": "a", "url": "https://example.com/x"},
                    {"mode": "granted", "cid": "a", "url": "https://example.com/y"},
                    {"mode": "exempt", "url": "https://example.com/x"},
                    {"mode": "granted", "cid": "b", "name": "buy"},
                    {"mode": "denied"},
                ]
            ):
                clock.set(now_for_tests() - timedelta(hours=2) + timedelta(minutes=minutes))
                _send(each, **fields)
            with auth_database(each.config.database_path) as db:
                tokens.append(auth.create_token(db, "t", "owner", [], 1)[1])
        answers = []
        for each, token in zip((server, other), tokens, strict=True):
            with httpx.Client(
                base_url=each.url, headers={"authorization": f"Bearer {token}", "user-agent": UA}
            ) as client:
                answers.append(
                    [
                        client.get(path).json()
                        for path in (
                            "/api/v1/aggregate?period=today&goal=event:buy",
                            "/api/v1/breakdown?period=today&by=page",
                            "/api/v1/consent?period=today",
                            "/api/v1/realtime",
                        )
                    ]
                )
        assert answers[0] == answers[1]
        assert answers[0][0]["metrics"]["visitors"] == 3
        # "/" only has the denied pageview: no visitor, so it comes last.
        assert [row["value"] for row in answers[0][1]["rows"]] == ["/x", "/y", "/"]
    finally:
        other.stop()


def _sqlite_copy(config: Config, data_dir: Path) -> Path:
    """A data directory with the same sites, on SQLite."""
    data_dir.mkdir()
    text = (config.data_dir / "mesure.toml").read_text(encoding="utf-8")
    (data_dir / "mesure.toml").write_text(text.split("\n", 2)[2], encoding="utf-8")
    return data_dir
