"""``reports_database(path, rollups=False)`` answers from the events alone: the reference
tests/bench/reports.py checks the rollups' answers against. With the rollups current it agrees
with them; with the rollups emptied behind the storage module's back, the default connection
gives another (wrong) answer and the events-only one still gives the events' answer.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from collector.reports import Filter, ReportQuery
from collector.reports.query import resolve_scope
from collector.storage.rows import Event, SiteRange
from collector.storage.sqlite.events import open_storage
from collector.storage.sqlite.reports import ReportsDatabase, reports_database
from tests.reports.dataset import config_for, event, ms

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
#: A filter every event passes: it sends a query to the events table instead of the rollups.
EVERYTHING = Filter(dimension="mode", op="is_not", value="no such mode")


def _events() -> list[Event]:
    found = []
    for day in range(3, 10):
        for number in range(6):
            who = f"v{(day * number) % 7}"
            at = ms(2026, 3, day, 8 + number, 5 * number)
            found.append(event(at, who, path=f"/p{number % 3}", source="Google"))
            found.append(event(at + 60_000, who, path="/pricing"))
            found.append(event(at + 90_000, None, path="/denied"))
            found.append(event(at + 120_000, who, "engagement", engaged_ms=3_000))
    return found


def _answers(
    db: ReportsDatabase, ranges: Sequence[SiteRange], filters: tuple[Filter, ...]
) -> tuple[object, ...]:
    return (
        db.metrics(ranges, filters),
        db.metrics(ranges, filters, dimension="page"),
        db.visitor_kinds(ranges, filters),
        db.engaged_time(ranges, filters),
    )


def test_events_only_connection_ignores_the_rollups(tmp_path: Path) -> None:
    config = config_for(tmp_path / "data", {"example": "Europe/Paris"})
    config.data_dir.mkdir(parents=True)
    storage = open_storage(config.database_path, timezones={"example": "Europe/Paris"})
    try:
        storage.import_events(_events())  # rollups built in the same transaction
    finally:
        storage.close()
    ranges = resolve_scope(ReportQuery(period="7d"), config, ["example"], NOW).ranges
    with reports_database(config.database_path) as db:
        from_rollups = _answers(db, ranges, ())
        from_events = _answers(db, ranges, (EVERYTHING,))
    with reports_database(config.database_path, rollups=False) as db:
        events_only = _answers(db, ranges, ())
    assert from_rollups == from_events == events_only
    assert from_events[0][0].visitors > 0 and from_events[3] > 0

    conn = sqlite3.connect(config.database_path)
    with conn:
        for table in ("day_rollups", "day_visitors", "late_visits"):
            conn.execute(f"DELETE FROM {table}")
    conn.close()
    with reports_database(config.database_path) as db:
        assert _answers(db, ranges, ()) != from_events
    with reports_database(config.database_path, rollups=False) as db:
        assert _answers(db, ranges, ()) == from_events
