"""What a goal is given as: the goals API's body and the ``page:``/``event:`` spec of a request."""

from __future__ import annotations

import re

import msgspec

from collector.storage.rows import Goal, GoalKind, GoalMatch, GoalName

_GOAL_SPEC = re.compile(r"^(page|event):(.+)$")


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
