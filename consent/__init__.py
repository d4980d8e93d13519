"""Consent: modes, resolution of a hit's mode from its signals, field policy, TCF, CNIL check.

Pure: no I/O, no clock reads, no state; time, configuration and signals come in as arguments.
"""

from __future__ import annotations

from consent.field_policy import EXEMPT_EVENTS, FieldPolicy, policy
from consent.modes import Mode, most_restrictive
from consent.resolution import Resolution, Signals, resolve
from consent.site_policy import SitePolicy

__all__ = [
    "EXEMPT_EVENTS",
    "FieldPolicy",
    "Mode",
    "Resolution",
    "Signals",
    "SitePolicy",
    "most_restrictive",
    "policy",
    "resolve",
]
