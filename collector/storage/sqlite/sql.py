"""Building blocks of the SQLite report SQL, shared by the reports over the events and the
rollups: bound parameters, each dimension's expression, filters, goals and the period scope.

Nothing from a request is ever spliced into SQL text: dimension names map through
:data:`DIMENSION_SQL` (one expression per entry of the dimension table), property names and
every value are bound parameters, and the period arrives as JSON bound to ``json_each``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec

from collector.storage.rows import PROP_PREFIX, Filter, Goal, SiteRange, dimension_map
from collector.storage.sqlite.layout import BUILT_IN_NAMES, CUSTOM_TERM

SOURCE = (
    "CASE WHEN e.mode = 'granted' AND e.utm_source IS NOT NULL THEN e.utm_source "
    "ELSE coalesce(e.source, 'Direct / None') END"
)
#: The value of each dimension for an event ``e`` of visit ``v``: the reports group and filter
#: by it, and the rollups store it.
DIMENSION_SQL = dimension_map(
    "SQLite",
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
        "browser_version": "CASE WHEN e.browser_version IS NULL THEN e.browser "
        "ELSE e.browser || ' ' || e.browser_version END",
        "os": "e.os",
        "os_version": "CASE WHEN e.os_version IS NULL THEN e.os "
        "ELSE e.os || ' ' || e.os_version END",
        "country": "e.country",
        "screen": "e.screen",
        "event": "e.name",
        "mode": "e.mode",
    },
)


#: Dimensions whose value is one column of the compact layout's dictionary: a filter on them
#: compares the column's id (``e.<column>_id``) with the value's, instead of decoding each row.
ID_COLUMNS = {
    "page": "path",
    "hostname": "hostname",
    "referrer": "referrer",
    "utm_source": "utm_source",
    "utm_medium": "utm_medium",
    "utm_campaign": "utm_campaign",
    "utm_term": "utm_term",
    "utm_content": "utm_content",
    "device": "device",
    "browser": "browser",
    "os": "os",
    "country": "country",
    "screen": "screen",
    "mode": "mode",
}
_DIRECT = "Direct / None"
#: :data:`SOURCE` over the ids: the source's id, or 0 for "Direct / None" without a source.
_SOURCE_ID = (
    "CASE WHEN e.mode_id = (SELECT id FROM strings WHERE value = 'granted') "
    "AND e.utm_source_id IS NOT NULL THEN e.utm_source_id ELSE coalesce(e.source_id, 0) END"
)


#: Whether visit ``v`` bounced: one pageview and no interaction. Only a one-pageview visit with
#: other events needs a look at them (engagement pings are not interactions). Written as CASE:
#: SQLite ran the look-up for more visits when it was the last term of an AND and an OR (90 of
#: the 450 ms of a breakdown filtered on a page, at 10 M events).
BOUNCED = (
    "CASE WHEN v.pageviews != 1 THEN 0 WHEN v.events = 0 THEN 1 ELSE NOT EXISTS (SELECT 1 "
    "FROM events i WHERE i.visit = v.id AND i.name NOT IN ('pageview', 'engagement')) END"
)


class Params:
    """Bound parameters of one statement, named ``p0``, ``p1``, … as they are added.

    ``compact``: the statement reads the compact layout's ``events`` view, whose ``<column>_id``
    columns filters compare with ids."""

    def __init__(self, *, compact: bool = False, **initial: Any) -> None:
        self.compact = compact
        self.values: dict[str, Any] = dict(initial)

    def add(self, value: Any) -> str:
        name = f"p{len(self.values)}"
        self.values[name] = value
        return ":" + name


def dimension_sql(dimension: str, params: Params) -> str:
    if dimension.startswith(PROP_PREFIX):
        path = params.add('$."' + dimension[len(PROP_PREFIX) :] + '"')
        return f"CAST(json_extract(e.props, {path}) AS TEXT)"
    return DIMENSION_SQL[dimension]


def filters_sql(filters: Sequence[Filter], params: Params) -> str:
    """The AND of ``filters`` over aliases ``e`` (events) and ``v`` (its visit), or ``1``."""
    clauses = ["1"]
    for item in filters:
        if params.compact and (item.dimension in ID_COLUMNS or item.dimension == "source"):
            clauses.append(_id_filter(item, params))
            continue
        expr = dimension_sql(item.dimension, params)
        value = params.add(item.value)
        if item.op == "is":
            clauses.append(f"{expr} = {value}")
            if item.dimension == "event" and item.value not in BUILT_IN_NAMES:
                clauses.append(CUSTOM_TERM)  # lets SQLite read the custom events' index
        elif item.op == "is_not":
            clauses.append(f"({expr} IS NULL OR {expr} != {value})")
        else:
            clauses.append(f"instr({expr}, {value}) > 0")
    return " AND ".join(clauses)


def _id_filter(item: Filter, params: Params) -> str:
    """``item`` over the ids of the compact layout: the same rows as over the decoded text."""
    value = params.add(item.value)
    if item.dimension == "source":
        expr = _SOURCE_ID
        wanted = (
            f"SELECT id FROM strings WHERE value = {value} "
            f"UNION ALL SELECT 0 WHERE {value} = '{_DIRECT}'"
        )
    else:
        expr = f"e.{ID_COLUMNS[item.dimension]}_id"
        wanted = f"SELECT id FROM strings WHERE value = {value}"
    if item.op == "is":
        return f"{expr} IN ({wanted})"
    if item.op == "is_not":
        return f"({expr} IS NULL OR {expr} NOT IN ({wanted}))"
    contains = f"SELECT id FROM strings WHERE instr(value, {value}) > 0"
    if item.dimension == "source":
        contains += f" UNION ALL SELECT 0 WHERE instr('{_DIRECT}', {value}) > 0"
    return f"{expr} IN ({contains})"


def goal_sql(goal: Goal, params: Params) -> str:
    if goal.kind == "page":
        pattern = params.add(goal.glob)
        if params.compact:
            return (
                "(e.name = 'pageview' AND e.path_id IN "
                f"(SELECT id FROM strings WHERE value GLOB {pattern}))"
            )
        return f"(e.name = 'pageview' AND e.path GLOB {pattern})"
    if goal.match in BUILT_IN_NAMES:
        return f"e.name = {params.add(goal.match)}"
    # The custom events' index serves the goal only when the query repeats its WHERE.
    return f"(e.name = {params.add(goal.match)} AND {CUSTOM_TERM})"


def scope_json(ranges: Sequence[SiteRange]) -> str:
    return msgspec.json.encode([[r.site, r.start_ms, r.end_ms] for r in ranges]).decode()
