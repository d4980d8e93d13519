from __future__ import annotations

import pytest

from consent import Mode, SitePolicy
from consent.cnil import Finding, check, format_table

COMPLIANT = SitePolicy(privacy_policy_url="https://example.com/privacy")
# One finding per condition and recommendation of docs/consent.md §1.
CODES = [
    "purpose",
    "no-signal-mode",
    "anonymous-statistics",
    "no-cross-referencing",
    "no-cross-site-identifier",
    "no-transfer",
    "id-not-extended",
    "ip-not-stored",
    "id-lifetime",
    "retention",
    "geolocation",
    "information",
    "opt-out",
]


def _by_code(findings: list[Finding]) -> dict[str, Finding]:
    return {finding.code: finding for finding in findings}


def test_a_compliant_policy_passes_every_condition_and_recommendation() -> None:
    findings = check(COMPLIANT)
    assert [finding.code for finding in findings] == CODES
    assert {finding.status for finding in findings} == {"pass"}
    assert all(finding.key.startswith(("sites.", "server.")) for finding in findings)
    assert all(finding.explanation.endswith(".") for finding in findings)


def test_the_defaults_only_miss_the_privacy_policy_recommendation() -> None:
    not_passing = [f for f in check(SitePolicy()) if f.status != "pass"]
    assert [(f.code, f.status, f.key) for f in not_passing] == [
        ("information", "warn", "sites.consent.privacy-policy-url")
    ]


@pytest.mark.parametrize(
    ("site", "code", "status", "key", "words"),
    [
        (
            SitePolicy(retention_exempt_days=761),
            "retention",
            "fail",
            "sites.consent.retention-exempt-days",
            "761 days",
        ),
        (
            SitePolicy(no_signal_mode=Mode.GRANTED),
            "no-signal-mode",
            "fail",
            "sites.consent.no-signal-mode",
            "granted",
        ),
        (
            SitePolicy(id_lifetime_days=396),
            "id-lifetime",
            "warn",
            "sites.consent.id-lifetime-days",
            "capped at 395 days",
        ),
        (
            SitePolicy(honour_gpc=False),
            "opt-out",
            "warn",
            "sites.consent.honour-gpc",
            "Global Privacy Control is ignored",
        ),
    ],
    ids=["retention-over-25-months", "no-signal-granted", "lifetime-over-13-months", "gpc-off"],
)
def test_a_non_compliant_policy_is_flagged_on_its_key(
    site: SitePolicy, code: str, status: str, key: str, words: str
) -> None:
    finding = _by_code(check(site))[code]
    assert (finding.status, finding.key) == (status, key)
    assert words in finding.explanation
    others = [f for f in check(site) if f.code not in (code, "information")]
    assert {f.status for f in others} == {"pass"}


def test_each_extra_exempt_property_gets_its_own_warning() -> None:
    site = SitePolicy(exempt_properties=("plan", "ab_variant", "url"))
    warnings = [f for f in check(site) if f.code == "exempt-property"]
    assert [f.status for f in warnings] == ["warn", "warn"]
    assert {f.key for f in warnings} == {"sites.consent.exempt-properties"}
    assert ["'plan'" in warnings[0].explanation, "'ab_variant'" in warnings[1].explanation] == [
        True,
        True,
    ]


def test_limits_are_inclusive() -> None:
    edge = _by_code(check(SitePolicy(retention_exempt_days=760, id_lifetime_days=395)))
    assert (edge["retention"].status, edge["id-lifetime"].status) == ("pass", "pass")


def test_without_the_exemption_the_purpose_finding_says_so() -> None:
    finding = _by_code(check(SitePolicy(exemption=False)))["purpose"]
    assert finding.status == "pass"
    assert "exemption is off" in finding.explanation


def test_format_table_prints_one_aligned_row_per_finding() -> None:
    findings = check(SitePolicy(retention_exempt_days=800, exempt_properties=("plan",)))
    lines = format_table(findings).splitlines()
    assert len(lines) == len(findings) + 1
    assert lines[0].split() == ["STATUS", "CODE", "KEY", "EXPLANATION"]
    column = lines[0].index("EXPLANATION")
    for line, finding in zip(lines[1:], findings, strict=True):
        assert line.startswith(finding.status.upper())
        assert line[column:] == finding.explanation
        assert f" {finding.code} " in line and f" {finding.key} " in line
