"""A site's consent policy: the part of a site's configuration that consent logic reads.

It is the ``[sites.consent]`` table of ``mesure.toml`` (kebab-case keys), decoded as is.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from consent.modes import Mode

CAMPAIGN_PARAMS = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")

#: 13 months: the longest lifetime of an exempt identifier (CNIL 2020-092 art. 5).
MAX_EXEMPT_ID_LIFETIME_DAYS = 395
#: 25 months: the longest retention of exempt data (CNIL 2020-092 art. 5).
MAX_EXEMPT_RETENTION_DAYS = 760

PropertyName = Annotated[
    str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")
]
ParamName = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]
Days = Annotated[int, msgspec.Meta(ge=1, le=36500)]


class SitePolicy(
    msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, rename="kebab"
):
    """What a site allows without and with consent."""

    #: Measure visitors who have not consented under the CNIL audience-measurement exemption.
    exemption: bool = True
    #: ``Sec-GPC: 1`` (or ``navigator.globalPrivacyControl``) makes the visitor ``optout``.
    honour_gpc: bool = True
    #: ``DNT: 1`` makes the visitor ``optout``.
    honour_dnt: bool = False
    #: Mode of a hit that carries no consent signal at all (the ``<noscript>`` pixel, a claim-less
    #: batch event). ``exempt`` falls to ``denied`` when the exemption is off.
    no_signal_mode: Mode = Mode.EXEMPT
    #: IAB TCF vendor id of this Mesure instance; when set, TCF consent also needs that vendor.
    tcf_vendor_id: Annotated[int, msgspec.Meta(ge=1, le=65535)] | None = None
    #: Extra properties an exempt hit may keep (each one is flagged by the CNIL check).
    exempt_properties: tuple[PropertyName, ...] = ()
    #: Query parameters kept on stored URLs (campaign attribution, ``granted`` only).
    campaign_params: tuple[ParamName, ...] = CAMPAIGN_PARAMS
    #: Lifetime of the client-side identifier, counted from its creation, never extended.
    id_lifetime_days: Days = MAX_EXEMPT_ID_LIFETIME_DAYS
    #: Storage of exempt and denied data, in days (at most 25 months for exempt data).
    retention_exempt_days: Days = MAX_EXEMPT_RETENTION_DAYS
    #: Storage of granted data, in days.
    retention_granted_days: Days = MAX_EXEMPT_RETENTION_DAYS
    #: Geolocation precision derived in memory from the IP with a local database.
    geo: Literal["none", "country"] = "country"
    #: Where visitors are told about measurement and their right to object.
    privacy_policy_url: Annotated[str, msgspec.Meta(max_length=2048)] | None = None
