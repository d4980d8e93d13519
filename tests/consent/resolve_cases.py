"""The resolve vectors: inputs and the expected mode and reasons, written by hand from the rules.

Never computed by ``consent``: ``consent/vectors/resolve.json`` is this table rendered by
``make_vectors``, and both the Python tests and the snippet's browser tests check against it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from tests.consent import tc_encoder

NOW = "2026-06-15T12:00:00Z"
CREATED = datetime(2026, 6, 1, tzinfo=UTC)
VENDOR = 999  # the site's TCF vendor id in the vendor vectors


def _resolve_vector(
    vector_id: str,
    expected: tuple[str, tuple[str, ...]],
    *,
    client: bool,
    claim: str | None = None,
    tc: dict[str, Any] | None = None,
    tc_string: str | None = None,
    gcm: dict[str, str] | None = None,
    sec_gpc: tuple[str, ...] = (),
    dnt: tuple[str, ...] = (),
    site: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One vector; ``tc`` are TC string fields for the test encoder (``created`` defaulted)."""
    tcdata = None
    if tc is not None:
        tc = {"created": CREATED, **tc}
        tc_string = tc_encoder.encode(**tc)
        tcdata = tc_encoder.tcdata(**tc)
    mode, reasons = expected
    return {
        "id": vector_id,
        "client": client,
        "claim": claim,
        "tc_string": tc_string,
        "tcdata": tcdata,
        "gcm": gcm,
        "sec_gpc": list(sec_gpc),
        "dnt": list(dnt),
        "site": site or {},
        "now": NOW,
        "expected": {"mode": mode, "reasons": list(reasons)},
    }


def _day(year: int, month: int, day: int) -> datetime:
    return datetime(year, month, day, tzinfo=UTC)


def resolve_vectors() -> list[dict[str, Any]]:
    v = _resolve_vector
    off = {"exemption": False}
    vendor_site = {"tcf-vendor-id": VENDOR}
    granted_tc = {"purposes_consent": {1, 8}}
    truncated = tc_encoder.encode(purposes_consent={1, 8})[:20]
    return [
        # No signal at all: the site's no-signal-mode.
        v("no-signal", ("exempt", ("no-signal",)), client=True),
        v(
            "no-signal-exemption-off",
            ("denied", ("no-signal", "site:exemption-off")),
            client=True,
            site=off,
        ),
        v(
            "no-signal-mode-denied",
            ("denied", ("no-signal",)),
            client=False,
            site={"no-signal-mode": "denied"},
        ),
        v(
            "no-signal-mode-granted",
            ("granted", ("no-signal",)),
            client=False,
            site={"no-signal-mode": "granted"},
        ),
        # The client's claim alone.
        v("claim-granted", ("granted", ("claim:granted",)), client=True, claim="granted"),
        v("claim-exempt", ("exempt", ("claim:exempt",)), client=True, claim="exempt"),
        v(
            "claim-exempt-exemption-off",
            ("denied", ("claim:exempt", "site:exemption-off")),
            client=True,
            claim="exempt",
            site=off,
        ),
        v("claim-denied", ("denied", ("claim:denied",)), client=True, claim="denied"),
        v("claim-optout", ("optout", ("claim:optout",)), client=True, claim="optout"),
        # Global Privacy Control and Do Not Track.
        v("gpc", ("optout", ("gpc",)), client=True, sec_gpc=("1",)),
        v(
            "gpc-beats-claim-granted",
            ("optout", ("gpc", "claim:granted")),
            client=True,
            claim="granted",
            sec_gpc=("1",),
        ),
        v(
            "gpc-beats-tcf-granted",
            ("optout", ("gpc", "tcf:granted")),
            client=True,
            tc=granted_tc,
            sec_gpc=("1",),
        ),
        v("gpc-one-of-several", ("optout", ("gpc",)), client=False, sec_gpc=("0", "1")),
        v(
            "gpc-not-exactly-1",
            ("exempt", ("no-signal",)),
            client=False,
            sec_gpc=("true", " 1", "yes"),
        ),
        v(
            "gpc-ignored-by-site",
            ("granted", ("gcm:granted",)),
            client=True,
            gcm={"analytics_storage": "granted"},
            sec_gpc=("1",),
            site={"honour-gpc": False},
        ),
        v(
            "dnt-honoured",
            ("optout", ("dnt",)),
            client=False,
            dnt=("1",),
            site={"honour-dnt": True},
        ),
        v(
            "dnt-ignored-by-default",
            ("granted", ("claim:granted",)),
            client=False,
            claim="granted",
            dnt=("1",),
        ),
        v(
            "dnt-0-honoured-site",
            ("exempt", ("no-signal",)),
            client=False,
            dnt=("0",),
            site={"honour-dnt": True},
        ),
        v(
            "gpc-and-dnt",
            ("optout", ("gpc", "dnt", "claim:optout")),
            client=False,
            claim="optout",
            sec_gpc=("1",),
            dnt=("1",),
            site={"honour-dnt": True},
        ),
        # IAB TCF.
        v("tcf-granted-purposes-1-8", ("granted", ("tcf:granted",)), client=True, tc=granted_tc),
        v(
            "tcf-granted-purposes-1-9",
            ("granted", ("tcf:granted",)),
            client=True,
            tc={"purposes_consent": {1, 9}},
        ),
        v(
            "tcf-granted-publisher-purposes",
            ("granted", ("tcf:granted",)),
            client=True,
            tc={"publisher_purposes_consent": {1, 8}},
        ),
        v(
            "tcf-granted-core-and-publisher",
            ("granted", ("tcf:granted",)),
            client=True,
            tc={"purposes_consent": {1}, "publisher_purposes_consent": {9}},
        ),
        v(
            "tcf-purpose1-refused",
            ("exempt", ("tcf:purpose1-refused",)),
            client=True,
            tc={"purposes_consent": {8, 9, 10}},
        ),
        v(
            "tcf-measurement-refused",
            ("exempt", ("tcf:measurement-refused",)),
            client=True,
            tc={"purposes_consent": {1, 7, 10}, "purposes_li_transparency": {8, 9}},
        ),
        v(
            "tcf-nothing-consented",
            ("exempt", ("tcf:purpose1-refused", "tcf:measurement-refused")),
            client=True,
            tc={},
        ),
        v(
            "tcf-refused-exemption-off",
            ("denied", ("tcf:purpose1-refused", "tcf:measurement-refused", "site:exemption-off")),
            client=True,
            tc={},
            site=off,
        ),
        v(
            "tcf-vendor-granted",
            ("granted", ("tcf:granted",)),
            client=True,
            tc={**granted_tc, "vendor_consents": {1, VENDOR}},
            site=vendor_site,
        ),
        v(
            "tcf-vendor-refused",
            ("exempt", ("tcf:vendor-refused",)),
            client=True,
            tc={**granted_tc, "vendor_consents": {1, 2}, "vendor_legitimate_interests": {VENDOR}},
            site=vendor_site,
        ),
        v(
            "tcf-all-refused-with-vendor",
            ("exempt", ("tcf:purpose1-refused", "tcf:measurement-refused", "tcf:vendor-refused")),
            client=True,
            tc={},
            site=vendor_site,
        ),
        v(
            "tcf-vendor-ignored-without-site-vendor",
            ("granted", ("tcf:granted",)),
            client=True,
            tc=granted_tc,
        ),
        v("tcf-malformed", ("exempt", ("tcf:malformed",)), client=False, tc_string=truncated),
        v(
            "tcf-malformed-claim-granted",
            ("exempt", ("claim:granted", "tcf:malformed")),
            client=False,
            claim="granted",
            tc_string="AAAA",
        ),
        v(
            "tcf-expired",
            ("exempt", ("tcf:expired",)),
            client=False,
            tc={**granted_tc, "created": _day(2025, 5, 16)},
        ),
        v(
            "tcf-394-days-old",
            ("granted", ("tcf:granted",)),
            client=True,
            tc={**granted_tc, "created": _day(2025, 5, 17)},
        ),
        v(
            "tcf-future",
            ("exempt", ("tcf:future",)),
            client=False,
            tc={**granted_tc, "created": _day(2026, 6, 17)},
        ),
        v(
            "tcf-next-day-within-skew",
            ("granted", ("tcf:granted",)),
            client=True,
            tc={**granted_tc, "created": _day(2026, 6, 16)},
        ),
        v(
            "tcf-policy-outdated",
            ("exempt", ("tcf:policy-outdated",)),
            client=False,
            tc={**granted_tc, "tcf_policy_version": 2},
        ),
        v(
            "tcf-not-service-specific",
            ("exempt", ("tcf:not-service-specific",)),
            client=False,
            tc={**granted_tc, "is_service_specific": False},
        ),
        v(
            "claim-granted-tcf-refused",
            ("exempt", ("claim:granted", "tcf:purpose1-refused")),
            client=True,
            claim="granted",
            tc={"purposes_consent": {8}},
        ),
        v(
            "claim-denied-tcf-granted",
            ("denied", ("claim:denied", "tcf:granted")),
            client=True,
            claim="denied",
            tc=granted_tc,
        ),
        v(
            "claim-exempt-tcf-granted",
            ("exempt", ("claim:exempt", "tcf:granted")),
            client=True,
            claim="exempt",
            tc=granted_tc,
        ),
        # Google Consent Mode v2.
        v(
            "gcm-granted",
            ("granted", ("gcm:granted",)),
            client=True,
            gcm={"analytics_storage": "granted", "ad_storage": "denied"},
        ),
        v(
            "gcm-denied",
            ("exempt", ("gcm:denied",)),
            client=True,
            gcm={"analytics_storage": "denied", "ad_storage": "granted"},
        ),
        v(
            "gcm-denied-exemption-off",
            ("denied", ("gcm:denied", "site:exemption-off")),
            client=True,
            gcm={"analytics_storage": "denied"},
            site=off,
        ),
        v(
            "gcm-ads-only-is-no-signal",
            ("exempt", ("no-signal",)),
            client=True,
            gcm={"ad_storage": "granted", "ad_user_data": "granted"},
        ),
        v(
            "gcm-granted-tcf-refused",
            ("exempt", ("tcf:purpose1-refused", "gcm:granted")),
            client=True,
            tc={"purposes_consent": {8}},
            gcm={"analytics_storage": "granted"},
        ),
        v(
            "gcm-denied-claim-granted",
            ("exempt", ("claim:granted", "gcm:denied")),
            client=True,
            claim="granted",
            gcm={"analytics_storage": "denied"},
        ),
        v(
            "every-signal-granted",
            ("granted", ("claim:granted", "tcf:granted", "gcm:granted")),
            client=True,
            claim="granted",
            tc=granted_tc,
            gcm={"analytics_storage": "granted"},
        ),
    ]
