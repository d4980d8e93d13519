"""Known datasets for the report tests, stored through the real storage module."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from collector.config import Config
from collector.storage.rows import DropCount, Event
from collector.storage.sqlite.events import open_storage
from collector.storage.sqlite.reports import ReportsDatabase, reports_database
from tests.support import build_config


def ms(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> int:
    """Epoch milliseconds of a UTC wall-clock time."""
    return int(datetime(year, month, day, hour, minute, second, tzinfo=UTC).timestamp() * 1000)


def visitor(name: str) -> bytes:
    """A stand-in 16-byte identifier hash (the reports never look inside it)."""
    return name.encode().ljust(16, b".")[:16]


def event(
    ts: int,
    who: str | None,
    name: str = "pageview",
    path: str = "/",
    *,
    site: str = "example",
    mode: str | None = None,
    kind: str = "client",
    **fields: Any,
) -> Event:
    """One stored event; ``who=None`` is a denied hit (no identifier)."""
    chosen = mode or ("denied" if who is None else "granted")
    return Event(
        site=site,
        ts=ts,
        name=name,
        mode=chosen,
        reasons=fields.pop("reasons", "explicit"),
        hostname="example.com",
        path=path,
        visitor=None if who is None else visitor(who),
        visitor_kind=None if who is None else kind,  # type: ignore[arg-type]
        **fields,
    )


def config_for(data_dir: Path, sites: dict[str, str] | None = None) -> Config:
    """Sites by time zone: ``{"example": "UTC", "paris": "Europe/Paris"}``."""
    zones = sites or {"example": "UTC"}
    return build_config(
        data_dir,
        {site: [f"{site}.test"] for site in zones},
        site_options={site: {"timezone": zone} for site, zone in zones.items()},
    )


def store(config: Config, events: list[Event], drops: list[DropCount] | None = None) -> None:
    """Insert ``events`` in time order (visits are assigned as at ingest) and ``drops``."""
    config.data_dir.mkdir(parents=True, exist_ok=True)
    storage = open_storage(
        config.database_path, timezones={site.id: site.timezone for site in config.sites}
    )
    try:
        storage.insert_hits(sorted(events, key=lambda e: e.ts), drops or [])
    finally:
        storage.close()


@contextmanager
def opened(config: Config) -> Iterator[ReportsDatabase]:
    with reports_database(config.database_path) as db:
        yield db
