"""``mesure upgrade`` on a data directory whose events are in the first layout (as every Mesure
before the compact layout stored them): a backup first, then the copy while ``mesure serve``
ingests, every acknowledged hit stored once and every earlier row unchanged; a copy killed with
SIGKILL carries on where it stopped, a collector started meanwhile answers hits within 5 s, and
an erasure during the copy leaves none of the subject's bytes in either layout."""

from __future__ import annotations

import shutil
import signal
import sqlite3
import subprocess
import threading
import time
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import msgspec
from sqlite_utils import Database

from collector.config import load_config
from collector.reports import Filter, Goal, ReportQuery, aggregate, breakdown, funnel, rfm
from collector.storage.sqlite import rollups as rollups_sqlite
from collector.storage.sqlite.events import open_storage
from collector.storage.sqlite.layout import ENCODED, INDEX_AT_ONCE_ROWS, SELECT_COLUMNS
from collector.storage.sqlite.reports import reports_database
from collector.storage.sqlite.schema import migrations
from tests.backup.support import (
    COMMAND_TIMEOUT,
    ENV,
    SITE,
    Sender,
    identity_file,
    init,
    mesure,
    stop_process,
)
from tests.privacy.stored_bytes import scan
from tests.support import (
    ROOT,
    browser_client,
    free_port,
    mesure_command,
    start_mesure_serve,
    traced_plans,
)

#: What a collector started during the copy must answer within, from its process's start.
ANSWER_WITHIN_S = 5.0


def _read(database: Path, sql: str) -> list[tuple[Any, ...]]:
    with closing(sqlite3.connect(f"{database.as_uri()}?mode=ro", uri=True)) as conn:
        return conn.execute(sql).fetchall()


def _collect(data: Path, hits: int) -> None:
    """Ingest ``hits`` hits (paths ``/b/N``, 41 client ids) through a real collector."""
    port = free_port()
    collector = start_mesure_serve(data, port, ENV)
    try:
        sender = Sender(port)
        sender.start()
        try:
            sender.wait_for(hits)
        finally:
            sender.stop()
        assert sender.refused == 0
    finally:
        stop_process(collector)


def _to_first_layout(database: Path) -> None:
    """Rewrite ``database`` as a Mesure before the compact layout stored the same data: its
    migrations up to that layout's, every table's rows, the events in their first table."""
    with closing(sqlite3.connect(database)) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    older = database.with_name("older.db")
    db = Database(older)
    migrations.apply(db, stop_before="add_compact_events")
    tables = [
        name
        for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        if not name.startswith(("sqlite_", "_sqlite_"))
    ]
    db.execute("ATTACH DATABASE ? AS newer", [str(database)])
    newer = {name for (name,) in db.execute("SELECT name FROM newer.sqlite_master")}
    for table in tables:
        if table not in newer:
            continue  # the per-visit rollups, whose rows are filled below
        columns = ", ".join(row[1] for row in db.execute(f"PRAGMA main.table_info({table})"))
        db.execute(f"INSERT INTO main.{table} ({columns}) SELECT {columns} FROM newer.{table}")
    # Per-visit rollups past what the migration drops at start-up, as a large directory has
    # (their values do not matter: nothing reads them any more).
    value = {"INTEGER": "i", "BLOB": "randomblob(16)", "TEXT": "'x'"}
    values = ", ".join(value[row[2]] for row in db.execute("PRAGMA table_info(visit_keys)"))
    db.execute(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?) "
        f"INSERT INTO visit_keys SELECT {values} FROM n",
        [rollups_sqlite.DROP_AT_ONCE_ROWS + 1],
    )
    db.conn.commit()
    db.execute("DETACH DATABASE newer")
    db.close()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{database}{suffix}").unlink(missing_ok=True)
    older.rename(database)


def _first_layout_directory(tmp_path: Path, hits: int) -> Path:
    data = tmp_path / "data"
    init(data)
    _collect(data, hits)
    _to_first_layout(data / "mesure.db")
    # What the new Mesure's first command does: its migrations, the compact layout's tables
    # included, leaving the events where they are.
    open_storage(data / "mesure.db").close()
    return data


def _events(database: Path) -> list[tuple[Any, ...]]:
    return _read(database, f"SELECT {SELECT_COLUMNS} FROM events ORDER BY id")


def _layout(database: Path) -> tuple[str, int, int]:
    (row,) = _read(database, "SELECT layout, coalesce(boundary, 0), copied FROM event_layout")
    return str(row[0]), int(row[1]), int(row[2])


def _copied(database: Path) -> int:
    """Rows copied so far (0 until the upgrade's start-up has added the layout's table)."""
    try:
        return _layout(database)[2]
    except sqlite3.OperationalError:
        return 0


def _schema(database: Path) -> dict[str, str]:
    return {
        str(name): str(kind)
        for name, kind in _read(
            database, "SELECT name, type FROM sqlite_master WHERE name LIKE 'event%'"
        )
    }


def test_an_upgrade_under_ingest_backs_up_then_copies_every_event_once(tmp_path: Path) -> None:
    data = _first_layout_directory(tmp_path, 300)
    database = data / "mesure.db"
    identity = tmp_path / "identity.txt"
    recipient = identity_file(identity)
    port = free_port()
    collector = start_mesure_serve(data, port, ENV)
    try:
        assert _layout(database)[0] == "first"
        assert "`mesure upgrade --out DIR" in (tmp_path / "serve.log").read_text()
        before = _events(database)
        assert len(before) >= 300
        sender = Sender(port, prefix="c")
        sender.start()
        try:
            sender.wait_for(50)
            started_with = len(sender.acknowledged())
            done = mesure(
                "upgrade",
                "--data",
                str(data),
                "--out",
                str(tmp_path / "backup"),
                "--recipient",
                recipient,
                "--rows",
                "100",
            )
            during = len(sender.acknowledged()) - started_with
            sender.wait_for(len(sender.acknowledged()) + 50)  # after the switch too
        finally:
            sender.stop()
        assert sender.refused == 0
        assert during > 0, "no hit was acknowledged while the upgrade ran"
        assert "backup written to" in done.stdout
        assert "s per million events" in done.stdout
        assert "removed the first layout's table" in done.stdout
        assert "removed the rollups of before storage v2" in done.stdout
        # (the queued days are rebuilt by the upgrade or, when idle, by the collector: which
        # one does each depends on timing; none is left, checked below)
    finally:
        stop_process(collector)
    assert _layout(database)[0] == "compact"
    # The per-visit rollups are gone and no day waits for a rebuild.
    assert not {name for (name,) in _read(database, "SELECT name FROM sqlite_master")} & set(
        rollups_sqlite.OLD_TABLES
    )
    assert _read(database, "SELECT count(*) FROM rollup_pending_days") == [(0,)]
    assert _schema(database) == {
        "event_rows": "table",
        "event_rows_by_time": "index",
        "event_rows_custom": "index",
        "event_rows_by_visit": "index",
        "event_rows_by_user": "index",
        "event_rows_revenue": "index",
        "event_rows_props": "index",
        "event_rows_pages": "index",
        "event_layout": "table",
        "events": "view",
    }
    after = _events(database)
    # Every row stored before the upgrade is unchanged, id included.
    by_id = {row[0]: row for row in after}
    assert [by_id.get(row[0]) for row in before] == before
    # Every acknowledged hit is stored exactly once, in either layout's writes.
    paths = [row[0] for row in _read(database, "SELECT path FROM events")]
    acknowledged = sender.acknowledged()
    assert len(paths) == len(set(paths))
    assert set(acknowledged) <= set(paths)
    assert _read(database, "PRAGMA integrity_check") == [("ok",)]
    # The dictionary counts exactly the references the rows make.
    uses = dict(_read(database, "SELECT id, uses FROM strings"))
    assert (
        sum(uses.values())
        == _read(
            database,
            "SELECT " + " + ".join(f"count({name})" for name in ENCODED) + " FROM event_rows",
        )[0][0]
    )
    # The backup taken first holds the first layout's rows and verifies.
    mesure("backup", "verify", str(tmp_path / "backup"), "--identity", str(identity))
    restored = tmp_path / "restored"
    mesure(
        "restore", str(tmp_path / "backup"), "--data", str(restored), "--identity", str(identity)
    )
    # (with the hits stored before it started, in the first layout)
    assert _layout(restored / "mesure.db")[0] == "first"
    assert _events(restored / "mesure.db")[: len(before)] == before


def _kill_upgrade_half_way(data: Path, backup: Path, log: Path) -> None:
    """Start ``mesure upgrade`` (100 rows a transaction) and SIGKILL it once its first rows are
    copied: the upgrade of a large directory killed, or still running."""
    with log.open("wb") as output:
        upgrade = subprocess.Popen(
            mesure_command(
                "upgrade",
                "--data",
                str(data),
                "--out",
                str(backup),
                "--unencrypted",
                "--rows",
                "100",
            ),
            cwd=ROOT,
            env=ENV,
            stdout=output,
            stderr=output,
        )
        try:
            for _attempt in range(4000):  # a bound, not a timing: the backup comes first
                if upgrade.poll() is not None or _copied(data / "mesure.db") > 0:
                    break
                time.sleep(0.005)
            upgrade.send_signal(signal.SIGKILL)
            upgrade.wait(timeout=COMMAND_TIMEOUT)
        finally:
            if upgrade.poll() is None:
                upgrade.kill()


def test_a_killed_upgrade_carries_on_and_a_collector_started_meanwhile_answers(
    tmp_path: Path,
) -> None:
    data = _first_layout_directory(tmp_path, 1200)
    database = data / "mesure.db"
    before = _events(database)
    _kill_upgrade_half_way(data, tmp_path / "backup", tmp_path / "upgrade.log")
    layout, boundary, copied = _layout(database)
    assert layout == "copying" and 0 < copied < boundary, (layout, boundary, copied)
    # The copy resumes from the last committed chunk, while a collector starts beside it.
    port = free_port()
    resumed = subprocess.Popen(
        mesure_command("upgrade", "--data", str(data), "--rows", "100"),
        cwd=ROOT,
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    started = time.monotonic()
    collector = subprocess.Popen(
        mesure_command("serve", "--data", str(data), "--port", str(port), "--workers", "1"),
        cwd=ROOT,
        env=ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        answered = _first_hit_answer(port, started, "/during-upgrade")
        assert answered is not None and answered < ANSWER_WITHIN_S, answered
        output, _ = resumed.communicate(timeout=COMMAND_TIMEOUT)
        assert resumed.returncode == 0, output
        assert f"carrying on: {_copied_events(before, copied):,} of" in output
        assert "s per million events" in output
    finally:
        if resumed.poll() is None:
            resumed.kill()
        stop_process(collector)
    after = _events(database)
    assert after[: len(before)] == before
    assert [row[13] for row in after[len(before) :]] == ["/during-upgrade"]
    assert _layout(database)[0] == "compact"


def _copied_events(rows: list[tuple[Any, ...]], copied_id: int) -> int:
    return sum(1 for row in rows if row[0] <= copied_id)


def _first_hit_answer(port: int, started: float, path: str) -> float | None:
    """Seconds from ``started`` until a hit on ``path`` got its 202 (``None``: never, within
    the bound)."""
    body = {"site": SITE, "url": f"https://{SITE}{path}", "mode": "granted", "cid": "late"}
    with browser_client(f"http://127.0.0.1:{port}") as client:
        for _attempt in range(600):  # a bound, not a timing: normally a few attempts
            try:
                if client.post("/api/hit", json=body, timeout=5).status_code == 202:
                    return time.monotonic() - started
            except httpx.TransportError:
                pass
            threading.Event().wait(0.02)
    return None


def test_an_erasure_during_the_copy_leaves_none_of_the_subject_in_either_layout(
    tmp_path: Path,
) -> None:
    data = _first_layout_directory(tmp_path, 600)
    database = data / "mesure.db"
    stored = [str(row[0]) for row in _read(database, "SELECT path FROM events")]
    # Client 7's paths that no other path begins with (``/b/13`` is in ``/b/130``): the bytes
    # scan below looks for each.
    subject_paths = {
        path
        for path in stored
        if int(path.rsplit("/", 1)[1]) % 41 == 7
        and not any(other != path and other.startswith(path) for other in stored)
    }
    assert len(subject_paths) >= 10
    _kill_upgrade_half_way(data, tmp_path / "backup", tmp_path / "upgrade.log")
    assert _layout(database)[0] == "copying"
    in_copy = {
        row[0]
        for row in _read(
            database,
            "SELECT s.value FROM event_rows r JOIN strings s ON s.id = r.path",
        )
    }
    assert subject_paths & in_copy, "the subject is not in the copied part: the test proves less"
    mesure("dsar", "erase", "--data", str(data), "--site", SITE, "--client-id", "client-7")
    mesure("upgrade", "--data", str(data))
    remaining = {row[0] for row in _read(database, "SELECT path FROM events")}
    assert not subject_paths & remaining
    assert _read(database, "SELECT count(*) FROM strings WHERE uses <= 0") == [(0,)]
    shutil.rmtree(tmp_path / "backup")  # holds the subject, as any backup taken before would
    found = scan([data], {path: path for path in sorted(subject_paths)})
    assert not found, found


def test_a_new_directory_starts_compact_and_an_upgrade_needs_a_backup(tmp_path: Path) -> None:
    data = tmp_path / "new"
    init(data)
    assert _layout(data / "mesure.db")[0] == "compact"
    assert "nothing to do" in mesure("upgrade", "--data", str(data)).stdout
    older = _first_layout_directory(tmp_path, 20)
    refused = mesure("upgrade", "--data", str(older), expect=2)
    assert "backup needs --out DIR" in refused.stderr
    assert _layout(older / "mesure.db") == ("first", 0, 0)


def _answers(data: Path, now: datetime) -> list[Any]:
    """Reports over the stored events, filters and goals included: the first layout's SQL
    compares text, the compact one's compares dictionary ids."""
    config = load_config(data, {})
    query = ReportQuery(period="7d")
    filters = [
        Filter(dimension="page", op="is", value="/b/7"),
        Filter(dimension="page", op="is_not", value="/b/7"),
        Filter(dimension="page", op="contains", value="/b/1"),
        Filter(dimension="source", op="is", value="Direct / None"),
        Filter(dimension="source", op="contains", value="rect"),
        Filter(dimension="browser", op="is_not", value="Firefox"),
        Filter(dimension="mode", op="is", value="granted"),
    ]
    goal = Goal(name="B one", kind="page", match="/b/1*")
    found: list[Any] = []
    with reports_database(config.database_path) as db:
        for item in filters:
            filtered = msgspec.structs.replace(query, filters=(item,))
            found.append(aggregate(db, config, filtered, sites=[SITE], now=now))
            found.append(breakdown(db, config, filtered, sites=[SITE], now=now, by="page"))
        found.append(aggregate(db, config, query, sites=[SITE], now=now, goal=goal))
        found.append(breakdown(db, config, query, sites=[SITE], now=now, by="source", goal=goal))
    return [msgspec.to_builtins(answer) for answer in found]


def test_reports_answer_the_same_in_both_layouts(tmp_path: Path) -> None:
    data = _first_layout_directory(tmp_path, 400)
    now = datetime.now(UTC) + timedelta(minutes=1)
    before = _answers(data, now)
    assert _layout(data / "mesure.db")[0] == "first"
    assert before[0]["metrics"]["pageviews"] == 1  # /b/7 is stored once
    # Before: every day queued for a rebuild, so the answers come from the events.
    assert _read(data / "mesure.db", "SELECT count(*) FROM rollup_pending_days")[0][0] > 0
    done = mesure(
        "upgrade", "--data", str(data), "--out", str(tmp_path / "backup"), "--unencrypted"
    ).stdout
    assert "removed the rollups of before storage v2" in done
    assert "days of rollups in" in done  # no collector ran: the upgrade rebuilt them all
    assert _layout(data / "mesure.db")[0] == "compact"
    assert _read(data / "mesure.db", "SELECT count(*) FROM rollup_pending_days") == [(0,)]
    # After: the same answers, from the compact layout and the daily rollups.
    assert _answers(data, now) == before


def test_a_large_directory_leaves_the_partial_indexes_to_the_upgrade(tmp_path: Path) -> None:
    """Beyond a million events the migrations leave the revenue, property and page events'
    indexes to ``mesure upgrade`` (building one reads every event while hits wait, and the
    collector must answer within seconds of its start): the collector says so, RFM and funnels
    still answer, and the upgrade builds them without a backup (no stored event is
    rewritten)."""
    data = tmp_path / "data"
    init(data)
    _collect(data, 100)  # each client id twice or more: a second page for the funnel
    database = data / "mesure.db"
    # As the previous Mesure left a directory of millions of events: no index, and row ids
    # beyond the limit (the migrations read the highest id, not a count).
    with closing(sqlite3.connect(database)) as conn, conn:
        for index in PARTIAL:
            conn.execute(f"DROP INDEX {index}")
        conn.execute(
            "DELETE FROM _sqlite_migrations WHERE name IN "
            "('index_revenue_events', 'index_property_events', 'index_page_steps')"
        )
        conn.execute("UPDATE event_rows SET id = id + ?", (INDEX_AT_ONCE_ROWS,))
    storage = open_storage(database)
    try:
        assert storage.indexes_left() == list(PARTIAL)
        assert any("builds their indexes" in notice for notice in storage.notices())
    finally:
        storage.close()
    assert "event_rows_revenue" not in _rfm_plan(data)
    funnel_before, plan = _funnel(data)
    assert "event_rows_pages" not in plan
    assert [step.visitors for step in funnel_before.steps][1] > 0, funnel_before
    done = mesure("upgrade", "--data", str(data))
    assert done.stdout.count("built an index of the events in") == len(PARTIAL)
    assert f"built {len(PARTIAL)} indexes of the events in" in done.stdout
    assert "backup" not in done.stdout
    assert set(PARTIAL) <= set(_schema(database))
    assert "event_rows_revenue" in _rfm_plan(data)
    funnel_after, plan = _funnel(data)
    assert "event_rows_pages" in plan, plan
    assert funnel_after == funnel_before
    assert "nothing to do" in mesure("upgrade", "--data", str(data)).stdout


#: The partial indexes of the compact table, in the order ``mesure upgrade`` builds them.
PARTIAL = ("event_rows_revenue", "event_rows_props", "event_rows_pages")


def _funnel(data: Path) -> tuple[Any, str]:
    """A three-step funnel over ``data``'s last 7 days, and the plan of its statement."""
    config = load_config(data, {})
    steps = [
        Goal(name="a page", kind="page", match="/b/*"),
        Goal(name="another", kind="page", match="/b/*"),
        Goal(name="a page of ten", kind="page", match="/b/1?"),
    ]
    query = ReportQuery(period="7d")
    with reports_database(config.database_path) as db:
        found, (plan,) = traced_plans(
            db,
            lambda: funnel(db, config, query, sites=[SITE], now=datetime.now(UTC), steps=steps),
            "GLOB",
        )
    return found, plan


def _rfm_plan(data: Path) -> str:
    """The query plan of the statement RFM runs on ``data`` for the last 7 days."""
    config = load_config(data, {})
    query = ReportQuery(period="7d")
    with reports_database(config.database_path) as db:
        _, (plan,) = traced_plans(
            db,
            lambda: rfm(db, config, query, sites=[SITE], now=datetime.now(UTC)),
            "revenue_amount IS NOT NULL",
        )
    return plan
