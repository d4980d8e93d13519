"""Building blocks of the ClickHouse report SQL: each dimension's expression, filters, goals,
period scopes and time buckets, each value a typed server-side parameter (``{p0:String}``)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from collector.storage.rows import (
    PROP_PREFIX,
    VISIT_DIMENSIONS,
    Bucket,
    Filter,
    Goal,
    SiteRange,
    dimension_map,
)

SOURCE = (
    "multiIf(e.mode = 'granted' AND e.utm_source IS NOT NULL, e.utm_source, "
    "coalesce(e.source, 'Direct / None'))"
)
#: The value of each dimension for an event ``e`` of visit ``v``.
DIMENSION_SQL = dimension_map(
    "ClickHouse",
    {
        "page": "e.path",
        "entry_page": "v.entry_path",
        "exit_page": "v.exit_path",
        "hostname": "e.hostname",
        "source": SOURCE,
        "referrer": "e.referrer",
        "utm_source": "e.utm_source",
        "utm_medium": "e.utm_medium",
        "utm_campaign": "e.utm_campaign",
        "utm_term": "e.utm_term",
        "utm_content": "e.utm_content",
        "device": "e.device",
        "browser": "e.browser",
        "browser_version": "if(e.browser_version IS NULL, e.browser, "
        "concat(e.browser, ' ', e.browser_version))",
        "os": "e.os",
        "os_version": "if(e.os_version IS NULL, e.os, concat(e.os, ' ', e.os_version))",
        "country": "e.country",
        "screen": "e.screen",
        "event": "e.name",
        "mode": "e.mode",
    },
)
# Every version of a visit shares its partition (``created_ts`` never changes), so ``FINAL``
# may collapse each partition on its own, in parallel.
SETTINGS = {"final": 1, "join_use_nulls": 1, "do_not_merge_across_partitions_select_final": 1}
# SQLite returns GROUP BY rows sorted by the grouping keys (NULL first) and some reports keep
# that order: the queries below say ORDER BY explicitly.
VISITS = "{db}.visits"
EVENTS = "{db}.events"


class Params:
    """Typed server-side parameters ``p0``, ``p1``, … as they are added."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def add(self, value: Any, kind: str) -> str:
        name = f"p{len(self.values)}"
        self.values[name] = value
        return "{" + name + ":" + kind + "}"


def ms(column: str) -> str:
    return f"toUnixTimestamp64Milli({column})"


def visitor_key(column: str) -> str:
    """A visitor as a ``UInt128`` for ``uniqExact``: visitors are 16-byte keyed hashes
    (``collector.hashing.HASH_BYTES``), so the number holds one exactly and hashes faster than
    the string (on which ``uniqExact`` would hash each value to 128 bits anyway)."""
    return f"reinterpretAsUInt128({column})"


def at(placeholder: str) -> str:
    return f"fromUnixTimestamp64Milli({placeholder}, 'UTC')"


def dimension_sql(dimension: str, params: Params) -> str:
    if dimension.startswith(PROP_PREFIX):
        key = params.add(dimension[len(PROP_PREFIX) :], "String")
        return f"if(mapContains(e.props_text, {key}), e.props_text[{key}], NULL)"
    return DIMENSION_SQL[dimension]


def filters_sql(filters: Sequence[Filter], params: Params) -> str:
    clauses = ["1"]
    for item in filters:
        expr = dimension_sql(item.dimension, params)
        value = params.add(item.value, "String")
        if item.op == "is":
            clauses.append(f"{expr} = {value}")
        elif item.op == "is_not":
            clauses.append(f"({expr} IS NULL OR {expr} != {value})")
        else:
            clauses.append(f"position({expr}, {value}) > 0")
    return " AND ".join(clauses)


def glob_regex(goal: Goal) -> str:
    """The page goal's pattern (only ``*`` is special) as an anchored RE2 expression."""
    return "(?s)^" + ".*".join(re.escape(part) for part in goal.match.split("*")) + "$"


def goal_sql(goal: Goal, params: Params) -> str:
    if goal.kind == "page" and "*" not in goal.match:
        # Without a wildcard the pattern is the path itself: a comparison, not a regex.
        return f"(e.name = 'pageview' AND e.path = {params.add(goal.match, 'String')})"
    if goal.kind == "page":
        return f"(e.name = 'pageview' AND match(e.path, {params.add(glob_regex(goal), 'String')}))"
    return f"e.name = {params.add(goal.match, 'String')}"


def scope_sql(ranges: Sequence[SiteRange], params: Params, site: str, ts: str) -> str:
    """``site``/``ts`` inside one of ``ranges`` (``[start, end)`` per site)."""
    parts = [
        f"({site} = {params.add(r.site, 'String')} "
        f"AND {ts} >= {at(params.add(r.start_ms, 'Int64'))} "
        f"AND {ts} < {at(params.add(r.end_ms, 'Int64'))})"
        for r in ranges
    ]
    return "(" + (" OR ".join(parts) or "0") + ")"


def bucket_cte(buckets: Sequence[Bucket], params: Params) -> str:
    """The buckets as a small table ``b(bi, bsite, blo, bhi)``."""
    zipped = (
        f"arrayZip({params.add([b.index for b in buckets], 'Array(Int64)')}, "
        f"{params.add([b.site for b in buckets], 'Array(String)')}, "
        f"{params.add([b.start_ms for b in buckets], 'Array(Int64)')}, "
        f"{params.add([b.end_ms for b in buckets], 'Array(Int64)')})"
    )
    return (
        "b AS (SELECT t.1 AS bi, t.2 AS bsite, fromUnixTimestamp64Milli(t.3, 'UTC') AS blo, "
        f"fromUnixTimestamp64Milli(t.4, 'UTC') AS bhi FROM (SELECT arrayJoin({zipped}) AS t))"
    )


def bucketed(table: str, ts: str, created: str | None = None) -> str:
    """``table``'s rows with the index of the bucket holding ``ts`` as ``bucket`` (rows outside
    every bucket left out). An ``ASOF`` join finds the latest bucket start of the row's site at or
    before ``ts``: a sort-merge, where testing every bucket on every row would be quadratic.
    Only the rows of the buckets' sites and span enter the join (the primary key finds them);
    ``created``, a column never earlier than ``ts``, prunes partitions too."""
    x = f"bucketed_{table.rsplit('.', 1)[-1]}"
    lowest = "(SELECT min(blo) FROM b)"
    span = (
        f"{x}.site IN (SELECT bsite FROM b) AND {x}.{ts} >= {lowest} "
        f"AND {x}.{ts} < (SELECT max(bhi) FROM b)"
    )
    if created is not None:
        span += f" AND {x}.{created} >= {lowest}"
    return (
        f"(SELECT {x}.*, b.bi AS bucket FROM (SELECT * FROM {table} AS {x} WHERE {span}) AS {x} "
        f"ASOF INNER JOIN b ON {x}.site = b.bsite AND {x}.{ts} >= b.blo WHERE {x}.{ts} < b.bhi)"
    )


def visit_join(needed: bool, scope: str | None = None) -> str:
    """The visit of each event as ``v``; with ``scope`` (a condition on events ``e``), only the
    visits of those events are read (the visits' primary key finds them by id)."""
    if not needed:
        return ""
    if scope is None:
        return f"LEFT JOIN {VISITS} AS v ON v.id = e.visit"
    return (
        f"LEFT JOIN (SELECT * FROM {VISITS} WHERE id IN (SELECT e.visit FROM {EVENTS} AS e "
        f"WHERE {scope})) AS v ON v.id = e.visit"
    )


def needs_visit(filters: Sequence[Filter], dimension: str | None = None) -> bool:
    return dimension in VISIT_DIMENSIONS or any(f.dimension in VISIT_DIMENSIONS for f in filters)
