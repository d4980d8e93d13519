"""``mesure migrate --to DSN`` and ``mesure clickhouse schema``.

``migrate`` copies a SQLite data directory's visits, events and drop counters to ClickHouse in
id order, in batches that ClickHouse inserts atomically (one block each). It is resumable: the
checkpoint is the highest id already in ClickHouse, so a rerun after an interruption continues
where the last acknowledged batch ended, without duplicates. It ends with a count check.
"""

from __future__ import annotations

import os
import re
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import closing
from pathlib import Path
from typing import Any

import click
import msgspec

from collector.cli.common import data_option
from collector.cli.main import ConfigProblem, _load
from collector.config import Config
from collector.errors import ConfigError
from collector.storage import open_events, retention_of
from collector.storage.clickhouse.client import Client, client_for
from collector.storage.clickhouse.ingest import EVENT_NAMES, VISIT_NAMES, Retention, sqlite_text
from collector.storage.clickhouse.schema import schema_text
from collector.storage.target import DEFAULT_DATABASE, ClickHouseTarget, parse_storage

#: The version of copied visits: below any the collector writes (nanosecond timestamps).
COPIED_VERSION = 1
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


@click.command()
@data_option
@click.option("--to", "dsn", required=True, help="clickhouse://user@host:8123/db or chdb:///path.")
@click.option("--batch-size", default=50_000, show_default=True, type=click.IntRange(1, 1_000_000))
def migrate(data_dir: Path, dsn: str, batch_size: int) -> None:
    """Copy the data directory's SQLite events and visits to ClickHouse (resumable)."""
    config = _load(data_dir)
    try:
        target = parse_storage(dsn, os.environ)
    except ValueError as exc:
        raise ConfigProblem(f"--to: {exc}") from None
    if target is None:
        raise click.UsageError("--to must be a clickhouse:// or chdb:// address")
    source = config.database_path
    if not source.exists():
        raise click.ClickException(f"no SQLite database at {source}")
    click.echo(f"Copying {source} to {target.display()}")
    try:
        result = copy_to_clickhouse(config, target, batch_size=batch_size, progress=True)
    except ConfigError as exc:
        raise ConfigProblem(str(exc)) from None
    for table, (expected, found) in result.items():
        status = "ok" if expected == found else "MISMATCH"
        click.echo(f"{table}: {expected} in SQLite, {found} in ClickHouse: {status}")
    if any(expected != found for expected, found in result.values()):
        raise SystemExit(1)
    click.echo(f'Done. To use it, set in mesure.toml: storage = "{target.display()}"')


def copy_to_clickhouse(
    config: Config, target: ClickHouseTarget, *, batch_size: int, progress: bool = False
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
            with _bar(progress, todo, f"{table:7}") as bar:
                for batch in _batches(conn, table, after, batch_size):
                    client.insert(table, [convert(row, retention) for row in batch], names)
                    bar.update(len(batch))
        _copy_drops(conn, client)
        return _counts(conn, client)


def _bar(progress: bool, length: int, label: str) -> Any:
    if progress:
        return click.progressbar(length=length, label=label, show_pos=True)
    return _NoBar()


class _NoBar:
    def __enter__(self) -> _NoBar:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def update(self, count: int) -> None:
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


@click.group()
def clickhouse() -> None:
    """ClickHouse storage: print the DDL for an administrator to review and apply."""


@clickhouse.command()
@click.option("--cluster", "cluster_name", default=None, help="ClickHouse cluster name.")
@click.option("--database", default=DEFAULT_DATABASE, show_default=True)
def schema(cluster_name: str | None, database: str) -> None:
    """Print the CREATE statements: single node, or replicated + distributed on a cluster."""
    for name, value in (("--database", database), ("--cluster", cluster_name)):
        if value is not None and not _IDENTIFIER.match(value):
            raise click.BadParameter(f"not a plain identifier: {value!r}", param_hint=name)
    click.echo(schema_text(database, cluster_name), nl=False)


COMMANDS: Sequence[click.Command] = [migrate, clickhouse]
