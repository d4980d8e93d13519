"""What the rest of Mesure may ask of storage: one Protocol per store, spoken in domain rows.

Both backends implement every port they serve (SQLite all five; ClickHouse the events, reports
and privacy ones, with accounts and saved goals and funnels staying in the data directory's
SQLite file); :mod:`collector.storage` returns each store as its port, so mypy proves that every
backend class has every method with its exact signature. The rows the ports speak live in
:mod:`collector.storage.rows`, never in a backend module (nor in :mod:`collector.reports`, which
is typed against these ports).

Who may import a backend and why: nothing outside :mod:`collector.storage` imports
``collector.storage.sqlite`` or ``collector.storage.clickhouse``, except code that is about one
backend by nature:

- :mod:`collector.cli.clickhouse` (``mesure migrate --to DSN`` and ``mesure clickhouse
  schema``): the one command copies a SQLite data directory into ClickHouse
  (:mod:`collector.storage.clickhouse.copy_from_sqlite`), the other prints ClickHouse's DDL
  (:mod:`collector.storage.clickhouse.schema`); both are about ClickHouse by nature.
- :mod:`collector.backup.create` and :mod:`collector.backup.restore`: a backup is SQLite's online
  backup of the database file, and both read or check the names of the SQLite schema's
  migrations (:mod:`collector.storage.sqlite.schema`) that the archive records.
- :mod:`collector.cli.upgrade` (``mesure upgrade``): rewrites the SQLite file's events into
  their compact layout (:mod:`collector.storage.sqlite.layout`), SQLite by nature.

Tests may import either backend: they test the backends themselves.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

from collector.storage.rows import (
    AccountRow,
    Bucket,
    Deleted,
    DropCount,
    ErasureScope,
    Event,
    Filter,
    Goal,
    MetricRow,
    PurgeCount,
    SavedFunnel,
    SiteRange,
    StepEvent,
    SubjectColumn,
    SubjectHash,
)

__all__ = [
    "AccountStore",
    "EventStore",
    "PrivacyStore",
    "ReportStore",
    "SavedStore",
]


class EventStore(Protocol):
    """The ingest backend: what the writer and the tests use of it."""

    def insert_hits(self, events: Sequence[Event], drops: Sequence[DropCount] = ()) -> None:
        """Store ``events`` (each joined to its visit) and add ``drops`` to the drop counters."""

    def write_turn(self) -> AbstractContextManager[None]:
        """Hold the write lock for one batch: no other writer interleaves its visits."""

    def refresh_rollups(self) -> bool:
        """Bring a share of the pending rollups up to date; ``True`` while some remain."""

    def events(self, site: str | None = None) -> list[dict[str, Any]]:
        """Every stored event (of ``site``) as column → value, by time then id."""

    def visits(self, site: str | None = None) -> list[dict[str, Any]]:
        """Every stored visit (of ``site``) as column → value, by id."""

    def dropped_hits(self, site: str) -> dict[tuple[str, str], int]:
        """``site``'s hits not stored, by ``(day, reason)``."""

    def close(self) -> None:
        """Release the connection (and, for ClickHouse, the open-visit state)."""


class SavedStore(Protocol):
    """Goals and funnels saved through the API, per site and by name (SQLite on both backends)."""

    def stored_goals(self, sites: Sequence[str]) -> list[tuple[str, str, str, str]]:
        """``(site, name, kind, match)`` of the goals saved for ``sites``, by site then name."""

    def save_goal(self, site: str, goal: Goal, created_ms: int) -> None:
        """Insert or replace the goal ``goal.name`` of ``site``."""

    def delete_goal(self, site: str, name: str) -> bool:
        """Delete the goal ``name`` of ``site``; ``False`` when there was none."""

    def stored_funnels(self, sites: Sequence[str]) -> list[SavedFunnel]:
        """The funnels saved for ``sites``, by site then name."""

    def save_funnel(self, funnel: SavedFunnel, created_ms: int) -> None:
        """Insert or replace the funnel ``funnel.name`` of ``funnel.site``."""

    def delete_funnel(self, site: str, name: str) -> bool:
        """Delete the funnel ``name`` of ``site``; ``False`` when there was none."""


class ReportStore(SavedStore, Protocol):
    """The reports' queries for one call, all in one read snapshot.

    It is also the saved store of its data directory: a report resolves a goal by name while it
    runs, and one store per call keeps every report function's signature ``(db, config, …)``
    (the ClickHouse reports read the goals from SQLite through it).
    """

    def metrics(
        self,
        ranges: Sequence[SiteRange],
        filters: Sequence[Filter],
        *,
        dimension: str | None = None,
        buckets: Sequence[Bucket] | None = None,
        goal: Goal | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[MetricRow]:
        """Visitor, pageview, event and visit metrics by ``dimension``, bucket or in total."""

    def step_events(
        self,
        ranges: Sequence[SiteRange],
        filters: Sequence[Filter],
        goals: Sequence[Goal],
        *,
        prop: str | None = None,
    ) -> list[StepEvent]:
        """Identified events matching any of ``goals`` (or carrying ``prop``), in time order."""

    def client_visit_starts(
        self, ranges: Sequence[SiteRange], end_ms: int, filters: Sequence[Filter]
    ) -> list[tuple[str, bytes, int]]:
        """``(site, visitor, start_ts)`` of the visits before ``end_ms`` of the period's new
        client visitors."""

    def visitor_kinds(
        self, ranges: Sequence[SiteRange], filters: Sequence[Filter]
    ) -> dict[str, int]:
        """Distinct identified visitors of the period by ``visitor_kind``."""

    def visitor_kind_seen(
        self, ranges: Sequence[SiteRange], filters: Sequence[Filter], kind: str
    ) -> bool:
        """Whether an identified event of the period matching ``filters`` has a visitor of
        ``kind`` (the aggregate's note on cookieless visitors: no count needed)."""

    def consent_by_day(
        self, buckets: Sequence[Bucket], filters: Sequence[Filter]
    ) -> list[tuple[int, str, int, int, int]]:
        """``(bucket, mode, hits, visitors, visits)`` per day bucket and effective mode."""

    def reason_counts(
        self, ranges: Sequence[SiteRange], filters: Sequence[Filter]
    ) -> list[tuple[str, str, int]]:
        """``(mode, reasons, hits)``: the consent resolution's reason codes as stored."""

    def dropped_by_day(
        self, sites: Sequence[str], first_day: str, last_day: str
    ) -> list[tuple[str, str, int]]:
        """``(day, reason, hits)`` of hits not stored, summed over ``sites``."""

    def conversions_by_mode(
        self, ranges: Sequence[SiteRange], filters: Sequence[Filter], goal: Goal
    ) -> list[tuple[str, str | None, int]]:
        """``(mode, source of the visit's first event, conversions)`` for ``goal``'s events."""

    def revenue_events(
        self, sites: Sequence[str], end_ms: int
    ) -> list[tuple[str, bytes, int, str, str]]:
        """``(site, user, ts, amount, currency)`` of granted revenue events before ``end_ms``."""

    def recent_pages(self, sites: Sequence[str], since_ms: int, until_ms: int) -> dict[str, Any]:
        """Visitors, pageviews and the top pages between ``since_ms`` and ``until_ms``."""

    def recent_pages_where(
        self, sites: Sequence[str], since_ms: int, until_ms: int, filters: Sequence[Filter]
    ) -> dict[str, Any]:
        """:meth:`recent_pages` over the events matching ``filters``."""

    def revenue_events_where(
        self, sites: Sequence[str], end_ms: int, filters: Sequence[Filter]
    ) -> list[tuple[str, bytes, int, str, str]]:
        """:meth:`revenue_events` restricted to the events matching ``filters``."""

    def engaged_time(self, ranges: Sequence[SiteRange], filters: Sequence[Filter]) -> int:
        """Total ``engaged_ms`` of the period's events matching ``filters``."""


class PrivacyStore(Protocol):
    """The privacy-officer tools' rows: export, access, erasure, retention, reclaiming space."""

    def event_columns(self) -> list[tuple[str, str]]:
        """``(name, SQLite declared type)`` of every event column, in table order."""

    def visit_columns(self) -> list[tuple[str, str]]:
        """``(name, SQLite declared type)`` of every visit column an access request exports."""

    def export_rows(self, site: str, start_ms: int, end_ms: int) -> Iterator[dict[str, Any]]:
        """Events of ``site`` with ``start_ms <= ts < end_ms`` as stored, by time then id."""

    def epochs_in_rows(self, site: str, start_ms: int, end_ms: int) -> dict[str, list[int]]:
        """Key epochs in ``site``'s rows of the period: ``client``, ``cookieless``, ``user``."""

    def subject_rows(
        self, site: str, column: SubjectColumn, hashes: Sequence[SubjectHash]
    ) -> list[dict[str, Any]]:
        """Every event of ``site`` stored under one of ``hashes``, by time then id."""

    def visits_by_id(self, ids: Sequence[int]) -> list[dict[str, Any]]:
        """The visits ``ids`` as stored, by id."""

    def erasure_scope(
        self, site: str, column: SubjectColumn, hashes: Sequence[SubjectHash]
    ) -> ErasureScope:
        """The events and visits :meth:`erase_subject` would delete."""

    def erase_subject(
        self, site: str, column: SubjectColumn, hashes: Sequence[SubjectHash]
    ) -> Deleted:
        """Delete the subject's events, the other events of their visits and those visits."""

    def count_before(self, site: str, modes: Sequence[str], before_ms: int) -> list[PurgeCount]:
        """Per mode, ``site``'s events older than ``before_ms`` (what a purge would delete)."""

    def purge_before(self, site: str, modes: Sequence[str], before_ms: int) -> list[PurgeCount]:
        """Delete ``site``'s events of ``modes`` older than ``before_ms`` and emptied visits."""

    def count_events(self, site: str | None = None) -> int:
        """Stored events (of ``site``)."""

    def reclaim_space(self, *, vacuum: bool = True) -> str:
        """Give freed space back so no erased byte stays on disk; says what ran."""


class AccountStore(Protocol):
    """Users, login sessions, API tokens, site grants and login failures (SQLite, hashed)."""

    def add_user(
        self, email: str, role: str, password_hash: str, sites: Sequence[str], now_ms: int
    ) -> int:
        """Create a user granted ``sites``; its id (``DuplicateUserError``: e-mail taken)."""

    def set_password(self, email: str, password_hash: str) -> bool:
        """Replace the hash and end every session; ``False`` when there is no such user."""

    def password_hash(self, email: str) -> tuple[int, str] | None:
        """Id and hash of the enabled user ``email``; ``None`` otherwise."""

    def users(self, user_id: int | None = None) -> list[AccountRow]:
        """Every user by e-mail address, or only ``user_id``."""

    def user_by_email(self, email: str) -> AccountRow | None:
        """The user ``email``, disabled or not."""

    def set_disabled(self, email: str, disabled_ts: int | None) -> bool:
        """Disable (ending its sessions) or enable ``email``; ``False`` when there is none."""

    def set_grants(self, email: str, role: str, sites: Sequence[str]) -> bool:
        """Replace role and grants and end the sessions; ``False`` when there is no user."""

    def remove_user(self, email: str) -> bool:
        """Delete the user with its grants and sessions; ``False`` when there was none."""

    def user(self, user_id: int) -> AccountRow | None:
        """The user ``user_id``, disabled or not."""

    def create_session(self, token_sha256: str, user_id: int, now_ms: int, expires_ms: int) -> None:
        """Store a login session (and forget the expired ones)."""

    def session_user(self, token_sha256: str, now_ms: int) -> AccountRow | None:
        """The enabled user of the unexpired session ``token_sha256``."""

    def delete_session(self, token_sha256: str) -> None:
        """End the session ``token_sha256``."""

    def add_token(
        self, name: str, token_sha256: str, role: str, sites: Sequence[str], now_ms: int
    ) -> int:
        """Store an API token granted ``sites``; its id."""

    def tokens(self, token_sha256: str | None = None) -> list[AccountRow]:
        """Every token by id, or only the active one whose digest is ``token_sha256``."""

    def token_by_hash(self, token_sha256: str) -> AccountRow | None:
        """The active token whose digest is ``token_sha256``."""

    def revoke_token(self, token_id: int, now_ms: int) -> bool:
        """Revoke the token ``token_id``; ``False`` when it was unknown or already revoked."""

    def write_turn(self) -> AbstractContextManager[None]:
        """One transaction holding the write lock: what it reads cannot change before commit."""

    def failure_times(self, subject: str, since_ms: int) -> list[int]:
        """Times of ``subject``'s failed (or running) login attempts since ``since_ms``."""

    def add_failures(self, subjects: Sequence[str], now_ms: int) -> list[int]:
        """One failure per subject at ``now_ms``; their ids for :meth:`take_back_failures`."""

    def forget_failures(self, before_ms: int) -> None:
        """Delete the failures older than ``before_ms``."""

    def take_back_failures(self, row_ids: Sequence[int], subjects: Sequence[str]) -> None:
        """Delete the failures ``row_ids`` and every failure of ``subjects``."""
