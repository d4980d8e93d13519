from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consent import Mode, Resolution, Signals, SitePolicy, most_restrictive, resolve
from consent.gcm import CONSENT_TYPES, analytics_consent, parse_gcs
from consent.headers import dnt_requested, gpc_requested
from consent.resolution import REASON_CODES, tcf_reasons
from tests.consent import tc_encoder
from tests.consent.vectors import load, now_of, signals_of, site_of

RESOLVE_VECTORS: list[dict[str, Any]] = load("resolve.json")["vectors"]
NOW = datetime(2026, 6, 15, 12, tzinfo=UTC)


@pytest.mark.parametrize("vector", RESOLVE_VECTORS, ids=[v["id"] for v in RESOLVE_VECTORS])
def test_shared_resolve_vector(vector: dict[str, Any]) -> None:
    resolution = resolve(signals_of(vector), site_of(vector), now=now_of(vector))
    expected = vector["expected"]
    assert resolution == Resolution(Mode(expected["mode"]), tuple(expected["reasons"]))


def test_the_vectors_exercise_every_reason_code_and_no_other() -> None:
    given_codes = {code for v in RESOLVE_VECTORS for code in v["expected"]["reasons"]}
    assert given_codes == set(REASON_CODES)


def test_vector_ids_are_unique() -> None:
    ids = [v["id"] for v in RESOLVE_VECTORS]
    assert len(ids) == len(set(ids))


def test_the_spec_example_string_is_refused_for_its_outdated_policy_version() -> None:
    example = "CQSbk4AQSbk4ANwAAAENAwCgAAAAAAAAAAYgACPAAAAA.IDKQA4AAgAKAGQAygAAA.YAAAAAAAAAAA"
    now = datetime(2025, 6, 4, tzinfo=UTC)
    assert tcf_reasons(example, SitePolicy(), now=now) == ("tcf:policy-outdated",)


def test_expiry_is_measured_from_the_now_given_not_the_clock() -> None:
    signals = Signals(tc_string=tc_encoder.encode(purposes_consent={1, 8}))
    fresh = resolve(signals, SitePolicy(), now=datetime(2026, 6, 2, tzinfo=UTC))
    stale = resolve(signals, SitePolicy(), now=datetime(2027, 7, 2, tzinfo=UTC))
    assert (fresh.mode, stale.mode) == (Mode.GRANTED, Mode.EXEMPT)
    assert stale.reasons == ("tcf:expired",)


modes = st.sampled_from(list(Mode))
header_values = st.lists(st.sampled_from(["1", "0", "true", ""]), max_size=3).map(tuple)
tc_strings = st.builds(
    lambda consent, vendors: tc_encoder.encode(
        purposes_consent=consent, vendor_consents=vendors, created=datetime(2026, 6, 1, tzinfo=UTC)
    ),
    st.frozensets(st.integers(min_value=1, max_value=11)),
    st.frozensets(st.sampled_from([1, 7, 999])),
)
signals = st.builds(
    Signals,
    claim=st.none() | modes,
    tc_string=st.none() | tc_strings | st.sampled_from(["AAAA", "not a tc string"]),
    gcm=st.none()
    | st.dictionaries(st.sampled_from(CONSENT_TYPES), st.sampled_from(["granted", "denied"])),
    sec_gpc=header_values,
    dnt=header_values,
)
sites = st.builds(
    SitePolicy,
    exemption=st.booleans(),
    honour_gpc=st.booleans(),
    honour_dnt=st.booleans(),
    no_signal_mode=modes,
    tcf_vendor_id=st.none() | st.just(999),
)


@settings(database=None, deadline=None, max_examples=300)
@given(signals, sites)
def test_no_signal_the_server_checks_is_ever_loosened(
    given_signals: Signals, site: SitePolicy
) -> None:
    resolution = resolve(given_signals, site, now=NOW)
    assert set(resolution.reasons) <= set(REASON_CODES)
    if given_signals.claim is not None:
        assert resolution.mode <= given_signals.claim
    if site.honour_gpc and "1" in given_signals.sec_gpc:
        assert resolution.mode is Mode.OPTOUT
    if site.honour_dnt and "1" in given_signals.dnt:
        assert resolution.mode is Mode.OPTOUT
    refusals = {"tcf:granted", "gcm:granted"}
    tcf_or_gcm = [r for r in resolution.reasons if r.startswith(("tcf:", "gcm:"))]
    if any(reason not in refusals for reason in tcf_or_gcm):
        assert resolution.mode <= Mode.EXEMPT
    if not site.exemption:
        assert resolution.mode is not Mode.EXEMPT
    if resolution.mode is Mode.GRANTED:
        assert "no-signal" in resolution.reasons or any(
            r in resolution.reasons for r in ("claim:granted", "tcf:granted", "gcm:granted")
        )


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        (None, None),
        ({}, None),
        ({"ad_storage": "granted"}, None),
        ({"analytics_storage": "granted"}, True),
        ({"analytics_storage": "denied", "ad_storage": "granted"}, False),
        ({"analytics_storage": "maybe"}, False),
    ],
    ids=["absent", "empty", "ads-only", "granted", "denied", "unknown-value-is-refusal"],
)
def test_consent_mode_analytics_storage(
    state: dict[str, str] | None, expected: bool | None
) -> None:
    assert analytics_consent(state) is expected


@pytest.mark.parametrize(
    ("gcs", "expected"),
    [
        ("G100", ("denied", "denied")),
        ("G101", ("denied", "granted")),
        ("G110", ("granted", "denied")),
        ("G111", ("granted", "granted")),
    ],
    ids=["none", "analytics-only", "ads-only", "both"],
)
def test_gcs_hit_parameter(gcs: str, expected: tuple[str, str]) -> None:
    assert parse_gcs(gcs) == {"ad_storage": expected[0], "analytics_storage": expected[1]}


@pytest.mark.parametrize("gcs", ["", "G1", "G102", "G2111", "g111", "G1111"])
def test_gcs_hit_parameter_refuses_anything_else(gcs: str) -> None:
    with pytest.raises(ValueError, match="G1 followed by two"):
        parse_gcs(gcs)


@pytest.mark.parametrize(
    ("values", "gpc", "dnt"),
    [
        ((), False, False),
        (("1",), True, True),
        (("0", "1"), True, True),
        (("0",), False, False),
        (("true", "yes", " 1", "1 "), False, False),
    ],
    ids=["none", "one", "any-of-several", "zero", "not-exactly-1"],
)
def test_privacy_headers(values: tuple[str, ...], gpc: bool, dnt: bool) -> None:
    assert (gpc_requested(values), dnt_requested(values)) == (gpc, dnt)


def test_modes_are_ordered_from_most_to_least_restrictive_and_min_is_the_stricter() -> None:
    assert sorted(Mode, reverse=True) == [Mode.GRANTED, Mode.EXEMPT, Mode.DENIED, Mode.OPTOUT]
    assert Mode.OPTOUT < Mode.DENIED < Mode.EXEMPT < Mode.GRANTED
    assert min(Mode.GRANTED, Mode.DENIED) is Mode.DENIED
    assert min(Mode.EXEMPT, Mode.OPTOUT, Mode.GRANTED) is Mode.OPTOUT
    assert most_restrictive() is Mode.GRANTED
    assert max(Mode.DENIED, Mode.EXEMPT) is Mode.EXEMPT
