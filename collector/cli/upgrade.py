"""``mesure upgrade``: rewrite a data directory's events into the compact layout, while the
collector runs (:mod:`collector.storage.sqlite.layout` says how).

The first run takes a backup (the options of ``mesure backup``), then copies; a run after a crash
or an interrupt carries on from the last copied row (no second backup: the first one holds
everything the copy could touch). Progress is printed as it goes, with the time per million
events at the end.
"""

from __future__ import annotations

import itertools
import time
from pathlib import Path

import click

from collector.cli.backup import backup_options, take_backup
from collector.cli.common import data_option, load
from collector.cli.privacy import by_option, utc_now
from collector.storage import timezones_of
from collector.storage.sqlite import layout as layout_sqlite
from collector.storage.sqlite.events import Storage, open_storage
from collector.storage.sqlite.privacy import privacy_database

#: Seconds between two progress lines.
_PROGRESS_EVERY_S = 5.0
#: Pause after each transaction, so that a collector's writer waiting for the write turn takes
#: it: the lock file is not handed over in order, and a process that releases it and asks again
#: at once gets it back (the collector's writer pauses after its commits for the same reason).
_HANDOFF_S = 0.005


@click.command("upgrade")
@data_option
@backup_options
@by_option
@click.option(
    "--rows",
    type=click.IntRange(100, 100_000),
    default=5_000,
    show_default=True,
    help="Events copied, or old rollup rows removed, per transaction (hits wait for one "
    "transaction at most).",
)
@click.option(
    "--vacuum",
    is_flag=True,
    help="Then give the freed pages back to the file system (VACUUM: hits wait until it ends).",
)
def upgrade(
    data_dir: Path,
    out: Path | None,
    recipients: tuple[str, ...],
    recipients_files: tuple[Path, ...],
    unencrypted: bool,
    actor: str | None,
    rows: int,
    vacuum: bool,
) -> None:
    """Rewrite the stored events into the compact layout (backup first; resumable)."""
    config = load(data_dir)
    if config.clickhouse is not None:
        raise click.ClickException("the events are in ClickHouse: nothing to upgrade here")
    # With the sites' time zones, as the collector opens it: the days queued are local days.
    storage = open_storage(config.database_path, timezones=timezones_of(config))

    def backup() -> str:
        result = take_backup(
            data_dir, out, recipients, recipients_files, unencrypted=unencrypted, actor=actor
        )
        return str(result.out)

    try:
        state = storage.layout_progress()
        old_rollups, queued = storage.rollups_left()
        if state.layout == layout_sqlite.COMPACT:
            if not (state.old_table or old_rollups or queued or storage.indexes_left()):
                click.echo("the events are already in the compact layout: nothing to do")
            else:
                if old_rollups and state.backup is None:
                    click.echo("the rollups of an earlier Mesure to remove; backup first")
                    storage.record_backup(backup())
                _run(storage, 0, 0, rows)
        elif state.layout == layout_sqlite.FIRST:
            click.echo(f"{state.total:,} events to copy into the compact layout; backup first")
            storage.begin_upgrade(backup(), int(utc_now().timestamp() * 1000))
            state = storage.layout_progress()
        elif state.layout == layout_sqlite.COPYING:
            click.echo(
                f"carrying on: {state.copied:,} of {state.total:,} events copied before; "
                f"the backup taken then is {state.backup}"
            )
        if state.layout == layout_sqlite.FIRST or state.layout == layout_sqlite.COPYING:
            _run(storage, state.copied, state.total, rows)
    finally:
        storage.close()
    if vacuum:
        click.echo("VACUUM: hits wait until it ends")
        started = time.monotonic()
        with privacy_database(config.database_path) as db:
            done = db.reclaim_space()
        click.echo(f"{done} in {time.monotonic() - started:.1f} s")


def _run(storage: Storage, copied: int, total: int, rows: int) -> None:
    started = time.monotonic()
    shown = started
    this_run = 0
    # When each later stage began (the first layout's table dropped, the old rollups dropped,
    # the queued days rebuilt), for the durations printed at the end.
    began: dict[str, float] = {}
    old_rows, days = storage.rollups_left()
    rebuilt = deleted = 0
    indexed = 0
    indexing_s = 0.0
    while True:
        step_started = time.monotonic()
        what, count = storage.upgrade_step(rows)
        step_took = time.monotonic() - step_started
        time.sleep(_HANDOFF_S)
        now = time.monotonic()
        if what == "copied":
            copied += count
            this_run += count
            if now - shown >= _PROGRESS_EVERY_S:
                shown = now
                rate = this_run / (now - started)
                left = (total - copied) / rate if rate else 0.0
                share = 100 * copied / total if total else 100.0
                click.echo(
                    f"  {copied:,} of {total:,} events copied ({share:.0f} %), "
                    f"{rate:,.0f} events/s, about {left:,.0f} s left"
                )
        elif what == "switched":
            took = now - started
            per_million = took / this_run * 1_000_000 if this_run else 0.0
            click.echo(
                f"copied {this_run:,} events in {took:.1f} s ({per_million:.1f} s per million "
                "events); the reports now read the compact layout"
            )
            began["dropped"] = now
        elif what == "done":
            break
        else:
            if what not in began:
                began[what] = now
                if what == "rebuilt":
                    days = storage.rollups_left()[1] + count
                    shown = now
            if what == "rebuilt":
                rebuilt += count
                if now - shown >= _PROGRESS_EVERY_S:
                    shown = now
                    click.echo(f"  {rebuilt:,} of {days:,} queued days of rollups rebuilt")
            elif what == "indexed":
                indexed += count
                indexing_s += step_took
                click.echo(f"  built an index of the events in {step_took:.1f} s")
            elif what == "dropped rollups":
                deleted += count
                if now - shown >= _PROGRESS_EVERY_S:
                    shown = now
                    rate = deleted / (now - began[what])
                    left = max(0, old_rows - deleted) / rate if rate else 0.0
                    click.echo(
                        f"  {deleted:,} of about {old_rows:,} rows of the rollups of before "
                        f"storage v2 removed, {rate:,.0f} rows/s, about {left:,.0f} s left"
                    )
    ended = time.monotonic()
    stages = [*began, "done"]
    ends = {stage: began.get(following, ended) for stage, following in itertools.pairwise(stages)}
    if "dropped" in began:
        took = ends["dropped"] - began["dropped"]
        click.echo(f"removed the first layout's table and indexes in {took:.1f} s")
    if "dropped rollups" in began:
        took = ends["dropped rollups"] - began["dropped rollups"]
        click.echo(f"removed the rollups of before storage v2 ({deleted:,} rows) in {took:.1f} s")
    if "rebuilt" in began:
        took = ends["rebuilt"] - began["rebuilt"]
        click.echo(f"rebuilt {rebuilt:,} days of rollups in {took:.1f} s")
    if indexed:
        built = "1 index" if indexed == 1 else f"{indexed} indexes"
        click.echo(f"built {built} of the events in {indexing_s:.1f} s")
    click.echo(
        "upgrade done. The database file keeps its size (SQLite reuses the freed pages) unless "
        "--vacuum is given."
    )


COMMANDS: list[click.Command] = [upgrade]
