"""The reports read from the daily rollups (see :mod:`collector.storage.sqlite.rollups` for
what the tables hold): each range's whole local months from the month rows, the days around
them from the day rows, and the changes still waiting in the log.

A report is answered here when it has no filter and no goal, is broken down by a rolled-up
dimension (or not at all, or by whole-day buckets), and each site's range is whole local days
in the time zone its rollups were built with, none of them queued for a rebuild; otherwise the
functions return ``None`` and the caller reads the events. Sums are sums of day rows; distinct
visitors are the size of the union of the days' bitmaps; a visit that started in the period but
shows a value only after its end (``late_visits``) is taken back out, as the events path does.

Breakdowns rank values by visitors: each value's sum of daily counts bounds its visitors from
above, so the unions are computed in that order and stop once no value left can reach the
rows asked for.
"""

from __future__ import annotations

import heapq
import sqlite3
from collections.abc import Iterator, Sequence
from typing import Any

from pyroaring import BitMap

from collector.storage.rows import Bucket, MetricRow, SiteRange
from collector.storage.sqlite.rollups import (
    DIM_CODE,
    ID_LIMITS,
    NULL_KEY,
    ROLLUP_DIMENSIONS,
    Changes,
    Delta,
    Site,
    decode_key,
    deserialize,
    month_of,
    next_month,
    read_log,
    sites,
)

# Positions in the sums read from day_rollups.
_HITS, _PV, _EVENTS, _ENGAGED, _UNIDENTIFIED, _VISITS, _BOUNCES, _DURATION, _VISIT_PV, _BOUND = (
    range(10)
)
_SUMS = (
    "SUM(hits), SUM(pageviews), SUM(events), SUM(engaged), SUM(unidentified), SUM(visits), "
    "SUM(bounces), SUM(duration), SUM(visit_pageviews), SUM(nvisitors)"
)

#: One site's part of a report: its rollups, ``[first, end)`` in local days, and its buckets
#: as ``(index, first, end)``.
Part = tuple[Site, int, int, list[tuple[int, int, int]]]


def plan(
    conn: sqlite3.Connection, ranges: Sequence[SiteRange], buckets: Sequence[Bucket] | None
) -> list[Part] | None:
    """Each site's days, or ``None`` when the rollups cannot answer (see the module)."""
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
        pending = conn.execute(
            "SELECT 1 FROM rollup_pending_days WHERE site = ? AND day >= ? AND day < ? LIMIT 1",
            (site.name, first, end),
        ).fetchone()
        if pending is not None:
            return None
        found: list[tuple[int, int, int]] = []
        for bucket in buckets or ():
            if bucket.site != site.name:
                continue
            bucket_days = site.zone.whole_days(bucket.start_ms, bucket.end_ms)
            if bucket_days is None or bucket_days[0] < first or bucket_days[1] > end:
                return None
            found.append((bucket.index, *bucket_days))
        parts.append((site, first, end, found))
    return parts


def _logged(parts: list[Part], log: Changes, dim: int) -> Iterator[tuple[Any, int, Delta]]:
    """``(key, day, delta)`` of the changes waiting in the log for ``dim`` in the parts' days."""
    ranges = {site.code: (first, end) for site, first, end, _ in parts}
    for (code, row_dim, day, key), delta in log.rows.items():
        span = ranges.get(code)
        if row_dim == dim and span is not None and span[0] <= day < span[1]:
            yield key, day, delta


def _bitmap(
    conn: sqlite3.Connection, parts: list[Part], dim: int, key: Any, log: Changes
) -> BitMap:
    """The visitors of ``key`` over every part's days (the log's included)."""
    found = [delta.added for logged, _, delta in _logged(parts, log, dim) if logged == key]
    for site, first, end, _ in parts:
        for grain, lo, hi in pieces(first, end):
            found += [
                deserialize(row[0])
                for row in conn.execute(
                    f"SELECT ids FROM {grain}_visitors WHERE site = ? AND dim = ? AND key = ? "
                    "AND day >= ? AND day < ?",
                    (site.code, dim, key, lo, hi),
                )
            ]
    return BitMap.union(*found) if found else BitMap()


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


def _order(key: Any) -> tuple[int, Any]:
    """SQLite's order of values: NULL, then numbers, then text."""
    if key is None:
        return (0, 0)
    return (1, key) if isinstance(key, int) else (2, key)


def _row(key: Any, visitors: int, sums: Sequence[int]) -> MetricRow:
    return MetricRow(
        key=key,
        visitors=visitors,
        pageviews=sums[_PV],
        events=sums[_EVENTS],
        visits=sums[_VISITS],
        bounces=sums[_BOUNCES],
        duration_ms=sums[_DURATION],
        visit_pageviews=sums[_VISIT_PV],
        converted=0,
        unidentified_pageviews=sums[_UNIDENTIFIED],
    )


def _ranked(rows: list[MetricRow], limit: int | None, offset: int) -> list[MetricRow]:
    """``ORDER BY visitors DESC, pageviews DESC, key`` and the page asked for."""
    rows.sort(key=lambda row: (-row.visitors, -row.pageviews, _order(row.key)))
    if limit is None:
        return rows[offset:] if offset else rows
    return rows[offset : offset + limit]


def metrics(
    conn: sqlite3.Connection,
    ranges: Sequence[SiteRange],
    dimension: str | None,
    buckets: Sequence[Bucket] | None,
    limit: int | None,
    offset: int,
) -> list[MetricRow] | None:
    """``ReportsDatabase.metrics`` without filters or goal, from the rollups (or ``None``)."""
    if dimension is not None and (dimension == "*" or dimension not in ROLLUP_DIMENSIONS):
        return None
    if buckets is not None and dimension is not None:
        return None
    parts = plan(conn, ranges, buckets)
    if parts is None:
        return None
    log = read_log(conn)
    if buckets is not None:
        return _bucketed(conn, parts, log, limit, offset)
    dim = DIM_CODE[dimension or "*"]
    totals: dict[Any, list[int]] = {}
    for key, _, delta in _logged(parts, log, dim):
        total = totals.setdefault(key, [0] * 10)
        for index, value in enumerate(delta.sums):
            total[index] += value
        total[_BOUND] += len(delta.added)
    spans = {site.code: (first, end) for site, first, end, _ in parts}
    for (code, late_dim, day, key_day, key), figures in log.late.items():
        first, end = spans.get(code, (0, 0))
        if late_dim == dim and first <= day < end <= key_day:
            total = totals.setdefault(key, [0] * 10)
            for index, value in zip(
                (_VISITS, _BOUNCES, _DURATION, _VISIT_PV), figures, strict=True
            ):
                total[index] -= value
    for site, first, end, _ in parts:
        for grain, lo, hi in pieces(first, end):
            for key, *sums in conn.execute(
                f"SELECT key, {_SUMS} FROM {grain}_rollups WHERE site = ? AND dim = ? "
                "AND day >= ? AND day < ? GROUP BY key",
                (site.code, dim, lo, hi),
            ):
                total = totals.setdefault(key, [0] * 10)
                for index, value in enumerate(sums):
                    total[index] += value
        # Visits that started in the period and show the value only after its end.
        for key, *late in conn.execute(
            "SELECT key, SUM(visits), SUM(bounces), SUM(duration), SUM(visit_pageviews) "
            "FROM late_visits WHERE site = ? AND dim = ? AND day >= ? AND day < ? "
            "AND key_day >= ? GROUP BY key",
            (site.code, dim, first, end, end),
        ):
            total = totals.setdefault(key, [0] * 10)
            for index, value in zip((_VISITS, _BOUNCES, _DURATION, _VISIT_PV), late, strict=True):
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
        visitors = len(_bitmap(conn, parts, dim, key, log)) if bound else 0
        rows.append(_row(decode_key(key), visitors, totals[key]))
        if need is not None:
            if len(best) < need:
                heapq.heappush(best, visitors)
            elif visitors > best[0]:
                heapq.heapreplace(best, visitors)
    return _ranked(rows, limit, offset)


def _bucketed(
    conn: sqlite3.Connection, parts: list[Part], log: Changes, limit: int | None, offset: int
) -> list[MetricRow]:
    """The time series: the whole site's day rows summed into buckets (a visit counts in the
    bucket where it started), visitors the union of the bucket's days."""
    totals: dict[int, list[int]] = {}
    visitors: dict[int, list[BitMap]] = {}
    for site, first, end, found in parts:
        bucket_of: dict[int, int] = {}
        for index, lo, hi in found:
            bucket_of.update(dict.fromkeys(range(lo, hi), index))
        for _, day, delta in _logged([(site, first, end, found)], log, 0):
            at = bucket_of.get(day)
            if at is not None:
                total = totals.setdefault(at, [0] * 10)
                for position, value in enumerate(delta.sums):
                    total[position] += value
                visitors.setdefault(at, []).append(delta.added)
        for index, lo, hi in found:
            for grain, piece_lo, piece_hi in pieces(lo, hi):
                for sums in conn.execute(
                    "SELECT hits, pageviews, events, engaged, unidentified, visits, bounces, "
                    f"duration, visit_pageviews, nvisitors FROM {grain}_rollups WHERE site = ? "
                    "AND dim = 0 AND day >= ? AND day < ?",
                    (site.code, piece_lo, piece_hi),
                ):
                    total = totals.setdefault(index, [0] * 10)
                    for position, value in enumerate(sums):
                        total[position] += value
                visitors.setdefault(index, []).extend(
                    deserialize(row[0])
                    for row in conn.execute(
                        f"SELECT ids FROM {grain}_visitors WHERE site = ? AND dim = 0 "
                        "AND key = ? AND day >= ? AND day < ?",
                        (site.code, NULL_KEY, piece_lo, piece_hi),
                    )
                )
    rows = [
        _row(index, len(BitMap.union(*visitors.get(index, [BitMap()]))), total)
        for index, total in totals.items()
        if total[_HITS] > 0
    ]
    return _ranked(rows, limit, offset)


def visitor_kinds(conn: sqlite3.Connection, ranges: Sequence[SiteRange]) -> dict[str, int] | None:
    """Distinct visitors by kind (the id ranges of ``visitor_ids``), or ``None``."""
    parts = plan(conn, ranges, None)
    if parts is None:
        return None
    codes = [site.code for site, *_ in parts]
    if codes:
        marks = ", ".join("?" * len(codes))
        mixed = conn.execute(
            f"SELECT 1 FROM rollup_sites WHERE code IN ({marks}) AND mixed_kinds LIMIT 1", codes
        ).fetchone()
        if mixed is not None:
            return None
    log = read_log(conn)
    everyone = BitMap.union(*[_bitmap(conn, [part], 0, NULL_KEY, log) for part in parts], BitMap())
    client = everyone.rank(ID_LIMITS[0])
    cookieless = everyone.rank(ID_LIMITS[1]) - client
    if len(everyone) - client - cookieless:
        return None  # a kind the ids do not tell apart: the events know
    found = {"client": client, "cookieless": cookieless}
    return {kind: count for kind, count in found.items() if count}


def engaged(conn: sqlite3.Connection, ranges: Sequence[SiteRange]) -> int | None:
    """Total engaged time of the period (identified and unidentified events), or ``None``."""
    parts = plan(conn, ranges, None)
    if parts is None:
        return None
    total = sum(delta.sums[_ENGAGED] for _, _, delta in _logged(parts, read_log(conn), 0))
    for site, first, end, _ in parts:
        for grain, lo, hi in pieces(first, end):
            total += int(
                conn.execute(
                    f"SELECT coalesce(SUM(engaged), 0) FROM {grain}_rollups WHERE site = ? "
                    "AND dim = 0 AND day >= ? AND day < ?",
                    (site.code, lo, hi),
                ).fetchone()[0]
            )
    return total
