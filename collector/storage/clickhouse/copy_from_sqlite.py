"""Copying a SQLite data directory's visits, events and drop counters to ClickHouse
(``mesure migrate --to DSN``).

Rows are copied in id order, in batches that ClickHouse inserts atomically (one block each). The
copy is resumable: the checkpoint is the highest id already in ClickHouse, so a rerun after an
interruption continues where the last acknowledged batch ended, without duplicates. It ends with a
count of each table on both sides.

``first_visits`` (ClickHouse only) is filled from the copied visits and events once they are
all in: the engine keeps each visitor's earliest visit, so a rerun inserting them again changes
nothing.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, closing
from typing import Any, Protocol

import msgspec

from collector.config import Config
from collector.storage import open_events, retention_of
from collector.storage.clickhouse import first_visits
from collector.storage.clickhouse.client import Client, client_for
from collector.storage.clickhouse.ingest import EVENT_NAMES, VISIT_NAMES, Retention, sqlite_text
from collector.storage.target import ClickHouseTarget

#: The version of copied visits: below any the collector writes (nanosecond timestamps).
COPIED_VERSION = 1


class Progress(Protocol):
    """What a progress display is told: rows copied since the last update."""

    def update(self, n_steps: int) -> None: ...


#: Makes the progress display of one table from its rows to copy and a label (the command line
#: passes ``click.progressbar``; storage itself prints nothing).
ProgressFactory = Callable[[int, str], AbstractContextManager[Progress]]


def copy_to_clickhouse(
    config: Config,
    target: ClickHouseTarget,
    *,
    batch_size: int,
    progress: ProgressFactory | None = None,
) -> dict[str, tuple[int, int]]:
    """Copy what is missing; return ``{table: (rows in SQLite, rows in ClickHouse)}``."""
    destination = msgspec.structs.replace(config, clickhouse=target)
    open_events(destination).close()  # creates the tables
    client = client_for(target)
    retention: Retention = retention_of(config)
    with closing(sqlite3.connect(f"file:{config.database_path}?mode=ro", uri=True)) as conn:
        conn.row_factory = sqlite3.Row
        for table, convert in (("visits", _visit_row), ("events", _event_row)):
            (done,) = client.rows(f"SELECT max(id) FROM {{db}}.{table}")[0]
            after = int(done or 0)
            (todo,) = conn.execute(
                f"SELECT count(*) FROM {table} WHERE id > ?", (after,)
            ).fetchone()
            names = (
                VISIT_NAMES if table == "visits" else [*EVENT_NAMES, "props_text", "retention_days"]
            )
            bar = _NoBar() if progress is None else progress(todo, f"{table:7}")
            with bar as shown:
                for batch in _batches(conn, table, after, batch_size):
                    client.insert(table, [convert(row, retention) for row in batch], names)
                    shown.update(len(batch))
        first_visits.rebuild(client)
        _copy_drops(conn, client)
        return _counts(conn, client)


class _NoBar:
    def __enter__(self) -> _NoBar:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def update(self, n_steps: int) -> None:
        return None


def _batches(
    conn: sqlite3.Connection, table: str, after: int, size: int
) -> Iterator[list[sqlite3.Row]]:
    # ``table`` is one of this module's two constants.
    while True:
        rows = conn.execute(
            f"SELECT * FROM {table} WHERE id > ? ORDER BY id LIMIT ?", (after, size)
        ).fetchall()
        if not rows:
            return
        yield rows
        after = int(rows[-1]["id"])


def _visit_row(row: sqlite3.Row, retention: Retention) -> list[Any]:
    values = dict(row)
    values["created_ts"] = values["start_ts"]
    values["retention_days"] = retention.of_visit(values["site"])
    values["version"] = COPIED_VERSION
    return [values[name] for name in VISIT_NAMES]


def _event_row(row: sqlite3.Row, retention: Retention) -> list[Any]:
    values = dict(row)
    props = {} if values["props"] is None else msgspec.json.decode(values["props"])
    return [
        *(values[name] for name in EVENT_NAMES),
        {key: sqlite_text(value) for key, value in props.items()},
        retention.of(values["site"], values["mode"]),
    ]


def _copy_drops(conn: sqlite3.Connection, client: Client) -> None:
    """Add what ClickHouse lacks of each counter (so a rerun adds nothing twice)."""
    have = {
        (site, day, reason): int(hits)
        for site, day, reason, hits in client.rows(
            "SELECT site, day, reason, sum(hits) FROM {db}.dropped_hits GROUP BY site, day, reason"
        )
    }
    missing = [
        (site, day, reason, hits - have.get((site, day, reason), 0))
        for site, day, reason, hits in conn.execute(
            "SELECT site, day, reason, hits FROM dropped_hits"
        ).fetchall()
        if hits > have.get((site, day, reason), 0)
    ]
    client.insert("dropped_hits", missing, ["site", "day", "reason", "hits"])


def _counts(conn: sqlite3.Connection, client: Client) -> dict[str, tuple[int, int]]:
    found: dict[str, tuple[int, int]] = {}
    for table, query in (
        ("events", "SELECT count() FROM {db}.events"),
        ("visits", "SELECT count() FROM {db}.visits FINAL"),
        ("dropped hits", "SELECT sum(hits) FROM {db}.dropped_hits"),
    ):
        source = "dropped_hits" if table == "dropped hits" else table
        column = "coalesce(sum(hits), 0)" if table == "dropped hits" else "count(*)"
        (expected,) = conn.execute(f"SELECT {column} FROM {source}").fetchone()
        (copied,) = client.rows(query)[0]
        found[table] = (int(expected), int(copied or 0))
    return found
