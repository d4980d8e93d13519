"""``first_visits`` stays what the visits say it is: after ingest, erasures, retention purges, a
schema migration (the table missing beside stored data) and a copy from SQLite, its rows are each
visitor's first followed visit as computed from visits and events, and the retention report it
answers (unfiltered) is the SQLite one."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import msgspec
import pytest

from collector import reports
from collector.config import Config
from collector.reports import ReportQuery
from collector.storage import open_events, prepare, privacy_for, reports_for
from collector.storage.clickhouse.client import client_for
from collector.storage.clickhouse.copy_from_sqlite import copy_to_clickhouse
from collector.storage.rows import SubjectHash
from collector.storage.target import ClickHouseTarget
from tests.clickhouse.conftest import KINDS, drop, new_target, on_clickhouse
from tests.clickhouse.test_parity import ALL, NOW, Pair, _store
from tests.reports.dataset import visitor

QUERIES = [
    ReportQuery(period="30d"),
    ReportQuery(period="custom", date_from=NOW.date() - timedelta(days=75), date_to=NOW.date()),
    ReportQuery(period="custom", date_from=NOW.date() - timedelta(days=20), date_to=NOW.date()),
]


@pytest.fixture(params=KINDS)
def fresh(request: pytest.FixtureRequest, tmp_path: Path, chdb_path: Path) -> Iterator[Pair]:
    found, target = _store(tmp_path, chdb_path, request.param)
    yield found
    drop(target)


def _target(config: Config) -> ClickHouseTarget:
    assert config.clickhouse is not None
    return config.clickhouse


def stored(config: Config) -> list[tuple[Any, ...]]:
    return client_for(_target(config)).rows(
        "SELECT site, visitor, toUnixTimestamp64Milli(min(first_ts)) FROM {db}.first_visits "
        "GROUP BY site, visitor ORDER BY site, visitor"
    )


def expected(config: Config) -> list[tuple[Any, ...]]:
    """Each visitor's earliest visit with a client event, from the visits and events."""
    store = open_events(config)
    followed = {row["visit"] for row in store.events() if row["visitor_kind"] == "client"}
    first: dict[tuple[str, bytes], int] = {}
    for visit in store.visits():
        if visit["id"] in followed:
            key = (visit["site"], visit["visitor"])
            first[key] = min(first.get(key, visit["start_ts"]), visit["start_ts"])
    return sorted((site, who, ts) for (site, who), ts in first.items())


def same_retention(pair: Pair) -> list[Any]:
    found = []
    for query in QUERIES:
        for by in ("week", "month"):
            a, b = pair.both(
                lambda db, c, q=query, b=by: reports.retention(db, c, q, sites=ALL, now=NOW, by=b)
            )
            assert a == b, (query, by)
            found.append(msgspec.json.decode(a))
    return found


def test_kept_at_ingest_and_through_erasures_and_purges(fresh: Pair) -> None:
    rows = stored(fresh.clickhouse)
    assert rows == expected(fresh.clickhouse) and len(rows) > 10
    cohorts = same_retention(fresh)
    assert sum(c["visitors"] for c in cohorts[2]["cohorts"]) > 0
    gone = visitor("ex002")
    assert any(row[1] == gone for row in rows)

    for column, hashes in (
        ("visitor", [SubjectHash(epoch=3, digest=gone)]),
        ("user", [SubjectHash(epoch=1, digest=b"user3".ljust(16, b"_"))]),
    ):
        for config in (fresh.sqlite, fresh.clickhouse):
            with privacy_for(config) as db:
                assert db.erase_subject("example", column, hashes).subject_events > 0
        assert stored(fresh.clickhouse) == expected(fresh.clickhouse)
        same_retention(fresh)
    assert not [row for row in stored(fresh.clickhouse) if row[1] == gone]

    end = int(NOW.timestamp() * 1000)
    before = len(stored(fresh.clickhouse))
    for days in (60, 20, 5):
        for config in (fresh.sqlite, fresh.clickhouse):
            with privacy_for(config) as db:
                db.purge_before("paris", ["exempt", "granted"], end - days * 86_400_000)
        assert stored(fresh.clickhouse) == expected(fresh.clickhouse), days
        same_retention(fresh)
    assert len(stored(fresh.clickhouse)) < before


def test_rebuilt_when_missing_beside_stored_visits(fresh: Pair) -> None:
    """A database made before the table existed: opening the storage (the schema migration)
    creates it and fills it from the visits."""
    client = client_for(_target(fresh.clickhouse))
    want = stored(fresh.clickhouse)
    client.command("DROP TABLE {db}.first_visits SYNC")
    open_events(fresh.clickhouse).close()
    assert stored(fresh.clickhouse) == want == expected(fresh.clickhouse)
    same_retention(fresh)


def test_filled_by_the_copy_from_sqlite(fresh: Pair, chdb_path: Path, tmp_path: Path) -> None:
    target = new_target(KINDS[0], chdb_path)
    try:
        copied = on_clickhouse(fresh.sqlite, target)
        copy_to_clickhouse(fresh.sqlite, target, batch_size=500)
        assert stored(copied) == expected(copied) == stored(fresh.clickhouse)
        found = []
        for config in (fresh.sqlite, copied):
            with reports_for(config) as db:
                found.append(
                    msgspec.json.encode(
                        reports.retention(db, config, QUERIES[1], sites=ALL, now=NOW)
                    )
                )
        assert found[0] == found[1]
    finally:
        drop(target)
    prepare(fresh.sqlite)
