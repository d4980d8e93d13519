"""``mesure migrate --to DSN`` and ``mesure clickhouse schema``.

``migrate`` copies a SQLite data directory's visits, events and drop counters to ClickHouse,
resumably (:mod:`collector.storage.clickhouse.copy_from_sqlite`), and exits with code 1 when the
counts differ.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

import click
from click._termui_impl import ProgressBar

from collector.cli.common import ConfigProblem, data_option, load
from collector.errors import ConfigError
from collector.storage.clickhouse.copy_from_sqlite import copy_to_clickhouse
from collector.storage.clickhouse.schema import schema_text
from collector.storage.target import DEFAULT_DATABASE, parse_storage

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


@click.command()
@data_option
@click.option("--to", "dsn", required=True, help="clickhouse://user@host:8123/db or chdb:///path.")
@click.option("--batch-size", default=50_000, show_default=True, type=click.IntRange(1, 1_000_000))
def migrate(data_dir: Path, dsn: str, batch_size: int) -> None:
    """Copy the data directory's SQLite events and visits to ClickHouse (resumable)."""
    config = load(data_dir)
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
        result = copy_to_clickhouse(config, target, batch_size=batch_size, progress=_progress_bar)
    except ConfigError as exc:
        raise ConfigProblem(str(exc)) from None
    for table, (expected, found) in result.items():
        status = "ok" if expected == found else "MISMATCH"
        click.echo(f"{table}: {expected} in SQLite, {found} in ClickHouse: {status}")
    if any(expected != found for expected, found in result.values()):
        raise SystemExit(1)
    click.echo(f'Done. To use it, set in mesure.toml: storage = "{target.display()}"')


def _progress_bar(length: int, label: str) -> ProgressBar[int]:
    return click.progressbar(length=length, label=label, show_pos=True)


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
