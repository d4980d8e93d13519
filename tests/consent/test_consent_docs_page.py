"""docs/consent.md documents every reason code and every CNIL finding with its key."""

from __future__ import annotations

from pathlib import Path

import pytest

from consent import SitePolicy
from consent.cnil import check
from consent.resolution import REASON_CODES

PAGE = Path(__file__).resolve().parents[2] / "docs" / "consent.md"


def _section() -> str:
    return PAGE.read_text(encoding="utf-8")


@pytest.mark.parametrize("code", sorted(REASON_CODES))
def test_every_reason_code_is_documented(code: str) -> None:
    assert f"`{code}`" in _section()


def test_every_cnil_finding_code_and_key_is_documented() -> None:
    findings = check(SitePolicy(exempt_properties=("plan",)))
    section = _section()
    for finding in findings:
        assert f"| `{finding.code}` | `{finding.key}` |" in section, finding.code
