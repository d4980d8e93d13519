"""Storage: the only package that speaks SQL.

Its API speaks the domain (insert events, count opt-outs, list rows) so that another backend
can implement the same functions. The functions below pick the backend from the configuration:
SQLite in the data directory (the default), or ClickHouse (``storage = "clickhouse://…"`` or
``"chdb:///path"``) for events, visits and drop counters, with users, sessions, tokens and goals
still in the data directory's SQLite file.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import TYPE_CHECKING, Any, Protocol


def _import_sqlite_utils_without_pandas() -> None:
    """Import sqlite-utils without its optional pandas/numpy support, which Mesure never uses.

    sqlite-utils imports pandas and numpy whenever they happen to be installed: on a machine
    that has them that costs the collector 85 MB of resident memory and 0.4 s of start-up
    (measured by the ingest benchmark). Both stay importable for any other code afterwards.
    """
    if "sqlite_utils" in sys.modules:
        return
    blocked = [name for name in ("pandas", "numpy") if name not in sys.modules]
    for name in blocked:
        sys.modules[name] = None  # type: ignore[assignment]  # makes `import name` fail
    try:
        import sqlite_utils  # noqa: F401
    finally:
        for name in blocked:
            del sys.modules[name]


_import_sqlite_utils_without_pandas()

from collector.storage.rows import DropCount, Event  # noqa: E402
from collector.storage.sqlite.events import Storage, open_storage  # noqa: E402

if TYPE_CHECKING:
    from collector.config import Config
    from collector.storage.clickhouse.ingest import Retention
    from collector.storage.sqlite.privacy import PrivacyDatabase
    from collector.storage.sqlite.reports import ReportsDatabase

__all__ = [
    "EventStore",
    "Storage",
    "open_events",
    "open_storage",
    "prepare",
    "privacy_for",
    "reports_for",
]


class EventStore(Protocol):
    """What the writer and the tests use of an ingest backend."""

    def insert_hits(self, events: Sequence[Event], drops: Sequence[DropCount] = ()) -> None: ...
    def write_turn(self) -> AbstractContextManager[None]: ...
    def refresh_rollups(self) -> bool: ...
    def events(self, site: str | None = None) -> list[dict[str, Any]]: ...
    def visits(self, site: str | None = None) -> list[dict[str, Any]]: ...
    def dropped_hits(self, site: str) -> dict[tuple[str, str], int]: ...
    def close(self) -> None: ...


def prepare(config: Config) -> None:
    """Create or migrate every database of ``config`` (SQLite always: accounts live there)."""
    if config.clickhouse is None:
        open_storage(config.database_path).close()
    else:
        open_events(config).close()


def open_events(config: Config, *, lock_timeout_ms: int = 10_000) -> EventStore:
    """The ingest backend of ``config``, migrated (and, for ClickHouse, its open visits loaded)."""
    if config.clickhouse is None:
        return open_storage(config.database_path, lock_timeout_ms=lock_timeout_ms)
    from collector.storage.clickhouse.client import client_for
    from collector.storage.clickhouse.ingest import ClickHouseStorage

    # Accounts and goals stay in the data directory's SQLite file: create or migrate it too.
    open_storage(config.database_path, lock_timeout_ms=lock_timeout_ms).close()
    storage = ClickHouseStorage(client_for(config.clickhouse), retention_of(config))
    storage.migrate()
    storage.load_state()
    return storage


def retention_of(config: Config) -> Retention:
    """Each site's retention in days by consent mode (the ClickHouse rows' TTL)."""
    from collector.storage.clickhouse.ingest import Retention
    from consent.site_policy import MAX_EXEMPT_RETENTION_DAYS

    days: dict[str, dict[str, int]] = {}
    for site in config.sites:
        exempt = min(site.consent.retention_exempt_days, MAX_EXEMPT_RETENTION_DAYS)
        days[site.id] = {
            "denied": exempt,
            "exempt": exempt,
            "granted": site.consent.retention_granted_days,
        }
    return Retention(days)


@contextmanager
def reports_for(config: Config) -> Iterator[ReportsDatabase]:
    """The reports' database for one call."""
    from collector.storage.sqlite.reports import reports_database

    if config.clickhouse is None:
        with reports_database(config.database_path) as db:
            yield db
        return
    from collector.storage.clickhouse.client import client_for
    from collector.storage.clickhouse.reports import ClickHouseReports

    # Goals stay in SQLite; the events are read from ClickHouse.
    with reports_database(config.database_path) as goals:
        yield ClickHouseReports(client_for(config.clickhouse), goals)  # type: ignore[misc]


@contextmanager
def privacy_for(config: Config) -> Iterator[PrivacyDatabase]:
    """The privacy tools' database for one command or request."""
    from collector.storage.sqlite.privacy import privacy_database

    if config.clickhouse is None:
        with privacy_database(config.database_path) as db:
            yield db
        return
    from collector.storage.clickhouse.client import client_for
    from collector.storage.clickhouse.privacy import ClickHousePrivacy

    yield ClickHousePrivacy(client_for(config.clickhouse))  # type: ignore[misc]
