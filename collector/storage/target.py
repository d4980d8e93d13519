"""Where the events live: the ``storage`` key of ``mesure.toml`` parsed into a target.

``sqlite`` (the default) keeps everything in ``DATA/mesure.db``. ``clickhouse://user:pw@host:8123/db``
(``clickhouses://`` for TLS) or ``chdb:///path?database=db`` (ClickHouse embedded in the process)
moves events, visits and drop counters to ClickHouse; users, sessions, tokens and goals stay in
SQLite. The password may come from ``MESURE_CLICKHOUSE_PASSWORD`` instead of the DSN; it is
never shown by ``repr`` or in logs.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import parse_qs, unquote, urlsplit

import msgspec

PASSWORD_ENV = "MESURE_CLICKHOUSE_PASSWORD"
DEFAULT_DATABASE = "mesure"
_DATABASE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


class ClickHouseTarget(msgspec.Struct, frozen=True, kw_only=True):
    """A ClickHouse server (``embedded`` false) or a chDB data path (``embedded`` true)."""

    embedded: bool
    database: str
    host: str = ""
    port: int = 8123
    secure: bool = False
    username: str = "default"
    password: str = ""
    path: str = ""
    #: Cluster of the ``Distributed`` tables (``?cluster=NAME``): deletions then go to each
    #: node's ``*_local`` table ``ON CLUSTER``.
    cluster: str = ""

    def __repr__(self) -> str:
        return f"ClickHouseTarget({self.display()})"

    __str__ = __repr__

    def display(self) -> str:
        """The DSN with its password replaced by ``***``: safe to log and print."""
        if self.embedded:
            return f"chdb://{self.path}?database={self.database}"
        scheme = "clickhouses" if self.secure else "clickhouse"
        secret = ":***" if self.password else ""
        cluster = f"?cluster={self.cluster}" if self.cluster else ""
        return (
            f"{scheme}://{self.username}{secret}@{self.host}:{self.port}/{self.database}{cluster}"
        )


def parse_storage(value: str, environ: Mapping[str, str]) -> ClickHouseTarget | None:
    """``None`` for SQLite; raises ``ValueError`` (message without the secret) when malformed."""
    if value == "sqlite":
        return None
    parts = urlsplit(value)
    query = parse_qs(parts.query)
    if parts.scheme == "chdb":
        if parts.netloc or not parts.path.startswith("/"):
            raise ValueError("chdb storage needs an absolute path: chdb:///var/lib/mesure/ch")
        database = query.get("database", [DEFAULT_DATABASE])[0]
        return ClickHouseTarget(embedded=True, path=parts.path, database=_database(database))
    if parts.scheme not in ("clickhouse", "clickhouses"):
        raise ValueError(
            'expected "sqlite", "clickhouse://user@host:8123/database" or "chdb:///path"'
        )
    if not parts.hostname:
        raise ValueError("clickhouse storage needs a host")
    try:
        port = parts.port
    except ValueError:
        raise ValueError("clickhouse storage: the port is not a number") from None
    secure = parts.scheme == "clickhouses"
    password = unquote(parts.password) if parts.password else environ.get(PASSWORD_ENV, "")
    return ClickHouseTarget(
        embedded=False,
        host=parts.hostname,
        port=port or (8443 if secure else 8123),
        secure=secure,
        username=unquote(parts.username) if parts.username else "default",
        password=password,
        database=_database(parts.path.strip("/") or DEFAULT_DATABASE),
        cluster=_database(query["cluster"][0]) if "cluster" in query else "",
    )


def _database(name: str) -> str:
    # Spliced into DDL and table names, so held to plain identifiers.
    if not _DATABASE_NAME.match(name):
        raise ValueError(f"not a plain database name: {name!r}")
    return name
