"""The database schema, as ordered migrations applied at start-up (sqlite-utils ``Migrations``)."""

from __future__ import annotations

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

from collector.storage.sqlite import layout as layout_sqlite
from collector.storage.sqlite import rollups as rollups_sqlite

migrations = Migrations("mesure")


@migrations()
def create_events_and_visits(db: Database) -> None:
    db.executescript(
        """
        CREATE TABLE visits (
            id INTEGER PRIMARY KEY,
            site TEXT NOT NULL,
            visitor BLOB NOT NULL,
            start_ts INTEGER NOT NULL,
            last_ts INTEGER NOT NULL,
            entry_path TEXT,
            exit_path TEXT,
            pageviews INTEGER NOT NULL DEFAULT 0,
            events INTEGER NOT NULL DEFAULT 0
        );
        CREATE INDEX visits_by_visitor ON visits (site, visitor, last_ts);
        CREATE INDEX visits_by_start ON visits (site, start_ts);

        CREATE TABLE events (
            id INTEGER PRIMARY KEY,
            site TEXT NOT NULL,
            ts INTEGER NOT NULL,
            name TEXT NOT NULL,
            mode TEXT NOT NULL,
            reasons TEXT NOT NULL,
            visitor BLOB,
            visitor_kind TEXT,
            key_epoch INTEGER,
            user BLOB,
            user_epoch INTEGER,
            visit INTEGER REFERENCES visits (id),
            hostname TEXT NOT NULL,
            path TEXT NOT NULL,
            query TEXT,
            referrer TEXT,
            referrer_domain TEXT,
            source TEXT,
            utm_source TEXT,
            utm_medium TEXT,
            utm_campaign TEXT,
            utm_term TEXT,
            utm_content TEXT,
            browser TEXT,
            browser_version TEXT,
            os TEXT,
            os_version TEXT,
            device TEXT,
            screen TEXT,
            country TEXT,
            props TEXT,
            revenue_amount TEXT,
            revenue_currency TEXT,
            engaged_ms INTEGER
        );
        CREATE INDEX events_by_time ON events (site, ts);
        CREATE INDEX events_by_name ON events (site, name, ts);
        CREATE INDEX events_by_visit ON events (visit);
        CREATE INDEX events_by_user ON events (site, user) WHERE user IS NOT NULL;

        CREATE TABLE dropped_hits (
            site TEXT NOT NULL,
            day TEXT NOT NULL,
            reason TEXT NOT NULL,
            hits INTEGER NOT NULL,
            PRIMARY KEY (site, day, reason)
        );
        """
    )


@migrations()
def create_goals_and_access(db: Database) -> None:
    """Goals saved through the reports API; users, sessions, API tokens and per-site grants."""
    db.executescript(
        """
        CREATE TABLE goals (
            site TEXT NOT NULL,
            name TEXT NOT NULL,
            kind TEXT NOT NULL CHECK (kind IN ('page', 'event')),
            match TEXT NOT NULL,
            created_ts INTEGER NOT NULL,
            PRIMARY KEY (site, name)
        );
        CREATE TABLE users (
            id INTEGER PRIMARY KEY,
            email TEXT NOT NULL UNIQUE,
            role TEXT NOT NULL CHECK (role IN ('owner', 'analyst', 'dpo')),
            password_hash TEXT NOT NULL,
            created_ts INTEGER NOT NULL
        );
        CREATE TABLE user_sites (
            user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
            site TEXT NOT NULL,
            PRIMARY KEY (user_id, site)
        );
        CREATE TABLE login_sessions (
            token_sha256 TEXT PRIMARY KEY,
            user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
            created_ts INTEGER NOT NULL,
            expires_ts INTEGER NOT NULL
        );
        CREATE TABLE api_tokens (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL,
            token_sha256 TEXT NOT NULL UNIQUE,
            role TEXT NOT NULL CHECK (role IN ('owner', 'analyst', 'dpo')),
            created_ts INTEGER NOT NULL,
            revoked_ts INTEGER
        );
        CREATE TABLE token_sites (
            token_id INTEGER NOT NULL REFERENCES api_tokens (id) ON DELETE CASCADE,
            site TEXT NOT NULL,
            PRIMARY KEY (token_id, site)
        );
        CREATE TABLE login_failures (
            subject TEXT NOT NULL,
            ts INTEGER NOT NULL
        );
        CREATE INDEX login_failures_by_subject ON login_failures (subject, ts);
        """
    )


@migrations()
def create_funnels(db: Database) -> None:
    """Funnels saved from the dashboard or the API: ordered step specs, per site."""
    db.executescript(
        """
        CREATE TABLE funnels (
            site TEXT NOT NULL,
            name TEXT NOT NULL,
            steps TEXT NOT NULL,
            within TEXT NOT NULL,
            created_ts INTEGER NOT NULL,
            PRIMARY KEY (site, name)
        );
        """
    )


@migrations()
def create_rollups(db: Database) -> None:
    """Per-visit rollups for the dashboard's reports (see ``rollups_sqlite``), built from the
    events already stored."""
    db.executescript(rollups_sqlite.SCHEMA)
    # Filled by ``add_rollup_days``, which the rollup code of today needs first.


@migrations()
def create_rollup_queue(db: Database) -> None:
    """Visits and unidentified hours whose rollups are behind the events: ingest records them
    in its commit and the writer brings them up to date when it has nothing else to do."""
    db.executescript(
        """
        CREATE TABLE rollup_pending (visit INTEGER PRIMARY KEY);
        CREATE TABLE rollup_pending_hours (
            site TEXT NOT NULL,
            hour INTEGER NOT NULL,
            PRIMARY KEY (site, hour)
        );
        """
    )


@migrations()
def add_rollup_days(db: Database) -> None:
    """Daily rollups and the per-hour count of visitors' first rows in a period (see
    ``rollups_sqlite.DAYS_SCHEMA``); every rollup is rebuilt from the stored events."""
    db.executescript(rollups_sqlite.DAYS_SCHEMA)
    rollups_sqlite.rebuild_all(db.conn)
    db.execute("DELETE FROM rollup_pending")
    db.execute("DELETE FROM rollup_pending_hours")


@migrations()
def add_account_states(db: Database) -> None:
    """Accounts can be disabled (``mesure user disable``) without losing their grants; login
    failures are pruned by age at every attempt, which wants an index on their time."""
    db.executescript(
        """
        ALTER TABLE users ADD COLUMN disabled_ts INTEGER;
        CREATE INDEX login_failures_by_ts ON login_failures (ts);
        """
    )


@migrations()
def add_compact_events(db: Database) -> None:
    """The compact layout of the events (see ``layout_sqlite``): a new database starts in it; a
    database with events keeps them where they are until ``mesure upgrade`` copies them."""
    layout_sqlite.create(db.conn)
