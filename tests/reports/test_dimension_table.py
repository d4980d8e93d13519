"""One dimension table (``collector.storage.rows.DIMENSION_TABLE``) drives the report API's list
of dimensions, its documentation and both backends' SQL: a dimension added to one place only
fails here. Breakdowns by every entry run on SQLite in ``test_report_every_dimension`` (rows
worked out by hand) and on both backends in ``tests/clickhouse/test_parity.py`` (which takes its
list from the table)."""

from __future__ import annotations

import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from collector.storage.clickhouse import sql as clickhouse_sql
from collector.storage.rows import (
    DIMENSION_TABLE,
    DIMENSIONS,
    ROLLED_UP_DIMENSIONS,
    Filter,
    check_dimension,
    dimension_map,
)
from collector.storage.sqlite import rollups as rollups_sqlite
from collector.storage.sqlite import sql as sqlite_sql
from tests.reports.test_report_every_dimension import EXPECTED

ROOT = Path(__file__).resolve().parents[2]
NAMES = [dimension.name for dimension in DIMENSION_TABLE]


def test_the_table_names_each_dimension_once() -> None:
    assert len(set(NAMES)) == len(NAMES)
    assert all(re.fullmatch(r"[a-z_]+", name) for name in NAMES)


@pytest.mark.parametrize(
    "backend", [sqlite_sql.DIMENSION_SQL, clickhouse_sql.DIMENSION_SQL], ids=["sqlite", "ch"]
)
def test_each_backend_maps_exactly_the_table(backend: dict[str, str]) -> None:
    assert list(backend) == NAMES
    assert all(backend.values())


def test_a_backend_missing_or_adding_a_dimension_fails_when_imported() -> None:
    complete = dict(sqlite_sql.DIMENSION_SQL)
    assert dimension_map("test", complete) == complete
    with pytest.raises(LookupError, match="missing \\['mode'\\]"):
        dimension_map("test", {k: v for k, v in complete.items() if k != "mode"})
    with pytest.raises(LookupError, match="not in the table \\['nope'\\]"):
        dimension_map("test", {**complete, "nope": "e.nope"})


def test_the_report_api_accepts_exactly_the_table() -> None:
    assert list(DIMENSIONS) == NAMES
    for name in NAMES:
        assert check_dimension(name) == name
        Filter(dimension=name, op="is", value="x")
    for name in ("nope", "Page", "prop:", "entry"):
        with pytest.raises(ValueError, match="unknown dimension"):
            check_dimension(name)


def test_the_reports_api_page_lists_exactly_the_table() -> None:
    text = (ROOT / "docs" / "reports-api.md").read_text(encoding="utf-8")
    paragraph = text.split("Dimensions (for `filter` and `breakdown?by=`):", 1)[1]
    listed = re.findall(r"`([a-z_]+)`", paragraph.split("`prop:NAME`", 1)[0])
    assert listed == NAMES


def test_every_dimension_has_a_hand_checked_sqlite_breakdown() -> None:
    assert list(EXPECTED) == NAMES


def test_the_rollups_keep_the_dimensions_the_table_says() -> None:
    assert rollups_sqlite.ROLLUP_DIMENSIONS[0] == "*"
    assert rollups_sqlite.ROLLUP_DIMENSIONS[1:] == ROLLED_UP_DIMENSIONS
    assert set(ROLLED_UP_DIMENSIONS) <= set(NAMES)
    # The rollups compute each event's value in Python: it must be what the reports' SQL
    # computes, on events that exercise every branch of it.
    conn = sqlite3.connect(":memory:")
    columns = [c.strip() for c in rollups_sqlite.EVENT_COLUMNS.split(",")]
    conn.execute(f"CREATE TABLE events ({', '.join(columns)})")
    samples = [
        (1, "pageview", "granted", "/a", "mail", "Google", "Firefox", "Linux", "FR", None, "tcf"),
        (2, "pageview", "exempt", "/b", "mail", "Google", None, None, None, None, "exempt"),
        (3, "signup", "granted", "/c", None, None, "Chrome", "Windows", "DE", 5, "explicit"),
        (4, "engagement", "denied", "/", None, "Bing", None, "iOS", None, 3000, "gpc dnt"),
    ]
    conn.executemany(f"INSERT INTO events VALUES ({', '.join('?' * len(columns))})", samples)
    for dimension in ROLLED_UP_DIMENSIONS:
        if dimension in rollups_sqlite.VISIT_LEVEL:
            assert sqlite_sql.DIMENSION_SQL[dimension] == "v.entry_path"
            continue
        expression = sqlite_sql.DIMENSION_SQL[dimension]
        in_sql = [row[0] for row in conn.execute(f"SELECT {expression} FROM events e ORDER BY ts")]
        assert in_sql == [rollups_sqlite.event_key(dimension, row) for row in samples], dimension
    conn.close()


@pytest.mark.parametrize(
    "first",
    [
        "collector.reports.query",
        "collector.reports",
        "collector.storage",
        "collector.storage.sqlite.rollups",
        "collector.storage.sqlite.reports",
        "collector.storage.clickhouse.sql",
    ],
)
def test_the_table_and_its_users_import_in_any_order(first: str) -> None:
    """The query model imports the table from storage, whose package opens the SQLite writer,
    whose rollups import the dimension SQL: each of them imported first must work."""
    code = f"import {first}, collector.reports.query, collector.storage.sqlite.reports"
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
