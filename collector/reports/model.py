"""Typed values passed between the reports package and storage: goals, buckets and raw rows."""

from __future__ import annotations

import re
from typing import Annotated, Literal

import msgspec

GoalKind = Literal["page", "event"]
GoalName = Annotated[str, msgspec.Meta(min_length=1, max_length=100, pattern=r"^[^\x00-\x1f]*$")]
GoalMatch = Annotated[str, msgspec.Meta(min_length=1, max_length=500, pattern=r"^[^\x00-\x1f]*$")]
_GOAL_SPEC = re.compile(r"^(page|event):(.+)$")


class Goal(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A pageview path pattern (``*`` matches anything) or an event name."""

    name: GoalName
    kind: GoalKind
    match: GoalMatch

    @property
    def glob(self) -> str:
        """``match`` as an SQLite GLOB pattern where only ``*`` is special."""
        return self.match.replace("[", "[[]").replace("?", "[?]")


class GoalIn(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The body of ``POST /api/v1/goals``."""

    site: str
    name: GoalName
    kind: GoalKind
    match: GoalMatch


def parse_goal_spec(spec: str) -> Goal | None:
    """``page:/pattern*`` or ``event:name`` as an ad-hoc goal; ``None`` if it is a goal name."""
    found = _GOAL_SPEC.match(spec)
    if found is None:
        return None
    kind: GoalKind = "page" if found.group(1) == "page" else "event"
    return Goal(name=spec, kind=kind, match=found.group(2))


class Bucket(msgspec.Struct, frozen=True):
    """One time-series bucket of one site: ``[start_ms, end_ms)``."""

    index: int
    site: str
    start_ms: int
    end_ms: int


class MetricRow(msgspec.Struct, frozen=True, kw_only=True):
    """Raw counts for one group (a breakdown value, a bucket index, or the whole period)."""

    key: str | int | None
    visitors: int
    pageviews: int
    events: int
    visits: int
    bounces: int
    duration_ms: int
    visit_pageviews: int
    converted: int
    unidentified_pageviews: int


class StepEvent(msgspec.Struct, frozen=True, array_like=True):
    """An event relevant to a funnel or an experiment, in time order per visitor."""

    site: str
    visitor: bytes
    visit: int | None
    ts: int
    name: str
    path: str
    value: str | None = None


FunnelStepSpec = Annotated[
    str, msgspec.Meta(min_length=6, max_length=500, pattern=r"^(page|event):[^\x00-\x1f]+$")
]
FunnelWithin = Annotated[str, msgspec.Meta(pattern=r"^(visit|[0-9]{1,3}d)$")]


class SavedFunnel(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A funnel saved for a site (the body of ``POST /api/v1/funnels``): 2 to 10 steps,
    each ``page:PATTERN`` or ``event:NAME``, within one visit or ``N`` days (``7d``)."""

    site: str
    name: GoalName
    steps: Annotated[list[FunnelStepSpec], msgspec.Meta(min_length=2, max_length=10)]
    within: FunnelWithin = "visit"
