"""Every report, export and privacy operation gives identical results on SQLite and ClickHouse.

One synthetic dataset (tests/clickhouse/synthetic.py: two time zones, visits across midnight,
every consent mode, goals, funnels, cohorts, an experiment, revenue) is stored through each
backend's own ingest (visits assigned at insert), then each operation runs on both and the
encoded results are compared byte for byte. Mutating operations get a fresh copy of the data.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import msgspec
import pytest

from collector import reports
from collector.config import Config
from collector.privacy.export import export_events
from collector.privacy.instance import Instance
from collector.privacy.retention import run_retention
from collector.reports import Filter, ReportQuery
from collector.storage import open_events, prepare, privacy_for, reports_for
from collector.storage.rows import DIMENSION_TABLE, Goal, SubjectHash
from collector.storage.sqlite.events import open_storage
from tests.clickhouse.conftest import KINDS, drop, new_target, on_clickhouse
from tests.clickhouse.synthetic import SITES, build, now_for_tests
from tests.reports.dataset import config_for, event, visitor

NOW = now_for_tests()
ALL = ["example", "paris"]
BUY = Goal(name="buy", kind="event", match="buy")
SHOP = Goal(name="shop", kind="page", match="/shop/*")
ODD = Goal(name="odd", kind="page", match="/a[1]?")
STEPS = [Goal(name="home", kind="page", match="/"), SHOP, BUY]


@dataclass
class Pair:
    sqlite: Config
    clickhouse: Config

    def both(self, call: Callable[[Any, Config], Any]) -> tuple[bytes, bytes]:
        """``call(db, config)`` on each backend, encoded."""
        found = []
        for config in (self.sqlite, self.clickhouse):
            with reports_for(config) as db:
                found.append(msgspec.json.encode(call(db, config)))
        return found[0], found[1]


def _store(tmp: Path, chdb_path: Path, kind: str) -> tuple[Pair, Any]:
    """The dataset in a SQLite data directory and in a new ClickHouse database."""
    sqlite = config_for(tmp / "sqlite", SITES)
    target = new_target(kind, chdb_path)
    clickhouse = on_clickhouse(config_for(tmp / "clickhouse", SITES), target)
    events, drops = build(NOW)
    for config in (sqlite, clickhouse):
        config.data_dir.mkdir(parents=True)
        prepare(config)
        storage = open_events(config)
        try:
            storage.insert_hits(copy.deepcopy(events), drops)
        finally:
            storage.close()
    for config in (sqlite, clickhouse):
        with reports_for(config) as db:
            db.save_goal("example", BUY, 1)
            db.save_goal("paris", SHOP, 1)
    return Pair(sqlite, clickhouse), target


@pytest.fixture(scope="module", params=KINDS)
def pair(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, chdb_path: Path
) -> Iterator[Pair]:
    found, target = _store(tmp_path_factory.mktemp("parity"), chdb_path, request.param)
    yield found
    drop(target)


@pytest.fixture(params=KINDS)
def fresh(request: pytest.FixtureRequest, tmp_path: Path, chdb_path: Path) -> Iterator[Pair]:
    """A copy of the dataset for one test that deletes rows."""
    found, target = _store(tmp_path, chdb_path, request.param)
    yield found
    drop(target)


def test_ingest_stores_the_same_rows_and_visits(pair: Pair) -> None:
    stores = [open_events(pair.sqlite), open_events(pair.clickhouse)]
    try:
        assert stores[0].events() == stores[1].events()
        assert stores[0].visits() == stores[1].visits()
        for site in ALL:
            assert stores[0].dropped_hits(site) == stores[1].dropped_hits(site)
        # The data really has what the comparisons below rely on.
        rows = stores[0].events()
        assert {row["mode"] for row in rows} == {"granted", "exempt", "denied"}
        assert {row["visitor_kind"] for row in rows} == {"client", "cookieless", None}
        midnight = [
            v
            for v in stores[0].visits()
            if v["start_ts"] // 86_400_000 != v["last_ts"] // 86_400_000
        ]
        assert midnight
    finally:
        for store in stores:
            store.close()


QUERIES = [
    ReportQuery(period="30d"),
    ReportQuery(period="7d", compare="previous_period"),
    ReportQuery(period="today"),
    ReportQuery(period="custom", date_from=NOW.date() - timedelta(days=75), date_to=NOW.date()),
    ReportQuery(period="30d", filters=(Filter(dimension="mode", op="is", value="granted"),)),
    ReportQuery(
        period="30d",
        filters=(
            Filter(dimension="page", op="contains", value="shop"),
            Filter(dimension="browser", op="is_not", value="Chrome"),
        ),
    ),
    ReportQuery(period="30d", filters=(Filter(dimension="entry_page", op="is", value="/"),)),
    ReportQuery(period="30d", filters=(Filter(dimension="prop:variant", op="is", value="A"),)),
]
DIMENSIONS = [
    *(dimension.name for dimension in DIMENSION_TABLE),
    "prop:variant",
    "prop:score",
    "prop:beta",
    "prop:missing",
]


@pytest.mark.parametrize("query", QUERIES, ids=range(len(QUERIES)))
def test_aggregate_and_timeseries(pair: Pair, query: ReportQuery) -> None:
    for goal in (None, BUY, ODD):
        a, b = pair.both(
            lambda db, c, g=goal: reports.aggregate(db, c, query, sites=ALL, now=NOW, goal=g)
        )
        assert a == b
    intervals: tuple[str, ...] = ("day",)
    if query in QUERIES[:3]:
        intervals = ("hour", "day", "week", "month")
    elif query is QUERIES[3]:
        intervals = ("day", "week", "month")  # hours cover at most 31 days
    for interval in intervals:
        a, b = pair.both(
            lambda db, c, i=interval: reports.timeseries(
                db, c, query, sites=ALL, now=NOW, interval=i, goal=SHOP
            )
        )
        assert a == b


@pytest.mark.parametrize("dimension", DIMENSIONS)
def test_breakdown_by_every_dimension(pair: Pair, dimension: str) -> None:
    # QUERIES[6] filters on a visit's entry page: the visit join inside a breakdown.
    for query in (QUERIES[0], QUERIES[3], QUERIES[5], QUERIES[6]):
        a, b = pair.both(
            lambda db, c, q=query: reports.breakdown(db, c, q, sites=ALL, now=NOW, by=dimension)
        )
        assert a == b
    a, b = pair.both(
        lambda db, c: reports.breakdown(
            db, c, QUERIES[3], sites=["example"], now=NOW, by=dimension, limit=3, page=2, goal=BUY
        )
    )
    assert a == b


def test_breakdown_pages_really_differ_between_rows(pair: Pair) -> None:
    a, _ = pair.both(
        lambda db, c: reports.breakdown(db, c, QUERIES[3], sites=ALL, now=NOW, by="page")
    )
    rows = msgspec.json.decode(a)["rows"]
    assert len(rows) == 8 and rows[0]["metrics"]["visitors"] > rows[-1]["metrics"]["visitors"]


def test_realtime_goals_consent_and_attribution(pair: Pair) -> None:
    calls: list[Callable[[Any, Config], Any]] = [
        lambda db, c: reports.realtime(db, sites=ALL, now=NOW),
        lambda db, c: reports.stored_goals(db, ALL),
        lambda db, c: reports.resolve_goal(db, ALL, "buy"),
        lambda db, c: reports.goals_report(db, c, QUERIES[1], sites=ALL, now=NOW),
        lambda db, c: reports.goals_report(db, c, QUERIES[3], sites=ALL, now=NOW),
        lambda db, c: reports.consent_report(db, c, QUERIES[3], sites=ALL, now=NOW),
        lambda db, c: reports.consent_report(db, c, QUERIES[6], sites=["paris"], now=NOW),
        lambda db, c: reports.attribution(db, c, QUERIES[3], sites=ALL, now=NOW, goal=BUY),
        lambda db, c: reports.attribution(db, c, QUERIES[0], sites=ALL, now=NOW, goal=SHOP),
    ]
    for call in calls:
        a, b = pair.both(call)
        assert a == b


def test_funnels_cohorts_experiments_and_rfm(pair: Pair) -> None:
    calls: list[Callable[[Any, Config], Any]] = [
        lambda db, c: reports.funnel(db, c, QUERIES[3], sites=ALL, now=NOW, steps=STEPS),
        lambda db, c: reports.funnel(
            db, c, QUERIES[3], sites=ALL, now=NOW, steps=STEPS, within_days=1
        ),
        lambda db, c: reports.funnel(db, c, QUERIES[5], sites=ALL, now=NOW, steps=STEPS[1:]),
        lambda db, c: reports.retention(db, c, QUERIES[3], sites=ALL, now=NOW, by="week"),
        lambda db, c: reports.retention(db, c, QUERIES[3], sites=ALL, now=NOW, by="month"),
        lambda db, c: reports.experiment(
            db, c, QUERIES[3], sites=ALL, now=NOW, prop="variant", goal=BUY
        ),
        lambda db, c: reports.experiment(
            db, c, QUERIES[0], sites=ALL, now=NOW, prop="variant", goal=SHOP, control="B"
        ),
        lambda db, c: reports.rfm(db, c, QUERIES[3], sites=ALL, now=NOW),
        lambda db, c: reports.rfm(db, c, QUERIES[3], sites=ALL, now=NOW, currency="EUR"),
    ]
    for call in calls:
        a, b = pair.both(call)
        assert a == b
    a, _ = pair.both(calls[0])
    assert msgspec.json.decode(a)["steps"][0]["visitors"] > 0


def _instance(config: Config) -> Instance:
    return Instance.open(config, lambda: NOW)


@pytest.mark.parametrize("fmt", ["ndjson", "csv"])
def test_signed_export_files_are_identical(pair: Pair, tmp_path: Path, fmt: str) -> None:
    manifests = []
    for name, config in (("a", pair.sqlite), ("b", pair.clickhouse)):
        with privacy_for(config) as db:
            manifest = export_events(
                _instance(config),
                db,
                sites=ALL,
                first_day=NOW.date() - timedelta(days=80),
                last_day=NOW.date(),
                fmt=fmt,  # type: ignore[arg-type]
                out=tmp_path / name,
                actor="parity",
            )
        manifests.append(manifest)
    a, b = manifests
    assert a.total_rows == b.total_rows > 600
    assert a.columns == b.columns
    assert [(f.path, f.rows, f.sha256) for f in a.files] == [
        (f.path, f.rows, f.sha256) for f in b.files
    ]
    assert a.terms == b.terms
    for file in a.files:
        assert (tmp_path / "a" / file.path).read_bytes() == (
            tmp_path / "b" / file.path
        ).read_bytes()


def _both_privacy(pair: Pair, call: Callable[[Any], Any]) -> tuple[Any, Any]:
    found = []
    for config in (pair.sqlite, pair.clickhouse):
        with privacy_for(config) as db:
            found.append(call(db))
    return found[0], found[1]


def test_privacy_reads(pair: Pair) -> None:
    start = int((NOW - timedelta(days=80)).timestamp() * 1000)
    end = int(NOW.timestamp() * 1000) + 86_400_000
    subject = [SubjectHash(epoch=3, digest=visitor("ex001")), SubjectHash(epoch=3, digest=b"x")]
    user = [SubjectHash(epoch=1, digest=b"user1".ljust(16, b"_"))]
    calls: list[Callable[[Any], Any]] = [
        lambda db: db.count_events(),
        lambda db: db.count_events("paris"),
        lambda db: db.epochs_in_rows("example", start, end),
        lambda db: db.epochs_in_rows("paris", start, end),
        lambda db: db.subject_rows("example", "visitor", subject),
        lambda db: db.subject_rows("example", "user", user),
        lambda db: db.visits_by_id([1, 2, 3, 50, 10_000]),
        lambda db: db.count_before(
            "example", ["granted", "exempt", "denied"], end - 20 * 86_400_000
        ),
    ]
    for call in calls:
        a, b = _both_privacy(pair, call)
        assert a == b
    rows, _ = _both_privacy(pair, calls[5])
    assert len(rows) > 1


def test_erasure_by_visitor_and_by_user(fresh: Pair) -> None:
    for column, hashes in (
        ("visitor", [SubjectHash(epoch=3, digest=visitor("ex002"))]),
        ("user", [SubjectHash(epoch=1, digest=b"user3".ljust(16, b"_"))]),
    ):
        a, b = _both_privacy(
            fresh, lambda db, c=column, h=hashes: db.erase_subject("example", c, h)
        )
        assert a == b and a.subject_events > 0
        a, b = _both_privacy(fresh, lambda db, c=column, h=hashes: db.subject_rows("example", c, h))
        assert a == b == []
    stores = [open_events(fresh.sqlite), open_events(fresh.clickhouse)]
    assert stores[0].events() == stores[1].events()
    assert stores[0].visits() == stores[1].visits()


def test_retention_purge(fresh: Pair) -> None:
    end = int(NOW.timestamp() * 1000)
    for days in (60, 20):
        a, b = _both_privacy(
            fresh,
            lambda db, d=days: db.purge_before(
                "paris", ["exempt", "granted"], end - d * 86_400_000
            ),
        )
        assert a == b and sum(count.events for count in a) > 0
    stores = [open_events(fresh.sqlite), open_events(fresh.clickhouse)]
    assert stores[0].events() == stores[1].events()
    assert stores[0].visits() == stores[1].visits()
    # And through the retention command's own function, with a site policy of 30 days.
    reports_ = []
    for config in (fresh.sqlite, fresh.clickhouse):
        with privacy_for(config) as db:
            report = run_retention(
                _instance(config), db, now=NOW + timedelta(days=740), dry_run=False, actor="t"
            )
        reports_.append(report)
    assert reports_[0].deleted == reports_[1].deleted
    assert sum(c.events for c in reports_[0].deleted) > 0


def test_new_events_after_reopening_continue_visits_and_ids(fresh: Pair) -> None:
    """A restarted ClickHouse writer reloads open visits and ids: a hit two minutes after the
    last one joins its visit on both backends."""
    stores = [open_events(fresh.sqlite), open_events(fresh.clickhouse)]
    clients = [row for row in stores[0].events() if row["visitor_kind"] == "client"]
    last = max(clients, key=lambda row: row["ts"])
    events, _ = build(NOW)
    follow = next(e for e in events if e.visitor == last["visitor"])
    follow = msgspec.structs.replace(follow, ts=last["ts"] + 120_000, path="/later")
    for store in stores:
        store.insert_hits([copy.deepcopy(follow)])
    a, b = stores[0].events(), stores[1].events()
    assert a == b and a[-1]["visit"] == last["visit"]
    assert stores[0].visits() == stores[1].visits()


@pytest.mark.parametrize("kind", KINDS)
def test_a_group_out_of_time_order_keeps_one_visit_without_a_gap(
    tmp_path: Path, chdb_path: Path, kind: str
) -> None:
    """docs/metrics.md: a visit is a visitor's events with no gap of 30 minutes. One group (a
    backdated batch, a bulk load) holds a visit at 15:00 and then, later in the group, earlier
    pageviews at 14:00, 14:20 and 14:40: one visit of five pageviews, on both backends and in
    SQLite's bulk import (which takes its batch in time order), whatever the group's order."""
    base = int(NOW.timestamp() * 1000) - 86_400_000
    minute = 60_000
    group = [
        event(base + 60 * minute, "v1", path="/a"),
        event(base + 62 * minute, "v1", path="/b"),
        event(base, "v1", path="/c"),
        event(base + 20 * minute, "v1", path="/d"),
        event(base + 40 * minute, "v1", path="/e"),
    ]
    target = new_target(kind, chdb_path)
    configs = {
        "sqlite insert_hits": config_for(tmp_path / "sqlite"),
        "sqlite import_events": config_for(tmp_path / "import"),
        "clickhouse insert_hits": on_clickhouse(config_for(tmp_path / "clickhouse"), target),
    }
    found = {}
    try:
        for name, config in configs.items():
            config.data_dir.mkdir(parents=True)
            prepare(config)
            if name == "sqlite import_events":
                bulk = open_storage(config.database_path)
                try:
                    bulk.import_events(copy.deepcopy(group))
                    found[name] = (bulk.visits(), bulk.events())
                finally:
                    bulk.close()
                continue
            storage = open_events(config)
            try:
                storage.insert_hits(copy.deepcopy(group))
                found[name] = (storage.visits(), storage.events())
            finally:
                storage.close()
    finally:
        drop(target)
    for name, (visits, events) in found.items():
        assert [
            (v["start_ts"], v["last_ts"], v["entry_path"], v["exit_path"], v["pageviews"])
            for v in visits
        ] == [(base, base + 62 * minute, "/c", "/b", 5)], name
        assert {row["visit"] for row in events} == {visits[0]["id"]}, name
    assert found["sqlite insert_hits"] == found["clickhouse insert_hits"]
