"""The report SQL for ClickHouse: the same methods and results as ``reports_sqlite``.

Every request value is a typed server-side parameter (``{p0:String}``); dimension names map through
a fixed allowlist, as in SQLite (:mod:`collector.storage.clickhouse.sql`). Counts of distinct
visitors use ``uniqExact`` (never an approximation). Queries run with ``final = 1`` (each visit's
latest version) and ``join_use_nulls = 1`` (SQL's NULLs for unmatched outer-join rows), so they read
like their SQLite twins.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from collector.storage.clickhouse.client import Client
from collector.storage.clickhouse.metrics import metrics_sql
from collector.storage.clickhouse.sql import (
    EVENTS,
    SETTINGS,
    SOURCE,
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
from collector.storage.ports import SavedStore
from collector.storage.rows import (
    PROP_PREFIX,
    Bucket,
    Filter,
    Goal,
    MetricRow,
    SavedFunnel,
    SiteRange,
    StepEvent,
)


class ClickHouseReports:
    """The reports' queries over ClickHouse; goals and funnels are read and saved in the data
    directory's SQLite file (``saved``)."""

    def __init__(self, client: Client, saved: SavedStore) -> None:
        self._client = client
        self._saved = saved

    def _rows(self, sql: str, params: Params | dict[str, Any]) -> list[tuple[Any, ...]]:
        values = params.values if isinstance(params, Params) else params
        return self._client.rows(sql, values, **SETTINGS)

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
        """See ``ReportsDatabase.metrics``: the same rows, computed in ClickHouse."""
        sql, params = metrics_sql(
            ranges,
            filters,
            dimension=dimension,
            buckets=buckets,
            goal=goal,
            limit=limit,
            offset=offset,
        )
        return [
            MetricRow(
                key=row[0],
                visitors=int(row[1]),
                pageviews=int(row[2]),
                events=int(row[3]),
                visits=int(row[4]),
                bounces=int(row[5]),
                duration_ms=int(row[6]),
                visit_pageviews=int(row[7]),
                converted=int(row[8]),
                unidentified_pageviews=int(row[9]),
            )
            for row in self._rows(sql, params)
        ]

    def step_events(
        self,
        ranges: Sequence[SiteRange],
        filters: Sequence[Filter],
        goals: Sequence[Goal],
        *,
        prop: str | None = None,
    ) -> list[StepEvent]:
        params = Params()
        matches = [goal_sql(goal, params) for goal in goals]
        value = "CAST(NULL AS Nullable(String))"
        if prop is not None:
            value = dimension_sql(PROP_PREFIX + prop, params)
            matches.append(f"{value} IS NOT NULL")
        sql = (
            f"SELECT e.site, e.visitor, e.visit, {ms('e.ts')}, e.name, e.path, {value} "
            f"FROM {EVENTS} AS e {visit_join(needs_visit(filters))} "
            f"WHERE {scope_sql(ranges, params, 'e.site', 'e.ts')} AND e.visitor IS NOT NULL "
            f"AND ({' OR '.join(matches) or '0'}) AND {filters_sql(filters, params)} "
            "ORDER BY e.ts, e.id"
        )
        return [StepEvent(*row) for row in self._rows(sql, params)]

    def client_visit_starts(
        self, ranges: Sequence[SiteRange], end_ms: int, filters: Sequence[Filter]
    ) -> list[tuple[str, bytes, int]]:
        if not filters:
            return self._new_visitors_visits(ranges, end_ms)
        params = Params()
        site_list = params.add(sorted({r.site for r in ranges}), "Array(String)")
        end = at(params.add(end_ms, "Int64"))
        lowest = at(params.add(min((r.start_ms for r in ranges), default=0), "Int64"))
        # The visits with a client event matching the filters, as one bitmap of ids (visit ids
        # are dense: far cheaper to build and probe than a hash set of millions).
        kept = (
            f"(SELECT groupBitmapState(assumeNotNull(e.visit)) FROM {EVENTS} AS e "
            f"{visit_join(needs_visit(filters))} WHERE e.site IN {site_list} "
            "AND e.visit IS NOT NULL AND e.visitor_kind = 'client' "
            f"AND {filters_sql(filters, params)})"
        )
        # Only visitors with a visit starting in the range can have their first one there (a
        # visit's created_ts is never before its start: it prunes partitions). Each visitor's
        # visits are gathered in one row, kept when the first starts in the range.
        starting = (
            f"SELECT {visitor_key('c.visitor')} FROM {VISITS} AS c "
            f"WHERE {scope_sql(ranges, params, 'c.site', 'c.start_ts')} "
            f"AND c.created_ts >= {lowest}"
        )
        sql = (
            f"WITH {kept} AS kept SELECT site, visitor, toUnixTimestamp64Milli(s.1) FROM ("
            f"SELECT v.site AS site, {visitor_key('v.visitor')} AS vk, any(v.visitor) AS visitor, "
            "arraySort(groupArray((v.start_ts, v.id))) AS starts "
            f"FROM {VISITS} AS v WHERE v.site IN {site_list} AND v.start_ts < {end} "
            f"AND {visitor_key('v.visitor')} IN ({starting}) AND bitmapContains(kept, v.id) "
            f"GROUP BY site, vk HAVING {scope_sql(ranges, params, 'site', 'min(v.start_ts)')}) "
            "ARRAY JOIN starts AS s ORDER BY s.1, s.2"
        )
        return [(row[0], row[1], int(row[2])) for row in self._rows(sql, params)]

    def _new_visitors_visits(
        self, ranges: Sequence[SiteRange], end_ms: int
    ) -> list[tuple[str, bytes, int]]:
        """``client_visit_starts`` without filters: the new visitors are those whose first
        followed visit (``first_visits``) starts in the range, and every visit of theirs starts
        no earlier, so only visits and events from the earliest range start on are read."""
        params = Params()
        site_list = params.add(sorted({r.site for r in ranges}), "Array(String)")
        end = at(params.add(end_ms, "Int64"))
        lowest = at(params.add(min((r.start_ms for r in ranges), default=0), "Int64"))
        # Only a visitor with a row in the range can be new: their rows alone are grouped (a
        # visitor's rows are many until merged; the smallest start is theirs).
        in_range = scope_sql(ranges, params, "g.site", "g.first_ts")
        new = (
            "SELECT site, visitor FROM {db}.first_visits AS f "
            f"WHERE f.site IN {site_list} AND f.visitor IN (SELECT g.visitor "
            f"FROM {{db}}.first_visits AS g WHERE {in_range}) "
            f"GROUP BY site, visitor HAVING {scope_sql(ranges, params, 'site', 'min(f.first_ts)')}"
        )
        # An event is never earlier than its visit's start: the followed visits from ``lowest``
        # on are found among the events from ``lowest`` on (the primary key's days).
        followed = (
            f"(SELECT groupBitmapState(assumeNotNull(e.visit)) FROM {EVENTS} AS e "
            f"WHERE e.site IN {site_list} AND e.ts >= {lowest} AND e.visit IS NOT NULL "
            "AND e.visitor_kind = 'client')"
        )
        # FINAL is written on visits alone: first_visits needs no merge before its GROUP BY,
        # and merging it first would cost more than the rest of the query.
        sql = (
            f"WITH {followed} AS followed SELECT v.site, v.visitor, {ms('v.start_ts')} "
            f"FROM {VISITS} AS v FINAL WHERE v.site IN {site_list} AND v.created_ts >= {lowest} "
            f"AND v.start_ts >= {lowest} AND v.start_ts < {end} "
            f"AND (v.site, v.visitor) IN ({new}) AND bitmapContains(followed, v.id) "
            "ORDER BY v.start_ts, v.id"
        )
        rows = self._client.rows(sql, params.values, **{**SETTINGS, "final": 0})
        return [(row[0], row[1], int(row[2])) for row in rows]

    def visitor_kinds(
        self, ranges: Sequence[SiteRange], filters: Sequence[Filter]
    ) -> dict[str, int]:
        params = Params()
        sql = (
            f"SELECT e.visitor_kind, uniqExact({visitor_key('e.visitor')}) FROM {EVENTS} AS e "
            f"{visit_join(needs_visit(filters))} "
            f"WHERE {scope_sql(ranges, params, 'e.site', 'e.ts')} AND e.visitor IS NOT NULL "
            f"AND {filters_sql(filters, params)} GROUP BY e.visitor_kind "
            "ORDER BY e.visitor_kind NULLS FIRST"
        )
        return {str(kind): int(count) for kind, count in self._rows(sql, params)}

    def visitor_kind_seen(
        self, ranges: Sequence[SiteRange], filters: Sequence[Filter], kind: str
    ) -> bool:
        params = Params()
        sql = (
            f"SELECT 1 FROM {EVENTS} AS e {visit_join(needs_visit(filters))} "
            f"WHERE {scope_sql(ranges, params, 'e.site', 'e.ts')} AND e.visitor IS NOT NULL "
            f"AND e.visitor_kind = {params.add(kind, 'String')} "
            f"AND {filters_sql(filters, params)} LIMIT 1"
        )
        return bool(self._rows(sql, params))

    def consent_by_day(
        self, buckets: Sequence[Bucket], filters: Sequence[Filter]
    ) -> list[tuple[int, str, int, int, int]]:
        params = Params()
        sites = [b.site for b in buckets]
        counts = f"count(), uniqExact({visitor_key('e.visitor')}), uniqExact(e.visit)"
        if len(set(sites)) == len(sites):
            # One bucket per site (the period's totals): each site's range is its bucket, so
            # the events are read by range and no join finds their bucket.
            ranges = [SiteRange(b.site, "UTC", b.start_ms, b.end_ms) for b in buckets]
            index = (
                f"transform(CAST(e.site AS String), {params.add(sites, 'Array(String)')}, "
                f"{params.add([b.index for b in buckets], 'Array(Int64)')}, toInt64(-1))"
            )
            sql = (
                f"SELECT {index} AS i, e.mode, {counts} FROM {EVENTS} AS e "
                f"{visit_join(needs_visit(filters))} "
                f"WHERE {scope_sql(ranges, params, 'e.site', 'e.ts')} "
                f"AND {filters_sql(filters, params)} GROUP BY i, e.mode ORDER BY i, e.mode"
            )
            return [
                (int(r[0]), r[1], int(r[2]), int(r[3]), int(r[4])) for r in self._rows(sql, params)
            ]
        sql = (
            f"WITH {bucket_cte(buckets, params)} "
            f"SELECT e.bucket AS i, e.mode, {counts} "
            f"FROM {bucketed(EVENTS, 'ts')} AS e {visit_join(needs_visit(filters))} "
            f"WHERE {filters_sql(filters, params)} GROUP BY i, e.mode ORDER BY i, e.mode"
        )
        return [(int(r[0]), r[1], int(r[2]), int(r[3]), int(r[4])) for r in self._rows(sql, params)]

    def reason_counts(
        self, ranges: Sequence[SiteRange], filters: Sequence[Filter]
    ) -> list[tuple[str, str, int]]:
        params = Params()
        sql = (
            f"SELECT e.mode, e.reasons, count() FROM {EVENTS} AS e "
            f"{visit_join(needs_visit(filters))} "
            f"WHERE {scope_sql(ranges, params, 'e.site', 'e.ts')} "
            f"AND {filters_sql(filters, params)} GROUP BY e.mode, e.reasons "
            "ORDER BY e.mode, e.reasons"
        )
        return [(r[0], r[1], int(r[2])) for r in self._rows(sql, params)]

    def dropped_by_day(
        self, sites: Sequence[str], first_day: str, last_day: str
    ) -> list[tuple[str, str, int]]:
        sql = (
            "SELECT day, reason, sum(hits) FROM {db}.dropped_hits "
            "WHERE site IN {sites:Array(String)} AND day >= {first:String} "
            "AND day <= {last:String} GROUP BY day, reason ORDER BY day, reason"
        )
        params = {"sites": list(sites), "first": first_day, "last": last_day}
        return [(r[0], r[1], int(r[2])) for r in self._rows(sql, params)]

    def conversions_by_mode(
        self, ranges: Sequence[SiteRange], filters: Sequence[Filter], goal: Goal
    ) -> list[tuple[str, str | None, int]]:
        params = Params()
        first_source = SOURCE.replace("e.", "f.")
        sql = (
            f"WITH g AS (SELECT e.mode AS mode, e.visit AS visit FROM {EVENTS} AS e "
            f"{visit_join(needs_visit(filters))} "
            f"WHERE {scope_sql(ranges, params, 'e.site', 'e.ts')} AND {goal_sql(goal, params)} "
            f"AND {filters_sql(filters, params)}), "
            # The source of each converting visit's first event (by time, then id).
            f"first AS (SELECT f.visit AS visit, argMin({first_source}, (f.ts, f.id)) AS src "
            f"FROM {EVENTS} AS f WHERE f.visit IN (SELECT visit FROM g WHERE mode = 'granted') "
            "GROUP BY f.visit) "
            "SELECT g.mode AS mode, if(g.mode = 'granted', first.src, NULL) AS src, count() "
            "FROM g LEFT JOIN first ON first.visit = g.visit GROUP BY mode, src "
            "ORDER BY mode, src NULLS FIRST"
        )
        return [(r[0], r[1], int(r[2])) for r in self._rows(sql, params)]

    def revenue_events(
        self, sites: Sequence[str], end_ms: int
    ) -> list[tuple[str, bytes, int, str, str]]:
        sql = (
            f"SELECT site, user, {ms('ts')}, revenue_amount, revenue_currency FROM {EVENTS} "
            "WHERE site IN {sites:Array(String)} AND ts < fromUnixTimestamp64Milli({end:Int64}, "
            "'UTC') AND mode = 'granted' AND user IS NOT NULL AND revenue_amount IS NOT NULL "
            "ORDER BY ts, id"
        )
        params = {"sites": list(sites), "end": end_ms}
        return [(r[0], r[1], int(r[2]), r[3], r[4]) for r in self._rows(sql, params)]

    def recent_pages(self, sites: Sequence[str], since_ms: int, until_ms: int) -> dict[str, Any]:
        params = {"sites": list(sites), "since": since_ms, "until": until_ms}
        where = (
            "site IN {sites:Array(String)} "
            "AND ts >= fromUnixTimestamp64Milli({since:Int64}, 'UTC') "
            "AND ts <= fromUnixTimestamp64Milli({until:Int64}, 'UTC')"
        )
        visitors, pageviews = self._rows(
            f"SELECT uniqExact({visitor_key('visitor')}), countIf(name = 'pageview') FROM {EVENTS} "
            f"WHERE {where}",
            params,
        )[0]
        pages = self._rows(
            f"SELECT path, toInt64(uniqExact({visitor_key('visitor')})), toInt64(count()) "
            f"FROM {EVENTS} WHERE {where} AND name = 'pageview' GROUP BY path "
            "ORDER BY 2 DESC, 3 DESC, path LIMIT 50",
            params,
        )
        return {"visitors": int(visitors), "pageviews": int(pageviews), "pages": pages}

    # The filtered forms of recent_pages and revenue_events, and engaged time (as in SQLite).

    def recent_pages_where(
        self, sites: Sequence[str], since_ms: int, until_ms: int, filters: Sequence[Filter]
    ) -> dict[str, Any]:
        params = Params()
        where = (
            f"e.site IN {params.add(list(sites), 'Array(String)')} "
            f"AND e.ts >= {at(params.add(since_ms, 'Int64'))} "
            f"AND e.ts <= {at(params.add(until_ms, 'Int64'))} AND {filters_sql(filters, params)}"
        )
        source = f"{EVENTS} AS e {visit_join(needs_visit(filters))}"
        visitors, pageviews = self._rows(
            f"SELECT uniqExact({visitor_key('e.visitor')}), countIf(e.name = 'pageview') "
            f"FROM {source} WHERE {where}",
            params,
        )[0]
        pages = self._rows(
            f"SELECT e.path, toInt64(uniqExact({visitor_key('e.visitor')})), toInt64(count()) "
            f"FROM {source} "
            f"WHERE {where} AND e.name = 'pageview' GROUP BY e.path "
            "ORDER BY 2 DESC, 3 DESC, e.path LIMIT 50",
            params,
        )
        return {"visitors": int(visitors), "pageviews": int(pageviews), "pages": pages}

    def revenue_events_where(
        self, sites: Sequence[str], end_ms: int, filters: Sequence[Filter]
    ) -> list[tuple[str, bytes, int, str, str]]:
        params = Params()
        sql = (
            f"SELECT e.site, e.user, {ms('e.ts')}, e.revenue_amount, e.revenue_currency "
            f"FROM {EVENTS} AS e {visit_join(needs_visit(filters))} "
            f"WHERE e.site IN {params.add(list(sites), 'Array(String)')} "
            f"AND e.ts < {at(params.add(end_ms, 'Int64'))} AND e.mode = 'granted' "
            "AND e.user IS NOT NULL AND e.revenue_amount IS NOT NULL "
            f"AND {filters_sql(filters, params)} ORDER BY e.ts, e.id"
        )
        return [(r[0], r[1], int(r[2]), r[3], r[4]) for r in self._rows(sql, params)]

    def engaged_time(self, ranges: Sequence[SiteRange], filters: Sequence[Filter]) -> int:
        params = Params()
        sql = (
            f"SELECT toInt64(sum(e.engaged_ms)) FROM {EVENTS} AS e "
            f"{visit_join(needs_visit(filters))} "
            f"WHERE {scope_sql(ranges, params, 'e.site', 'e.ts')} "
            f"AND e.engaged_ms IS NOT NULL AND {filters_sql(filters, params)}"
        )
        return int(self._rows(sql, params)[0][0] or 0)

    # Goals and funnels live with the accounts, in SQLite.

    def stored_goals(self, sites: Sequence[str]) -> list[tuple[str, str, str, str]]:
        return self._saved.stored_goals(sites)

    def save_goal(self, site: str, goal: Goal, created_ms: int) -> None:
        self._saved.save_goal(site, goal, created_ms)

    def delete_goal(self, site: str, name: str) -> bool:
        return self._saved.delete_goal(site, name)

    def stored_funnels(self, sites: Sequence[str]) -> list[SavedFunnel]:
        return self._saved.stored_funnels(sites)

    def save_funnel(self, funnel: SavedFunnel, created_ms: int) -> None:
        self._saved.save_funnel(funnel, created_ms)

    def delete_funnel(self, site: str, name: str) -> bool:
        return self._saved.delete_funnel(site, name)
