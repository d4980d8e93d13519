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


class Params:
    """Bound parameters of one statement, named ``p0``, ``p1``, … as they are added."""

    def __init__(self, **initial: Any) -> None:
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
        expr = dimension_sql(item.dimension, params)
        value = params.add(item.value)
        if item.op == "is":
            clauses.append(f"{expr} = {value}")
        elif item.op == "is_not":
            clauses.append(f"({expr} IS NULL OR {expr} != {value})")
        else:
            clauses.append(f"instr({expr}, {value}) > 0")
    return " AND ".join(clauses)


def goal_sql(goal: Goal, params: Params) -> str:
    if goal.kind == "page":
        return f"(e.name = 'pageview' AND e.path GLOB {params.add(goal.glob)})"
    return f"e.name = {params.add(goal.match)}"


def scope_json(ranges: Sequence[SiteRange]) -> str:
    return msgspec.json.encode([[r.site, r.start_ms, r.end_ms] for r in ranges]).decode()
