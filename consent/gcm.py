"""Google Consent Mode v2: the consent types and what they mean for measurement.

Only ``analytics_storage`` speaks about audience measurement; the advertising types
(``ad_storage``, ``ad_user_data``, ``ad_personalization``) neither grant nor refuse it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

__all__ = ["ANALYTICS_STORAGE", "CONSENT_TYPES", "STATES", "analytics_consent", "parse_gcs"]

ANALYTICS_STORAGE = "analytics_storage"
CONSENT_TYPES = (
    "ad_storage",
    "ad_user_data",
    "ad_personalization",
    ANALYTICS_STORAGE,
    "functionality_storage",
    "personalization_storage",
    "security_storage",
)
STATES = ("granted", "denied")

_GCS = re.compile(r"G1([01])([01])")


def analytics_consent(gcm: Mapping[str, str] | None) -> bool | None:
    """``True`` when ``analytics_storage`` is granted, ``False`` when it has any other value,
    ``None`` when the state does not mention it (no measurement signal at all)."""
    if gcm is None or ANALYTICS_STORAGE not in gcm:
        return None
    # Anything but an explicit "granted" is read as a refusal: the restrictive reading.
    return gcm[ANALYTICS_STORAGE] == "granted"


def parse_gcs(gcs: str) -> dict[str, str]:
    """Read Google's ``gcs=G1xy`` hit parameter (x = ``ad_storage``, y = ``analytics_storage``)
    into a Consent Mode state, e.g. for server-side clients that forward Google hits.

    Raises ``ValueError`` for anything but ``G1`` followed by two ``0``/``1`` digits.
    """
    match = _GCS.fullmatch(gcs)
    if match is None:
        raise ValueError(f"gcs {gcs!r} is not G1 followed by two 0/1 digits")
    ad, analytics = (STATES[0] if digit == "1" else STATES[1] for digit in match.groups())
    return {"ad_storage": ad, ANALYTICS_STORAGE: analytics}
