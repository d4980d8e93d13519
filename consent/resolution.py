"""Resolve a hit's consent mode from every signal it carries (docs/design.md §3, issue 3).

Each signal sets a ceiling; the hit gets the lowest (most restrictive) of them, so a client's
claim can restrict a hit but never lift what the server can check itself. Without consent the
ceiling is ``exempt``, which becomes ``denied`` on a site that does not use the exemption.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

import msgspec

from consent import gcm, headers, tcf
from consent.modes import Mode, most_restrictive
from consent.site_policy import MAX_EXEMPT_ID_LIFETIME_DAYS, SitePolicy

__all__ = [
    "MIN_TCF_POLICY_VERSION",
    "REASON_CODES",
    "TCF_FUTURE_SKEW",
    "TCF_MAX_AGE",
    "Resolution",
    "Signals",
    "resolve",
    "tcf_reasons",
]

#: A TC string last updated longer ago than this is stale: CMPs re-ask after 13 months.
TCF_MAX_AGE = timedelta(days=MAX_EXEMPT_ID_LIFETIME_DAYS)
#: CMPs write day-level dates from the visitor's local calendar, up to a day ahead of UTC.
TCF_FUTURE_SKEW = timedelta(days=1)
#: TCF v2.2 strings carry policy version 4; older ones are invalid since 30 Sep 2023.
MIN_TCF_POLICY_VERSION = 4
MEASUREMENT_PURPOSES = frozenset({8, 9})  # measure content performance, understand audiences

#: Every reason code :func:`resolve` can give, with its meaning (documented in docs/consent.md).
REASON_CODES: dict[str, str] = {
    "gpc": "Sec-GPC: 1 on a site that honours GPC: optout",
    "dnt": "DNT: 1 on a site that honours DNT: optout",
    "claim:optout": "the client says optout",
    "claim:denied": "the client says denied",
    "claim:exempt": "the client says exempt (consent refused or not asked)",
    "claim:granted": "the client says granted; honoured unless a checkable signal refuses",
    "tcf:malformed": "the TC string cannot be decoded: no consent",
    "tcf:expired": "the TC string was last updated more than 13 months ago: no consent",
    "tcf:future": "the TC string is dated more than a day in the future: no consent",
    "tcf:policy-outdated": "the TC string's policy version is below 4 (TCF v2.2): no consent",
    "tcf:not-service-specific": "the TC string is not service-specific (global scope): no consent",
    "tcf:purpose1-refused": "no consent to purpose 1 (store/access on a device)",
    "tcf:measurement-refused": "no consent to purpose 8 or 9 (measurement)",
    "tcf:vendor-refused": "no consent for the site's TCF vendor id",
    "tcf:granted": "purposes 1 and 8 or 9 (and the site's vendor, when set) consented",
    "gcm:granted": "Consent Mode analytics_storage is granted",
    "gcm:denied": "Consent Mode analytics_storage is denied: no consent",
    "no-signal": "no claim, TC string or analytics_storage state: the site's no-signal-mode",
    "site:exemption-off": "exempt is not allowed on this site: denied",
}


class Signals(msgspec.Struct, frozen=True, kw_only=True):
    """What one hit says about consent: the client's claim and what the server can check."""

    #: What the client says (wire field ``mode``).
    claim: Mode | None = None
    #: IAB TCF TC string (wire field ``tcf``).
    tc_string: str | None = None
    #: Consent Mode v2 state, type -> ``"granted"``/``"denied"`` (wire field ``gcm``).
    gcm: dict[str, str] | None = None
    #: Every ``Sec-GPC`` header value received.
    sec_gpc: tuple[str, ...] = ()
    #: Every ``DNT`` header value received.
    dnt: tuple[str, ...] = ()


class Resolution(msgspec.Struct, frozen=True):
    """The effective mode and the reason codes of every signal that was considered."""

    mode: Mode
    reasons: tuple[str, ...]


def tcf_reasons(
    tc_string: str,
    site: SitePolicy,
    *,
    now: datetime,
    decode: Callable[[str], tcf.TCString] = tcf.decode,
) -> tuple[str, ...]:
    """Why a TC string does or does not grant measurement: ``("tcf:granted",)`` when it does,
    otherwise every refusal found (or the one reason the string is unusable).

    ``decode`` is :func:`consent.tcf.decode` or a caller's cache of it (it must raise
    :class:`~consent.tcf.TCStringError` like it)."""
    try:
        tc = decode(tc_string)
    except tcf.TCStringError:
        return ("tcf:malformed",)
    if now - tc.last_updated > TCF_MAX_AGE:
        return ("tcf:expired",)
    if tc.last_updated - now > TCF_FUTURE_SKEW:
        return ("tcf:future",)
    if tc.tcf_policy_version < MIN_TCF_POLICY_VERSION:
        return ("tcf:policy-outdated",)
    if not tc.is_service_specific:
        return ("tcf:not-service-specific",)
    consented = tc.purposes_consent | (tc.publisher_purposes_consent or frozenset())
    refusals = []
    if 1 not in consented:
        refusals.append("tcf:purpose1-refused")
    if not consented & MEASUREMENT_PURPOSES:
        refusals.append("tcf:measurement-refused")
    if site.tcf_vendor_id is not None and site.tcf_vendor_id not in tc.vendor_consents:
        refusals.append("tcf:vendor-refused")
    return tuple(refusals) or ("tcf:granted",)


def resolve(
    signals: Signals,
    site: SitePolicy,
    *,
    now: datetime,
    decode_tc: Callable[[str], tcf.TCString] = tcf.decode,
) -> Resolution:
    """The most restrictive mode that the hit's signals and the site's policy allow.

    ``decode_tc`` decodes TC strings (see :func:`tcf_reasons`)."""
    reasons: list[str] = []
    ceilings: list[Mode] = []
    if site.honour_gpc and headers.gpc_requested(signals.sec_gpc):
        reasons.append("gpc")
        ceilings.append(Mode.OPTOUT)
    if site.honour_dnt and headers.dnt_requested(signals.dnt):
        reasons.append("dnt")
        ceilings.append(Mode.OPTOUT)
    if signals.claim is not None:
        reasons.append(f"claim:{signals.claim.value}")
        ceilings.append(signals.claim)
    if signals.tc_string is not None:
        found = tcf_reasons(signals.tc_string, site, now=now, decode=decode_tc)
        reasons.extend(found)
        ceilings.append(Mode.GRANTED if found == ("tcf:granted",) else Mode.EXEMPT)
    analytics = gcm.analytics_consent(signals.gcm)
    if analytics is not None:
        reasons.append("gcm:granted" if analytics else "gcm:denied")
        ceilings.append(Mode.GRANTED if analytics else Mode.EXEMPT)
    if not reasons:
        reasons.append("no-signal")
        ceilings.append(site.no_signal_mode)
    mode = most_restrictive(*ceilings)
    if mode is Mode.EXEMPT and not site.exemption:
        reasons.append("site:exemption-off")
        mode = Mode.DENIED
    return Resolution(mode, tuple(reasons))
