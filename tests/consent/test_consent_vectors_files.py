from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from consent.tcf import decode
from tests.consent import make_vectors
from tests.consent.vectors import load

RESOLVE_VECTORS: list[dict[str, Any]] = load("resolve.json")["vectors"]
WITH_TCDATA = [v for v in RESOLVE_VECTORS if v["tcdata"] is not None]
RESOLVE_KEYS = {"id", "client", "claim", "tc_string", "tcdata", "gcm", "sec_gpc", "dnt", "site"}


@pytest.mark.parametrize("name", ["resolve.json", "policy.json"])
def test_committed_vectors_equal_the_generator_output(name: str) -> None:
    committed = (make_vectors.VECTORS_DIR / name).read_text(encoding="utf-8")
    assert committed == make_vectors.documents()[name], "run python -m tests.consent.make_vectors"


def test_every_vector_file_is_described_and_resolve_vectors_are_complete() -> None:
    for name in ("resolve.json", "policy.json"):
        assert len(load(name)["description"]) > 100
    for vector in RESOLVE_VECTORS:
        assert set(vector) == RESOLVE_KEYS | {"now", "expected"}
        assert isinstance(vector["client"], bool)
    assert sum(v["client"] for v in RESOLVE_VECTORS) >= 30


@pytest.mark.parametrize("vector", WITH_TCDATA, ids=[v["id"] for v in WITH_TCDATA])
def test_tcdata_agrees_with_its_tc_string(vector: dict[str, Any]) -> None:
    tc = decode(vector["tc_string"])
    data = vector["tcdata"]
    assert data["tcString"] == vector["tc_string"]
    assert data["gdprApplies"] is True
    consents = {int(k) for k, v in data["purpose"]["consents"].items() if v}
    assert consents == tc.purposes_consent
    assert {int(k) for k, v in data["vendor"]["consents"].items() if v} == tc.vendor_consents
    publisher = {int(k) for k, v in data["publisher"]["consents"].items() if v}
    assert publisher == (tc.publisher_purposes_consent or frozenset())
    assert (data["tcfPolicyVersion"], data["isServiceSpecific"]) == (
        tc.tcf_policy_version,
        tc.is_service_specific,
    )


def test_tc_strings_that_a_cmp_would_not_serve_are_server_only() -> None:
    no_tcdata = [v for v in RESOLVE_VECTORS if v["tc_string"] and v["tcdata"] is None]
    assert no_tcdata and not any(v["client"] for v in no_tcdata)


def test_the_package_imports_without_the_collector() -> None:
    code = (
        "import sys, consent, consent.tcf, consent.gcm, consent.cnil, consent.headers; "
        "leaked = sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'collector', 'starlette', 'uvicorn', 'sqlite3', 'sqlite_utils', 'httpx'}); "
        "print(leaked); sys.exit(1 if leaked else 0)"
    )
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
