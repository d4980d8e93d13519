"""Check a site's consent policy against the CNIL audience-measurement exemption.

One finding per condition (délibération 2020-091 § 51, restated by the CNIL in July 2025) and per
recommendation (2020-092 art. 5) in ``docs/consent.md`` §1, plus one warning per extra
exempt property. What Mesure guarantees by design passes with an explanation saying so. This is a
self-assessment aid, not a certification (the CNIL's own self-assessment has none either).
"""

from __future__ import annotations

from typing import Literal

import msgspec

from consent.field_policy import EXEMPT_EVENTS, EXEMPT_PROPERTIES
from consent.modes import Mode
from consent.site_policy import (
    MAX_EXEMPT_ID_LIFETIME_DAYS,
    MAX_EXEMPT_RETENTION_DAYS,
    SitePolicy,
)

__all__ = ["Finding", "Status", "check", "format_table"]

Status = Literal["pass", "warn", "fail"]
_KEY = "sites.consent."


class Finding(msgspec.Struct, frozen=True, kw_only=True):
    """One condition or recommendation, as this configuration meets it."""

    code: str
    status: Status
    #: The configuration key involved, e.g. ``sites.consent.retention-exempt-days``.
    key: str
    #: One sentence.
    explanation: str


def _purpose(site: SitePolicy) -> Finding:
    if not site.exemption:
        text = "The exemption is off: without consent only denied counts are kept, no identifier."
    else:
        events = ", ".join(sorted(EXEMPT_EVENTS))
        text = f"Exempt hits keep only audience-measurement events ({events}) for this site alone."
    return Finding(code="purpose", status="pass", key=_KEY + "exemption", explanation=text)


def _no_signal(site: SitePolicy) -> Finding:
    key = _KEY + "no-signal-mode"
    if site.no_signal_mode is Mode.GRANTED:
        return Finding(
            code="no-signal-mode",
            status="fail",
            key=key,
            explanation="Hits without any consent signal are kept as granted, "
            "beyond what the exemption allows.",
        )
    return Finding(
        code="no-signal-mode",
        status="pass",
        key=key,
        explanation="Hits without any consent signal are kept as "
        f"{site.no_signal_mode.value} at most.",
    )


def _by_design() -> list[Finding]:
    return [
        Finding(
            code="anonymous-statistics",
            status="pass",
            key=_KEY + "exemption",
            explanation="Exempt data only feeds aggregate reports: user id, free properties, "
            "revenue and campaign attribution are dropped by design.",
        ),
        Finding(
            code="no-cross-referencing",
            status="pass",
            key=_KEY + "campaign-params",
            explanation="Campaign parameters are kept for granted hits only, and Mesure shares "
            "no data with other processing.",
        ),
        Finding(
            code="no-cross-site-identifier",
            status="pass",
            key="sites.id",
            explanation="Identifiers are first-party and hashed with per-site keys, so one visitor "
            "cannot be followed across sites.",
        ),
        Finding(
            code="no-transfer",
            status="pass",
            key="server.geo-database",
            explanation="Data stays on the owner's machine: Mesure opens no outbound connection, "
            "reads geolocation from a local file and sends nothing to third parties.",
        ),
        Finding(
            code="id-not-extended",
            status="pass",
            key=_KEY + "id-lifetime-days",
            explanation="The client identifier's lifetime counts from its creation and is never "
            "extended by new visits.",
        ),
        Finding(
            code="ip-not-stored",
            status="pass",
            key=_KEY + "geo",
            explanation="IP addresses are used in memory only and never stored.",
        ),
    ]


def _id_lifetime(site: SitePolicy) -> Finding:
    key = _KEY + "id-lifetime-days"
    days = site.id_lifetime_days
    if days <= MAX_EXEMPT_ID_LIFETIME_DAYS:
        return Finding(
            code="id-lifetime",
            status="pass",
            key=key,
            explanation=f"Client identifiers live {days} days, within 13 months.",
        )
    return Finding(
        code="id-lifetime",
        status="warn",
        key=key,
        explanation=f"{days} days exceeds 13 months: exempt identifiers are capped at "
        f"{MAX_EXEMPT_ID_LIFETIME_DAYS} days, granted ones keep {days}.",
    )


def _retention(site: SitePolicy) -> Finding:
    key = _KEY + "retention-exempt-days"
    days = site.retention_exempt_days
    if days <= MAX_EXEMPT_RETENTION_DAYS:
        return Finding(
            code="retention",
            status="pass",
            key=key,
            explanation=f"Exempt data is kept {days} days, within 25 months.",
        )
    return Finding(
        code="retention",
        status="fail",
        key=key,
        explanation=f"Exempt data is kept {days} days, more than the 25 months "
        f"({MAX_EXEMPT_RETENTION_DAYS} days) the CNIL recommends.",
    )


def _geolocation(site: SitePolicy) -> Finding:
    text = (
        "No geolocation is derived from IP addresses."
        if site.geo == "none"
        else "IP addresses give a country at most, coarser than the city limit."
    )
    return Finding(code="geolocation", status="pass", key=_KEY + "geo", explanation=text)


def _information(site: SitePolicy) -> Finding:
    key = _KEY + "privacy-policy-url"
    if site.privacy_policy_url:
        return Finding(
            code="information",
            status="pass",
            key=key,
            explanation=f"Visitors are told about measurement at {site.privacy_policy_url}.",
        )
    return Finding(
        code="information",
        status="warn",
        key=key,
        explanation="No privacy policy URL: tell visitors about measurement and the opt-out.",
    )


def _opt_out(site: SitePolicy) -> Finding:
    key = _KEY + "honour-gpc"
    if site.honour_gpc:
        return Finding(
            code="opt-out",
            status="pass",
            key=key,
            explanation="Visitors can object with the opt-out page or Global Privacy Control.",
        )
    return Finding(
        code="opt-out",
        status="warn",
        key=key,
        explanation="Global Privacy Control is ignored: only the opt-out page is left.",
    )


def _exempt_properties(site: SitePolicy) -> list[Finding]:
    return [
        Finding(
            code="exempt-property",
            status="warn",
            key=_KEY + "exempt-properties",
            explanation=f"Property {name!r} is kept without consent: it must hold no personal "
            "data and serve audience measurement only.",
        )
        for name in site.exempt_properties
        if name not in EXEMPT_PROPERTIES
    ]


def check(site: SitePolicy) -> list[Finding]:
    """Every condition and recommendation of the exemption, as ``site`` meets it."""
    return [
        _purpose(site),
        _no_signal(site),
        *_by_design(),
        _id_lifetime(site),
        _retention(site),
        _geolocation(site),
        _information(site),
        _opt_out(site),
        *_exempt_properties(site),
    ]


def format_table(findings: list[Finding]) -> str:
    """Findings as a plain-text table: status, code, key, explanation."""
    rows = [("STATUS", "CODE", "KEY", "EXPLANATION")]
    rows += [(f.status.upper(), f.code, f.key, f.explanation) for f in findings]
    widths = [max(len(row[column]) for row in rows) for column in range(3)]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row[:3], widths, strict=True))
        + "  "
        + row[3]
        for row in rows
    )
