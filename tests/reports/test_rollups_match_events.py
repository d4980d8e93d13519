"""The report rollups give exactly what the events give, before and after erasure and retention.

A seeded random dataset (visits crossing midnight, cookieless visits carried over a key change,
denied hits, events stored out of order and in bulk) is reported twice for every rolled-up
dimension, period and bucket size: once from the rollups (no filter) and once from the events
(a filter that keeps every event sends the query to the events table). After an erasure and a
retention purge the two must still agree, the rows kept up to date through every change must
equal the rows rebuilt afresh from the events, and the erased visitor must be gone from the
derived tables and from the database file's bytes.
"""

from __future__ import annotations

import random
import sqlite3
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import msgspec
import pytest

from collector.config import Config
from collector.reports import Filter, ReportQuery
from collector.reports.core import buckets
from collector.reports.query import resolve_scope
from collector.storage.rows import Bucket, Event, Goal, MetricRow, SubjectHash
from collector.storage.sqlite import rollup_reports as rollup_reports_sqlite
from collector.storage.sqlite import rollups as rollups_sqlite
from collector.storage.sqlite import schema
from collector.storage.sqlite.events import Storage, open_storage
from collector.storage.sqlite.privacy import privacy_database
from collector.storage.sqlite.reports import reports_database
from collector.storage.sqlite.rollups import ROLLUP_DIMENSIONS
from tests.reports.dataset import config_for, visitor

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
START = datetime(2026, 2, 28, 0, 0, tzinfo=UTC)
SITES = {"example": "UTC", "paris": "Europe/Paris", "kathmandu": "Asia/Kathmandu"}
#: A filter every event passes: it sends a query to the events table instead of the rollups.
EVERYTHING = Filter(dimension="mode", op="is_not", value="no such mode")
ERASED = visitor("erase-me")
PATHS = ["/", "/pricing", "/docs", "/blog/a", "/blog/b", "/signup"]
SOURCES = [None, "Google", "Bing", "news.example.org"]
BROWSERS = [("Chrome", "120"), ("Firefox", None), ("Safari", "17")]
COUNTRIES = ["FR", "DE", None, "US"]
#: A page, a pattern of pages and a custom event: the three ways the rollups find who converted.
GOALS = [
    Goal(name="Pricing", kind="page", match="/pricing"),
    Goal(name="Blog", kind="page", match="/blog/*"),
    Goal(name="Signup", kind="event", match="signup"),
]


def random_events(seed: int) -> list[Event]:
    rng = random.Random(seed)
    found: list[Event] = []
    start_ms = int(START.timestamp() * 1000)
    for number in range(260):
        who = "erase-me" if number % 23 == 0 else f"v{rng.randrange(45)}"
        site = "example" if who == "erase-me" else rng.choice(list(SITES))
        kind = rng.choice(["client", "client", "cookieless", "denied"])
        # Many visits start close to midnight (UTC and Paris), so some cross it.
        day = rng.randrange(11)
        minute = rng.choice([rng.randrange(1440), 1380 + rng.randrange(60), rng.randrange(60)])
        ts = start_ms + day * 86_400_000 + minute * 60_000
        browser, version = rng.choice(BROWSERS)
        country = rng.choice(COUNTRIES)
        for step in range(rng.choice([1, 1, 2, 3, 5])):
            name = rng.choice(["pageview"] * 5 + ["engagement", "outbound", "signup"])
            fields: dict[str, object] = {
                "site": site,
                "ts": ts,
                "name": name,
                "mode": "denied" if kind == "denied" else rng.choice(["granted", "exempt"]),
                "reasons": "explicit",
                "hostname": "example.com",
                "path": rng.choice(PATHS),
                "country": country,
            }
            if name == "engagement":
                fields["engaged_ms"] = rng.randrange(1_000, 60_000)
            if kind != "denied":
                fields |= {
                    # Identifiers are keyed per site: the same person has another hash
                    # on another site.
                    "visitor": visitor(who if who == "erase-me" else f"{site[:2]}{who}")
                    if kind == "client"
                    else visitor(f"{site[:2]}{who}-{day}"),
                    "visitor_kind": kind,
                    "key_epoch": 1 if kind == "client" else day,
                    "browser": browser,
                    "browser_version": version,
                    "device": "desktop",
                    "source": rng.choice(SOURCES) if step == 0 else None,
                    "utm_source": "mail" if step == 0 and rng.random() < 0.2 else None,
                }
                if kind == "cookieless" and minute < 60 and day > 0:
                    # Just after midnight: yesterday's daily hash may still own the visit.
                    fields["previous_visitor"] = visitor(f"{site[:2]}{who}-{day - 1}")
            found.append(Event(**fields))  # type: ignore[arg-type]
            ts += rng.randrange(20_000, 1_500_000)
    # A visit that starts on March 1 and reaches /late only after midnight is not a visit of
    # /late on March 1, although another visitor makes /late a row of that day.
    late = [(23, 50, "/"), (24, 10, "/late")]
    for hour, minute, path in late:
        at = int(datetime(2026, 3, 1, tzinfo=UTC).timestamp() * 1000)
        found.append(_client(at + (hour * 60 + minute) * 60_000, "exlate", path))
    found.append(
        _client(int(datetime(2026, 3, 1, 12, tzinfo=UTC).timestamp() * 1000), "exnoon", "/late")
    )
    return found


def _client(ts: int, who: str, path: str) -> Event:
    return Event(
        site="example",
        ts=ts,
        name="pageview",
        mode="granted",
        reasons="explicit",
        hostname="example.com",
        path=path,
        visitor=visitor(who),
        visitor_kind="client",
        key_epoch=1,
    )


def store_unordered(config: Config, events: list[Event]) -> None:
    """Store in four parts, older parts after newer ones, one part in bulk."""
    ordered = sorted(events, key=lambda e: e.ts)
    quarter = len(ordered) // 4
    parts = [ordered[i * quarter : (i + 1) * quarter] for i in range(3)] + [ordered[3 * quarter :]]
    storage = open_storage(config.database_path, timezones=SITES)
    try:
        storage.insert_hits(parts[1])
        storage.insert_hits(parts[0])
        storage.import_events(parts[3])
        storage.insert_hits(random.Random(3).sample(parts[2], len(parts[2])))
        refresh_all(storage)
    finally:
        storage.close()


def refresh_all(storage: Storage) -> None:
    """What the collector's writer does when idle: every queued day rebuilt."""
    while storage.refresh_rollups():
        pass
    conn = sqlite3.connect(storage.path)
    try:
        pending = conn.execute("SELECT count(*) FROM rollup_pending_days").fetchone()[0]
    finally:
        conn.close()
    assert pending == 0


def stored_rows(path: Path) -> dict[str, list[tuple[object, ...]]]:
    """Every rollup row (the log's changes merged in first), visitors as their hashes (ids are
    numbers given in arrival order) and the consent rows' visits as their ids."""
    conn = sqlite3.connect(path)
    try:
        with conn:
            rollups_sqlite.merge_log(conn)
        hashes = dict(conn.execute("SELECT id, hash FROM visitor_ids").fetchall())
        sites = dict(conn.execute("SELECT code, site FROM rollup_sites").fetchall())
        visitors: dict[tuple[object, ...], set[bytes]] = {}
        month_visitors: dict[tuple[object, ...], set[bytes]] = {}
        for table, into in (("day_visitors", visitors), ("month_visitors", month_visitors)):
            for site, dim, key, day, ids in conn.execute(
                f"SELECT site, dim, key, day, ids FROM {table}"
            ):
                found = into.setdefault((sites[site], dim, key, day), set())
                members = rollups_sqlite.deserialize(ids)
                if dim == rollups_sqlite.MODE_VISITS:
                    # Visit ids: the rebuilt copy has the same visits.
                    found |= {str(ident).encode() for ident in members}
                else:
                    found |= {hashes[ident] for ident in members}

        def visitors_key(row: tuple[object, ...]) -> tuple[object, ...]:
            return (sites[row[0]], row[1], row[3], row[2])

        # Each row with its visitors instead of their number.
        rows = sorted(
            (
                (
                    sites[row[0]],
                    *row[1:-2],
                    sorted(visitors.get((sites[row[0]], row[1], row[3], row[2]), set())),
                )
                for row in conn.execute("SELECT * FROM day_rollups")
            ),
            key=repr,
        )
        months = sorted(
            (
                (sites[row[0]], *row[1:-1], sorted(month_visitors.get(visitors_key(row), set())))
                for row in conn.execute("SELECT * FROM month_rollups")
            ),
            key=repr,
        )
        late = sorted(
            ((sites[row[0]], *row[1:]) for row in conn.execute("SELECT * FROM late_visits")),
            key=repr,
        )
    finally:
        conn.close()
    return {"day_rollups": rows, "month_rollups": months, "late_visits": late}


def rebuilt_rows(path: Path) -> dict[str, list[tuple[object, ...]]]:
    """The rows rebuilt from the events, in a copy of the database."""
    copy = path.with_name("rebuilt.db")
    source = sqlite3.connect(path)
    target = sqlite3.connect(copy)
    source.backup(target)
    source.close()
    with target:
        for (site,) in target.execute("SELECT site FROM rollup_sites").fetchall():
            zone = rollups_sqlite.sites(target)[site].zone
            rollups_sqlite.queue_site_days(target, site, zone)
        while rollups_sqlite.rebuild_pending(target, 50):
            pass
    target.close()
    try:
        return stored_rows(copy)
    finally:
        copy.unlink()


def both_ways(config: Config) -> Iterator[tuple[str, object, object]]:
    """``(what, from rollups, from events)`` for every report shape the rollups answer."""
    queries = [
        ReportQuery(period="today"),
        ReportQuery(period="7d"),
        ReportQuery(period="custom", date_from=date(2026, 3, 1), date_to=date(2026, 3, 1)),
        # Whole days that end before the newest row: daily sums, visitors counted row by row.
        ReportQuery(period="custom", date_from=date(2026, 2, 28), date_to=date(2026, 3, 5)),
        ReportQuery(period="custom", date_from=date(2026, 2, 27), date_to=date(2026, 3, 11)),
        # Whole months (read from the month rows) and whole months with days around them.
        ReportQuery(period="custom", date_from=date(2026, 2, 1), date_to=date(2026, 3, 31)),
        ReportQuery(period="custom", date_from=date(2026, 1, 20), date_to=date(2026, 3, 5)),
    ]
    site_sets = [["example"], ["paris"], ["kathmandu"], ["example", "paris"]]
    with reports_database(config.database_path) as db:
        for sites in site_sets:
            for query in queries:
                scope = resolve_scope(query, config, sites, NOW)
                label = f"{sites} {scope.first_day}..{scope.last_day}"
                kinds = (
                    db.visitor_kinds(scope.ranges, ()),
                    db.visitor_kinds(scope.ranges, (EVERYTHING,)),
                )
                yield f"{label} visitor kinds", *kinds
                yield (
                    f"{label} engaged time",
                    db.engaged_time(scope.ranges, ()),
                    db.engaged_time(scope.ranges, (EVERYTHING,)),
                )
                for dimension in [None, *ROLLUP_DIMENSIONS[1:]]:
                    yield (
                        f"{label} by {dimension}",
                        db.metrics(scope.ranges, (), dimension=dimension),
                        db.metrics(scope.ranges, (EVERYTHING,), dimension=dimension),
                    )
                yield (
                    f"{label} by page, page 2",
                    db.metrics(scope.ranges, (), dimension="page", limit=2, offset=2),
                    db.metrics(scope.ranges, (EVERYTHING,), dimension="page", limit=2, offset=2),
                )
                _, days = buckets(scope, "day")
                whole = [Bucket(0, r.site, r.start_ms, r.end_ms) for r in scope.ranges]
                for what, consent_buckets in (("by day", days), ("over the period", whole)):
                    yield (
                        f"{label} consent {what}",
                        db.consent_by_day(consent_buckets, ()),
                        db.consent_by_day(consent_buckets, (EVERYTHING,)),
                    )
                now_ms = int(NOW.timestamp() * 1000)
                yield (
                    f"{label} new visitors' visits",
                    sorted(db.client_visit_starts(scope.ranges, now_ms, ())),
                    sorted(db.client_visit_starts(scope.ranges, now_ms, (EVERYTHING,))),
                )
                yield (
                    f"{label} reason codes",
                    db.reason_counts(scope.ranges, ()),
                    db.reason_counts(scope.ranges, (EVERYTHING,)),
                )
                for goal in GOALS:
                    for dimension in (None, "page", "entry_page", "source"):
                        yield (
                            f"{label} by {dimension}, goal {goal.name}",
                            db.metrics(scope.ranges, (), dimension=dimension, goal=goal),
                            db.metrics(scope.ranges, (EVERYTHING,), dimension=dimension, goal=goal),
                        )
                    _, ranges = buckets(scope, "day")
                    yield (
                        f"{label} by day, goal {goal.name}",
                        db.metrics(scope.ranges, (), buckets=ranges, goal=goal),
                        db.metrics(scope.ranges, (EVERYTHING,), buckets=ranges, goal=goal),
                    )
                intervals = ["day", "week", "month"] + (["hour"] if query.period == "today" else [])
                for interval in intervals:
                    _, ranges = buckets(scope, interval)  # type: ignore[arg-type]
                    yield (
                        f"{label} by {interval}",
                        db.metrics(scope.ranges, (), buckets=ranges),
                        db.metrics(scope.ranges, (EVERYTHING,), buckets=ranges),
                    )


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Config:
    config = config_for(Path(tmp_path_factory.mktemp("rollups")), SITES)
    config.data_dir.mkdir(parents=True, exist_ok=True)
    store_unordered(config, random_events(11))
    return config


def test_rollups_equal_the_events(config: Config) -> None:
    compared = converted = 0
    for what, rolled, raw in both_ways(config):
        assert rolled == raw, what
        compared += 1
        if ", goal " in what:
            converted += sum(row.converted for row in rolled)  # type: ignore[attr-defined]
    assert compared > 100
    assert converted > 100


def test_goal_conversions_and_consent_are_read_from_the_rollups(config: Config) -> None:
    """Each goal's conversions come from the rollups (the intersections), not the events, and
    so do the consent report's hits, visitors and visits by mode and its reason codes."""
    scope = resolve_scope(ReportQuery(period="7d"), config, ["example", "paris"], NOW)
    _, ranges = buckets(scope, "day")
    conn = sqlite3.connect(config.database_path)
    try:
        for goal in GOALS:
            found: list[MetricRow] | None = rollup_reports_sqlite.metrics(
                conn, scope.ranges, "source", None, None, 0, goal
            )
            assert found is not None and sum(row.converted for row in found) > 0, goal
            by_day = rollup_reports_sqlite.metrics(conn, scope.ranges, None, ranges, None, 0, goal)
            assert by_day is not None and sum(row.converted for row in by_day) > 0, goal
        # The consent report's counts too, by day and over the period, and its reason codes.
        by_mode = rollup_reports_sqlite.consent_by_day(conn, ranges)
        assert by_mode is not None
        assert {row[1] for row in by_mode} == {"granted", "exempt", "denied"}
        assert all(row[4] > 0 for row in by_mode if row[1] != "denied")
        whole = [Bucket(0, r.site, r.start_ms, r.end_ms) for r in scope.ranges]
        assert rollup_reports_sqlite.consent_by_day(conn, whole) is not None
        reasons = rollup_reports_sqlite.reason_counts(conn, scope.ranges)
        assert reasons and sum(row[2] for row in reasons) > 100
        # Retention's new visitors and their visits.
        starts = rollup_reports_sqlite.client_visit_starts(
            conn, scope.ranges, int(NOW.timestamp() * 1000)
        )
        assert starts is not None and len({row[1] for row in starts}) > 3
        # An event goal on a built-in name is left to the events (no index holds them).
        builtin = Goal(name="Views", kind="event", match="pageview")
        assert (
            rollup_reports_sqlite.metrics(conn, scope.ranges, None, None, None, 0, builtin) is None
        )
    finally:
        conn.close()


def test_after_erasure_and_retention_rollups_still_equal_and_hold_no_erased_row(
    config: Config,
) -> None:
    with privacy_database(config.database_path) as db:
        deleted = db.erase_subject("example", "visitor", [SubjectHash(epoch=1, digest=ERASED)])
        assert deleted.visits > 0
        for site in SITES:
            purged = db.purge_before(
                site, ["exempt"], int(START.timestamp() * 1000) + 4 * 86_400_000
            )
            assert sum(count.events for count in purged) > 0
    for what, rolled, raw in both_ways(config):
        assert rolled == raw, what
    conn = sqlite3.connect(config.database_path)
    try:
        left = [
            conn.execute(f"SELECT count(*) FROM {table} WHERE {where}", params).fetchone()[0]
            for table, where, params in [
                ("visitor_ids", "hash = ?", (ERASED,)),
                ("events", "visitor = ?", (ERASED,)),
            ]
        ]
        known = {row[0] for row in conn.execute("SELECT id FROM visitor_ids")}
        visits = {row[0] for row in conn.execute("SELECT id FROM visits")}
        in_bitmaps: set[int] = set()
        in_visit_sets: set[int] = set()
        for dim, ids in conn.execute("SELECT dim, ids FROM day_visitors"):
            found = in_visit_sets if dim == rollups_sqlite.MODE_VISITS else in_bitmaps
            found |= set(rollups_sqlite.deserialize(ids))
    finally:
        conn.close()
    assert left == [0, 0]
    # No bitmap holds the id of a visitor the dictionary has forgotten, nor of a visit gone.
    assert in_bitmaps <= known and len(in_bitmaps) > 20
    assert in_visit_sets <= visits and len(in_visit_sets) > 20
    # The rows kept up to date through ingest, the erasure and the purge equal the rows
    # rebuilt afresh from the events.
    kept = stored_rows(config.database_path)
    assert kept == rebuilt_rows(config.database_path)
    assert len(kept["day_rollups"]) > 100 and kept["late_visits"]
    with privacy_database(config.database_path) as db:
        db.reclaim_space()
    stored = b"".join(
        path.read_bytes()
        for path in config.data_dir.glob(config.database_path.name + "*")
        if path.is_file()
    )
    assert ERASED not in stored
    assert visitor("exv1") in stored  # the scan does see the other visitors' hashes


def test_bulk_import_stores_what_ingest_stores(tmp_path: Path) -> None:
    events = sorted(random_events(5), key=lambda e: e.ts)
    stored = []
    for name in ("ingest", "bulk"):
        config = config_for(tmp_path / name, SITES)
        config.data_dir.mkdir(parents=True)
        storage = open_storage(config.database_path, timezones=SITES)
        try:
            if name == "ingest":
                for start in range(0, len(events), 40):
                    storage.insert_hits(events[start : start + 40])
                refresh_all(storage)
            else:
                storage.import_events(events)
            rollups = stored_rows(config.database_path)
            stored.append((storage.events(), storage.visits(), rollups))
        finally:
            storage.close()
    assert len(stored[0][1]) > 100
    assert stored[0] == stored[1]


def test_queued_days_are_read_from_the_events(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Days queued for a rebuild (a time zone change queues all of a site's; here also every
    third day of another site, with wrong rows) are read from the events in the same answer as
    the other days' rows, whatever their rows hold, and agree again once rebuilt."""
    config = config_for(tmp_path / "pending", SITES)
    config.data_dir.mkdir(parents=True)
    events = sorted(random_events(7), key=lambda e: e.ts)
    storage = open_storage(config.database_path, timezones={site: "UTC" for site in SITES})
    storage.insert_hits(events)
    storage.close()
    # Opened with the configured zones: the Paris and Kathmandu rows were built in UTC.
    storage = open_storage(config.database_path, timezones=SITES)
    try:
        conn = sqlite3.connect(config.database_path)
        with conn:
            queued = conn.execute("SELECT count(*) FROM rollup_pending_days").fetchone()[0]
            example = "(SELECT code FROM rollup_sites WHERE site = 'example')"
            conn.execute(
                "INSERT INTO rollup_pending_days (site, day) SELECT DISTINCT 'example', day "
                f"FROM day_rollups WHERE site = {example} AND day % 3 = 0"
            )
            # Rows of a queued day that are wrong: no report may read them.
            conn.execute(
                "UPDATE day_rollups SET pageviews = pageviews + 1000, visits = visits + 10 "
                f"WHERE site = {example} AND day % 3 = 0"
            )
        conn.close()
        assert queued > 10
        answered = []
        rollup_metrics = rollup_reports_sqlite.metrics

        def counted(*args: object, **kwargs: object) -> object:
            found = rollup_metrics(*args, **kwargs)  # type: ignore[arg-type]
            answered.append(found is not None)
            return found

        monkeypatch.setattr(rollup_reports_sqlite, "metrics", counted)
        pending = list(both_ways(config))
        # The UTC site's answers mixed its rows with its queued days' events.
        assert sum(answered) > 50
        refresh_all(storage)
        refreshed = list(both_ways(config))
    finally:
        storage.close()
    assert len(pending) > 100
    for (what, rolled, raw), (_, after, _) in zip(pending, refreshed, strict=True):
        assert rolled == raw == after, what


def test_the_upgrade_queues_every_day_and_reports_stay_exact(tmp_path: Path) -> None:
    """A data directory from before storage v2 (its per-visit rollup tables and queues, and
    the new migration not applied) is upgraded when opened: the old tables go, every day with
    events is queued, reports read those days from the events meanwhile, and once the writer
    has rebuilt them the rollups answer, equal to the events."""
    config = config_for(tmp_path / "upgrade", SITES)
    config.data_dir.mkdir(parents=True)
    storage = open_storage(config.database_path, timezones=SITES)
    storage.insert_hits(sorted(random_events(13), key=lambda e: e.ts))
    storage.close()
    conn = sqlite3.connect(config.database_path)
    with conn:  # back to the schema of before: the old tables, no v2 tables, not migrated
        for table in ("rollup_sites", "visitor_ids", "visitor_id_next", *rollups_sqlite.ROW_TABLES):
            conn.execute(f"DROP TABLE {table}")
        conn.execute("DROP TABLE rollup_pending_days")
        # (as the compact layout's migration left them: the unidentified events' index on
        # ``event_rows``, where ``events`` is now a view)
        old = (schema._V1_ROLLUPS + schema._V1_ROLLUP_DAYS).replace(
            "events_unidentified ON events", "event_rows_unidentified ON event_rows"
        )
        conn.executescript(old)
        conn.executescript(
            "CREATE TABLE rollup_pending (visit INTEGER PRIMARY KEY);"
            "CREATE TABLE rollup_pending_hours (site TEXT, hour INTEGER, PRIMARY KEY (site, hour));"
        )
        # Storage v2's migration and those that build on its tables.
        conn.execute(
            "DELETE FROM _sqlite_migrations WHERE name IN "
            "('daily_rollups', 'consent_rollups', 'retention_from_rollups')"
        )
    conn.close()
    storage = open_storage(config.database_path, timezones=SITES)
    try:
        conn = sqlite3.connect(config.database_path)
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_schema")}
        queued = conn.execute("SELECT count(*) FROM rollup_pending_days").fetchone()[0]
        conn.close()
        assert not tables & {*rollups_sqlite.OLD_TABLES, "event_rows_unidentified"}
        assert queued >= 10 * len(SITES)
        while_queued = list(both_ways(config))
        refresh_all(storage)
        rebuilt = list(both_ways(config))
    finally:
        storage.close()
    for (what, rolled, raw), (_, after, _) in zip(while_queued, rebuilt, strict=True):
        assert rolled == raw == after, what
    assert stored_rows(config.database_path) == rebuilt_rows(config.database_path)


def test_two_writers_extending_the_same_visits_keep_the_rollups_exact(tmp_path: Path) -> None:
    """Two worker processes' storages (each its own connection and memory of the visits it
    rolled up) take turns on the same visits: each notices what the other added since."""
    config = config_for(tmp_path / "two", SITES)
    config.data_dir.mkdir(parents=True)
    events = sorted(random_events(17), key=lambda e: e.ts)
    first = open_storage(config.database_path, timezones=SITES)
    second = open_storage(config.database_path, timezones=SITES)
    try:
        for number, start in enumerate(range(0, len(events), 3)):
            (first if number % 2 else second).insert_hits(events[start : start + 3])
    finally:
        first.close()
        second.close()
    for what, rolled, raw in both_ways(config):
        assert rolled == raw, what
    assert stored_rows(config.database_path) == rebuilt_rows(config.database_path)


def test_erasing_a_user_whose_browser_has_other_visits_that_day(tmp_path: Path) -> None:
    """A user-id erasure takes the user's visits; the same browser's other visit that day stays,
    so the visitor stays in that day's rows it still has events for (the day is rebuilt)."""
    config = config_for(tmp_path / "user", SITES)
    config.data_dir.mkdir(parents=True)
    day = int(datetime(2026, 3, 3, tzinfo=UTC).timestamp() * 1000)
    user = visitor("the-user")
    hour = 3_600_000
    tagged = [
        _client(day + 10 * hour, "exsame", "/a"),
        _client(day + 10 * hour + 9, "exsame", "/b"),
    ]
    events = [
        *[msgspec.structs.replace(event, user=user, user_epoch=1) for event in tagged],
        _client(day + 14 * 3_600_000, "exsame", "/b"),
        _client(day + 15 * 3_600_000, "exother", "/a"),
        *[e for e in random_events(19) if e.site == "example"],
    ]
    storage = open_storage(config.database_path, timezones=SITES)
    storage.insert_hits(sorted(events, key=lambda e: e.ts))
    storage.close()
    with privacy_database(config.database_path) as db:
        deleted = db.erase_subject("example", "user", [SubjectHash(epoch=1, digest=user)])
    assert deleted.subject_events == 2 and deleted.visits == 1
    for what, rolled, raw in both_ways(config):
        assert rolled == raw, what
    assert stored_rows(config.database_path) == rebuilt_rows(config.database_path)


def test_a_log_merged_a_slice_at_a_time_keeps_the_rollups_exact(tmp_path: Path) -> None:
    """Many small commits: once ``LOG_LIMIT`` changes wait, each commit merges the oldest slice
    of the log. Reports read while part of the log is merged, and the rows once it all is, equal
    the events."""
    config = config_for(tmp_path / "slices", SITES)
    config.data_dir.mkdir(parents=True)
    events = sorted(
        (event for seed in range(20, 32) for event in random_events(seed)), key=lambda e: e.ts
    )
    storage = open_storage(config.database_path, timezones=SITES)
    try:
        for start in range(0, len(events), 4):
            storage.insert_hits(events[start : start + 4])
    finally:
        storage.close()
    conn = sqlite3.connect(config.database_path)
    try:
        logged = conn.execute("SELECT max(seq) - min(seq), count(*) FROM rollup_log").fetchone()
        merged = conn.execute("SELECT count(*) FROM day_rollups").fetchone()[0]
    finally:
        conn.close()
    # Merged in slices: rows were written, and the log holds neither nothing nor much more
    # than its limit.
    assert merged > 0
    assert logged[1] > 0
    assert logged[0] < rollups_sqlite.LOG_LIMIT + rollups_sqlite.MERGE_SLICE
    compared = 0
    for what, rolled, raw in both_ways(config):
        assert rolled == raw, what
        compared += 1
    assert compared > 100
    assert stored_rows(config.database_path) == rebuilt_rows(config.database_path)


def test_new_visitors_around_a_retention_purge(tmp_path: Path) -> None:
    """Retention deletes a mode's events before a time, and a visit that mixed modes keeps its
    start and its later events. The rollups then no longer see that the visit started before
    the period (its visitor is not new), nor that a visit started in a period that has lost
    every event of it (its visitor is new): new visitors still equal the events path's."""
    config = config_for(tmp_path / "purge", {"example": "UTC"})
    config.data_dir.mkdir(parents=True)
    day2 = int(datetime(2026, 3, 2, tzinfo=UTC).timestamp() * 1000)
    day3 = day2 + 86_400_000
    minute = 60_000

    def at(ts: int, who: str, mode: str) -> Event:
        return msgspec.structs.replace(_client(ts, who, "/"), mode=mode)

    events = [
        # Starts the evening before day 2: its first event exempt, then granted after midnight.
        at(day2 - 10 * minute, "across-day2", "exempt"),
        at(day2 + 10 * minute, "across-day2", "granted"),
        # Starts the evening of day 2 the same way, into day 3.
        at(day3 - 10 * minute, "across-day3", "exempt"),
        at(day3 + 10 * minute, "across-day3", "granted"),
        # New on day 2, whole.
        at(day2 + 9 * 60 * minute, "plain", "granted"),
        at(day3 + 9 * 60 * minute, "plain", "granted"),
    ]
    storage = open_storage(config.database_path, timezones={"example": "UTC"})
    try:
        storage.insert_hits(events)
        refresh_all(storage)
    finally:
        storage.close()
    now_ms = day3 + 86_400_000
    with privacy_database(config.database_path) as db:
        purged = db.purge_before("example", ["exempt"], day2)
        assert sum(count.events for count in purged) == 1

    def both(first: date, last: date) -> tuple[object, object]:
        query = ReportQuery(period="custom", date_from=first, date_to=last)
        scope = resolve_scope(query, config, ["example"], NOW)
        with reports_database(config.database_path) as db:
            return (
                db.client_visit_starts(scope.ranges, now_ms, ()),
                db.client_visit_starts(scope.ranges, now_ms, (EVERYTHING,)),
            )

    # Day 2 starts when the purge stopped: the rollups answer, and the visitor whose visit
    # began before it is not new although no event of theirs is left before day 2.
    rolled, raw = both(date(2026, 3, 2), date(2026, 3, 3))
    assert rolled == raw
    assert {row[1] for row in raw} == {visitor("across-day3"), visitor("plain")}  # type: ignore[union-attr]
    # Then the second purge: day 2 has lost the first event of a visit that started on it.
    with privacy_database(config.database_path) as db:
        db.purge_before("example", ["exempt"], day3)
    for first, last in [(date(2026, 3, 2), date(2026, 3, 2)), (date(2026, 3, 3), date(2026, 3, 3))]:
        rolled, raw = both(first, last)
        assert rolled == raw, first
    rolled, raw = both(date(2026, 3, 2), date(2026, 3, 2))
    assert visitor("across-day3") in {row[1] for row in raw}  # type: ignore[union-attr]
