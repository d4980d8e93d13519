"""``mesure register``: the Art. 30 record follows the configuration (two configurations)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.privacy.support import run, write_data_dir


def test_register_with_the_exemption_on(tmp_path: Path) -> None:
    config = write_data_dir(
        tmp_path / "data",
        {
            "privacy-policy-url": "https://shop.example/privacy?a=1&b=2",
            "retention-exempt-days": 400,
        },
        server={"residency": "eu", "host-location": "Paris, France"},
    )
    record = json.loads(run(config.data_dir, "register", "--format", "json"))
    site = record["sites"][0]
    modes = {m["mode"]: m for m in site["processing"]}
    assert list(modes) == ["optout", "denied", "exempt", "granted"]
    assert "CNIL audience-measurement exemption" in modes["exempt"]["legal_basis"]
    assert modes["granted"]["legal_basis"].startswith("Consent")
    assert (modes["exempt"]["retention_days"], modes["granted"]["retention_days"]) == (400, 760)
    assert record["recipients"].startswith("None")
    assert record["transfers"].startswith("None: data stays on this host")
    assert record["residency"]["outbound_connections"].startswith("none")
    assert record["residency"]["residency"] == "eu"
    assert "Paris, France; residency eu" in record["transfers"]
    assert record["controller"] and record["data_subjects"].startswith("Visitors")
    assert any("keyed hashes" in m for m in record["security_measures"])
    assert any("rotated" in m for m in record["security_measures"])
    assert any("never stored" in m and "IP" in m for m in record["security_measures"])
    findings = {f["code"]: f["status"] for f in site["cnil_findings"]}
    assert findings["information"] == "pass"
    assert findings["no-signal-mode"] == "pass"

    markdown = run(config.data_dir, "register")
    assert "**Residency:** eu; host location: Paris, France" in markdown
    assert markdown.startswith("# Record of processing activities (GDPR Art. 30)")
    assert "| exempt | Audience measurement" in markdown
    assert "| PASS | retention | sites.consent.retention-exempt-days |" in markdown
    page = run(config.data_dir, "register", "--format", "html")
    assert "https://shop.example/privacy?a=1&amp;b=2" in page
    assert "<td>FAIL</td>" not in page


def test_register_without_the_exemption_and_with_a_failing_finding(tmp_path: Path) -> None:
    config = write_data_dir(
        tmp_path / "data",
        {"exemption": False, "no-signal-mode": "granted", "retention-granted-days": 90},
    )
    record = json.loads(run(config.data_dir, "register", "--format", "json"))
    site = record["sites"][0]
    assert [m["mode"] for m in site["processing"]] == ["optout", "denied", "granted"]
    assert site["processing"][-1]["retention_days"] == 90
    assert site["privacy_policy_url"] is None
    assert record["residency"]["residency"] is None
    assert "residency not declared" in record["transfers"]
    findings = {f["code"]: f["status"] for f in site["cnil_findings"]}
    assert findings["no-signal-mode"] == "fail"
    assert findings["information"] == "warn"
    markdown = run(config.data_dir, "register", "--format", "md")
    assert "| FAIL | no-signal-mode |" in markdown
    assert "CNIL audience-measurement exemption" not in markdown
    assert "Privacy policy: not configured." in markdown
    assert "<td>FAIL</td>" in run(config.data_dir, "register", "--format", "html")
