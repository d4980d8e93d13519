"""Rollups: per-visit, per-dimension summaries that let the dashboard's reports skip the events.

``visit_keys`` holds one row per (visit, dimension, value): the first and last time an event of
the visit had that value, its pageviews and events, the visit's own figures (start, pageviews,
bounce, span), and ``prev_last``: the latest ``last_ts`` of the same visitor's earlier rows with
the same value. A visitor is then counted exactly once in a period by counting only the row that
touches the period while its predecessor ended before it, which turns ``COUNT(DISTINCT
visitor)`` into a plain count. ``anon_hours`` counts the events without an identifier (denied)
per UTC hour and value.

Nothing here is approximate: rows are rebuilt from the events of the visits a write touched
(ingest, erasure, retention), with the same expressions as the reports (``DIMENSION_SQL``), and
the reports fall back to the events table whenever a query is not one the rollups answer
exactly (filters, goals, ranges not on whole UTC hours, dimensions not rolled up).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable

import msgspec

from collector.storage.rows import PAGEVIEW_DIMENSIONS, ROLLED_UP_DIMENSIONS, VISIT_DIMENSIONS
from collector.storage.sqlite import layout as layout_sqlite
from collector.storage.sqlite.sql import DIMENSION_SQL

#: Dimensions with rollup rows; ``*`` is the visit itself (aggregate and time series).
ROLLUP_DIMENSIONS = ("*", *ROLLED_UP_DIMENSIONS)
#: Dimensions whose value is the visit's (entry page): no row for unidentified events.
VISIT_LEVEL = VISIT_DIMENSIONS.intersection(ROLLED_UP_DIMENSIONS)
HOUR_MS = 3_600_000

SCHEMA = """
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

#: The additive sums of ``key_hours`` and ``key_days``. Event counts and engaged time sit at
#: the events' hour; visit figures at the visit's start hour (from the first hour the visit
#: shows the value); ``firsts`` is +1 at a chain row's hour and -1 at its predecessor's, so its
#: sum over a range that reaches past the newest row is the number of distinct visitors in it
#: (``firsts_client`` and ``firsts_cookieless`` the same per kind of row); ``rows_other``
#: counts the rows of any other kind.
SUMS = (
    "pageviews",
    "events",
    "visits",
    "bounces",
    "duration",
    "visit_pageviews",
    "engaged",
    "firsts",
    "firsts_client",
    "firsts_cookieless",
    "rows_other",
)
_SUM_COLUMNS = ", ".join(SUMS)
_SUM_DDL = ",\n".join(f"    {name} INTEGER NOT NULL DEFAULT 0" for name in SUMS)
#: Added by a later migration: engaged time, visitors' first rows per hour, daily sums (the
#: long periods' grain).
DAYS_SCHEMA = f"""
ALTER TABLE visit_keys ADD COLUMN engaged INTEGER NOT NULL DEFAULT 0;
DROP TABLE key_hours;
CREATE TABLE key_hours (site TEXT NOT NULL, dim TEXT NOT NULL, key TEXT, hour INTEGER NOT NULL,
{_SUM_DDL}
);
CREATE INDEX key_hours_by_key ON key_hours (site, dim, key, hour, {_SUM_COLUMNS});
CREATE TABLE key_days (site TEXT NOT NULL, dim TEXT NOT NULL, key TEXT, day INTEGER NOT NULL,
{_SUM_DDL}
);
CREATE INDEX key_days_by_key ON key_days (site, dim, key, day, {_SUM_COLUMNS});
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
#: Every rollup table, emptied before a rebuild.
ROLLUP_TABLES = (
    "visit_keys",
    "key_hours",
    "key_days",
    "rollup_keys",
    "anon_hours",
    "anon_days",
    "visitor_links",
)
HOURS_PER_DAY = 24

_BOUNCED = (
    "v.pageviews = 1 AND (v.events = 0 OR NOT EXISTS (SELECT 1 FROM events i "
    "WHERE i.visit = v.id AND i.name NOT IN ('pageview', 'engagement')))"
)
_IDS = "(SELECT value FROM json_each(:ids))"
_OTHER_KIND = "coalesce(kind NOT IN ('client', 'cookieless'), 1)"
# What the rows of the visits being refreshed add to ``key_hours`` (``sign`` is ``1`` or
# ``(-1)``), in the order of ``SUMS``; a row's -1 at its predecessor's hour is its own kind's.
_CONTRIBUTIONS = (
    "SELECT site, dim, key, hour, {sign} * pageviews, {sign} * events, 0, 0, 0, 0, "
    "{sign} * engaged, {sign}, {sign} * (kind = 'client'), {sign} * (kind = 'cookieless'), "
    f"{{sign}} * {_OTHER_KIND} FROM visit_keys WHERE visit IN {_IDS} UNION ALL "
    f"SELECT site, dim, key, v_start / {HOUR_MS}, 0, 0, {{sign}}, {{sign}} * v_bounced, "
    "{sign} * (CASE WHEN v_bounced THEN 0 ELSE v_span END), {sign} * v_pageviews, 0, 0, 0, 0, 0 "
    f"FROM visit_keys WHERE visit IN {_IDS} AND lead UNION ALL "
    f"SELECT site, dim, key, prev_last / {HOUR_MS}, 0, 0, 0, 0, 0, 0, 0, -1 * {{sign}}, "
    "-1 * {sign} * (kind = 'client'), -1 * {sign} * (kind = 'cookieless'), 0 "
    f"FROM visit_keys WHERE visit IN {_IDS} AND prev_last IS NOT NULL"
)
# The rows of the chains a refresh touched, from the earliest touched point on: the rows whose
# ``prev_last`` is recomputed.
_CHAIN_ROWS = (
    "FROM visit_keys AS r JOIN (SELECT site, dim, visitor, key, min(since) AS since "
    "FROM temp.rollup_chains GROUP BY site, dim, visitor, key) AS c ON r.site = c.site "
    "AND r.dim = c.dim AND r.visitor = c.visitor AND r.key IS c.key AND r.first_ts >= c.since"
)
_LINK = f"{{site}}, {{hour}} / 24, coalesce({{prev}} / {HOUR_MS} / 24, -1), {{sign}}"
_OWN_LINKS = (
    "INSERT INTO temp.link_delta SELECT "
    + _LINK.format(site="site", hour="hour", prev="prev_last", sign="{sign}")
    + f" FROM visit_keys WHERE visit IN {_IDS} AND dim = '*'"
)
_PREDECESSOR_HOURS = (
    "INSERT INTO temp.rollup_delta SELECT r.site, r.dim, r.key, r.prev_last / "
    f"{HOUR_MS}, 0, 0, 0, 0, 0, 0, 0, {{sign}}, {{sign}} * (r.kind = 'client'), "
    f"{{sign}} * (r.kind = 'cookieless'), 0 {_CHAIN_ROWS} WHERE r.prev_last IS NOT NULL"
)
_CHAIN_LINKS = (
    "INSERT INTO temp.link_delta SELECT "
    + _LINK.format(site="r.site", hour="r.hour", prev="r.prev_last", sign="{sign}")
    + f" {_CHAIN_ROWS} WHERE r.dim = '*'"
)


def key_sql(dimension: str) -> str:
    """The value of ``dimension`` for an event ``e`` of visit ``v`` (the reports' expression)."""
    return "NULL" if dimension == "*" else DIMENSION_SQL[dimension]


def refresh_visits(conn: sqlite3.Connection, visit_ids: Iterable[int]) -> None:
    """Rebuild the rollup rows of ``visit_ids`` from their events (a deleted visit loses its
    rows), move their contributions in ``key_hours``, then recompute ``prev_last`` along every
    chain those rows belong to."""
    ids = sorted({int(i) for i in visit_ids})
    if not ids:
        return
    params = {"ids": msgspec.json.encode(ids).decode()}
    conn.execute(
        "CREATE TEMP TABLE IF NOT EXISTS rollup_chains "
        "(site TEXT, dim TEXT, visitor BLOB, key TEXT, since INTEGER)"
    )
    conn.execute(
        "CREATE TEMP TABLE IF NOT EXISTS rollup_delta (site TEXT, dim TEXT, key TEXT, "
        f"hour INTEGER, {_SUM_COLUMNS})"
    )
    chains = (
        "INSERT INTO temp.rollup_chains SELECT site, dim, visitor, key, first_ts "
        f"FROM visit_keys WHERE visit IN {_IDS}"
    )
    conn.execute(chains, params)
    conn.execute(
        "CREATE TEMP TABLE IF NOT EXISTS link_delta (site TEXT, day INTEGER, prev_day INTEGER, "
        "rows INTEGER)"
    )
    conn.execute("INSERT INTO temp.rollup_delta " + _CONTRIBUTIONS.format(sign="(-1)"), params)
    conn.execute(_OWN_LINKS.format(sign=-1), params)
    conn.execute(f"DELETE FROM visit_keys WHERE visit IN {_IDS}", params)
    for dimension in ROLLUP_DIMENSIONS:
        key = key_sql(dimension)
        where = " AND e.name = 'pageview'" if dimension in PAGEVIEW_DIMENSIONS else ""
        if dimension in VISIT_LEVEL:
            where += f" AND {key} IS NOT NULL"
        conn.execute(
            "INSERT INTO visit_keys (site, dim, key, hour, visit, visitor, kind, first_ts, "
            "last_ts, pageviews, events, engaged, lead, v_start, v_pageviews, v_bounced, v_span) "
            f"SELECT v.site, '{dimension}', {key}, e.ts / {HOUR_MS}, v.id, v.visitor, "
            "max(e.visitor_kind), min(e.ts), max(e.ts), SUM(e.name = 'pageview'), "
            "SUM(e.name NOT IN ('pageview', 'engagement')), coalesce(SUM(e.engaged_ms), 0), "
            f"min(e.ts) / {HOUR_MS} = min(min(e.ts)) OVER (PARTITION BY v.id, {key}) / {HOUR_MS}, "
            f"v.start_ts, v.pageviews, {_BOUNCED}, v.last_ts - v.start_ts "
            "FROM visits v JOIN events e ON e.visit = v.id "
            f"WHERE v.id IN {_IDS}{where} GROUP BY v.id, {key}, e.ts / {HOUR_MS}",
            params,
        )
    conn.execute(chains, params)
    conn.execute("INSERT INTO temp.rollup_delta " + _CONTRIBUTIONS.format(sign=1), params)
    conn.execute(_OWN_LINKS.format(sign=1), params)
    conn.execute(
        "INSERT INTO rollup_keys (site, dim, key) SELECT DISTINCT site, dim, key "
        f"FROM visit_keys n WHERE visit IN {_IDS} AND NOT EXISTS (SELECT 1 FROM rollup_keys k "
        "WHERE k.site = n.site AND k.dim = n.dim AND k.key IS n.key)",
        params,
    )
    conn.execute(
        "INSERT INTO rollup_spans (site, span) SELECT site, max(last_ts - start_ts) "
        f"FROM visits WHERE id IN {_IDS} GROUP BY site "
        "ON CONFLICT (site) DO UPDATE SET span = max(span, excluded.span)",
        params,
    )
    # Every row of a touched chain from the earliest touched point on gets its predecessor's
    # end again (rows before that point are not affected by the change); their -1 moves from
    # the old predecessor's hour to the new one's.
    conn.execute(_PREDECESSOR_HOURS.format(sign=1))
    conn.execute(_CHAIN_LINKS.format(sign=-1))
    conn.execute(
        "UPDATE visit_keys AS r SET prev_last = (SELECT max(o.last_ts) FROM visit_keys o "
        "WHERE o.site = r.site AND o.dim = r.dim AND o.visitor = r.visitor AND o.key IS r.key "
        "AND (o.first_ts < r.first_ts OR (o.first_ts = r.first_ts "
        "AND (o.visit < r.visit OR (o.visit = r.visit AND o.hour < r.hour))))) "
        "FROM (SELECT site, dim, visitor, key, min(since) AS since FROM temp.rollup_chains "
        "GROUP BY site, dim, visitor, key) AS c "
        "WHERE r.site = c.site AND r.dim = c.dim AND r.visitor = c.visitor AND r.key IS c.key "
        "AND r.first_ts >= c.since"
    )
    conn.execute(_PREDECESSOR_HOURS.format(sign=-1))
    conn.execute(_CHAIN_LINKS.format(sign=1))
    _apply_delta(conn)
    _apply_links(conn)
    # A value whose last row just went (erasure, retention) leaves the list of values too:
    # otherwise an erased person's pages would stay in it for good.
    conn.execute(
        "DELETE FROM rollup_keys WHERE rowid IN (SELECT k.rowid FROM (SELECT DISTINCT site, "
        "dim, key FROM temp.rollup_chains) AS c JOIN rollup_keys k ON k.site = c.site "
        "AND k.dim = c.dim AND k.key IS c.key WHERE NOT EXISTS (SELECT 1 FROM visit_keys v "
        "WHERE v.site = c.site AND v.dim = c.dim AND v.key IS c.key))"
    )
    conn.execute("DELETE FROM temp.rollup_chains")


def _apply_delta(conn: sqlite3.Connection) -> None:
    """Add ``temp.rollup_delta`` into ``key_hours`` and ``key_days``; drop rows left at zero."""
    sums = ", ".join(f"SUM({name}) AS {name}" for name in SUMS)
    added = ", ".join(f"{name} = h.{name} + d.{name}" for name in SUMS)
    zero = " AND ".join(f"h.{name} = 0" for name in SUMS)
    for table, unit, grain in (("key_hours", "hour", "hour"), ("key_days", "day", "hour / 24")):
        grouped = (
            f"SELECT site, dim, key, {grain} AS {unit}, {sums} FROM temp.rollup_delta "
            f"GROUP BY site, dim, key, {grain}"
        )
        same = f"h.site = d.site AND h.dim = d.dim AND h.key IS d.key AND h.{unit} = d.{unit}"
        conn.execute(f"UPDATE {table} AS h SET {added} FROM ({grouped}) AS d WHERE {same}")
        conn.execute(
            f"INSERT INTO {table} (site, dim, key, {unit}, {_SUM_COLUMNS}) "
            f"SELECT * FROM ({grouped}) AS d WHERE NOT EXISTS (SELECT 1 FROM {table} h "
            f"WHERE {same})"
        )
        conn.execute(
            f"DELETE FROM {table} WHERE rowid IN (SELECT h.rowid FROM "
            f"(SELECT DISTINCT site, dim, key, {grain} AS {unit} FROM temp.rollup_delta) d "
            f"JOIN {table} h ON {same} WHERE {zero})"
        )
    conn.execute("DELETE FROM temp.rollup_delta")


def _apply_links(conn: sqlite3.Connection) -> None:
    """Add ``temp.link_delta`` into ``visitor_links``; drop the pairs left at zero."""
    conn.execute(
        "INSERT INTO visitor_links (site, day, prev_day, rows) SELECT site, day, prev_day, "
        "SUM(rows) FROM temp.link_delta WHERE true GROUP BY site, day, prev_day "
        "ON CONFLICT (site, day, prev_day) DO UPDATE SET rows = rows + excluded.rows"
    )
    conn.execute(
        "DELETE FROM visitor_links WHERE rows = 0 AND (site, day, prev_day) IN "
        "(SELECT site, day, prev_day FROM temp.link_delta)"
    )
    conn.execute("DELETE FROM temp.link_delta")


def refresh_anon_hours(conn: sqlite3.Connection, site_hours: Iterable[tuple[str, int]]) -> None:
    """Recount ``anon_hours`` for each ``(site, UTC hour)`` from the unidentified events."""
    pairs = sorted(set(site_hours))
    if not pairs:
        return
    params = {"pairs": msgspec.json.encode(pairs).decode()}
    hours = (
        "SELECT json_extract(value, '$[0]') AS site, json_extract(value, '$[1]') AS hour "
        "FROM json_each(:pairs)"
    )
    conn.execute(f"DELETE FROM anon_hours WHERE (site, hour) IN ({hours})", params)
    hint = layout_sqlite.events_hint(conn)
    site = (
        "e.site_id = (SELECT id FROM strings WHERE value = h.site)"
        if layout_sqlite.is_compact(conn)
        else "e.site = h.site"
    )
    for dimension in ROLLUP_DIMENSIONS:
        if dimension in VISIT_LEVEL:
            continue
        key = key_sql(dimension)
        where = " AND e.name = 'pageview'" if dimension in PAGEVIEW_DIMENSIONS else ""
        conn.execute(
            "INSERT INTO anon_hours (site, dim, key, hour, pageviews, events, engaged) "
            f"SELECT h.site, '{dimension}', {key}, h.hour, SUM(e.name = 'pageview'), "
            "SUM(e.name NOT IN ('pageview', 'engagement')), coalesce(SUM(e.engaged_ms), 0) "
            f"FROM ({hours}) h "
            f"JOIN events e{hint} ON {site} "
            f"AND e.ts >= h.hour * {HOUR_MS} AND e.ts < (h.hour + 1) * {HOUR_MS} "
            f"AND e.visitor IS NULL{where} GROUP BY h.site, h.hour, {key}",
            params,
        )
    days = sorted({(site, hour // HOURS_PER_DAY) for site, hour in pairs})
    day_params = {"days": msgspec.json.encode(days).decode()}
    touched = (
        "SELECT json_extract(value, '$[0]') AS site, json_extract(value, '$[1]') AS day "
        "FROM json_each(:days)"
    )
    conn.execute(f"DELETE FROM anon_days WHERE (site, day) IN ({touched})", day_params)
    for dimension in ROLLUP_DIMENSIONS:
        if dimension in VISIT_LEVEL:
            continue
        conn.execute(
            "INSERT INTO anon_days (site, dim, key, day, pageviews, events, engaged) "
            f"SELECT d.site, '{dimension}', a.key, d.day, SUM(a.pageviews), SUM(a.events), "
            "SUM(a.engaged) "
            f"FROM ({touched}) d JOIN anon_hours a ON a.site = d.site AND a.dim = '{dimension}' "
            "AND a.hour >= d.day * 24 AND a.hour < (d.day + 1) * 24 GROUP BY d.site, d.day, a.key",
            day_params,
        )


def rebuild_all(conn: sqlite3.Connection) -> None:
    """Build every rollup again from the stored events (the migrations that add them)."""
    for table in ROLLUP_TABLES:
        conn.execute(f"DELETE FROM {table}")
    conn.execute("DELETE FROM rollup_spans")
    ids = [row[0] for row in conn.execute("SELECT id FROM visits ORDER BY id")]
    for start in range(0, len(ids), 50_000):
        refresh_visits(conn, ids[start : start + 50_000])
    hours = conn.execute(
        f"SELECT DISTINCT site, ts / {HOUR_MS} FROM events WHERE visitor IS NULL"
    ).fetchall()
    refresh_anon_hours(conn, [(str(site), int(hour)) for site, hour in hours])
