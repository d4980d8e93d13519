"""The root of every error Mesure raises on purpose.

It lives here, in the pure package the collector builds on, so that ``consent``'s own errors
(:class:`consent.tcf.TCStringError`) belong to the one tree while ``consent`` still imports
nothing of the collector. The tree is drawn, and its other classes declared, in
:mod:`collector.errors`, which re-exports this class: import it from there.
"""

from __future__ import annotations


class MesureError(Exception):
    """Base of every error Mesure raises on purpose."""
