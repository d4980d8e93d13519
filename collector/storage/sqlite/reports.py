"""All the report SQL: parameterised queries over ``events``, ``visits`` and ``dropped_hits``.

Nothing from a request is ever spliced into SQL text (see :mod:`collector.storage.sqlite.sql`
for the dimensions, filters and goals). Each call opens its own read connection (WAL readers
never block the writer), so reports run in worker threads.
"""

from __future__ import annotations

import operator
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

import msgspec

from collector.storage.rows import (
    PAGEVIEW_DIMENSIONS,
    PROP_PREFIX,
    VISIT_DIMENSIONS,
    Bucket,
    Filter,
    Goal,
    MetricRow,
    SiteRange,
    StepEvent,
)
from collector.storage.sqlite import layout as layout_sqlite
from collector.storage.sqlite import rollup_reports as rollup_reports_sqlite
from collector.storage.sqlite.layout import BUILT_IN_NAMES, CUSTOM_TERM
from collector.storage.sqlite.saved import SavedDatabase
from collector.storage.sqlite.sql import (
    BOUNCED,
    ID_COLUMNS,
    SOURCE,
    Params,
    dimension_sql,
    filters_sql,
    goal_sql,
    scope_json,
)

#: Step events as :meth:`ReportsDatabase._page_step_events` reads them: by time, then as stored.
_TIME_ORDER = operator.itemgetter(3, 6)
#: Events that are not interactions: they neither count as events nor save a visit from bouncing.
NON_INTERACTIONS = ("pageview", "engagement")


def _scope_cte(site_key: str) -> str:
    """``scope(site, sk, lo, hi)``: each site's range; ``sk`` is what ``events`` holds for the
    site (``site_key`` of the site's name, ``j.value[0]``)."""
    name = "json_extract(j.value, '$[0]')"
    return (
        f"scope(site, sk, lo, hi) AS MATERIALIZED (SELECT {name}, {site_key.format(name)}, "
        "json_extract(j.value, '$[1]'), json_extract(j.value, '$[2]') FROM json_each(:scope) j)"
    )


# MATERIALIZED: the ranges are parsed from JSON once, not on every row that reads them.
def _bucket_cte(site_key: str) -> str:
    name = "json_extract(j.value, '$[1]')"
    return (
        f"b(i, site, sk, lo, hi) AS MATERIALIZED (SELECT json_extract(j.value, '$[0]'), {name}, "
        f"{site_key.format(name)}, json_extract(j.value, '$[2]'), json_extract(j.value, '$[3]') "
        "FROM json_each(:buckets) j)"
    )


class ReportsDatabase(SavedDatabase):
    """A read connection on the events database, for the duration of one report call (the
    saved goals and funnels are read on the same connection, in the same snapshot).

    ``rollups=False`` reads the events only, as every report does for the days queued for a
    rollup rebuild: the reference the report benchmark checks the rollups' answers against."""

    def __init__(self, conn: sqlite3.Connection, *, rollups: bool = True) -> None:
        super().__init__(conn)
        self._use_rollups = rollups
        self._compact = layout_sqlite.layout_of(conn)[0] == layout_sqlite.COMPACT
        # Engaged time summed by the period's totals read from the events, by period and
        # filters: the aggregate asks for both, and the call's one snapshot gives the same sum.
        self._engaged: dict[bytes, int] = {}
        # How ``events`` names a site: its id in the compact layout's dictionary, where the
        # index on (site, ts) is; its name in the first layout.
        self._site = "e.site_id" if self._compact else "e.site"
        site_key = "(SELECT id FROM strings WHERE value = {})" if self._compact else "{}"
        self._scope_cte = _scope_cte(site_key)
        self._bucket_cte = _bucket_cte(site_key)
        self._in_scope = f"JOIN events e ON {self._site} = s.sk AND e.ts >= s.lo AND e.ts < s.hi"
        # The sites of a ``:sites`` JSON list, as ``events`` names them.
        self._sites_in = (
            "(SELECT id FROM strings WHERE value IN (SELECT value FROM json_each(:sites)))"
            if self._compact
            else "(SELECT value FROM json_each(:sites))"
        )

    def _stored(self, column: str) -> str:
        """``e.<column>`` as stored: its dictionary id in the compact layout, to group by
        without decoding every row (:meth:`_decoded` gives the text of each group's)."""
        return f"e.{column}_id" if self._compact else f"e.{column}"

    def _decoded(self, stored: str) -> str:
        return f"(SELECT value FROM strings WHERE id = {stored})" if self._compact else stored

    def _params(self, **values: Any) -> Params:
        """A statement's parameters, for the layout ``events`` has in this read."""
        return Params(compact=self._compact, **values)

    def _rows(self, sql: str, params: Params | dict[str, Any]) -> list[tuple[Any, ...]]:
        values = params.values if isinstance(params, Params) else params
        return self._conn.execute(sql, values).fetchall()

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
        """Visitors, pageviews, events and visit metrics grouped by ``dimension``, by bucket
        (a visit goes to the bucket of its first event), or over the whole period.

        A visit counts when it starts in the period and has at least one selected event; its
        bounce and duration are computed over all its events.
        """
        if self._use_rollups and not filters:
            found = rollup_reports_sqlite.metrics(
                self._conn, ranges, dimension, buckets, limit, offset, goal
            )
            if found is not None:
                return found
        params = self._params(scope=scope_json(ranges))
        ctes = [self._scope_cte]
        visit_bucket_join = ""
        events_in = f"FROM scope s {self._in_scope}"
        shown = "keys.k"
        if buckets is not None:
            params.values["buckets"] = msgspec.json.encode(
                [[b.index, b.site, b.start_ms, b.end_ms] for b in buckets]
            ).decode()
            ctes.append(self._bucket_cte)
            # Each bucket's events read by range, bucket after bucket (the buckets lie within
            # the period): finding each event's bucket among all of them took a time series
            # filtered on a page 100 ms more at 10 M.
            events_in = (
                f"FROM b CROSS JOIN events e ON {self._site} = b.sk "
                "AND e.ts >= b.lo AND e.ts < b.hi"
            )
            visit_bucket_join = (
                "JOIN b bv ON bv.site = v.site AND v.start_ts >= bv.lo AND v.start_ts < bv.hi"
            )
            event_key, visit_key = "b.i", "bv.i"
        elif dimension is not None:
            event_key = dimension_sql(dimension, params)
            if self._compact and dimension in ID_COLUMNS:
                # Grouped by the stored id, each group's text decoded once at the end.
                event_key = self._stored(ID_COLUMNS[dimension])
                shown = self._decoded("keys.k")
            visit_key = "sel.k"
        else:
            event_key = visit_key = "NULL"
        totals = dimension is None and buckets is None
        only_pageviews = " AND e.name = 'pageview'" if dimension in PAGEVIEW_DIMENSIONS else ""
        where = filters_sql(filters, params)
        needs_visit = dimension in VISIT_DIMENSIONS or any(
            f.dimension in VISIT_DIMENSIONS for f in filters
        )
        visit_join = "LEFT JOIN visits v ON v.id = e.visit" if needs_visit else ""
        ctes.append(
            f"sel AS (SELECT {self._site} AS site, e.visitor, e.visit, e.name, {event_key} AS k, "
            f"{'e.engaged_ms' if totals else 'NULL'} AS engaged "
            f"{events_in} {visit_join} "
            f"WHERE {where}{only_pageviews})"
        )
        if dimension in VISIT_DIMENSIONS:
            ctes.append("sel_k AS (SELECT * FROM sel WHERE k IS NOT NULL)")
        else:
            ctes.append("sel_k AS (SELECT * FROM sel)")
        ctes.append(
            "ev AS (SELECT k, COUNT(DISTINCT visitor) AS visitors, "
            "SUM(name = 'pageview') AS pageviews, "
            "SUM(name NOT IN ('pageview', 'engagement')) AS events, "
            "SUM(name = 'pageview' AND visitor IS NULL) AS unidentified, "
            "coalesce(SUM(engaged), 0) AS engaged FROM sel_k GROUP BY k)"
        )
        # Each visit read once, by id, from the distinct visits of the selected events (with
        # their key), its figures summed in the same pass. A visit has one bucket (that of its
        # start), so the rows stay distinct. SQLite otherwise read every visit of the period
        # by start and looked each up in the selection (a time series filtered on a page:
        # 1,015 ms, 406 this way, at 10 M). The visits table keeps each visit's pageviews,
        # other events and time span (ingest maintains them).
        selected = (
            "(SELECT DISTINCT k, visit FROM sel_k)"
            if visit_key == "sel.k"
            else "(SELECT DISTINCT visit FROM sel_k)"
        )
        ctes.append(
            "vm AS (SELECT k, COUNT(*) AS visits, SUM(bounced) AS bounces, "
            "SUM(CASE WHEN bounced THEN 0 ELSE span END) AS duration, "
            f"SUM(pv) AS visit_pageviews FROM (SELECT {visit_key} AS k, v.pageviews AS pv, "
            f"v.last_ts - v.start_ts AS span, {BOUNCED} AS bounced FROM {selected} sel "
            "CROSS JOIN visits v ON v.id = sel.visit "
            "JOIN scope s ON s.site = v.site AND v.start_ts >= s.lo AND v.start_ts < s.hi "
            f"{visit_bucket_join}) GROUP BY k)"
        )
        if goal is not None:
            goal_bucket = "b.i" if buckets is not None else "NULL"
            ctes.append(
                f"goal_ev AS (SELECT DISTINCT {self._site} AS site, e.visitor, {goal_bucket} AS i "
                f"{events_in} "
                f"WHERE e.visitor IS NOT NULL AND {goal_sql(goal, params)})"
            )
            same_bucket = " AND g.i = sel.k" if buckets is not None else ""
            ctes.append(
                "gm AS (SELECT k, COUNT(*) AS converted FROM (SELECT DISTINCT sel.k, sel.site, "
                "sel.visitor FROM sel_k sel JOIN goal_ev g ON g.site = sel.site "
                f"AND g.visitor = sel.visitor{same_bucket}) GROUP BY k)"
            )
        else:
            ctes.append("gm AS (SELECT NULL AS k, 0 AS converted WHERE 0)")
        ctes.append("keys AS (SELECT k FROM ev UNION SELECT k FROM vm)")
        page = ""
        if limit is not None:
            page = f" LIMIT {params.add(limit)} OFFSET {params.add(offset)}"
        sql = (
            "WITH "
            + ",\n".join(ctes)
            + f" SELECT {shown}, coalesce(ev.visitors, 0), coalesce(ev.pageviews, 0), "
            "coalesce(ev.events, 0), coalesce(vm.visits, 0), coalesce(vm.bounces, 0), "
            "coalesce(vm.duration, 0), coalesce(vm.visit_pageviews, 0), "
            "coalesce(gm.converted, 0), coalesce(ev.unidentified, 0), coalesce(ev.engaged, 0) "
            "FROM keys LEFT JOIN ev ON ev.k IS keys.k "
            "LEFT JOIN vm ON vm.k IS keys.k LEFT JOIN gm ON gm.k IS keys.k "
            "ORDER BY 2 DESC, 3 DESC, 1" + page
        )
        rows = self._rows(sql, params)
        if totals:
            self._engaged[_period_key(ranges, filters)] = sum(int(row[10]) for row in rows)
        return [_metric_row(row) for row in rows]

    def step_events(
        self,
        ranges: Sequence[SiteRange],
        filters: Sequence[Filter],
        goals: Sequence[Goal],
        *,
        prop: str | None = None,
    ) -> list[StepEvent]:
        """Identified events matching any of ``goals`` (or carrying property ``prop``), in time
        order; ``value`` is the property's value when ``prop`` is given."""
        if self._use_rollups and prop is None and not filters:
            found = self._page_step_events(ranges, goals)
            if found is not None:
                return found
        params = self._params(scope=scope_json(ranges))
        reached = " OR ".join(goal_sql(goal, params) for goal in goals) or "0"
        branches = [reached]
        value = "NULL"
        if prop is not None:
            value = dimension_sql(PROP_PREFIX + prop, params)
            # The events with properties are read apart, through their own index (granted
            # events that carry any, a few in a hundred), and the goals' through theirs: one
            # query for both would read every event of the period.
            branches.append(f"e.props IS NOT NULL AND {value} IS NOT NULL AND NOT ({reached})")
        select = (
            f"SELECT e.site, e.visitor, e.visit, e.ts, e.name, e.path, {value} AS value, "
            f"e.id AS id FROM scope s {self._in_scope} LEFT JOIN visits v ON v.id = e.visit "
            f"WHERE e.visitor IS NOT NULL AND {filters_sql(filters, params)} AND "
        )
        sql = (
            f"WITH {self._scope_cte}, hits AS ("
            + " UNION ALL ".join(f"{select}({branch})" for branch in branches)
            + ") SELECT site, visitor, visit, ts, name, path, value FROM hits ORDER BY ts, id"
        )
        return [StepEvent(*row) for row in self._rows(sql, params)]

    def _page_step_events(
        self, ranges: Sequence[SiteRange], goals: Sequence[Goal]
    ) -> list[StepEvent] | None:
        """:meth:`step_events` of page goals and custom events, read from the pages index and
        the custom events' (a funnel's, unfiltered): ``None`` when a goal is a built-in event,
        or before the compact layout has that index.

        The index holds every column returned but the page's text, so no row is read; the
        pages are decoded once each, and the events sorted here (SQLite would sort them in a
        temporary tree, at four times the cost)."""
        if not self._compact or any(
            goal.kind == "event" and goal.match in BUILT_IN_NAMES for goal in goals
        ):
            return None
        if "event_rows_pages" in layout_sqlite.missing_indexes(self._conn):
            return None
        params = self._params(scope=scope_json(ranges))
        # Every column from the index, as ids: a text column makes a string per row, and the
        # name of a pageview (the index's own) would be read from the row.
        select = "SELECT e.site, e.visitor, e.visit, e.ts, {name}, e.path, e.id FROM scope s "
        branches = []
        patterns = [params.add(goal.glob) for goal in goals if goal.kind == "page"]
        if patterns:
            any_page = " UNION ALL ".join(
                f"SELECT id FROM strings WHERE value GLOB {pattern}" for pattern in patterns
            )
            branches.append(
                select.format(name="NULL")
                + "JOIN event_rows e INDEXED BY event_rows_pages ON e.site = s.sk "
                f"AND e.path IN ({any_page}) "
                # The index's own WHERE (``INDEXED BY`` fails the query if they part ways).
                "AND e.ts >= s.lo AND e.ts < s.hi WHERE e.name = 'pageview' "
                "AND e.visitor IS NOT NULL"
            )
        names = [params.add(goal.match) for goal in goals if goal.kind == "event"]
        if names:
            branches.append(
                select.format(name="e.name")
                + "JOIN event_rows e INDEXED BY event_rows_custom ON e.site = s.sk "
                f"AND e.name IN ({', '.join(names)}) AND e.ts >= s.lo AND e.ts < s.hi "
                f"WHERE {CUSTOM_TERM} AND e.visitor IS NOT NULL"
            )
        if not branches:
            return []
        rows = self._rows(f"WITH {self._scope_cte} " + " UNION ALL ".join(branches), params)
        rows.sort(key=_TIME_ORDER)
        ids = {row[0] for row in rows} | {row[5] for row in rows}
        text = layout_sqlite.texts(self._conn, ids)
        return [
            StepEvent(text[site], visitor, visit, ts, name or "pageview", text[path])
            for site, visitor, visit, ts, name, path, _ in rows
        ]

    def client_visit_starts(
        self, ranges: Sequence[SiteRange], end_ms: int, filters: Sequence[Filter]
    ) -> list[tuple[str, bytes, int]]:
        """``(site, visitor, start_ts)`` of every visit before ``end_ms`` by a durable
        (client-stored) identifier with at least one event matching ``filters``, for the
        visitors whose first such visit starts inside their site's range (the new visitors of
        the period: the others are in no cohort)."""
        if self._use_rollups and not filters:
            found = rollup_reports_sqlite.client_visit_starts(self._conn, ranges, end_ms)
            if found is not None:
                return found
        params = self._params(scope=scope_json(ranges), end=end_ms)
        counts = (
            "EXISTS (SELECT 1 FROM events e WHERE e.visit = {v}.id "
            f"AND e.visitor_kind = 'client' AND {filters_sql(filters, params)})"
        )
        # From the period's visits (index on start), not from every visit ever: a visitor is
        # new when none of their counted visits started before the range.
        sql = (
            f"WITH {self._scope_cte}, new AS MATERIALIZED (SELECT DISTINCT v.site, v.visitor "
            "FROM scope s JOIN visits v INDEXED BY visits_by_start ON v.site = s.site "
            f"AND v.start_ts >= s.lo AND v.start_ts < s.hi WHERE {counts.format(v='v')} "
            "AND NOT EXISTS (SELECT 1 FROM visits w INDEXED BY visits_by_visitor "
            "WHERE w.site = v.site AND w.visitor = v.visitor AND w.start_ts < s.lo "
            f"AND {counts.format(v='w')})) "
            "SELECT w.site, w.visitor, w.start_ts FROM new n JOIN visits w INDEXED BY "
            "visits_by_visitor ON w.site = n.site AND w.visitor = n.visitor "
            f"WHERE w.start_ts < :end AND {counts.format(v='w')} ORDER BY w.start_ts"
        )
        return [(row[0], row[1], row[2]) for row in self._rows(sql, params)]

    def visitor_kinds(
        self, ranges: Sequence[SiteRange], filters: Sequence[Filter]
    ) -> dict[str, int]:
        """Distinct identified visitors of the period by ``visitor_kind``."""
        if self._use_rollups and not filters:
            found = rollup_reports_sqlite.visitor_kinds(self._conn, ranges)
            if found is not None:
                return found
        params = self._params(scope=scope_json(ranges))
        # Grouped by the stored kind, decoded once per group rather than once per event.
        kind = self._stored("visitor_kind")
        sql = (
            f"WITH {self._scope_cte} SELECT {self._decoded('k')}, n FROM (SELECT {kind} AS k, "
            f"COUNT(DISTINCT e.visitor) AS n FROM scope s {self._in_scope} LEFT JOIN visits v "
            f"ON v.id = e.visit WHERE e.visitor IS NOT NULL AND {filters_sql(filters, params)} "
            f"GROUP BY {kind})"
        )
        return {str(kind): count for kind, count in self._rows(sql, params)}

    def visitor_kind_seen(
        self, ranges: Sequence[SiteRange], filters: Sequence[Filter], kind: str
    ) -> bool:
        """Whether an identified event of the period matching ``filters`` has a visitor of
        ``kind``: the read stops at the first one (a filtered aggregate counted every visitor
        by kind for a yes or no, 175 ms at 10 M events)."""
        if self._use_rollups and not filters:
            found = rollup_reports_sqlite.visitor_kinds(self._conn, ranges)
            if found is not None:
                return found.get(kind, 0) > 0
        params = self._params(scope=scope_json(ranges), kind=kind)
        wanted = "(SELECT id FROM strings WHERE value = :kind)" if self._compact else ":kind"
        sql = (
            f"WITH {self._scope_cte} SELECT EXISTS (SELECT 1 FROM scope s {self._in_scope} "
            f"LEFT JOIN visits v ON v.id = e.visit WHERE e.visitor IS NOT NULL "
            f"AND {self._stored('visitor_kind')} = {wanted} AND {filters_sql(filters, params)})"
        )
        return bool(self._rows(sql, params)[0][0])

    def consent_by_day(
        self, buckets: Sequence[Bucket], filters: Sequence[Filter]
    ) -> list[tuple[int, str, int, int, int]]:
        """``(bucket, mode, hits, visitors, visits)`` per day bucket and effective mode."""
        if self._use_rollups and not filters:
            from_rollups = rollup_reports_sqlite.consent_by_day(self._conn, buckets)
            if from_rollups is not None:
                return from_rollups
        params = self._params(
            buckets=msgspec.json.encode(
                [[b.index, b.site, b.start_ms, b.end_ms] for b in buckets]
            ).decode()
        )
        mode = self._stored("mode")
        sql = (
            f"WITH {self._bucket_cte} SELECT i, {self._decoded('m')}, n, visitors, visits FROM "
            f"(SELECT b.i AS i, {mode} AS m, COUNT(*) AS n, COUNT(DISTINCT e.visitor) AS visitors, "
            f"COUNT(DISTINCT e.visit) AS visits FROM b JOIN events e ON {self._site} = b.sk "
            "AND e.ts >= b.lo AND e.ts < b.hi LEFT JOIN visits v ON v.id = e.visit "
            f"WHERE {filters_sql(filters, params)} GROUP BY b.i, {mode}) ORDER BY 1, 2"
        )
        return [(r[0], r[1], r[2], r[3], r[4]) for r in self._rows(sql, params)]

    def reason_counts(
        self, ranges: Sequence[SiteRange], filters: Sequence[Filter]
    ) -> list[tuple[str, str, int]]:
        """``(mode, reasons, hits)``: the consent resolution's reason codes as stored."""
        if self._use_rollups and not filters:
            from_rollups = rollup_reports_sqlite.reason_counts(self._conn, ranges)
            if from_rollups is not None:
                return from_rollups
        params = self._params(scope=scope_json(ranges))
        mode, reasons = self._stored("mode"), self._stored("reasons")
        sql = (
            f"WITH {self._scope_cte} SELECT {self._decoded('m')}, {self._decoded('r')}, n FROM "
            f"(SELECT {mode} AS m, {reasons} AS r, COUNT(*) AS n FROM scope s "
            f"{self._in_scope} LEFT JOIN visits v ON v.id = e.visit "
            f"WHERE {filters_sql(filters, params)} GROUP BY {mode}, {reasons}) ORDER BY 1, 2"
        )
        return [(r[0], r[1], r[2]) for r in self._rows(sql, params)]

    def dropped_by_day(
        self, sites: Sequence[str], first_day: str, last_day: str
    ) -> list[tuple[str, str, int]]:
        """``(day, reason, hits)`` of hits not stored, summed over ``sites``."""
        sql = (
            "SELECT day, reason, SUM(hits) FROM dropped_hits "
            "WHERE site IN (SELECT value FROM json_each(:sites)) AND day >= :first "
            "AND day <= :last GROUP BY day, reason ORDER BY day, reason"
        )
        params = {
            "sites": msgspec.json.encode(list(sites)).decode(),
            "first": first_day,
            "last": last_day,
        }
        return [(r[0], r[1], r[2]) for r in self._rows(sql, params)]

    def conversions_by_mode(
        self, ranges: Sequence[SiteRange], filters: Sequence[Filter], goal: Goal
    ) -> list[tuple[str, str | None, int]]:
        """``(mode, source of the visit's first event, conversions)`` for goal events."""
        params = self._params(scope=scope_json(ranges))
        first_source = SOURCE.replace("e.", "f.")
        sql = (
            f"WITH {self._scope_cte} SELECT e.mode, CASE WHEN e.mode = 'granted' THEN "
            f"(SELECT {first_source} FROM events f WHERE f.visit = e.visit "
            "ORDER BY f.ts, f.id LIMIT 1) END AS src, COUNT(*) "
            f"FROM scope s {self._in_scope} LEFT JOIN visits v ON v.id = e.visit "
            f"WHERE {goal_sql(goal, params)} AND {filters_sql(filters, params)} "
            "GROUP BY e.mode, src"
        )
        return [(r[0], r[1], r[2]) for r in self._rows(sql, params)]

    def revenue_events(
        self, sites: Sequence[str], end_ms: int
    ) -> list[tuple[str, bytes, int, str, str]]:
        """``(site, user, ts, amount, currency)`` of granted revenue events before ``end_ms``."""
        sql = (
            "SELECT e.site, e.user, e.ts, e.revenue_amount, e.revenue_currency FROM events e "
            f"WHERE {self._site} IN {self._sites_in} AND e.ts < :end "
            "AND mode = 'granted' AND user IS NOT NULL AND revenue_amount IS NOT NULL "
            "ORDER BY ts, id"
        )
        params = {"sites": msgspec.json.encode(list(sites)).decode(), "end": end_ms}
        return [(r[0], r[1], r[2], r[3], r[4]) for r in self._rows(sql, params)]

    def recent_pages(self, sites: Sequence[str], since_ms: int, until_ms: int) -> dict[str, Any]:
        """Visitors, pageviews and pages by visitors between ``since_ms`` and ``until_ms``."""
        params = {
            "sites": msgspec.json.encode(list(sites)).decode(),
            "since": since_ms,
            "until": until_ms,
        }
        where = f"{self._site} IN {self._sites_in} AND e.ts >= :since AND e.ts <= :until"
        visitors, pageviews = self._rows(
            f"SELECT COUNT(DISTINCT visitor), coalesce(SUM(name = 'pageview'), 0) FROM events e "
            f"WHERE {where}",
            params,
        )[0]
        pages = self._rows(
            f"SELECT path, COUNT(DISTINCT visitor), COUNT(*) FROM events e WHERE {where} "
            "AND name = 'pageview' GROUP BY path ORDER BY 2 DESC, 3 DESC, path LIMIT 50",
            params,
        )
        return {"visitors": visitors, "pageviews": pageviews, "pages": pages}

    # Added by the reports audit: the filtered forms of recent_pages and revenue_events, so
    # that `filter` applies to real time and RFM as to every other report, and engaged time.

    def recent_pages_where(
        self, sites: Sequence[str], since_ms: int, until_ms: int, filters: Sequence[Filter]
    ) -> dict[str, Any]:
        """:meth:`recent_pages` over the events matching ``filters``."""
        params = self._params(
            sites=msgspec.json.encode(list(sites)).decode(), since=since_ms, until=until_ms
        )
        where = (
            f"{self._site} IN {self._sites_in} AND e.ts >= :since "
            f"AND e.ts <= :until AND {filters_sql(filters, params)}"
        )
        source = "events e LEFT JOIN visits v ON v.id = e.visit"
        visitors, pageviews = self._rows(
            f"SELECT COUNT(DISTINCT e.visitor), coalesce(SUM(e.name = 'pageview'), 0) "
            f"FROM {source} WHERE {where}",
            params,
        )[0]
        pages = self._rows(
            f"SELECT e.path, COUNT(DISTINCT e.visitor), COUNT(*) FROM {source} WHERE {where} "
            "AND e.name = 'pageview' GROUP BY e.path ORDER BY 2 DESC, 3 DESC, e.path LIMIT 50",
            params,
        )
        return {"visitors": visitors, "pageviews": pageviews, "pages": pages}

    def revenue_events_where(
        self, sites: Sequence[str], end_ms: int, filters: Sequence[Filter]
    ) -> list[tuple[str, bytes, int, str, str]]:
        """:meth:`revenue_events` restricted to the events matching ``filters``."""
        params = self._params(sites=msgspec.json.encode(list(sites)).decode(), end=end_ms)
        sql = (
            "SELECT e.site, e.user, e.ts, e.revenue_amount, e.revenue_currency FROM events e "
            "LEFT JOIN visits v ON v.id = e.visit "
            f"WHERE {self._site} IN {self._sites_in} AND e.ts < :end "
            "AND e.mode = 'granted' AND e.user IS NOT NULL AND e.revenue_amount IS NOT NULL "
            f"AND {filters_sql(filters, params)} ORDER BY e.ts, e.id"
        )
        return [(r[0], r[1], r[2], r[3], r[4]) for r in self._rows(sql, params)]

    def engaged_time(self, ranges: Sequence[SiteRange], filters: Sequence[Filter]) -> int:
        """Total ``engaged_ms`` of the period's events matching ``filters`` (the snippet sends
        each engagement ping as the visible time since the previous one, so they add up)."""
        if self._use_rollups and not filters:
            total = rollup_reports_sqlite.engaged(self._conn, ranges)
            if total is not None:
                return total
        summed = self._engaged.get(_period_key(ranges, filters))
        if summed is not None:
            return summed
        params = self._params(scope=scope_json(ranges))
        sql = (
            f"WITH {self._scope_cte} SELECT coalesce(SUM(e.engaged_ms), 0) FROM scope s "
            f"{self._in_scope} LEFT JOIN visits v ON v.id = e.visit WHERE e.engaged_ms IS NOT NULL "
            f"AND {filters_sql(filters, params)}"
        )
        return int(self._rows(sql, params)[0][0])


def _period_key(ranges: Sequence[SiteRange], filters: Sequence[Filter]) -> bytes:
    return msgspec.json.encode((ranges, filters))


def _metric_row(row: tuple[Any, ...]) -> MetricRow:
    return MetricRow(
        key=row[0],
        visitors=row[1],
        pageviews=row[2],
        events=row[3],
        visits=row[4],
        bounces=row[5],
        duration_ms=row[6],
        visit_pageviews=row[7],
        converted=row[8],
        unidentified_pageviews=row[9],
    )


@contextmanager
def reports_database(
    path: Path, *, timeout_ms: int = 10_000, rollups: bool = True
) -> Iterator[ReportsDatabase]:
    """A connection on the database at ``path`` (which must exist, migrated) for one call;
    ``rollups=False``: every report from the events (see :class:`ReportsDatabase`)."""
    conn = sqlite3.connect(path, timeout=timeout_ms / 1000, isolation_level="DEFERRED")
    with closing(conn):
        # One read transaction for the whole call: every query of a report (and of its
        # comparison) sees the same snapshot while the writer keeps committing.
        conn.execute("BEGIN")
        yield ReportsDatabase(conn, rollups=rollups)
