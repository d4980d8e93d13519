"""The ``erasures`` table lists erased visits by id. Earlier versions kept each erased visitor's
keyed hash there, where it outlived the erased rows: opening the storage replaces such a table
(single node), hash and all."""

from __future__ import annotations

from pathlib import Path

from collector.storage import prepare
from collector.storage.clickhouse.client import client_for
from collector.storage.target import ClickHouseTarget
from tests.clickhouse.conftest import on_clickhouse
from tests.reports.dataset import config_for

ERASED_HASH = bytes.fromhex("5eed0000000000000000000000c0ffee")


def test_an_erasures_table_of_visitor_hashes_is_replaced(
    tmp_path: Path, ch_target: ClickHouseTarget
) -> None:
    client = client_for(ch_target)
    client.command(
        "CREATE TABLE {db}.erasures (seq UInt64, site LowCardinality(String), visitor String) "
        "ENGINE = MergeTree ORDER BY seq"
    )
    client.insert("erasures", [(1, "example", ERASED_HASH)], ["seq", "site", "visitor"])
    config = on_clickhouse(config_for(tmp_path, {"example": "UTC"}), ch_target)

    def columns() -> list[str]:
        rows = client.rows(
            "SELECT name FROM system.columns WHERE database = {database:String} "
            "AND table = 'erasures' ORDER BY position",
            {"database": ch_target.database},
        )
        return [name for (name,) in rows]

    prepare(config)
    assert columns() == ["seq", "site", "visit"]
    assert client.rows("SELECT count() FROM {db}.erasures")[0][0] == 0
    client.insert("erasures", [(2, "example", 7)], ["seq", "site", "visit"])
    prepare(config)  # the next start keeps the new table and its rows
    assert columns() == ["seq", "site", "visit"]
    assert client.rows("SELECT visit FROM {db}.erasures") == [(7,)]
