"""Browser privacy headers: Global Privacy Control (``Sec-GPC``) and Do Not Track (``DNT``)."""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["dnt_requested", "gpc_requested"]


def gpc_requested(values: Iterable[str]) -> bool:
    """Whether any ``Sec-GPC`` value is exactly ``"1"``.

    The GPC spec has servers ignore every other value, and treat several headers as one ``1``
    when any of them is ``1``.
    """
    return any(value == "1" for value in values)


def dnt_requested(values: Iterable[str]) -> bool:
    """Whether any ``DNT`` value is ``"1"`` (``"0"`` and anything else express no objection)."""
    return any(value == "1" for value in values)
