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
ROLLUP_DIMENSIONS = ("*", "page", "entry_page", "source", "country", "browser", "os")
#: Dimensions whose value is the visit's (entry page): no row for unidentified events.
VISIT_LEVEL = frozenset({"entry_page"})
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
-- Every value ever seen per dimension: the reports seek each value's hour range.
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

_BOUNCED = (
    "v.pageviews = 1 AND (v.events = 0 OR NOT EXISTS (SELECT 1 FROM events i "
    "WHERE i.visit = v.id AND i.name NOT IN ('pageview', 'engagement')))"
)
_IDS = "(SELECT value FROM json_each(:ids))"
# What rows contribute to ``key_hours``: event counts at their hour, visit figures at the
# visit's start hour (from the first hour the visit shows the value).
_CONTRIBUTIONS = (
    "SELECT site, dim, key, hour, {sign} * pageviews, {sign} * events, 0, 0, 0, 0 "
    f"FROM visit_keys WHERE visit IN {_IDS} UNION ALL "
    f"SELECT site, dim, key, v_start / {HOUR_MS}, 0, 0, {{sign}}, {{sign}} * v_bounced, "
    "{sign} * (CASE WHEN v_bounced THEN 0 ELSE v_span END), {sign} * v_pageviews "
    f"FROM visit_keys WHERE visit IN {_IDS} AND lead"
)


def key_sql(dimension: str) -> str:
    """The value of ``dimension`` for an event ``e`` of visit ``v`` (the reports' expression)."""
    from collector.storage.reports_sqlite import DIMENSION_SQL

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
        "hour INTEGER, pageviews INTEGER, events INTEGER, visits INTEGER, bounces INTEGER, "
        "duration INTEGER, visit_pageviews INTEGER)"
    )
    chains = (
        "INSERT INTO temp.rollup_chains SELECT site, dim, visitor, key, first_ts "
        f"FROM visit_keys WHERE visit IN {_IDS}"
    )
    conn.execute(chains, params)
    conn.execute("INSERT INTO temp.rollup_delta " + _CONTRIBUTIONS.format(sign=-1), params)
    conn.execute(f"DELETE FROM visit_keys WHERE visit IN {_IDS}", params)
    for dimension in ROLLUP_DIMENSIONS:
        key = key_sql(dimension)
        where = " AND e.name = 'pageview'" if dimension == "page" else ""
        if dimension in VISIT_LEVEL:
            where += f" AND {key} IS NOT NULL"
        conn.execute(
            "INSERT INTO visit_keys (site, dim, key, hour, visit, visitor, kind, first_ts, "
            "last_ts, pageviews, events, lead, v_start, v_pageviews, v_bounced, v_span) "
            f"SELECT v.site, '{dimension}', {key}, e.ts / {HOUR_MS}, v.id, v.visitor, "
            "max(e.visitor_kind), min(e.ts), max(e.ts), SUM(e.name = 'pageview'), "
            "SUM(e.name NOT IN ('pageview', 'engagement')), "
            f"min(e.ts) / {HOUR_MS} = min(min(e.ts)) OVER (PARTITION BY v.id, {key}) / {HOUR_MS}, "
            f"v.start_ts, v.pageviews, {_BOUNCED}, v.last_ts - v.start_ts "
            "FROM visits v JOIN events e ON e.visit = v.id "
            f"WHERE v.id IN {_IDS}{where} GROUP BY v.id, {key}, e.ts / {HOUR_MS}",
            params,
        )
    conn.execute(chains, params)
    conn.execute("INSERT INTO temp.rollup_delta " + _CONTRIBUTIONS.format(sign=1), params)
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
    _apply_delta(conn)
    # Every row of a touched chain from the earliest touched point on gets its predecessor's
    # end again (rows before that point are not affected by the change).
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
    conn.execute("DELETE FROM temp.rollup_chains")


def _apply_delta(conn: sqlite3.Connection) -> None:
    """Add ``temp.rollup_delta`` into ``key_hours`` and drop the rows left at zero."""
    grouped = (
        "SELECT site, dim, key, hour, SUM(pageviews) AS pageviews, SUM(events) AS events, "
        "SUM(visits) AS visits, SUM(bounces) AS bounces, SUM(duration) AS duration, "
        "SUM(visit_pageviews) AS visit_pageviews FROM temp.rollup_delta "
        "GROUP BY site, dim, key, hour"
    )
    same = "h.site = d.site AND h.dim = d.dim AND h.key IS d.key AND h.hour = d.hour"
    conn.execute(
        "UPDATE key_hours AS h SET pageviews = h.pageviews + d.pageviews, "
        "events = h.events + d.events, visits = h.visits + d.visits, "
        "bounces = h.bounces + d.bounces, duration = h.duration + d.duration, "
        f"visit_pageviews = h.visit_pageviews + d.visit_pageviews FROM ({grouped}) AS d "
        f"WHERE {same}"
    )
    conn.execute(
        f"INSERT INTO key_hours SELECT * FROM ({grouped}) AS d "
        f"WHERE NOT EXISTS (SELECT 1 FROM key_hours h WHERE {same})"
    )
    conn.execute(
        "DELETE FROM key_hours WHERE rowid IN (SELECT h.rowid FROM "
        f"(SELECT DISTINCT site, dim, key, hour FROM temp.rollup_delta) d "
        f"JOIN key_hours h ON {same} WHERE h.pageviews = 0 AND h.events = 0 "
        "AND h.visits = 0)"
    )
    conn.execute("DELETE FROM temp.rollup_delta")


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


def metrics_sql(dimension: str | None, ctes: list[str], bucketed: bool, page: str) -> str:
    """The rollup form of ``ReportsDatabase.metrics`` (same columns, same order).

    ``ctes`` holds ``scope`` and, when ``bucketed``, ``b``. Ranges are on whole UTC hours, so a
    row (one visit, value and hour) is either inside a range or not: its visitor counts when its
    predecessor in the chain ended before the range. Sums come from ``key_hours`` and
    ``anon_hours``; a visit that started in the period but shows the value only after it is
    taken back out (``fix``).
    """
    dim = dimension or "*"
    ranges = list(ctes)
    if not bucketed:
        ranges.append("b(i, site, lo, hi) AS MATERIALIZED (SELECT NULL, site, lo, hi FROM scope)")
    key = "b.i" if bucketed else ("rk.key" if dimension else "NULL")
    # CROSS JOIN fixes the loop order: each bucket, each value, then that value's hour range
    # in the index (the planner would otherwise scan the whole dimension).
    per_value = f"FROM b CROSS JOIN rollup_keys rk ON rk.site = b.site AND rk.dim = '{dim}' CROSS "
    hours = f"{{t}}.hour >= b.lo / {HOUR_MS} AND {{t}}.hour < b.hi / {HOUR_MS}"
    same = f"{{t}}.site = b.site AND {{t}}.dim = '{dim}' AND {{t}}.key IS rk.key"
    # One index range per bucket and value, summed in a subquery: no sort of the rows.
    ranges.append(
        f"vis AS (SELECT k, SUM(visitors) AS visitors FROM (SELECT {key} AS k, "
        "(SELECT SUM(x.prev_last IS NULL OR x.prev_last < b.lo) FROM visit_keys x "
        f"WHERE {same.format(t='x')} AND {hours.format(t='x')}) AS visitors "
        f"{per_value[: -len('CROSS ')]}) WHERE visitors IS NOT NULL GROUP BY k)"
    )
    ranges.append(
        f"sums AS (SELECT {key} AS k, SUM(h.pageviews) AS pageviews, SUM(h.events) AS events, "
        "SUM(h.visits) AS visits, SUM(h.bounces) AS bounces, SUM(h.duration) AS duration, "
        f"SUM(h.visit_pageviews) AS visit_pageviews {per_value}"
        f"JOIN key_hours h ON {same.format(t='h')} AND {hours.format(t='h')} GROUP BY 1)"
    )
    # Visits that started in the period, counted at their start hour in ``key_hours``, whose
    # first event with the value comes after the period's end: not visits of that value here.
    fix_key = "bv.i" if bucketed else ("rk.key" if dimension else "NULL")
    fix_bucket = (
        "JOIN b bv ON bv.site = s.site AND x.v_start >= bv.lo AND x.v_start < bv.hi "
        if bucketed
        else ""
    )
    ranges.append(
        f"fix AS (SELECT {fix_key} AS k, COUNT(*) AS visits, SUM(x.v_bounced) AS bounces, "
        "SUM(CASE WHEN x.v_bounced THEN 0 ELSE x.v_span END) AS duration, "
        "SUM(x.v_pageviews) AS visit_pageviews FROM scope s "
        f"CROSS JOIN rollup_keys rk ON rk.site = s.site AND rk.dim = '{dim}' "
        f"CROSS JOIN visit_keys x ON x.site = s.site AND x.dim = '{dim}' AND x.key IS rk.key "
        f"AND x.hour >= s.hi / {HOUR_MS} AND x.hour <= (s.hi + coalesce((SELECT span "
        f"FROM rollup_spans WHERE rollup_spans.site = s.site), 0)) / {HOUR_MS} "
        f"{fix_bucket}WHERE x.lead AND x.v_start >= s.lo AND x.v_start < s.hi GROUP BY 1)"
    )
    if dim in VISIT_LEVEL:
        ranges.append("an AS (SELECT NULL AS k, 0 AS pageviews, 0 AS events WHERE 0)")
    else:
        anon_key = "b.i" if bucketed else ("a.key" if dimension else "NULL")
        ranges.append(
            f"an AS (SELECT {anon_key} AS k, SUM(a.pageviews) AS pageviews, "
            "SUM(a.events) AS events FROM b JOIN anon_hours a ON a.site = b.site "
            f"AND a.dim = '{dim}' AND {hours.format(t='a')} GROUP BY 1)"
        )
    ranges.append("keys AS (SELECT k FROM vis UNION SELECT k FROM an)")
    return (
        "WITH " + ",\n".join(ranges) + " SELECT keys.k, coalesce(vis.visitors, 0), "
        "coalesce(sums.pageviews, 0) + coalesce(an.pageviews, 0), "
        "coalesce(sums.events, 0) + coalesce(an.events, 0), "
        "coalesce(sums.visits, 0) - coalesce(fix.visits, 0), "
        "coalesce(sums.bounces, 0) - coalesce(fix.bounces, 0), "
        "coalesce(sums.duration, 0) - coalesce(fix.duration, 0), "
        "coalesce(sums.visit_pageviews, 0) - coalesce(fix.visit_pageviews, 0), "
        "0, coalesce(an.pageviews, 0) FROM keys LEFT JOIN vis ON vis.k IS keys.k "
        "LEFT JOIN sums ON sums.k IS keys.k LEFT JOIN fix ON fix.k IS keys.k "
        "LEFT JOIN an ON an.k IS keys.k ORDER BY 2 DESC, 3 DESC, 1" + page
    )


def visitor_kinds_sql(scope_cte: str) -> str:
    """Distinct visitors of the period by kind, from the visits' chain rows: counts of the two
    kinds, and of rows of any other kind (then the caller asks the events instead)."""
    counted = "(x.prev_last IS NULL OR x.prev_last < s.lo)"
    return (
        f"WITH {scope_cte} SELECT coalesce(SUM({counted} AND x.kind = 'client'), 0), "
        f"coalesce(SUM({counted} AND x.kind = 'cookieless'), 0), "
        "coalesce(SUM(x.kind IS NULL OR x.kind NOT IN ('client', 'cookieless')), 0) "
        "FROM scope s CROSS JOIN visit_keys x ON x.site = s.site AND x.dim = '*' "
        f"AND x.key IS NULL AND x.hour >= s.lo / {HOUR_MS} AND x.hour < s.hi / {HOUR_MS}"
    )
