"""examples/deploy/clickhouse: the XML files parse, hold exactly what their README's tables say,
keep the MergeTree limits within the background pool (a server refuses its tables otherwise), and
embedded ClickHouse (chDB) starts with them and reports the values. chDB runs no system log
tables and does not apply ``max_concurrent_queries``: those are checked as text only."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parents[2] / "examples" / "deploy" / "clickhouse"
SERVER = HERE / "config.d" / "low-memory.xml"
USERS = HERE / "users.d" / "low-memory.xml"
LOGS = HERE / "config.d" / "system-logs.xml"
FREE_ENTRIES = (
    "number_of_free_entries_in_pool_to_execute_mutation",
    "number_of_free_entries_in_pool_to_execute_optimize_entire_partition",
    "number_of_free_entries_in_pool_to_lower_max_size_of_merge",
)
#: Reported by chDB as 0 whatever the file says: the embedded server does not apply it.
NOT_APPLIED_BY_CHDB = {"max_concurrent_queries"}


def readme_table(section: str) -> dict[str, list[str]]:
    """The rows of the table under the README heading naming ``section``: first cell (without
    backticks) to the other cells."""
    text = HERE.joinpath("README.md").read_text(encoding="utf-8")
    body = text.split(f"## `{section}`", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in body.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if line.startswith("| `") and len(cells) > 1:
            rows[cells[0].strip("`")] = cells[1:]
    return rows


def settings(path: Path) -> dict[str, str]:
    """Leaf settings of a server or profile file (the profile's and ``merge_tree``'s flattened)."""
    root = ET.parse(path).getroot()
    assert root.tag == "clickhouse"
    found: dict[str, str] = {}
    for parent in (root, root.find("merge_tree"), root.find("profiles/default")):
        for child in [] if parent is None else list(parent):
            if len(child) == 0:
                found[child.tag] = (child.text or "").strip()
    return found


def test_the_files_hold_what_the_readme_says() -> None:
    for section, path in (("config.d/low-memory.xml", SERVER), ("users.d/low-memory.xml", USERS)):
        table = readme_table(section)
        assert {name: cells[0] for name, cells in table.items()} == settings(path), section
    server = settings(SERVER)
    pool = int(server["background_pool_size"]) * float(
        server["background_merges_mutations_concurrency_ratio"]
    )
    assert all(int(server[name]) <= pool for name in FREE_ENTRIES)
    assert float(server["max_server_memory_usage_to_ram_ratio"]) < 0.9  # below the default


def test_every_system_log_table_is_bounded_as_the_readme_says() -> None:
    table = readme_table("config.d/system-logs.xml")
    root = ET.parse(LOGS).getroot()
    assert root.tag == "clickhouse"
    assert {child.tag for child in root} == set(table)
    for child in root:
        kept = table[child.tag][0]
        if kept == "removed":
            assert child.get("remove") == "1" and len(child) == 0, child.tag
            continue
        days = int(re.match(r"(\d+) days", kept).group(1))  # type: ignore[union-attr]
        assert child.findtext("ttl") == f"event_date + INTERVAL {days} DAY DELETE", child.tag
        assert child.findtext("partition_by") == "event_date"
        assert child.find("engine") is None  # ClickHouse refuses engine beside ttl
    for name in ("query_log", "part_log", "trace_log", "metric_log", "asynchronous_metric_log"):
        assert name in table


CHECK = """
import json, sys
import chdb
conn = chdb.connect(f"file:{sys.argv[1]}?config-file={sys.argv[2]}")
found = {}
for table in ("server_settings", "settings", "merge_tree_settings"):
    rows = conn.query(f"SELECT name, toString(value) FROM system.{table}", "JSONCompact")
    found[table] = dict(json.loads(rows.bytes())["data"])
conn.query("CREATE DATABASE IF NOT EXISTS t")
conn.query("CREATE TABLE t.x (a UInt8) ENGINE = MergeTree ORDER BY a")
conn.query("INSERT INTO t.x VALUES (1), (2)")
conn.query("ALTER TABLE t.x DELETE WHERE a = 1 SETTINGS mutations_sync = 2")
found["left"] = conn.query("SELECT count() FROM t.x", "CSV").bytes().decode().strip()
print(json.dumps(found))
"""


def test_chdb_starts_with_the_profile(tmp_path: Path) -> None:
    """The files in a server's layout (config.xml beside config.d/, users.xml beside users.d/),
    loaded by chDB in its own process (one chDB path per process); a MergeTree table is made and
    a mutation (what erasures run) completes under the lowered pool."""
    pytest.importorskip("chdb")
    etc = tmp_path / "etc"
    (etc / "config.d").mkdir(parents=True)
    (etc / "users.d").mkdir()
    for path in (SERVER, LOGS):
        (etc / "config.d" / path.name).write_bytes(path.read_bytes())
    (etc / "users.d" / USERS.name).write_bytes(USERS.read_bytes())
    (etc / "config.xml").write_text(
        f"<clickhouse><users_config>{etc / 'users.xml'}</users_config></clickhouse>\n"
    )
    (etc / "users.xml").write_text(
        "<clickhouse><profiles><default/></profiles><users><default><password/>"
        "<profile>default</profile><networks><ip>::1</ip></networks></default></users>"
        "</clickhouse>\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", CHECK, str(tmp_path / "data"), str(etc / "config.xml")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    server, users = settings(SERVER), settings(USERS)
    for name, value in server.items():
        table = "merge_tree_settings" if name in FREE_ENTRIES else "server_settings"
        if name not in NOT_APPLIED_BY_CHDB:
            assert float(found[table][name]) == float(value), name
    for name, value in users.items():
        assert float(found["settings"][name]) == float(value), name
    assert found["left"] == "1"
