"""ClickHouse targets for the backend tests: embedded chDB always, a server when configured.

chDB holds one data path per process, so the whole session shares one path and each test gets
its own database in it (dropped afterwards). ``MESURE_TEST_CLICKHOUSE_URL``
(``clickhouse://user:pw@127.0.0.1:8123/any``) adds the networked server as a second
parametrization of every backend test; without it those cases do not exist, and the session
header says so (see ``tests/conftest.py``).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest

from collector.config import Config
from collector.storage.clickhouse.client import client_for
from collector.storage.target import ClickHouseTarget, parse_storage

SERVER_ENV = "MESURE_TEST_CLICKHOUSE_URL"
KINDS = ["chdb", *(["server"] if os.environ.get(SERVER_ENV) else [])]


@pytest.fixture(scope="session")
def chdb_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("chdb")


def new_target(kind: str, chdb_path: Path) -> ClickHouseTarget:
    database = "mesure_test_" + uuid.uuid4().hex[:12]
    if kind == "chdb":
        return ClickHouseTarget(embedded=True, path=str(chdb_path), database=database)
    found = parse_storage(os.environ[SERVER_ENV], os.environ)
    assert found is not None
    return msgspec.structs.replace(found, database=database)


@pytest.fixture(params=KINDS)
def ch_target(request: pytest.FixtureRequest, chdb_path: Path) -> Iterator[ClickHouseTarget]:
    """A fresh, empty database on each kind of ClickHouse."""
    target = new_target(request.param, chdb_path)
    yield target
    drop(target)


def drop(target: ClickHouseTarget) -> None:
    client_for(target).command("DROP DATABASE IF EXISTS {db} SYNC")


def on_clickhouse(config: Config, target: ClickHouseTarget) -> Config:
    return msgspec.structs.replace(config, clickhouse=target)
