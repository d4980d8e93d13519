"""Query-string parsing for the reports API: every bad parameter is a 400 that names it."""

from __future__ import annotations

import re
from collections.abc import Collection
from datetime import date

from starlette.datastructures import QueryParams

from collector.errors import BadRequestError
from collector.reports.model import parse_goal_spec
from collector.reports.query import ReportQuery
from collector.storage.rows import Filter, Goal, check_dimension

COMMON_PARAMS = frozenset({"site", "period", "from", "to", "filter", "compare"})
PERIODS = ("today", "7d", "30d", "month", "year", "custom")
OPERATORS = ("is", "is_not", "contains")
_WITHIN = re.compile(r"^([0-9]{1,3})d$")
#: Dates a report may name. Beyond them the period's arithmetic (the day after the last, the
#: period before for `compare`) overflowed Python's dates (500); before 1970 nothing was stored.
FIRST_DATE, LAST_DATE = date(1970, 1, 1), date(2999, 12, 31)


def check_known(params: QueryParams, extra: Collection[str]) -> None:
    for name in params:
        if name not in COMMON_PARAMS and name not in extra:
            raise BadRequestError(f"unknown parameter {name!r}", field=name)


def requested_sites(params: QueryParams) -> list[str] | None:
    """``site=a&site=b`` or ``site=a,b``; ``None`` (or ``all``) means every visible site."""
    found = [part for value in params.getlist("site") for part in value.split(",") if part]
    if not found or found == ["all"]:
        return None
    return list(dict.fromkeys(found))


def report_query(params: QueryParams) -> ReportQuery:
    period = params.get("period", "30d")
    if period not in PERIODS:
        raise BadRequestError(f"period must be one of {', '.join(PERIODS)}", field="period")
    compare = params.get("compare")
    if compare not in (None, "previous_period"):
        raise BadRequestError("compare must be previous_period", field="compare")
    filters = tuple(_filter(text) for text in params.getlist("filter"))
    date_from = _date(params, "from")
    date_to = _date(params, "to")
    return ReportQuery(
        period=period,  # type: ignore[arg-type]
        date_from=date_from,
        date_to=date_to,
        filters=filters,
        compare="previous_period" if compare else None,
    )


def _date(params: QueryParams, name: str) -> date | None:
    text = params.get(name)
    if text is None:
        return None
    try:
        found = date.fromisoformat(text)
    except ValueError:
        raise BadRequestError("expected a date YYYY-MM-DD", field=name) from None
    if not FIRST_DATE <= found <= LAST_DATE:
        raise BadRequestError(f"a date from {FIRST_DATE} to {LAST_DATE}", field=name)
    return found


def _filter(text: str) -> Filter:
    """``dimension:op:value``, e.g. ``page:is:/pricing`` or ``prop:plan:contains:pro``."""
    dimension, op, value = _split_filter(text)
    if op not in OPERATORS:
        raise BadRequestError(f"filter operator must be one of {OPERATORS}", field="filter")
    check_dimension(dimension, field="filter")
    if len(value) > 2048:
        raise BadRequestError("filter value too long", field="filter")
    return Filter(dimension=dimension, op=op, value=value)  # type: ignore[arg-type]


def _split_filter(text: str) -> tuple[str, str, str]:
    parts = text.split(":", 3 if text.startswith("prop:") else 2)
    if text.startswith("prop:") and len(parts) == 4:
        return f"prop:{parts[1]}", parts[2], parts[3]
    if len(parts) == 3 and not text.startswith("prop:"):
        return parts[0], parts[1], parts[2]
    raise BadRequestError("filter must be dimension:operator:value", field="filter")


def goal_param(params: QueryParams, name: str = "goal") -> str | None:
    text = params.get(name)
    if text is not None and not 1 <= len(text) <= 500:
        raise BadRequestError("goal must be 1 to 500 characters", field=name)
    return text


def steps(params: QueryParams) -> list[Goal]:
    found: list[Goal] = []
    for text in params.getlist("step"):
        goal = parse_goal_spec(text)
        if goal is None or len(text) > 500:
            raise BadRequestError("a step is page:PATTERN or event:NAME", field="step")
        found.append(goal)
    if not 2 <= len(found) <= 10:
        raise BadRequestError("a funnel has 2 to 10 `step` parameters", field="step")
    return found


def within_days(params: QueryParams) -> int | None:
    text = params.get("within", "visit")
    if text == "visit":
        return None
    match = _WITHIN.match(text)
    if match is None or not 1 <= int(match.group(1)) <= 366:
        raise BadRequestError("within must be `visit` or 1d to 366d", field="within")
    return int(match.group(1))


def positive_int(params: QueryParams, name: str, default: int, maximum: int) -> int:
    text = params.get(name)
    if text is None:
        return default
    if not text.isdigit() or not 1 <= int(text) <= maximum:
        raise BadRequestError(f"{name} must be an integer from 1 to {maximum}", field=name)
    return int(text)


def choice(params: QueryParams, name: str, options: tuple[str, ...], default: str) -> str:
    value = params.get(name, default)
    if value not in options:
        raise BadRequestError(f"{name} must be one of {', '.join(options)}", field=name)
    return value
