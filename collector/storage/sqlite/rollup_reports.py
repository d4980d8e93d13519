"""The reports read from the daily rollups (see :mod:`collector.storage.sqlite.rollups` for
what the tables hold): each range's whole local months from the month rows, the days around
them from the day rows, the changes still waiting in the log, and the days queued for a rebuild
from the events, all in the same answer.

A report is answered here when it has no filter, is broken down by a rolled-up dimension (or
not at all, or by whole-day buckets), and each site's range is whole local days in the time
zone its rollups were built with; otherwise the functions return ``None`` and the caller reads
the events. Sums are sums of rows; distinct visitors are the size of the union of the days'
(or months') bitmaps; a visit that started in the period but shows a value only after its end
(``late_visits``) is taken back out, as the events path does. A queued day is read from the
events instead: its events' sums and visitors (their ids, or their hashes when the dictionary
has none yet), and the visits that started on it.

A goal's conversions are the size of an intersection: each row's visitors with those who
reached the goal in the period (or the bucket). A page goal's visitors are the union of its
pages' sets; a custom event goal's are read from the events through the custom events' index
(about one event in a hundred), their hashes mapped to ids.

Breakdowns rank values by visitors: each value's sum of daily counts bounds its visitors from
above, so the unions are computed in that order and stop once no value left can reach the
rows asked for.
"""

from __future__ import annotations

import bisect
import heapq
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from pyroaring import BitMap

from collector.storage.rows import (
    PAGEVIEW_DIMENSIONS,
    VISIT_DIMENSIONS,
    Bucket,
    Goal,
    MetricRow,
    SiteRange,
)
from collector.storage.sqlite import layout as layout_sqlite
from collector.storage.sqlite.layout import BUILT_IN_NAMES, CUSTOM_TERM
from collector.storage.sqlite.rollups import (
    DIM_CODE,
    ID_LIMITS,
    MODE_REASONS,
    MODE_VISITS,
    NULL_KEY,
    ROLLUP_DIMENSIONS,
    Changes,
    Delta,
    Site,
    decode_key,
    deserialize,
    encode_key,
    month_of,
    next_month,
    read_log,
    sites,
)
from collector.storage.sqlite.sql import BOUNCED, DIMENSION_SQL

# Positions in the sums read from the rows (the ``SUMS`` of the rollups, then the bound).
_HITS, _PV, _EVENTS, _ENGAGED, _UNIDENTIFIED, _VISITS, _BOUNCES, _DURATION, _VISIT_PV, _BOUND = (
    range(10)
)
_SUMS = (
    "SUM(hits), SUM(pageviews), SUM(events), SUM(engaged), SUM(unidentified), SUM(visits), "
    "SUM(bounces), SUM(duration), SUM(visit_pageviews), SUM(nvisitors)"
)
_VISIT_FIGURES = (_VISITS, _BOUNCES, _DURATION, _VISIT_PV)
#: Beyond every end: ``(ts, _NO_END)`` sorts after any bucket's edges that start at ``ts``.
_NO_END = 1 << 62


@dataclass
class Queued:
    """What a part's queued days hold, read from the events: sums and visitors by
    ``(day, encoded key)``, visitors as ids where the dictionary has them, else as hashes."""

    sums: dict[tuple[int, Any], list[int]] = field(default_factory=dict)
    ids: dict[tuple[int, Any], BitMap] = field(default_factory=dict)
    hashes: dict[tuple[int, Any], set[bytes]] = field(default_factory=dict)


@dataclass
class Part:
    """One site's part of a report: its rollups, ``[first, end)`` in local days, the range's
    end in milliseconds, its buckets as ``(index, first, end)`` and its queued days."""

    site: Site
    first: int
    end: int
    end_ms: int
    buckets: list[tuple[int, int, int]]
    queued: list[int]

    def counted(self, day: int) -> bool:
        """Whether ``day`` is in the part and read from the rollups."""
        return self.first <= day < self.end and day not in self.queued

    def segments(self, first: int | None = None, end: int | None = None) -> list[tuple[int, int]]:
        """The runs of days of ``[first, end)`` (the part's) that are not queued."""
        lo = self.first if first is None else first
        hi = self.end if end is None else end
        found = []
        for day in [*sorted(d for d in self.queued if lo <= d < hi), hi]:
            if lo < day:
                found.append((lo, day))
            lo = day + 1
        return found

    def pieces(
        self, first: int | None = None, end: int | None = None
    ) -> list[tuple[str, int, int]]:
        """The rows to read for ``[first, end)``: whole months and days around them."""
        return [piece for lo, hi in self.segments(first, end) for piece in pieces(lo, hi)]


def plan(
    conn: sqlite3.Connection, ranges: Sequence[SiteRange], buckets: Sequence[Bucket] | None
) -> list[Part] | None:
    """Each site's part, or ``None`` when the rollups cannot answer (see the module)."""
    known = sites(conn)
    parts: list[Part] = []
    for site_range in ranges:
        site = known.get(site_range.site)
        if site is None:
            continue  # no event was ever stored for it
        if site.zone.name != site_range.timezone:
            return None
        days = site.zone.whole_days(site_range.start_ms, site_range.end_ms)
        if days is None:
            return None
        first, end = days
        queued = [
            int(row[0])
            for row in conn.execute(
                "SELECT day FROM rollup_pending_days WHERE site = ? AND day >= ? AND day < ?",
                (site.name, first, end),
            )
        ]
        if len(queued) > max(7, (end - first) // 2):
            return None  # mostly queued (the upgrade's backfill): the events path is faster
        found: list[tuple[int, int, int]] = []
        for bucket in buckets or ():
            if bucket.site != site.name:
                continue
            bucket_days = site.zone.whole_days(bucket.start_ms, bucket.end_ms)
            if bucket_days is None or bucket_days[0] < first or bucket_days[1] > end:
                return None
            found.append((bucket.index, *bucket_days))
        parts.append(Part(site, first, end, site_range.end_ms, found, queued))
    return parts


def pieces(first: int, end: int) -> list[tuple[str, int, int]]:
    """``[first, end)`` (days) as ``(grain, lo, hi)``: its whole local months from the month
    rows, the days before and after them from the day rows."""
    start = month_of(first)
    if start != first:
        start = next_month(start)
    stop = month_of(end)
    if start >= stop:
        return [("day", first, end)] if first < end else []
    found = [("day", first, start)] if first < start else []
    found.append(("month", start, stop))
    if stop < end:
        found.append(("day", stop, end))
    return found


def _logged(part: Part, log: Changes, dim: int) -> Iterator[tuple[Any, int, Delta]]:
    """``(key, day, delta)`` of the changes waiting in the log for ``dim`` in the part's
    counted days."""
    for (code, row_dim, day, key), delta in log.rows.items():
        if code == part.site.code and row_dim == dim and part.counted(day):
            yield key, day, delta


def _queued(conn: sqlite3.Connection, part: Part, dimension: str | None) -> Queued:
    """The part's queued days, read from the events as the events path reads them: the events
    of each day, and the visits that started on it with an event of the value before the end
    of the period."""
    found = Queued()
    if not part.queued:
        return found
    days = [(day, *part.site.zone.bounds(day)) for day in part.queued]
    values = ", ".join(["(?, ?, ?)"] * len(days))
    params = [value for day in days for value in day]
    key = "NULL" if dimension is None else DIMENSION_SQL[dimension]
    where = " AND e.name = 'pageview'" if dimension in PAGEVIEW_DIMENSIONS else ""
    if dimension in VISIT_DIMENSIONS:
        where += f" AND {key} IS NOT NULL"
    events = (
        f"FROM p JOIN events e ON {layout_sqlite.site_is(conn)} AND e.ts >= p.lo AND e.ts < p.hi "
        f"LEFT JOIN visits v ON v.id = e.visit WHERE 1{where}"
    )
    start = f"WITH p(d, lo, hi) AS (VALUES {values}) "
    for day, value, *sums in conn.execute(
        f"{start}SELECT p.d, {key}, COUNT(*), SUM(e.name = 'pageview'), "
        "SUM(e.name NOT IN ('pageview', 'engagement')), coalesce(SUM(e.engaged_ms), 0), "
        f"SUM(e.name = 'pageview' AND e.visitor IS NULL) {events} GROUP BY 1, 2",
        [*params, part.site.name],
    ):
        found.sums[(day, encode_key(value))] = [*sums, 0, 0, 0, 0, 0]
    hashes: dict[tuple[int, Any], set[bytes]] = {}
    for day, value, visitor in conn.execute(
        f"{start}SELECT DISTINCT p.d, {key}, e.visitor {events} AND e.visitor IS NOT NULL",
        [*params, part.site.name],
    ):
        hashes.setdefault((day, encode_key(value)), set()).add(bytes(visitor))
    for day, value, *figures in conn.execute(
        f"{start}SELECT d, k, COUNT(*), SUM(bounced), "
        "SUM(CASE WHEN bounced THEN 0 ELSE span END), SUM(pv) FROM (SELECT DISTINCT p.d AS d, "
        f"{key} AS k, v.id, v.pageviews AS pv, v.last_ts - v.start_ts AS span, "
        f"{BOUNCED} AS bounced FROM p JOIN visits v INDEXED BY visits_by_start "
        "ON v.site = ? AND v.start_ts >= p.lo AND v.start_ts < p.hi "
        f"JOIN events e ON e.visit = v.id AND e.ts < ? WHERE 1{where}) GROUP BY d, k",
        [*params, part.site.name, part.end_ms],
    ):
        sums = found.sums.setdefault((day, encode_key(value)), [0] * 10)
        for index, figure in zip(_VISIT_FIGURES, figures, strict=True):
            sums[index] += figure
    # Visitors as ids where the dictionary has them (then a union with the bitmaps counts each
    # once); a hash without an id is in no bitmap, so it counts apart.
    ids = _ids_of(
        conn, part.site, {visitor for found_hashes in hashes.values() for visitor in found_hashes}
    )
    for at, visitors in hashes.items():
        found.ids[at] = BitMap([ids[v] for v in visitors if v in ids])
        found.hashes[at] = {v for v in visitors if v not in ids}
        found.sums.setdefault(at, [0] * 10)[_BOUND] = len(visitors)
    return found


def _ids_of(conn: sqlite3.Connection, site: Site, hashes: set[bytes]) -> dict[bytes, int]:
    """The ids ``visitor_ids`` holds for ``hashes`` of ``site`` (a hash may have none yet)."""
    everyone = sorted(hashes)
    ids: dict[bytes, int] = {}
    for start_at in range(0, len(everyone), 500):
        chunk = everyone[start_at : start_at + 500]
        marks = ", ".join("?" * len(chunk))
        for digest, ident in conn.execute(
            f"SELECT hash, id FROM visitor_ids WHERE site = ? AND hash IN ({marks})",
            [site.code, *chunk],
        ):
            ids[bytes(digest)] = int(ident)
    return ids


def _visitors(
    conn: sqlite3.Connection,
    parts: list[Part],
    queued: list[Queued],
    dim: int,
    key: Any,
    log: Changes,
) -> tuple[BitMap, set[bytes]]:
    """The distinct visitors of ``key`` over every part (rows, log and queued days): their ids
    (unique across sites), and the hashes of a queued day that have none yet."""
    found = []
    unknown: set[bytes] = set()
    for part, from_events in zip(parts, queued, strict=True):
        found += [delta.added for logged, _, delta in _logged(part, log, dim) if logged == key]
        for (day, value), ids in from_events.ids.items():
            if value == key:
                found.append(ids)
                unknown |= from_events.hashes[(day, value)]
        found += _stored_sets(conn, part, dim, key)
    return BitMap.union(BitMap(), *found), unknown


def _stored_sets(
    conn: sqlite3.Connection,
    part: Part,
    dim: int,
    key: Any,
    first: int | None = None,
    end: int | None = None,
) -> list[BitMap]:
    """The visitor sets stored for ``key`` of ``dim`` over the part's days and months (or
    those of ``[first, end)``)."""
    return [
        deserialize(row[0])
        for grain, lo, hi in part.pieces(first, end)
        for row in conn.execute(
            f"SELECT ids FROM {grain}_visitors WHERE site = ? AND dim = ? AND key = ? "
            "AND day >= ? AND day < ?",
            (part.site.code, dim, key, lo, hi),
        )
    ]


def _goal_visitors(
    conn: sqlite3.Connection, parts: list[Part], log: Changes, goal: Goal, bucketed: bool
) -> dict[int | None, BitMap] | None:
    """The ids of the visitors who reached ``goal`` in the period (key ``None``) or, for a time
    series, in each bucket (key: its index); ``None`` when the rollups cannot tell: a queued
    day, an event goal on a built-in name (which the custom events' index leaves out)."""
    if any(part.queued for part in parts):
        return None
    if goal.kind != "page" and goal.match in BUILT_IN_NAMES:
        return None
    found: dict[int | None, list[BitMap]] = {}
    for part in parts:
        spans: list[tuple[int | None, int, int]] = (
            sorted(part.buckets, key=lambda span: span[1])
            if bucketed
            else [(None, part.first, part.end)]
        )
        if goal.kind == "page":
            dim = DIM_CODE["page"]
            for key in _goal_pages(conn, part, log, goal):
                for at, lo, hi in spans:
                    sets = found.setdefault(at, [])
                    sets += _stored_sets(conn, part, dim, key, lo, hi)
                    sets += [
                        delta.added
                        for logged, day, delta in _logged(part, log, dim)
                        if logged == key and lo <= day < hi
                    ]
            continue
        zone = part.site.zone
        edges = [(zone.bounds(lo)[0], zone.bounds(hi)[0]) for _, lo, hi in spans]
        reached: dict[bytes, set[int | None]] = {}
        for ts, visitor in conn.execute(
            f"SELECT e.ts, e.visitor FROM events e WHERE {layout_sqlite.site_is(conn)} "
            f"AND e.name = ? AND {CUSTOM_TERM} AND e.ts >= ? AND e.ts < ? "
            "AND e.visitor IS NOT NULL",
            (part.site.name, goal.match, edges[0][0] if edges else 0, edges[-1][1] if edges else 0),
        ):
            at = bisect.bisect_right(edges, (ts, _NO_END)) - 1
            if at >= 0 and ts < edges[at][1]:
                reached.setdefault(bytes(visitor), set()).add(spans[at][0])
        # Every visitor of a day the rollups count has an id (given at ingest, with the event).
        ids = _ids_of(conn, part.site, set(reached))
        for visitor, buckets in reached.items():
            for at in buckets:
                found.setdefault(at, []).append(BitMap([ids[visitor]]))
    return {at: BitMap.union(BitMap(), *sets) for at, sets in found.items()}


def _goal_pages(conn: sqlite3.Connection, part: Part, log: Changes, goal: Goal) -> list[Any]:
    """The pages a page goal matches: its path itself, or the pages of the part's rows and
    log that its pattern matches."""
    if "*" not in goal.match:
        return [goal.match]
    dim = DIM_CODE["page"]
    found = {
        row[0]
        for grain, lo, hi in part.pieces()
        for row in conn.execute(
            f"SELECT DISTINCT key FROM {grain}_rollups WHERE site = ? AND dim = ? AND day >= ? "
            "AND day < ? AND key GLOB ?",
            (part.site.code, dim, lo, hi, goal.glob),
        )
    }
    logged = {key for key, _, _ in _logged(part, log, dim) if isinstance(key, str)}
    found.update(
        key for key in logged if conn.execute("SELECT ? GLOB ?", (key, goal.glob)).fetchone()[0]
    )
    return sorted(found)


def _order(key: Any) -> tuple[int, Any]:
    """SQLite's order of values: NULL, then numbers, then text."""
    if key is None:
        return (0, 0)
    return (1, key) if isinstance(key, int) else (2, key)


def _row(key: Any, visitors: int, sums: Sequence[int], converted: int = 0) -> MetricRow:
    return MetricRow(
        key=key,
        visitors=visitors,
        pageviews=sums[_PV],
        events=sums[_EVENTS],
        visits=sums[_VISITS],
        bounces=sums[_BOUNCES],
        duration_ms=sums[_DURATION],
        visit_pageviews=sums[_VISIT_PV],
        converted=converted,
        unidentified_pageviews=sums[_UNIDENTIFIED],
    )


def _ranked(rows: list[MetricRow], limit: int | None, offset: int) -> list[MetricRow]:
    """``ORDER BY visitors DESC, pageviews DESC, key`` and the page asked for."""
    rows.sort(key=lambda row: (-row.visitors, -row.pageviews, _order(row.key)))
    if limit is None:
        return rows[offset:] if offset else rows
    return rows[offset : offset + limit]


def _add(total: list[int], sums: Sequence[int]) -> None:
    for index, value in enumerate(sums):
        total[index] += value


def metrics(
    conn: sqlite3.Connection,
    ranges: Sequence[SiteRange],
    dimension: str | None,
    buckets: Sequence[Bucket] | None,
    limit: int | None,
    offset: int,
    goal: Goal | None = None,
) -> list[MetricRow] | None:
    """``ReportsDatabase.metrics`` without filters, from the rollups (or ``None``)."""
    if dimension is not None and (dimension == "*" or dimension not in ROLLUP_DIMENSIONS):
        return None
    if buckets is not None and dimension is not None:
        return None
    parts = plan(conn, ranges, buckets)
    if parts is None:
        return None
    log = read_log(conn)
    reached = None
    if goal is not None:
        reached = _goal_visitors(conn, parts, log, goal, bucketed=buckets is not None)
        if reached is None:
            return None
    queued = [_queued(conn, part, dimension) for part in parts]
    if buckets is not None:
        return _bucketed(conn, parts, queued, log, limit, offset, reached)
    dim = DIM_CODE[dimension or "*"]
    totals: dict[Any, list[int]] = {}
    for part, from_events in zip(parts, queued, strict=True):
        for key, _, delta in _logged(part, log, dim):
            total = totals.setdefault(key, [0] * 10)
            _add(total, delta.sums)
            total[_BOUND] += len(delta.added)
        for (code, late_dim, day, key_day, key), figures in log.late.items():
            ours = code == part.site.code and late_dim == dim and part.counted(day)
            if ours and key_day >= part.end:
                total = totals.setdefault(key, [0] * 10)
                for index, value in zip(_VISIT_FIGURES, figures, strict=True):
                    total[index] -= value
        for (_, key), sums in from_events.sums.items():
            _add(totals.setdefault(key, [0] * 10), sums)
        for grain, lo, hi in part.pieces():
            for key, *sums in conn.execute(
                f"SELECT key, {_SUMS} FROM {grain}_rollups WHERE site = ? AND dim = ? "
                "AND day >= ? AND day < ? GROUP BY key",
                (part.site.code, dim, lo, hi),
            ):
                _add(totals.setdefault(key, [0] * 10), sums)
        # Visits that started in the period and show the value only after its end.
        for lo, hi in part.segments():
            for key, *late in conn.execute(
                "SELECT key, SUM(visits), SUM(bounces), SUM(duration), SUM(visit_pageviews) "
                "FROM late_visits WHERE site = ? AND dim = ? AND day >= ? AND day < ? "
                "AND key_day >= ? GROUP BY key",
                (part.site.code, dim, lo, hi, part.end),
            ):
                total = totals.setdefault(key, [0] * 10)
                for index, value in zip(_VISIT_FIGURES, late, strict=True):
                    total[index] -= value
    present = [key for key, total in totals.items() if total[_HITS] > 0]
    need = None if limit is None else offset + limit
    present.sort(key=lambda key: -totals[key][_BOUND])
    best: list[int] = []  # the ``need`` largest visitor counts found so far (a min-heap)
    rows = []
    for key in present:
        bound = totals[key][_BOUND]
        if need is not None and len(best) >= need and bound < best[0]:
            break  # no value left can reach the rows asked for
        visitors = converted = 0
        if bound:
            ids, unknown = _visitors(conn, parts, queued, dim, key, log)
            visitors = len(ids) + len(unknown)
            if reached is not None:
                converted = ids.intersection_cardinality(reached.get(None, BitMap()))
        rows.append(_row(decode_key(key), visitors, totals[key], converted))
        if need is not None:
            if len(best) < need:
                heapq.heappush(best, visitors)
            elif visitors > best[0]:
                heapq.heapreplace(best, visitors)
    return _ranked(rows, limit, offset)


def _bucketed(
    conn: sqlite3.Connection,
    parts: list[Part],
    queued: list[Queued],
    log: Changes,
    limit: int | None,
    offset: int,
    reached: dict[int | None, BitMap] | None,
) -> list[MetricRow]:
    """The time series: the whole site's rows summed into buckets (a visit counts in the
    bucket where it started), visitors the union of the bucket's days (those of them who
    reached the goal in the bucket, if ``reached``, converted)."""
    totals: dict[int, list[int]] = {}
    visitors: dict[int, list[BitMap]] = {}
    unknown: dict[int, set[bytes]] = {}
    for part, from_events in zip(parts, queued, strict=True):
        bucket_of: dict[int, int] = {}
        for index, lo, hi in part.buckets:
            bucket_of.update(dict.fromkeys(range(lo, hi), index))
        for _, day, delta in _logged(part, log, 0):
            at = bucket_of.get(day)
            if at is not None:
                _add(totals.setdefault(at, [0] * 10), delta.sums)
                visitors.setdefault(at, []).append(delta.added)
        for (day, _), sums in from_events.sums.items():
            at = bucket_of.get(day)
            if at is not None:
                _add(totals.setdefault(at, [0] * 10), sums)
                visitors.setdefault(at, []).append(from_events.ids.get((day, NULL_KEY), BitMap()))
                unknown.setdefault(at, set()).update(from_events.hashes.get((day, NULL_KEY), ()))
        for index, lo, hi in part.buckets:
            for grain, piece_lo, piece_hi in part.pieces(lo, hi):
                for sums in conn.execute(
                    "SELECT hits, pageviews, events, engaged, unidentified, visits, bounces, "
                    f"duration, visit_pageviews, nvisitors FROM {grain}_rollups WHERE site = ? "
                    "AND dim = 0 AND day >= ? AND day < ?",
                    (part.site.code, piece_lo, piece_hi),
                ):
                    _add(totals.setdefault(index, [0] * 10), sums)
                visitors.setdefault(index, []).extend(
                    deserialize(row[0])
                    for row in conn.execute(
                        f"SELECT ids FROM {grain}_visitors WHERE site = ? AND dim = 0 "
                        "AND key = ? AND day >= ? AND day < ?",
                        (part.site.code, NULL_KEY, piece_lo, piece_hi),
                    )
                )
    rows = []
    for index, total in totals.items():
        if total[_HITS] <= 0:
            continue
        ids = BitMap.union(BitMap(), *visitors.get(index, []))
        converted = 0
        if reached is not None:
            converted = ids.intersection_cardinality(reached.get(index, BitMap()))
        rows.append(_row(index, len(ids) + len(unknown.get(index, ())), total, converted))
    return _ranked(rows, limit, offset)


def visitor_kinds(conn: sqlite3.Connection, ranges: Sequence[SiteRange]) -> dict[str, int] | None:
    """Distinct visitors by kind (the id ranges of ``visitor_ids``), or ``None`` (also while a
    day of the period is queued: its visitors' kinds are the events')."""
    parts = plan(conn, ranges, None)
    if parts is None or any(part.queued for part in parts):
        return None
    codes = [part.site.code for part in parts]
    if codes:
        marks = ", ".join("?" * len(codes))
        mixed = conn.execute(
            f"SELECT 1 FROM rollup_sites WHERE code IN ({marks}) AND mixed_kinds LIMIT 1", codes
        ).fetchone()
        if mixed is not None:
            return None
    log = read_log(conn)
    found = []
    for part in parts:
        found += [delta.added for _, _, delta in _logged(part, log, 0)]
        found += _stored_sets(conn, part, 0, NULL_KEY)
    everyone = BitMap.union(BitMap(), *found)
    client = everyone.rank(ID_LIMITS[0])
    cookieless = everyone.rank(ID_LIMITS[1]) - client
    if len(everyone) - client - cookieless:
        return None  # a kind the ids do not tell apart: the events know
    kinds = {"client": client, "cookieless": cookieless}
    return {kind: count for kind, count in kinds.items() if count}


def engaged(conn: sqlite3.Connection, ranges: Sequence[SiteRange]) -> int | None:
    """Total engaged time of the period (identified and unidentified events), or ``None``."""
    parts = plan(conn, ranges, None)
    if parts is None:
        return None
    log = read_log(conn)
    total = 0
    for part in parts:
        total += sum(delta.sums[_ENGAGED] for _, _, delta in _logged(part, log, 0))
        total += sum(sums[_ENGAGED] for sums in _queued(conn, part, None).sums.values())
        for grain, lo, hi in part.pieces():
            total += int(
                conn.execute(
                    f"SELECT coalesce(SUM(engaged), 0) FROM {grain}_rollups WHERE site = ? "
                    "AND dim = 0 AND day >= ? AND day < ?",
                    (part.site.code, lo, hi),
                ).fetchone()[0]
            )
    return total


def consent_by_day(
    conn: sqlite3.Connection, buckets: Sequence[Bucket]
) -> list[tuple[int, str, int, int, int]] | None:
    """``(bucket, mode, hits, visitors, visits)`` without filters (see
    ``ReportsDatabase.consent_by_day``): hits and visitors from the mode's rows, visits from
    its sets of visit ids; ``None`` unless every bucket is whole local days of the rollups, or
    while a day is queued. Only the buckets' days are read, so the answer does not depend on
    the configured time zone (the events path has none either)."""
    known = sites(conn)
    ranges = []
    for name in sorted({bucket.site for bucket in buckets}):
        site = known.get(name)
        if site is None:
            continue  # no event was ever stored for it
        mine = [bucket for bucket in buckets if bucket.site == name]
        start = min(bucket.start_ms for bucket in mine)
        end = max(bucket.end_ms for bucket in mine)
        ranges.append(SiteRange(name, site.zone.name, start, end))
    parts = plan(conn, ranges, buckets)
    if parts is None or any(part.queued for part in parts):
        return None
    log = read_log(conn)
    mode_dim = DIM_CODE["mode"]
    hits: dict[tuple[int, str], int] = {}
    sets: dict[tuple[int, str, int], list[BitMap]] = {}
    for part in parts:
        for index, lo, hi in part.buckets:
            for grain, piece_lo, piece_hi in part.pieces(lo, hi):
                for key, count in conn.execute(
                    f"SELECT key, SUM(hits) FROM {grain}_rollups WHERE site = ? AND dim = ? "
                    "AND day >= ? AND day < ? GROUP BY key",
                    (part.site.code, mode_dim, piece_lo, piece_hi),
                ).fetchall():
                    hits[(index, key)] = hits.get((index, key), 0) + count
                    for dim in (mode_dim, MODE_VISITS):
                        sets.setdefault((index, key, dim), []).extend(
                            _stored_sets(conn, part, dim, key, piece_lo, piece_hi)
                        )
            for dim in (mode_dim, MODE_VISITS):
                for key, day, delta in _logged(part, log, dim):
                    if lo <= day < hi:
                        sets.setdefault((index, key, dim), []).append(delta.added)
                        if dim == mode_dim:
                            hits[(index, key)] = hits.get((index, key), 0) + delta.sums[_HITS]
    found = []
    for (index, mode), count in sorted(hits.items()):
        if count <= 0:
            continue
        visitors = BitMap.union(BitMap(), *sets.get((index, mode, mode_dim), []))
        visits = BitMap.union(BitMap(), *sets.get((index, mode, MODE_VISITS), []))
        found.append((index, str(mode), count, len(visitors), len(visits)))
    return found


def reason_counts(
    conn: sqlite3.Connection, ranges: Sequence[SiteRange]
) -> list[tuple[str, str, int]] | None:
    """``(mode, reasons, hits)`` without filters (``ReportsDatabase.reason_counts``), or
    ``None``."""
    parts = plan(conn, ranges, None)
    if parts is None or any(part.queued for part in parts):
        return None
    log = read_log(conn)
    hits: dict[str, int] = {}
    for part in parts:
        for key, _, delta in _logged(part, log, MODE_REASONS):
            hits[key] = hits.get(key, 0) + delta.sums[_HITS]
        for grain, lo, hi in part.pieces():
            for key, count in conn.execute(
                f"SELECT key, SUM(hits) FROM {grain}_rollups WHERE site = ? AND dim = ? "
                "AND day >= ? AND day < ? GROUP BY key",
                (part.site.code, MODE_REASONS, lo, hi),
            ):
                hits[key] = hits.get(key, 0) + count
    found = []
    for key, count in sorted(hits.items()):
        if count > 0:
            mode, reasons = str(key).split("\n", 1)
            found.append((mode, reasons, count))
    return sorted(found)


def client_visit_starts(
    conn: sqlite3.Connection, ranges: Sequence[SiteRange], end_ms: int
) -> list[tuple[str, bytes, int]] | None:
    """``ReportsDatabase.client_visit_starts`` without filters. A site's new visitors are the
    client ids of its range's bitmaps that no earlier day's bitmap holds; each is checked
    against its visits (retention may have taken a visit's first events, and its start then
    precedes every event left), and their visits before ``end_ms`` are read by visitor.
    ``None`` while a day of a site is queued, when a hash was stored under two kinds, or when
    the range starts before retention's latest deletion (a visit that started in the range
    may have lost every event of it)."""
    parts = plan(conn, ranges, None)
    if parts is None:
        return None
    log = read_log(conn)
    found: list[tuple[str, bytes, int]] = []
    for part in parts:
        site = part.site
        start_ms = site.zone.bounds(part.first)[0]
        mixed, purged_before = conn.execute(
            "SELECT mixed_kinds, purged_before FROM rollup_sites WHERE code = ?", (site.code,)
        ).fetchone()
        queued = conn.execute(
            "SELECT 1 FROM rollup_pending_days WHERE site = ? LIMIT 1", (site.name,)
        ).fetchone()
        if mixed or start_ms < purged_before or queued is not None:
            return None
        period = BitMap.union(
            BitMap(),
            *_stored_sets(conn, part, 0, NULL_KEY),
            *(delta.added for _, _, delta in _logged(part, log, 0)),
        )
        period = period[: period.rank(ID_LIMITS[0])]  # client ids only
        first = conn.execute(
            "SELECT min(day) FROM day_rollups WHERE site = ? AND dim = 0", (site.code,)
        ).fetchone()[0]
        earlier = []
        if first is not None and first < part.first:
            earlier = _stored_sets(conn, part, 0, NULL_KEY, first, part.first)
        earlier += [
            delta.added
            for (code, dim, day, _), delta in log.rows.items()
            if code == site.code and dim == 0 and day < part.first
        ]
        new = sorted(period - BitMap.union(BitMap(), *earlier))
        hashes: list[bytes] = []
        for at in range(0, len(new), 500):
            chunk = new[at : at + 500]
            marks = ", ".join("?" * len(chunk))
            hashes += [
                bytes(row[0])
                for row in conn.execute(
                    "SELECT hash FROM visitor_ids INDEXED BY visitor_ids_by_id WHERE site = ? "
                    f"AND id IN ({marks})",
                    [site.code, *chunk],
                )
            ]
        for visitor in hashes:
            starts = [
                int(row[0])
                for row in conn.execute(
                    "SELECT start_ts FROM visits INDEXED BY visits_by_visitor WHERE site = ? "
                    "AND visitor = ? AND start_ts < ? ORDER BY start_ts",
                    (site.name, visitor, end_ms),
                )
            ]
            if starts and starts[0] >= start_ms:
                found += [(site.name, visitor, start) for start in starts]
    found.sort(key=lambda row: row[2])
    return found
