"""``mesure migrate --to …`` (resumable, counted), ``mesure clickhouse schema [--cluster]`` and
the ``storage`` key (DSN forms, password from the environment, never shown)."""

from __future__ import annotations

import copy
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from collector.cli.main import main
from collector.config import config_from_mapping
from collector.errors import ConfigError
from collector.privacy.instance import residency
from collector.privacy.register import build_register, render
from collector.reports import ReportQuery, breakdown
from collector.storage import open_events, prepare, reports_for
from collector.storage.clickhouse.client import client_for
from collector.storage.clickhouse.copy_from_sqlite import copy_to_clickhouse
from collector.storage.target import ClickHouseTarget, parse_storage
from tests.clickhouse.conftest import on_clickhouse
from tests.clickhouse.synthetic import SITES, build, now_for_tests
from tests.reports.dataset import config_for
from tests.support import mesure_command


def _dsn(target: ClickHouseTarget) -> str:
    if target.embedded:
        return f"chdb://{target.path}?database={target.database}"
    return target.display().replace(":***@", f":{target.password}@")


def test_migrate_copies_everything_resumes_and_checks_counts(
    tmp_path: Path, ch_target: ClickHouseTarget
) -> None:
    config = config_for(tmp_path / "data", SITES)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "mesure.toml").write_text(
        '[[sites]]\nid = "example"\nhostnames = ["example.test"]\n\n'
        '[[sites]]\nid = "paris"\nhostnames = ["paris.test"]\ntimezone = "Europe/Paris"\n',
        encoding="utf-8",
    )
    events, drops = build(now_for_tests(), visitors=30)
    prepare(config)
    sqlite = open_events(config)
    sqlite.insert_hits(copy.deepcopy(events), drops)
    # An interrupted earlier run: every visit and the first 100 events were acknowledged.
    target_config = on_clickhouse(config, ch_target)
    copy_to_clickhouse(config, ch_target, batch_size=100)
    client = client_for(ch_target)
    client.command("ALTER TABLE {db}.events DELETE WHERE id > 100", mutations_sync=2)
    client.command("TRUNCATE TABLE {db}.dropped_hits")
    assert client.rows("SELECT count() FROM {db}.events")[0][0] == 100

    result = CliRunner().invoke(
        main,
        [
            "migrate",
            "--to",
            _dsn(ch_target),
            "--data",
            str(tmp_path / "data"),
            "--batch-size",
            "64",
        ],
    )
    assert result.exit_code == 0, result.output
    total = len(events)
    assert f"events: {total} in SQLite, {total} in ClickHouse: ok" in result.output
    assert "visits:" in result.output and "MISMATCH" not in result.output
    assert f"dropped hits: {sum(d.hits for d in drops)} in SQLite" in result.output
    assert "storage = " in result.output

    # A second run copies nothing more.
    again = CliRunner().invoke(
        main, ["migrate", "--to", _dsn(ch_target), "--data", str(tmp_path / "data")]
    )
    assert again.exit_code == 0 and f"{total} in ClickHouse: ok" in again.output

    # The copy is the same data: stored rows and reports agree.
    copied = open_events(target_config)
    assert copied.events() == sqlite.events()
    assert copied.visits() == sqlite.visits()
    found = []
    for each in (config, target_config):
        with reports_for(each) as db:
            found.append(
                breakdown(
                    db,
                    each,
                    ReportQuery(period="30d"),
                    sites=["example", "paris"],
                    now=now_for_tests(),
                    by="entry_page",
                )
            )
    assert found[0] == found[1] and found[0].rows


def test_migrate_refuses_a_non_clickhouse_target(tmp_path: Path) -> None:
    (tmp_path / "mesure.toml").write_text(
        '[[sites]]\nid = "example"\nhostnames = ["example.test"]\n', encoding="utf-8"
    )
    result = CliRunner().invoke(main, ["migrate", "--to", "sqlite", "--data", str(tmp_path)])
    assert result.exit_code == 2 and "clickhouse://" in result.output
    result = CliRunner().invoke(main, ["migrate", "--to", "mysql://x", "--data", str(tmp_path)])
    assert result.exit_code == 2 and "--to:" in result.output


def test_schema_single_node_and_cluster() -> None:
    single = CliRunner().invoke(main, ["clickhouse", "schema"])
    assert single.exit_code == 0
    text = single.output
    assert text.count("CREATE TABLE IF NOT EXISTS mesure.") == 5
    assert "ENGINE = AggregatingMergeTree()" in text
    assert "ENGINE = MergeTree()" in text and "ENGINE = ReplacingMergeTree(version)" in text
    assert "PARTITION BY toYYYYMM(ts)" in text
    assert "TTL toDateTime(ts) + toIntervalDay(retention_days) DELETE" in text
    assert "`ts` DateTime64(3, 'UTC')" in text and "LowCardinality(String)" in text
    assert "Distributed" not in text

    cluster = CliRunner().invoke(
        main, ["clickhouse", "schema", "--cluster", "eu_west", "--database", "stats"]
    )
    assert cluster.exit_code == 0
    text = cluster.output
    assert "CREATE DATABASE IF NOT EXISTS stats ON CLUSTER eu_west" in text
    assert (
        "ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/stats/events', '{replica}')"
        in text
    )
    visits = "'/clickhouse/tables/{shard}/stats/visits', '{replica}', version"
    assert f"ENGINE = ReplicatedReplacingMergeTree({visits})" in text
    assert (
        "ENGINE = Distributed(eu_west, stats, events_local, cityHash64(site, ifNull(visitor, '')))"
        in text
    )
    assert "ENGINE = Distributed(eu_west, stats, visits_local, cityHash64(site, visitor))" in text
    bad = CliRunner().invoke(main, ["clickhouse", "schema", "--cluster", "x; DROP"])
    assert bad.exit_code == 2


def test_the_printed_schema_is_what_a_server_accepts(ch_target: ClickHouseTarget) -> None:
    client = client_for(ch_target)
    text = (
        CliRunner().invoke(main, ["clickhouse", "schema", "--database", ch_target.database]).output
    )
    for statement in text.split(";\n"):
        if statement.strip():
            client.command(statement)
    tables = {row[0] for row in client.rows("SHOW TABLES FROM {db}")}
    assert tables == {"events", "visits", "first_visits", "dropped_hits", "erasures"}


def test_storage_key_forms_and_secrets(tmp_path: Path) -> None:
    environ = {"MESURE_CLICKHOUSE_PASSWORD": "s3cr3t-from-env"}
    remote = parse_storage("clickhouse://mesure@ch1.example.eu:9000/stats", environ)
    assert remote is not None and remote.password == "s3cr3t-from-env"
    assert (remote.host, remote.port, remote.database, remote.username) == (
        "ch1.example.eu",
        9000,
        "stats",
        "mesure",
    )
    inline = parse_storage("clickhouses://u:in%40line@h/db?cluster=eu", environ)
    assert inline is not None and inline.password == "in@line" and inline.port == 8443
    assert inline.cluster == "eu" and inline.secure
    for shown in (repr(remote), str(inline), repr(inline)):
        assert "s3cr3t" not in shown and "in@line" not in shown and "***" in shown
    embedded = parse_storage("chdb:///var/lib/mesure/ch?database=m2", {})
    assert embedded == ClickHouseTarget(embedded=True, path="/var/lib/mesure/ch", database="m2")
    assert parse_storage("sqlite", environ) is None

    document = {"storage": "clickhouse://u:pw@h/db; DROP", "sites": []}
    with pytest.raises(ConfigError) as raised:
        config_from_mapping(document, data_dir=tmp_path, environ={}, source="mesure.toml")
    assert "storage" in str(raised.value) and "pw" not in str(raised.value)
    config = config_from_mapping(
        {"storage": "clickhouse://u@h/db", "sites": []},
        data_dir=tmp_path,
        environ=environ,
        source="mesure.toml",
    )
    assert "s3cr3t" not in repr(config)


def test_serve_refuses_several_workers_with_clickhouse(tmp_path: Path) -> None:
    (tmp_path / "mesure.toml").write_text(
        f'storage = "chdb://{tmp_path / "ch"}"\n\n[[sites]]\nid = "example"\n'
        'hostnames = ["example.test"]\n',
        encoding="utf-8",
    )
    result = CliRunner().invoke(main, ["serve", "--data", str(tmp_path), "--workers", "2"])
    assert result.exit_code == 2
    assert "one worker process" in result.output
    assert not (tmp_path / "ch").exists()


def test_a_chdb_path_held_by_another_process_is_a_clean_error(
    tmp_path: Path, chdb_path: Path
) -> None:
    client_for(ClickHouseTarget(embedded=True, path=str(chdb_path), database="held"))
    (tmp_path / "mesure.toml").write_text(
        '[[sites]]\nid = "example"\nhostnames = ["example.test"]\n', encoding="utf-8"
    )
    prepare(config_for(tmp_path, {"example": "UTC"}))
    done = subprocess.run(
        mesure_command("migrate", "--to", f"chdb://{chdb_path}", "--data", str(tmp_path)),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert "only one process may hold it" in done.stderr
    assert "Traceback" not in done.stderr


def test_the_register_and_manifests_show_where_clickhouse_stores_events(tmp_path: Path) -> None:
    document = {
        "storage": "clickhouse://mesure@ch1.example.eu:8123/stats",
        "storage-location": "Falkenstein, Germany (Hetzner FSN1)",
        "sites": [{"id": "example", "hostnames": ["example.test"]}],
    }
    config = config_from_mapping(document, data_dir=tmp_path, environ={}, source="mesure.toml")
    where = residency(config)
    assert where.outbound_connections == (
        "only to the owner's ClickHouse storage at ch1.example.eu:8123 "
        "(Falkenstein, Germany (Hetzner FSN1)); none elsewhere"
    )
    register = build_register(config)
    assert "the owner's ClickHouse storage (Falkenstein, Germany (Hetzner FSN1))" in (
        register.transfers
    )
    assert "Mesure opens no outbound connection" not in register.transfers
    assert "ch1.example.eu:8123" in render(register, "md")
    # Embedded chDB stays on this host: nothing changes.
    document["storage"] = "chdb:///var/lib/mesure/ch"
    embedded = config_from_mapping(document, data_dir=tmp_path, environ={}, source="mesure.toml")
    assert residency(embedded).outbound_connections.startswith("none")
    assert "Mesure opens no outbound connection" in build_register(embedded).transfers
