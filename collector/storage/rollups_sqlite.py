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

#: Dimensions with rollup rows; ``*`` is the visit itself (aggregate and time series).
ROLLUP_DIMENSIONS = (
    "*",
    "page",
    "entry_page",
    "exit_page",
    "source",
    "country",
    "browser",
    "os",
    "device",
)
#: Dimensions whose value is the visit's (entry and exit page): no row for unidentified events.
VISIT_LEVEL = frozenset({"entry_page", "exit_page"})
HOUR_MS = 3_600_000

SCHEMA = """
CREATE TABLE visit_keys (
    site TEXT NOT NULL,
    dim TEXT NOT NULL,
    key TEXT,
    visit INTEGER NOT NULL,
    visitor BLOB NOT NULL,
    kind TEXT,
    first_ts INTEGER NOT NULL,
    last_ts INTEGER NOT NULL,
    prev_last INTEGER,
    pageviews INTEGER NOT NULL,
    events INTEGER NOT NULL,
    v_start INTEGER NOT NULL,
    v_pageviews INTEGER NOT NULL,
    v_bounced INTEGER NOT NULL,
    v_span INTEGER NOT NULL
);
-- Covering index of the report scans: every column they read, in time order per dimension.
CREATE INDEX visit_keys_by_time ON visit_keys (
    site, dim, first_ts, last_ts, prev_last, key, pageviews, events,
    v_start, v_bounced, v_span, v_pageviews, kind, visit
);
CREATE INDEX visit_keys_by_visit ON visit_keys (visit);
CREATE INDEX visit_keys_by_chain ON visit_keys (site, dim, visitor, key, first_ts, last_ts);
CREATE TABLE anon_hours (
    site TEXT NOT NULL,
    dim TEXT NOT NULL,
    key TEXT,
    hour INTEGER NOT NULL,
    pageviews INTEGER NOT NULL,
    events INTEGER NOT NULL
);
CREATE INDEX anon_hours_by_time ON anon_hours (site, dim, hour, key, pageviews, events);
-- The longest row span per site bounds how far before a period a touching row can start.
CREATE TABLE rollup_spans (site TEXT PRIMARY KEY, span INTEGER NOT NULL);
-- Unidentified events, so that rebuilding an hour of ``anon_hours`` reads only them.
CREATE INDEX events_unidentified ON events (site, ts) WHERE visitor IS NULL;
"""

_BOUNCED = (
    "v.pageviews = 1 AND (v.events = 0 OR NOT EXISTS (SELECT 1 FROM events i "
    "WHERE i.visit = v.id AND i.name NOT IN ('pageview', 'engagement')))"
)


def key_sql(dimension: str) -> str:
    """The value of ``dimension`` for an event ``e`` of visit ``v`` (the reports' expression)."""
    from collector.storage.reports_sqlite import DIMENSION_SQL

    return "NULL" if dimension == "*" else DIMENSION_SQL[dimension]


def refresh_visits(conn: sqlite3.Connection, visit_ids: Iterable[int]) -> None:
    """Rebuild the rollup rows of ``visit_ids`` from their events (a deleted visit loses its
    rows), then recompute ``prev_last`` along every chain those rows belong to."""
    ids = sorted({int(i) for i in visit_ids})
    if not ids:
        return
    params = {"ids": msgspec.json.encode(ids).decode()}
    conn.execute(
        "CREATE TEMP TABLE IF NOT EXISTS rollup_chains "
        "(site TEXT, dim TEXT, visitor BLOB, key TEXT, since INTEGER)"
    )
    conn.execute("DELETE FROM temp.rollup_chains")
    chains = (
        "INSERT INTO temp.rollup_chains SELECT site, dim, visitor, key, first_ts "
        "FROM visit_keys WHERE visit IN (SELECT value FROM json_each(:ids))"
    )
    conn.execute(chains, params)
    conn.execute(
        "DELETE FROM visit_keys WHERE visit IN (SELECT value FROM json_each(:ids))", params
    )
    for dimension in ROLLUP_DIMENSIONS:
        key = key_sql(dimension)
        where = " AND e.name = 'pageview'" if dimension == "page" else ""
        if dimension in VISIT_LEVEL:
            where += f" AND {key} IS NOT NULL"
        conn.execute(
            "INSERT INTO visit_keys (site, dim, key, visit, visitor, kind, first_ts, last_ts, "
            "pageviews, events, v_start, v_pageviews, v_bounced, v_span) "
            f"SELECT v.site, '{dimension}', {key}, v.id, v.visitor, max(e.visitor_kind), "
            "min(e.ts), max(e.ts), SUM(e.name = 'pageview'), "
            "SUM(e.name NOT IN ('pageview', 'engagement')), v.start_ts, v.pageviews, "
            f"{_BOUNCED}, v.last_ts - v.start_ts FROM visits v JOIN events e ON e.visit = v.id "
            f"WHERE v.id IN (SELECT value FROM json_each(:ids)){where} GROUP BY v.id, {key}",
            params,
        )
    conn.execute(chains, params)
    conn.execute(
        "INSERT INTO rollup_spans (site, span) SELECT site, max(last_ts - first_ts) "
        "FROM visit_keys WHERE visit IN (SELECT value FROM json_each(:ids)) GROUP BY site "
        "ON CONFLICT (site) DO UPDATE SET span = max(span, excluded.span)",
        params,
    )
    # Every row of a touched chain from the earliest touched point on gets its predecessor's
    # end again (rows before that point are not affected by the change).
    conn.execute(
        "UPDATE visit_keys AS r SET prev_last = (SELECT max(o.last_ts) FROM visit_keys o "
        "WHERE o.site = r.site AND o.dim = r.dim AND o.visitor = r.visitor AND o.key IS r.key "
        "AND (o.first_ts < r.first_ts OR (o.first_ts = r.first_ts AND o.visit < r.visit))) "
        "FROM (SELECT site, dim, visitor, key, min(since) AS since FROM temp.rollup_chains "
        "GROUP BY site, dim, visitor, key) AS c "
        "WHERE r.site = c.site AND r.dim = c.dim AND r.visitor = c.visitor AND r.key IS c.key "
        "AND r.first_ts >= c.since"
    )
    conn.execute("DELETE FROM temp.rollup_chains")


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
    for dimension in ROLLUP_DIMENSIONS:
        if dimension in VISIT_LEVEL:
            continue
        key = key_sql(dimension)
        where = " AND e.name = 'pageview'" if dimension == "page" else ""
        conn.execute(
            "INSERT INTO anon_hours (site, dim, key, hour, pageviews, events) "
            f"SELECT h.site, '{dimension}', {key}, h.hour, SUM(e.name = 'pageview'), "
            f"SUM(e.name NOT IN ('pageview', 'engagement')) FROM ({hours}) h "
            "JOIN events e INDEXED BY events_unidentified ON e.site = h.site "
            f"AND e.ts >= h.hour * {HOUR_MS} AND e.ts < (h.hour + 1) * {HOUR_MS} "
            f"AND e.visitor IS NULL{where} GROUP BY h.site, h.hour, {key}",
            params,
        )


def rebuild_all(conn: sqlite3.Connection) -> None:
    """Build every rollup from the stored events (the migration that adds them)."""
    ids = [row[0] for row in conn.execute("SELECT id FROM visits ORDER BY id")]
    for start in range(0, len(ids), 50_000):
        refresh_visits(conn, ids[start : start + 50_000])
    hours = conn.execute(
        f"SELECT DISTINCT site, ts / {HOUR_MS} FROM events WHERE visitor IS NULL"
    ).fetchall()
    refresh_anon_hours(conn, [(str(site), int(hour)) for site, hour in hours])


def answers(
    dimension: str | None,
    has_filters: bool,
    has_goal: bool,
    edges: Iterable[tuple[int, int]],
) -> bool:
    """Whether the rollups answer a metrics query exactly: no filter, no goal, a rolled-up
    dimension (or none), and every range on whole UTC hours (``anon_hours``' grain) and at
    least 30 minutes long."""
    if has_filters or has_goal:
        return False
    if dimension is not None and (dimension == "*" or dimension not in ROLLUP_DIMENSIONS):
        return False
    return all(
        lo % HOUR_MS == 0 and hi % HOUR_MS == 0 and hi - lo >= HOUR_MS // 2 for lo, hi in edges
    )


def _event_match(dimension: str, alias: str) -> tuple[str, str]:
    """``(join, condition)`` selecting the events ``e`` of row ``alias`` that carry its value."""
    if dimension == "*":
        return "", "1"
    join = "LEFT JOIN visits v ON v.id = e.visit " if dimension in VISIT_LEVEL else ""
    condition = f"{key_sql(dimension)} IS {alias}.key"
    if dimension == "page":
        condition += " AND e.name = 'pageview'"
    return join, condition


def metrics_sql(dimension: str | None, ctes: list[str], bucketed: bool, page: str) -> str:
    """The rollup form of ``ReportsDatabase.metrics`` (same columns, same order).

    ``ctes`` holds ``scope`` and, when ``bucketed``, ``b``. A row counts its visitor when it
    touches the range and its predecessor in the chain ended before the range; rows that span
    the whole range without being inside it are checked against the events, and so are the
    pageview and event counts of rows that are not wholly inside.
    """
    dim = dimension or "*"
    ranges = list(ctes)
    if not bucketed:
        ranges.append("b(i, site, lo, hi) AS (SELECT NULL, site, lo, hi FROM scope)")
    key = "b.i" if bucketed else ("x.key" if dimension else "NULL")
    anon_key = "b.i" if bucketed else ("a.key" if dimension else "NULL")
    join, match = _event_match(dim, "t")
    in_range = f"FROM events e {join}WHERE e.visit = t.visit AND e.ts >= t.lo AND e.ts < t.hi"
    ranges.append(
        f"r AS (SELECT {key} AS k, x.visit, x.key, x.first_ts, x.last_ts, x.prev_last, "
        "x.pageviews, x.events, x.v_start, x.v_bounced, x.v_span, x.v_pageviews, "
        "b.lo, b.hi, s.hi AS shi FROM b JOIN scope s ON s.site = b.site "
        f"JOIN visit_keys x ON x.site = b.site AND x.dim = '{dim}' "
        "AND x.first_ts >= b.lo - coalesce((SELECT span FROM rollup_spans "
        "WHERE rollup_spans.site = b.site), 0) AND x.first_ts < b.hi AND x.last_ts >= b.lo)"
    )
    ranges.append(
        "t AS (SELECT *, first_ts >= lo AND last_ts < hi AS inside FROM r AS t "
        f"WHERE first_ts >= lo OR last_ts < hi OR EXISTS (SELECT 1 {in_range} AND {match}))"
    )
    is_visit = "(v_start >= lo AND v_start < hi AND first_ts < shi)"
    ranges.append(
        "rm AS (SELECT k, SUM(prev_last IS NULL OR prev_last < lo) AS visitors, "
        "SUM(CASE WHEN inside THEN pageviews ELSE "
        f"(SELECT count(*) {in_range} AND {match} AND e.name = 'pageview') END) AS pageviews, "
        "SUM(CASE WHEN inside THEN events ELSE "
        f"(SELECT count(*) {in_range} AND {match} "
        "AND e.name NOT IN ('pageview', 'engagement')) END) AS events, "
        f"SUM({is_visit}) AS visits, SUM({is_visit} AND v_bounced) AS bounces, "
        f"SUM(CASE WHEN {is_visit} AND NOT v_bounced THEN v_span ELSE 0 END) AS duration, "
        f"SUM(CASE WHEN {is_visit} THEN v_pageviews ELSE 0 END) AS visit_pageviews "
        "FROM t GROUP BY k)"
    )
    if dim in VISIT_LEVEL:
        ranges.append("an AS (SELECT NULL AS k, 0 AS pageviews, 0 AS events WHERE 0)")
    else:
        ranges.append(
            f"an AS (SELECT {anon_key} AS k, SUM(a.pageviews) AS pageviews, "
            "SUM(a.events) AS events FROM b JOIN anon_hours a ON a.site = b.site "
            f"AND a.dim = '{dim}' AND a.hour >= b.lo / {HOUR_MS} AND a.hour < b.hi / {HOUR_MS} "
            "GROUP BY 1)"
        )
    ranges.append("keys AS (SELECT k FROM rm UNION SELECT k FROM an)")
    return (
        "WITH " + ",\n".join(ranges) + " SELECT keys.k, coalesce(rm.visitors, 0), "
        "coalesce(rm.pageviews, 0) + coalesce(an.pageviews, 0), "
        "coalesce(rm.events, 0) + coalesce(an.events, 0), coalesce(rm.visits, 0), "
        "coalesce(rm.bounces, 0), coalesce(rm.duration, 0), coalesce(rm.visit_pageviews, 0), "
        "0, coalesce(an.pageviews, 0) FROM keys LEFT JOIN rm ON rm.k IS keys.k "
        "LEFT JOIN an ON an.k IS keys.k ORDER BY 2 DESC, 3 DESC, 1" + page
    )


def visitor_kinds_sql(scope_cte: str) -> str:
    """Distinct visitors of the period by kind, from the visits' chain rows."""
    return (
        f"WITH {scope_cte} SELECT x.kind, SUM(x.prev_last IS NULL OR x.prev_last < s.lo) "
        "FROM scope s JOIN visit_keys x ON x.site = s.site AND x.dim = '*' "
        "AND x.first_ts >= s.lo - coalesce((SELECT span FROM rollup_spans "
        "WHERE rollup_spans.site = s.site), 0) AND x.first_ts < s.hi AND x.last_ts >= s.lo "
        "WHERE x.first_ts >= s.lo OR x.last_ts < s.hi OR EXISTS (SELECT 1 FROM events e "
        "WHERE e.visit = x.visit AND e.ts >= s.lo AND e.ts < s.hi) GROUP BY x.kind"
    )
