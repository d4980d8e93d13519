"""Consent modes, ordered from most to least restrictive (docs/design.md §3)."""

from __future__ import annotations

import enum
from typing import Any


class Mode(enum.StrEnum):
    """A hit's consent mode. ``min(a, b)`` is the more restrictive of the two."""

    OPTOUT = "optout"
    DENIED = "denied"
    EXEMPT = "exempt"
    GRANTED = "granted"

    @property
    def rank(self) -> int:
        return _RANK[self]

    # str's own ordering is alphabetical; the order that matters is restrictiveness.
    def __lt__(self, other: Any) -> bool:
        if not isinstance(other, Mode):
            return NotImplemented
        return _RANK[self] < _RANK[other]

    def __le__(self, other: Any) -> bool:
        if not isinstance(other, Mode):
            return NotImplemented
        return _RANK[self] <= _RANK[other]

    def __gt__(self, other: Any) -> bool:
        if not isinstance(other, Mode):
            return NotImplemented
        return _RANK[self] > _RANK[other]

    def __ge__(self, other: Any) -> bool:
        if not isinstance(other, Mode):
            return NotImplemented
        return _RANK[self] >= _RANK[other]

    def __hash__(self) -> int:
        return hash(self.value)


_RANK = {Mode.OPTOUT: 0, Mode.DENIED: 1, Mode.EXEMPT: 2, Mode.GRANTED: 3}


def most_restrictive(*modes: Mode) -> Mode:
    """The most restrictive of ``modes`` (``GRANTED`` when none is given)."""
    return min(modes, default=Mode.GRANTED)
