"""With ClickHouse storage, ``mesure backup`` prints the ``BACKUP … TO`` statement for the
ClickHouse administrator and backs up the rest (the SQLite file's accounts, keys, ``mesure.toml``,
audit log) without opening ClickHouse at all."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from collector.backup.create import clickhouse_statements
from collector.storage.target import parse_storage
from tests.backup.support import identity_file, init, mesure, tree
from tests.clickhouse.conftest import new_target


def test_clickhouse_storage_gets_the_statement_and_the_rest_is_backed_up(tmp_path: Path) -> None:
    data = tmp_path / "data"
    init(data)
    target = new_target("chdb", tmp_path / "chdb")  # as the ClickHouse backend tests make it
    config = data / "mesure.toml"
    dsn = f"chdb://{target.path}?database={target.database}"
    config.write_text(f'storage = "{dsn}"\n' + config.read_text())
    identity = tmp_path / "identity.txt"
    recipient = identity_file(identity)
    out = tmp_path / "backup"

    done = mesure("backup", "--data", str(data), "--out", str(out), "--recipient", recipient)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["storage"] == "clickhouse"
    statement = manifest["clickhouse"]["backup_statement"]
    assert statement.startswith(
        f"BACKUP DATABASE {target.database} TO Disk('backups', 'mesure-{target.database}-"
    )
    assert f"{statement};" in done.stdout
    assert f"{manifest['clickhouse']['restore_statement']};" in done.stdout
    assert f"the events and visits are in {dsn}, NOT in this backup" in done.stdout
    assert not (tmp_path / "chdb").exists()  # the collector's chDB was never opened
    assert {entry["path"] for entry in manifest["files"]} >= {
        "mesure.toml",
        "mesure.db",
        "audit.log",
        "keys/export.ed25519",
        "keys/example.com.client.json",
    }

    restored = tmp_path / "restored"
    again = mesure("restore", str(out), "--data", str(restored), "--identity", str(identity))
    assert manifest["clickhouse"]["restore_statement"] in again.stdout
    restored_files, live = tree(restored), tree(data)
    assert restored_files["mesure.toml"] == live["mesure.toml"]
    assert restored_files["keys/example.com.user.json"] == live["keys/example.com.user.json"]


def test_a_cluster_gets_the_statement_on_the_cluster() -> None:
    target = parse_storage("clickhouse://mesure:secret@ch1.internal:8123/analytics?cluster=eu", {})
    assert target is not None
    found = clickhouse_statements(target, datetime(2026, 3, 10, 2, 30, tzinfo=UTC))
    name = "mesure-analytics-20260310T023000Z.zip"
    assert found.backup_statement == (
        f"BACKUP DATABASE analytics ON CLUSTER eu TO Disk('backups', '{name}')"
    )
    assert found.restore_statement == (
        f"RESTORE DATABASE analytics ON CLUSTER eu FROM Disk('backups', '{name}')"
    )
    assert "secret" not in found.target
