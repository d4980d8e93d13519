"""The SQL of ``metrics`` on ClickHouse (totals, time buckets and breakdowns): the same rows as
``ReportsDatabase.metrics``.

The period's events are read for the event metrics and their visits for the visit metrics; the
visits are read once, from the period only (see ``_visit_rows``). A breakdown by an event value
pairs each visit with every value its selected events have; a breakdown by a visit value
(entry or exit page) first sums each visit's selected events, then groups the visits.
"""

from __future__ import annotations

from collections.abc import Sequence

from collector.storage.clickhouse.sql import (
    EVENTS,
    VISITS,
    Params,
    at,
    bucket_cte,
    bucketed,
    dimension_sql,
    filters_sql,
    goal_sql,
    ms,
    needs_visit,
    scope_sql,
    visit_join,
    visitor_key,
)
from collector.storage.rows import (
    PAGEVIEW_DIMENSIONS,
    VISIT_DIMENSIONS,
    Bucket,
    Filter,
    Goal,
    SiteRange,
)

ORDER = " ORDER BY 2 DESC, 3 DESC, k ASC NULLS FIRST"
# A one-pageview visit bounced unless one of its events (selected or not) is an interaction.
INTERACTION = "i.name NOT IN ('pageview', 'engagement')"


def metrics_sql(
    ranges: Sequence[SiteRange],
    filters: Sequence[Filter],
    *,
    dimension: str | None,
    buckets: Sequence[Bucket] | None,
    goal: Goal | None,
    limit: int | None,
    offset: int,
) -> tuple[str, Params]:
    """The query and its parameters; rows are ``(key, visitors, pageviews, events, visits,
    bounces, duration, visit_pageviews, converted, unidentified)``."""
    params = Params()
    scope = scope_sql(ranges, params, "e.site", "e.ts")
    if dimension in VISIT_DIMENSIONS and buckets is None and goal is None:
        return _by_visit_value(ranges, filters, dimension, params, scope, limit, offset), params
    events, visits = EVENTS, VISITS
    ctes = []
    by_dimension = dimension is not None and buckets is None
    if buckets is not None:
        ctes.append(bucket_cte(buckets, params))
        events = bucketed(EVENTS, "ts")
        visits = bucketed(VISITS, "start_ts", created="created_ts")
        event_key, visit_bucket = "e.bucket", "v.bucket"
    else:
        event_key = "CAST(NULL AS Nullable(Int64))"
        if dimension is not None:
            event_key = dimension_sql(dimension, params)
        visit_bucket = "CAST(NULL AS Nullable(Int64))"
    only_pageviews = " AND e.name = 'pageview'" if dimension in PAGEVIEW_DIMENSIONS else ""
    where = filters_sql(filters, params)
    joined = visit_join(needs_visit(filters, dimension), scope)
    not_null = " AND k IS NOT NULL" if dimension in VISIT_DIMENSIONS else ""
    sel = (
        f"SELECT * FROM (SELECT e.site AS site, e.visitor AS visitor, e.visit AS visit, "
        f"e.name AS name, {event_key} AS k FROM {events} AS e {joined} "
        f"WHERE {scope} AND {where}{only_pageviews}) WHERE 1{not_null}"
    )
    # By dimension, the join with the selected (value, visit) pairs keeps only the visits with
    # a selected event; otherwise ``v.id IN (…)`` does (the primary key finds them). The
    # buckets cover the period: the selected events' visits are found without them.
    with_selected = ""
    if not by_dimension:
        plain = f"{EVENTS} AS e {joined} WHERE {scope} AND {where}{only_pageviews}"
        with_selected = f" AND v.id IN (SELECT e.visit FROM {plain})"
    ctes += [
        f"sel AS ({sel})",
        f"ev AS (SELECT k, toInt64(uniqExact({visitor_key('visitor')})) AS visitors, "
        "toInt64(countIf(name = 'pageview')) AS pageviews, "
        "toInt64(countIf(name NOT IN ('pageview', 'engagement'))) AS events, "
        "toInt64(countIf(name = 'pageview' AND visitor IS NULL)) AS unidentified "
        "FROM sel GROUP BY k)",
        _visit_rows(ranges, params, visits, visit_bucket, with_selected),
    ]
    totals = (
        "toInt64(count()) AS visits, toInt64(countIf(bounced)) AS bounces, "
        "toInt64(sum(if(bounced, 0, span))) AS duration, toInt64(sum(pv)) AS visit_pageviews"
    )
    if by_dimension:
        # A visit counts under every value its selected events have: each value's visits as a
        # bitmap of ids (dense numbers: cheaper than hashing every value and visit pair).
        ctes.append(
            f"vm AS (SELECT vk.k AS k, {totals} FROM (SELECT k, arrayJoin(bitmapToArray(ids)) "
            "AS visit FROM (SELECT k, groupBitmapState(assumeNotNull(visit)) AS ids FROM sel "
            "WHERE visit IS NOT NULL GROUP BY k)) AS vk INNER JOIN vs ON vs.visit = vk.visit "
            "GROUP BY vk.k)"
        )
    else:
        ctes.append(f"vm AS (SELECT vb AS k, {totals} FROM vs GROUP BY vb)")
    parts = [
        "SELECT k, visitors, pageviews, events, 0 AS visits, 0 AS bounces, 0 AS duration, "
        "0 AS visit_pageviews, 0 AS converted, unidentified, 1 AS listed FROM ev",
        "SELECT k, 0, 0, 0, visits, bounces, duration, visit_pageviews, 0, 0, 1 FROM vm",
    ]
    if goal is not None:
        goal_scope = scope_sql(ranges, params, "e.site", "e.ts")
        goal_bucket = "e.bucket" if buckets is not None else "CAST(NULL AS Nullable(Int64))"
        ctes.append(
            f"goal_ev AS (SELECT DISTINCT e.site AS site, e.visitor AS visitor, "
            f"{goal_bucket} AS i FROM {events} AS e WHERE {goal_scope} "
            f"AND e.visitor IS NOT NULL AND {goal_sql(goal, params)})"
        )
        same_bucket = " AND g.i = sel.k" if buckets is not None else ""
        ctes.append(
            "gm AS (SELECT k, toInt64(count()) AS converted FROM (SELECT DISTINCT sel.k AS k, "
            "sel.site, sel.visitor FROM sel INNER JOIN goal_ev AS g ON g.site = sel.site "
            f"AND g.visitor = sel.visitor{same_bucket}) GROUP BY k)"
        )
        parts.append("SELECT k, 0, 0, 0, 0, 0, 0, 0, converted, 0, 0 FROM gm")
    sql = (
        "WITH "
        + ",\n".join(ctes)
        + " SELECT k, sum(visitors), sum(pageviews), sum(events), sum(visits), sum(bounces), "
        "sum(duration), sum(visit_pageviews), sum(converted), sum(unidentified) FROM ("
        + " UNION ALL ".join(parts)
        + ") GROUP BY k HAVING max(listed) = 1"
        + ORDER
        + _page(params, limit, offset)
    )
    return sql, params


def _visit_rows(
    ranges: Sequence[SiteRange], params: Params, visits: str, bucket: str, condition: str
) -> str:
    """``vs``: each visit starting in the period once, with its bucket, pageviews, time span
    and whether it bounced. A visit's ``created_ts`` (its first stored event's time) is never
    before its start: it prunes the partitions read."""
    visit_scope = scope_sql(ranges, params, "v.site", "v.start_ts")
    lowest = at(params.add(min((r.start_ms for r in ranges), default=0), "Int64"))
    sites = params.add(sorted({r.site for r in ranges}), "Array(String)")
    return (
        f"vs AS (SELECT v.id AS visit, {bucket} AS vb, toInt64(v.pageviews) AS pv, "
        f"{ms('v.last_ts')} - {ms('v.start_ts')} AS span, "
        "v.pageviews = 1 AND (v.events = 0 OR v.id NOT IN (SELECT DISTINCT i.visit FROM "
        f"{EVENTS} AS i WHERE i.site IN {sites} AND i.ts >= {lowest} "
        f"AND i.visit IS NOT NULL AND {INTERACTION})) AS bounced "
        f"FROM {visits} AS v WHERE {visit_scope} AND v.created_ts >= {lowest}{condition})"
    )


def _by_visit_value(
    ranges: Sequence[SiteRange],
    filters: Sequence[Filter],
    dimension: str,
    params: Params,
    scope: str,
    limit: int | None,
    offset: int,
) -> str:
    """By entry or exit page: the value is the visit's, so each visit's selected events are
    summed first (every event of a visit carries the visit's visitor: both ingests assign it),
    then the visits are grouped by value, with their own metrics joined once."""
    key = dimension_sql(dimension, params)
    where = filters_sql(filters, params)
    per_visit = (
        f"pv AS (SELECT e.visit AS visit, any({visitor_key('e.visitor')}) AS who, "
        "countIf(e.name = 'pageview') AS pageviews, "
        "countIf(e.name NOT IN ('pageview', 'engagement')) AS events, "
        "countIf(e.name = 'pageview' AND e.visitor IS NULL) AS unidentified "
        f"FROM {EVENTS} AS e {visit_join(needs_visit(filters), scope)} "
        f"WHERE {scope} AND {where} AND e.visit IS NOT NULL GROUP BY visit)"
    )
    null_bucket = "CAST(NULL AS Nullable(Int64))"
    return (
        f"WITH {_visit_rows(ranges, params, VISITS, null_bucket, '')},\n{per_visit} "
        f"SELECT {key} AS k, toInt64(uniqExact(p.who)), toInt64(sum(p.pageviews)), "
        "toInt64(sum(p.events)), toInt64(count(vs.visit)), toInt64(countIf(vs.bounced)), "
        "toInt64(sum(if(vs.bounced, 0, vs.span))), toInt64(sum(vs.pv)), 0, "
        f"toInt64(sum(p.unidentified)) FROM pv AS p INNER JOIN (SELECT * FROM {VISITS} "
        f"WHERE id IN (SELECT e.visit FROM {EVENTS} AS e WHERE {scope})) AS v "
        "ON v.id = p.visit LEFT JOIN vs ON vs.visit = p.visit WHERE k IS NOT NULL GROUP BY k"
        + ORDER
        + _page(params, limit, offset)
    )


def _page(params: Params, limit: int | None, offset: int) -> str:
    if limit is None:
        return ""
    return f" LIMIT {params.add(limit, 'UInt64')} OFFSET {params.add(offset, 'UInt64')}"
