"""The database schema, as ordered migrations applied at start-up (sqlite-utils ``Migrations``)."""

from __future__ import annotations

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

from collector.storage.sqlite import layout as layout_sqlite
from collector.storage.sqlite import rollups as rollups_sqlite

migrations = Migrations("mesure")

# The rollups before storage v2, as the migrations that created them left them (the
# storage v2 migration drops them).
_V1_ROLLUPS = """
CREATE TABLE visit_keys (
    site TEXT NOT NULL,
    dim TEXT NOT NULL,
    key TEXT,
    hour INTEGER NOT NULL,
    visit INTEGER NOT NULL,
    visitor BLOB NOT NULL,
    kind TEXT,
    first_ts INTEGER NOT NULL,
    last_ts INTEGER NOT NULL,
    prev_last INTEGER,
    pageviews INTEGER NOT NULL,
    events INTEGER NOT NULL,
    lead INTEGER NOT NULL,
    v_start INTEGER NOT NULL,
    v_pageviews INTEGER NOT NULL,
    v_bounced INTEGER NOT NULL,
    v_span INTEGER NOT NULL
);
-- Visitor counts read (site, dim, key, hour range, prev_last) and nothing else.
CREATE INDEX visit_keys_by_key ON visit_keys (site, dim, key, hour, prev_last, kind);
CREATE INDEX visit_keys_by_visit ON visit_keys (visit);
CREATE INDEX visit_keys_by_chain ON visit_keys (site, dim, visitor, key, first_ts, last_ts);
-- Additive sums per UTC hour: pageviews and events by the events' hour, visit figures by the
-- hour the visit started (for the visit's first hour with the value).
CREATE TABLE key_hours (
    site TEXT NOT NULL,
    dim TEXT NOT NULL,
    key TEXT,
    hour INTEGER NOT NULL,
    pageviews INTEGER NOT NULL,
    events INTEGER NOT NULL,
    visits INTEGER NOT NULL,
    bounces INTEGER NOT NULL,
    duration INTEGER NOT NULL,
    visit_pageviews INTEGER NOT NULL
);
CREATE INDEX key_hours_by_key ON key_hours (
    site, dim, key, hour, pageviews, events, visits, bounces, duration, visit_pageviews
);
-- Every value some rollup row holds, per dimension: the reports seek each value's hour range.
CREATE TABLE rollup_keys (site TEXT NOT NULL, dim TEXT NOT NULL, key TEXT);
CREATE INDEX rollup_keys_by_dim ON rollup_keys (site, dim, key);
CREATE TABLE anon_hours (
    site TEXT NOT NULL,
    dim TEXT NOT NULL,
    key TEXT,
    hour INTEGER NOT NULL,
    pageviews INTEGER NOT NULL,
    events INTEGER NOT NULL
);
CREATE INDEX anon_hours_by_time ON anon_hours (site, dim, hour, key, pageviews, events);
-- The longest visit per site bounds where a visit started in a period can still show a value.
CREATE TABLE rollup_spans (site TEXT PRIMARY KEY, span INTEGER NOT NULL);
-- Unidentified events, so that rebuilding an hour of ``anon_hours`` reads only them.
CREATE INDEX events_unidentified ON events (site, ts) WHERE visitor IS NULL;
"""
_V1_ROLLUP_DAYS = """
ALTER TABLE visit_keys ADD COLUMN engaged INTEGER NOT NULL DEFAULT 0;
DROP TABLE key_hours;
CREATE TABLE key_hours (site TEXT NOT NULL, dim TEXT NOT NULL, key TEXT, hour INTEGER NOT NULL,
    pageviews INTEGER NOT NULL DEFAULT 0,
    events INTEGER NOT NULL DEFAULT 0,
    visits INTEGER NOT NULL DEFAULT 0,
    bounces INTEGER NOT NULL DEFAULT 0,
    duration INTEGER NOT NULL DEFAULT 0,
    visit_pageviews INTEGER NOT NULL DEFAULT 0,
    engaged INTEGER NOT NULL DEFAULT 0,
    firsts INTEGER NOT NULL DEFAULT 0,
    firsts_client INTEGER NOT NULL DEFAULT 0,
    firsts_cookieless INTEGER NOT NULL DEFAULT 0,
    rows_other INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX key_hours_by_key ON key_hours (site, dim, key, hour, pageviews, events, visits,
    bounces, duration, visit_pageviews, engaged, firsts, firsts_client, firsts_cookieless,
    rows_other);
CREATE TABLE key_days (site TEXT NOT NULL, dim TEXT NOT NULL, key TEXT, day INTEGER NOT NULL,
    pageviews INTEGER NOT NULL DEFAULT 0,
    events INTEGER NOT NULL DEFAULT 0,
    visits INTEGER NOT NULL DEFAULT 0,
    bounces INTEGER NOT NULL DEFAULT 0,
    duration INTEGER NOT NULL DEFAULT 0,
    visit_pageviews INTEGER NOT NULL DEFAULT 0,
    engaged INTEGER NOT NULL DEFAULT 0,
    firsts INTEGER NOT NULL DEFAULT 0,
    firsts_client INTEGER NOT NULL DEFAULT 0,
    firsts_cookieless INTEGER NOT NULL DEFAULT 0,
    rows_other INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX key_days_by_key ON key_days (site, dim, key, day, pageviews, events, visits,
    bounces, duration, visit_pageviews, engaged, firsts, firsts_client, firsts_cookieless,
    rows_other);
ALTER TABLE anon_hours ADD COLUMN engaged INTEGER NOT NULL DEFAULT 0;
DROP INDEX anon_hours_by_time;
CREATE INDEX anon_hours_by_time ON anon_hours (site, dim, hour, key, pageviews, events, engaged);
CREATE TABLE anon_days (
    site TEXT NOT NULL,
    dim TEXT NOT NULL,
    key TEXT,
    day INTEGER NOT NULL,
    pageviews INTEGER NOT NULL,
    events INTEGER NOT NULL,
    engaged INTEGER NOT NULL
);
CREATE INDEX anon_days_by_time ON anon_days (site, dim, day, key, pageviews, events, engaged);
-- Visitor chain rows (dimension ``*``) by UTC day and their predecessor's UTC day (-1: none),
-- so a past range's whole days count their new visitors without reading the rows.
CREATE TABLE visitor_links (
    site TEXT NOT NULL,
    day INTEGER NOT NULL,
    prev_day INTEGER NOT NULL,
    rows INTEGER NOT NULL,
    PRIMARY KEY (site, day, prev_day)
) WITHOUT ROWID;
CREATE INDEX visit_keys_by_prev ON visit_keys (site, prev_last, hour) WHERE dim = '*';
"""


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
    db.executescript(_V1_ROLLUPS)


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
    """Daily rollups and the per-hour count of visitors' first rows in a period. They were
    rebuilt from the stored events here; storage v2 (``daily_rollups``) drops them, so that
    rebuild is no longer done."""
    db.executescript(_V1_ROLLUP_DAYS)


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


@migrations()
def daily_rollups(db: Database) -> None:
    """Storage v2: the per-visit rollups and their queues make way for daily rollups kept up
    to date at ingest (see ``rollups_sqlite``). Every (site, day) with events is queued for a
    rebuild, which the writer does when idle; until a day is rebuilt, reports read it from the
    events. Days are UTC here: the collector records each site's configured time zone when it
    opens the database (``rollups_sqlite.set_timezones``), which queues the site again. Old
    rollups too large to drop at start-up stay, unread, until ``mesure upgrade`` drops them."""
    rollups_sqlite.drop_old_at_once(db.conn)
    db.execute("DROP INDEX IF EXISTS events_unidentified")
    db.execute("DROP INDEX IF EXISTS event_rows_unidentified")
    db.executescript(rollups_sqlite.SCHEMA)
    for site in layout_sqlite.stored_sites(db.conn):
        added = rollups_sqlite.add_site(db.conn, str(site), "UTC")
        rollups_sqlite.queue_site_days(db.conn, str(site), added.zone)


@migrations()
def consent_rollups(db: Database) -> None:
    """The consent report from the rollups: the effective mode becomes a rolled-up dimension,
    with each day's visits and reason codes by mode (``rollups_sqlite.MODE_VISITS`` and
    ``MODE_REASONS``). The other dimensions' rows keep their codes and stay; every (site, day)
    with events is queued for a rebuild, which the writer does when idle (and ``mesure
    upgrade`` at once). Reports read a queued day from the events until then."""
    for site in rollups_sqlite.sites(db.conn).values():
        rollups_sqlite.queue_site_days(db.conn, site.name, site.zone)


@migrations()
def retention_from_rollups(db: Database) -> None:
    """Retention's new visitors from the rollups (``rollup_reports_sqlite.client_visit_starts``):
    visitor ids are looked up by id, and each site records the latest time before which
    retention deleted events (a visit that lost its first events no longer shows its start in
    the rollups). A database from before this records, for each mode with visits, when its
    oldest event is: no earlier deletion can have reached past it."""
    db.execute("CREATE INDEX IF NOT EXISTS visitor_ids_by_id ON visitor_ids (site, id)")
    db.execute("ALTER TABLE rollup_sites ADD COLUMN purged_before INTEGER NOT NULL DEFAULT 0")
    for site in rollups_sqlite.sites(db.conn):
        oldest = [
            db.execute(
                f"SELECT min(e.ts) FROM events e WHERE {layout_sqlite.site_is(db.conn)} "
                "AND e.mode = ?",
                (site, mode),
            ).fetchone()[0]
            for mode in ("granted", "exempt")
        ]
        found = [int(ts) for ts in oldest if ts is not None]
        if found:
            db.execute(
                "UPDATE rollup_sites SET purged_before = ? WHERE site = ?", (max(found), site)
            )


@migrations()
def index_revenue_events(db: Database) -> None:
    """RFM reads the revenue events of all time (``revenue_events_where``): a partial index
    holds only them, one event in a thousand of the bench's traffic, where the report read
    every event of the site by time (1.3 s at 10 M events, 53 ms with it). Built here up to
    ``layout_sqlite.INDEX_AT_ONCE_ROWS`` events, else by ``mesure upgrade``."""
    layout_sqlite.index_if_small(db.conn, "revenue")


@migrations()
def index_property_events(db: Database) -> None:
    """An experiment reads the events that carry its property (``step_events``): a partial
    index holds the events with properties only (granted events that carry any, a few in a
    hundred), where the report read every event of the period (367 ms at 10 M, 246 with it).
    Built here up to ``layout_sqlite.INDEX_AT_ONCE_ROWS`` events, else by ``mesure upgrade``."""
    layout_sqlite.index_if_small(db.conn, "props")


@migrations()
def index_page_steps(db: Database) -> None:
    """A funnel reads the identified pageviews of its pages (``step_events``): an index by
    (site, page, time) that also holds each one's visit and visitor gives them without reading
    a row, where the report read every event of the period (537 ms for a three-step funnel over
    30 days at 10 M events). Built here up to ``layout_sqlite.INDEX_AT_ONCE_ROWS`` events,
    else by ``mesure upgrade``."""
    layout_sqlite.index_if_small(db.conn, "pages")
