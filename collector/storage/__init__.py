"""Storage: the only package that speaks SQL.

Its API speaks the domain (insert events, count opt-outs, list rows) through the ports of
:mod:`collector.storage.ports`, so that another backend can implement the same stores. The
functions below open the configured backend and return each store as its port: SQLite in the
data directory (the default), or ClickHouse (``storage = "clickhouse://…"`` or
``"chdb:///path"``) for events, visits and drop counters, with users, sessions, tokens, goals and
funnels still in the data directory's SQLite file.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol

from collector.storage.clickhouse.client import client_for
from collector.storage.clickhouse.ingest import ClickHouseStorage, Retention
from collector.storage.clickhouse.privacy import ClickHousePrivacy
from collector.storage.clickhouse.reports import ClickHouseReports
from collector.storage.ports import AccountStore, EventStore, PrivacyStore, ReportStore, SavedStore
from collector.storage.sqlite.accounts import auth_database
from collector.storage.sqlite.events import open_storage
from collector.storage.sqlite.privacy import privacy_database
from collector.storage.sqlite.reports import reports_database
from collector.storage.sqlite.saved import saved_database
from collector.storage.target import ClickHouseTarget
from consent.site_policy import MAX_EXEMPT_RETENTION_DAYS, SitePolicy

__all__ = [
    "accounts_for",
    "open_events",
    "prepare",
    "privacy_for",
    "reports_for",
    "retention_of",
    "saved_for",
]


class StorageSite(Protocol):
    """What storage reads of a site: its retention (ClickHouse) and its time zone (the SQLite
    rollups' local days)."""

    @property
    def id(self) -> str: ...
    @property
    def consent(self) -> SitePolicy: ...
    @property
    def timezone(self) -> str: ...


class StorageConfig(Protocol):
    """What opening a store reads of the configuration (:class:`collector.config.Config`).

    Declared here rather than imported: the configuration imports :mod:`collector.storage.target`
    to read its ``storage`` key, so storage does not import the configuration back.
    """

    @property
    def database_path(self) -> Path: ...
    @property
    def clickhouse(self) -> ClickHouseTarget | None: ...
    @property
    def sites(self) -> Sequence[StorageSite]: ...


def prepare(config: StorageConfig) -> list[str]:
    """Create or migrate every database of ``config`` (SQLite always: accounts live there).
    Returns what the owner should know of the stored data (an upgrade to run)."""
    if config.clickhouse is None:
        storage = open_storage(config.database_path, timezones=timezones_of(config))
        try:
            return storage.notices()
        finally:
            storage.close()
    open_events(config).close()
    return []


def open_events(config: StorageConfig, *, lock_timeout_ms: int = 10_000) -> EventStore:
    """The ingest backend of ``config``, migrated (and, for ClickHouse, its open visits loaded)."""
    if config.clickhouse is None:
        return open_storage(
            config.database_path, lock_timeout_ms=lock_timeout_ms, timezones=timezones_of(config)
        )
    # Accounts and goals stay in the data directory's SQLite file: create or migrate it too.
    open_storage(config.database_path, lock_timeout_ms=lock_timeout_ms).close()
    storage = ClickHouseStorage(client_for(config.clickhouse), retention_of(config))
    storage.migrate()
    storage.load_state()
    return storage


def timezones_of(config: StorageConfig) -> dict[str, str]:
    """Each site's time zone: the local days of its SQLite rollups."""
    return {site.id: site.timezone for site in config.sites}


def retention_of(config: StorageConfig) -> Retention:
    """Each site's retention in days by consent mode (the ClickHouse rows' TTL)."""
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
def reports_for(config: StorageConfig) -> Iterator[ReportStore]:
    """The reports' store for one call, its queries in one read snapshot."""
    if config.clickhouse is None:
        with reports_database(config.database_path) as db:
            yield db
        return
    # Goals and funnels stay in SQLite; the events are read from ClickHouse.
    with saved_for(config) as saved:
        yield ClickHouseReports(client_for(config.clickhouse), saved)


@contextmanager
def saved_for(config: StorageConfig) -> Iterator[SavedStore]:
    """The saved goals and funnels for one call (in the data directory's SQLite file)."""
    with saved_database(config.database_path) as db:
        yield db


@contextmanager
def privacy_for(config: StorageConfig) -> Iterator[PrivacyStore]:
    """The privacy tools' store for one command or request."""
    if config.clickhouse is None:
        with privacy_database(config.database_path) as db:
            yield db
        return
    yield ClickHousePrivacy(client_for(config.clickhouse))


@contextmanager
def accounts_for(config: StorageConfig, *, migrate: bool = False) -> Iterator[AccountStore]:
    """The accounts for one call (in the data directory's SQLite file, on both backends).

    ``migrate``: create or migrate that file first, for a command that may be the first to run.
    """
    if migrate:
        open_storage(config.database_path).close()
    with auth_database(config.database_path) as db:
        yield db
