from __future__ import annotations

import re
from pathlib import Path

import pytest

from consent import SitePolicy
from consent.cnil import check
from consent.resolution import REASON_CODES

README = Path(__file__).resolve().parents[2] / "README.md"


def _section() -> str:
    text = README.read_text(encoding="utf-8")
    match = re.search(r"<!-- section:consent -->(.*)<!-- /section:consent -->", text, re.S)
    assert match is not None, "README.md has no consent section"
    return match.group(1)


@pytest.mark.parametrize("code", sorted(REASON_CODES))
def test_every_reason_code_is_documented(code: str) -> None:
    assert f"`{code}`" in _section()


def test_every_cnil_finding_code_and_key_is_documented() -> None:
    findings = check(SitePolicy(exempt_properties=("plan",)))
    section = _section()
    for finding in findings:
        assert f"| `{finding.code}` | `{finding.key}` |" in section, finding.code
