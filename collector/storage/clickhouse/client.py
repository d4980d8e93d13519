"""One ClickHouse client per target and process, created on first use.

chDB holds one data path per process, so the embedded client must be shared by the writer, the
reports and the privacy tools of the process; a networked server gets one client too (its HTTP
pool is thread-safe). ``clickhouse-connect`` is an optional extra: importing this module without
it installed raises a :class:`~collector.errors.ConfigError` that says how to install it.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import Any

import msgspec

from collector.errors import ConfigError
from collector.storage.target import ClickHouseTarget

#: Binary columns (keyed hashes): read back as ``bytes``, not as text.
BINARY_COLUMNS = ("visitor", "user")

_clients: dict[str, Client] = {}
_raw: dict[str, tuple[Any, threading.RLock]] = {}
_clients_lock = threading.Lock()


class Client:
    """The few calls Mesure makes, with the database's name bound to ``{db}`` in every SQL text.

    chDB runs queries in the calling thread of one embedded engine: calls are serialized on a
    lock there. A networked server takes concurrent queries (no session is used, so HTTP
    requests never collide on a session id).
    """

    def __init__(self, target: ClickHouseTarget, raw: Any, lock: threading.RLock | None) -> None:
        self.target = target
        self.database = target.database
        self._raw = raw
        self._lock = lock

    def __repr__(self) -> str:
        return f"Client({self.target.display()})"

    def mutable(self, table: str) -> str:
        """Where ``ALTER … DELETE`` and ``OPTIMIZE`` go: the table, or on a cluster each node's
        local table."""
        cluster = self.target.cluster
        return f"{{db}}.{table}_local ON CLUSTER {cluster}" if cluster else f"{{db}}.{table}"

    def sql(self, text: str) -> str:
        # The database name was checked to be a plain identifier when the DSN was parsed.
        return text.replace("{db}", self.database)

    def command(
        self, text: str, parameters: Mapping[str, Any] | None = None, **settings: Any
    ) -> Any:
        with _maybe(self._lock):
            return self._raw.command(
                self.sql(text), parameters=dict(parameters or {}), settings=self._settings(settings)
            )

    def rows(
        self, text: str, parameters: Mapping[str, Any] | None = None, **settings: Any
    ) -> list[tuple[Any, ...]]:
        with _maybe(self._lock):
            result = self._raw.query(
                self.sql(text),
                parameters=dict(parameters or {}),
                settings=self._settings(settings),
                column_formats={name: "bytes" for name in BINARY_COLUMNS},
            )
            return [tuple(row) for row in result.result_rows]

    def dicts(self, text: str, parameters: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        with _maybe(self._lock):
            result = self._raw.query(
                self.sql(text),
                parameters=dict(parameters or {}),
                # Rows are selected as ``toUnixTimestamp64Milli(ts) AS ts``: conditions on
                # ``ts`` must still mean the column.
                settings=self._settings({"prefer_column_name_to_alias": 1, "final": 1}),
                column_formats={name: "bytes" for name in BINARY_COLUMNS},
            )
            names = result.column_names
            return [dict(zip(names, row, strict=True)) for row in result.result_rows]

    def _settings(self, settings: Mapping[str, Any]) -> dict[str, Any] | None:
        if self.target.cluster:
            # Events and visits are sharded alike (site, visitor): joins stay on each shard.
            return {"distributed_product_mode": "local", **settings}
        return dict(settings) or None

    def insert(self, table: str, rows: Sequence[Sequence[Any]], columns: Sequence[str]) -> None:
        if not rows:
            return
        # A server gets asynchronous inserts: it gathers the collector's many small batches
        # into few parts (instead of a part per batch) and, with wait_for_async_insert, still
        # answers only once the rows are written, so a hit is acknowledged only when stored.
        settings = None if self.target.embedded else {"async_insert": 1, "wait_for_async_insert": 1}
        with _maybe(self._lock):
            self._raw.insert(
                f"{self.database}.{table}",
                [list(row) for row in rows],
                column_names=list(columns),
                settings=self._settings(settings or {}),
            )


class _Nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def _maybe(lock: threading.RLock | None) -> Any:
    return lock if lock is not None else _Nothing()


def client_for(target: ClickHouseTarget) -> Client:
    """The process's client for ``target`` (created, with the database, on first use).

    Clients of several databases on one server or chDB path share one connection (and, for
    chDB, one lock).
    """
    key = target.display() + "\x00" + target.password
    with _clients_lock:
        found = _clients.get(key)
        if found is None:
            connection = msgspec.structs.replace(target, database="default")
            shared_key = connection.display() + "\x00" + connection.password
            raw = _raw.get(shared_key)
            if raw is None:
                raw = _raw[shared_key] = (_connect(target), threading.RLock())
            found = Client(target, raw[0], raw[1] if target.embedded else None)
            found.command("CREATE DATABASE IF NOT EXISTS {db}")
            _clients[key] = found
        return found


def _connect(target: ClickHouseTarget) -> Any:
    try:
        import clickhouse_connect
    except ImportError:
        raise ConfigError(
            "ClickHouse storage needs the clickhouse extra: pip install --require-hashes "
            "-r requirements/clickhouse.txt (the locked set of mesure[clickhouse])",
            path="mesure.toml",
            key="storage",
        ) from None
    try:
        if target.embedded:
            return clickhouse_connect.get_client(dsn=f"chdb://{target.path}")
        return clickhouse_connect.get_client(
            host=target.host,
            port=target.port,
            username=target.username,
            password=target.password,
            secure=target.secure,
            autogenerate_session_id=False,
            # Fail fast when the server is down: the collector answers 503, the client retries.
            connect_timeout=3,
            send_receive_timeout=60,
        )
    except Exception as exc:
        # The driver's message may quote the connection settings: only its type is shown.
        why = (
            "cannot open the chDB path; only one process may hold it: stop `mesure serve` "
            "first, or use a ClickHouse server"
            if target.embedded
            else f"cannot connect ({type(exc).__name__})"
        )
        raise ConfigError(f"{target.display()}: {why}", path="mesure.toml", key="storage") from None
