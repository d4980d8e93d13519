from __future__ import annotations

import contextlib
import string
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consent.tcf import TCString, TCStringError, decode
from tests.consent import tc_encoder
from tests.consent.tc_encoder import bits_to_segment, core_bits, fields, uint, vendor_bits

# Spec vector 1 (docs/consent.md §4), checked against peczenyj/GDPR-IAB-TCFv2's suite.
SPEC_VECTOR_1 = "CLcVDxRMWfGmWAVAHCENAXCkAKDAADnAABRgA5mdfCKZuYJez-NQm0TBMYA4oCAAGQYIAAAAAAEAIAEgAA"
# The TCF spec's own three-segment example.
SPEC_VECTOR_2 = "CQSbk4AQSbk4ANwAAAENAwCgAAAAAAAAAAYgACPAAAAA.IDKQA4AAgAKAGQAygAAA.YAAAAAAAAAAA"

# Bits of the core segment before the vendor consent section (Version .. PublisherCC).
CORE_FIXED_BITS = 213
HYPOTHESIS = settings(database=None, deadline=None, max_examples=150)


def test_spec_vector_1_decodes_field_by_field() -> None:
    tc = decode(SPEC_VECTOR_1)
    assert tc.version == 2
    assert tc.created == datetime(2008, 12, 7, 10, 4, 17, 700000, tzinfo=UTC)
    assert tc.created == datetime(1970, 1, 1, tzinfo=UTC) + timedelta(seconds=1228644257.7)
    assert tc.last_updated == datetime(2012, 1, 10, 17, 10, 13, 400000, tzinfo=UTC)
    assert (tc.cmp_id, tc.cmp_version, tc.consent_screen) == (21, 7, 2)
    assert (tc.consent_language, tc.vendor_list_version, tc.tcf_policy_version) == ("EN", 23, 2)
    assert (tc.is_service_specific, tc.use_non_standard_texts) == (True, False)
    assert tc.special_feature_optins == {2}
    assert tc.purposes_consent == {1, 3, 9, 10}
    assert tc.purposes_li_transparency == {3, 4, 5, 8, 9, 10}
    assert (tc.purpose_one_treatment, tc.publisher_cc) == (False, "KM")
    assert tc.vendor_consents == {
        *(2, 3, 6, 7, 8, 10, 12, 13, 14, 15, 16, 21, 25, 27, 30, 31, 34, 35, 37, 38, 39, 42),
        *(43, 49, 52, 54, 55, 56, 57, 59, 60, 63, 64, 65, 66, 67, 68, 69, 73, 74, 76, 78, 83),
        *(86, 87, 89, 90, 92, 96, 99, 100, 106, 109, 110, 114, 115),
    }
    assert tc.vendor_legitimate_interests == {1, 9, 26, 27, 30, 36, 37, 43, 86, 97, 110, 113}
    assert tc.publisher_restrictions == ()
    assert tc.disclosed_vendors is None
    assert tc.publisher_purposes_consent is None
    assert tc.publisher_purposes_li_transparency is None
    assert tc.publisher_custom_purposes_consent is None
    assert tc.publisher_custom_purposes_li_transparency is None


def test_spec_vector_2_decodes_all_three_segments() -> None:
    tc = decode(SPEC_VECTOR_2)
    assert tc.created == tc.last_updated == datetime(2025, 6, 3, tzinfo=UTC)
    assert (tc.cmp_id, tc.cmp_version, tc.consent_language) == (880, 0, "EN")
    assert (tc.vendor_list_version, tc.tcf_policy_version, tc.is_service_specific) == (48, 2, True)
    assert tc.purposes_consent == tc.purposes_li_transparency == frozenset()
    assert tc.special_feature_optins == frozenset()
    assert tc.publisher_cc == "DE"
    assert tc.vendor_consents == {1, 2, 3, 4}
    assert tc.vendor_legitimate_interests == frozenset()
    assert tc.disclosed_vendors == frozenset({1, 2, 3, 4, 5, 100, 404})
    assert tc.publisher_purposes_consent == frozenset()
    assert tc.publisher_purposes_li_transparency == frozenset()
    assert tc.publisher_custom_purposes_consent == frozenset()
    assert tc.publisher_custom_purposes_li_transparency == frozenset()


def test_optional_segments_may_come_in_any_order_after_the_core() -> None:
    core, disclosed, publisher = SPEC_VECTOR_2.split(".")
    assert decode(f"{core}.{publisher}.{disclosed}") == decode(SPEC_VECTOR_2)


def test_padding_is_optional_at_the_end_of_each_segment() -> None:
    padded = tc_encoder.encode(purposes_consent={1, 8}, disclosed_vendors={7}, pad=True)
    assert "=" in padded
    assert decode(padded) == decode(padded.replace("=", ""))


def test_range_encoded_vendors_and_publisher_restrictions() -> None:
    given_fields: dict[str, Any] = {
        "vendor_consents": {1, 2, 3, 10, 400, 401, 402},
        "vendor_legitimate_interests": {5},
        "publisher_restrictions": [(1, 0, {2, 3, 4}), (8, 1, {10}), (9, 2, {7, 9})],
        "publisher_custom_purposes_consent": {1, 3},
    }
    tc = decode(tc_encoder.encode(vendor_encoding="range", **given_fields))
    assert tc.vendor_consents == {1, 2, 3, 10, 400, 401, 402}
    assert tc.vendor_legitimate_interests == {5}
    assert tc.publisher_restrictions == (
        (1, 0, frozenset({2, 3, 4})),
        (8, 1, frozenset({10})),
        (9, 2, frozenset({7, 9})),
    )
    assert tc.publisher_purposes_consent == frozenset()
    assert tc.publisher_custom_purposes_consent == frozenset({1, 3})
    assert tc.publisher_custom_purposes_li_transparency == frozenset()


def test_a_two_kilobyte_string_decodes_completely() -> None:
    vendors = set(range(1, 12_000, 2))
    s = tc_encoder.encode(vendor_consents=vendors, vendor_legitimate_interests={3})
    assert 1900 < len(s) < 2200
    assert decode(s).vendor_consents == vendors


def _core_with_vendor_section(section: str) -> str:
    prefix = core_bits(fields())[:CORE_FIXED_BITS]
    return prefix + section + vendor_bits(()) + uint(0, 12)


def _valid_core() -> str:
    return bits_to_segment(core_bits(fields(purposes_consent={1, 8})))


def _segment(kind: int, body: str) -> str:
    return bits_to_segment(uint(kind, 3) + body)


MALFORMED = {
    "empty": "",
    "bad-base64-character": "CQSbk4AQ!bk4ANwAAAENAwCgAAAAAAAAAAYgACPAAAAA",
    "whitespace": " " + SPEC_VECTOR_1,
    "padding-in-the-middle": "CQSb=k4AQSbk4ANwAAAENAwCgAAAAAAAAAAYgACPAAAAA",
    "too-much-padding": SPEC_VECTOR_1 + "===",
    "impossible-base64-length": "CQSbk",
    "truncated-core": SPEC_VECTOR_1[:20],
    "truncated-vendor-bitfield": SPEC_VECTOR_1[:40],
    "version-1": bits_to_segment("000001" + core_bits(fields())[6:]),
    "version-3": bits_to_segment("000011" + core_bits(fields())[6:]),
    "empty-core": "." + SPEC_VECTOR_2.split(".", 1)[1],
    "empty-trailing-segment": SPEC_VECTOR_2 + ".",
    "unknown-segment-type-5": _valid_core() + "." + _segment(5, "0" * 21),
    "removed-segment-type-2": _valid_core() + "." + _segment(2, vendor_bits({1})),
    "core-type-as-segment": _valid_core() + "." + _segment(0, "0" * 21),
    "duplicate-segment": _valid_core() + ("." + _segment(1, vendor_bits({1}))) * 2,
    "truncated-disclosed-vendors": _valid_core() + "." + _segment(1, uint(900, 16) + "0"),
    "truncated-publisher-tc": _valid_core() + "." + _segment(3, "1" * 30),
    "overlong-range": bits_to_segment(
        _core_with_vendor_section(
            uint(10, 16) + "1" + uint(1, 12) + "1" + uint(5, 16) + uint(20, 16)
        )
    ),
    "range-starting-at-0": bits_to_segment(
        _core_with_vendor_section(uint(10, 16) + "1" + uint(1, 12) + "0" + uint(0, 16))
    ),
    "descending-range": bits_to_segment(
        _core_with_vendor_section(
            uint(10, 16) + "1" + uint(1, 12) + "1" + uint(9, 16) + uint(3, 16)
        )
    ),
    "truncated-range-entries": bits_to_segment(
        _core_with_vendor_section(uint(10, 16) + "1" + uint(4000, 12))
    ),
    "language-letter-out-of-range": bits_to_segment(
        core_bits(fields())[:108] + uint(26, 6) + core_bits(fields())[114:]
    ),
    "undefined-restriction-type": bits_to_segment(
        core_bits(fields())[:-12] + uint(1, 12) + uint(1, 6) + "11" + uint(0, 12)
    ),
}


@pytest.mark.parametrize("text", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_strings_raise_tc_string_error(text: str) -> None:
    with pytest.raises(TCStringError):
        decode(text)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        (MALFORMED["version-3"], "Version is 3"),
        (MALFORMED["unknown-segment-type-5"], "SegmentType 5"),
        (MALFORMED["overlong-range"], "5-20"),
        (MALFORMED["truncated-core"], "truncated"),
        (MALFORMED["padding-in-the-middle"], "'=' only at the end"),
    ],
    ids=["version", "segment-type", "range", "truncation", "padding"],
)
def test_errors_say_what_is_wrong(text: str, words: str) -> None:
    with pytest.raises(TCStringError, match=words):
        decode(text)


def test_tc_string_error_is_a_value_error_and_non_text_is_refused() -> None:
    assert issubclass(TCStringError, ValueError)
    with pytest.raises(TCStringError, match="not bytes"):
        decode(SPEC_VECTOR_1.encode())  # type: ignore[arg-type]


@HYPOTHESIS
@given(st.text())
def test_arbitrary_text_raises_nothing_but_tc_string_error(text: str) -> None:
    with contextlib.suppress(TCStringError):
        assert isinstance(decode(text), TCString)


@HYPOTHESIS
@given(st.text(alphabet=string.ascii_letters + string.digits + "-_.=", min_size=1, max_size=400))
def test_arbitrary_base64url_raises_nothing_but_tc_string_error(text: str) -> None:
    with contextlib.suppress(TCStringError):
        assert isinstance(decode(text), TCString)


@HYPOTHESIS
@given(st.binary(max_size=300), st.integers(min_value=0, max_value=3))
def test_mutated_valid_strings_raise_nothing_but_tc_string_error(noise: bytes, cut: int) -> None:
    bits = core_bits(fields(purposes_consent={1, 8}, vendor_consents={2, 40}))
    mutated = "".join(format(byte, "08b") for byte in noise)
    text = bits_to_segment(bits[: len(bits) // (cut + 1)] + mutated)
    with contextlib.suppress(TCStringError):
        assert isinstance(decode(text), TCString)


ids = st.frozensets(st.integers(min_value=1, max_value=600), max_size=40)
purposes = st.frozensets(st.integers(min_value=1, max_value=24))
moments = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
).map(lambda moment: moment.replace(microsecond=moment.microsecond // 100_000 * 100_000))
restrictions = st.lists(
    st.tuples(
        st.integers(min_value=1, max_value=63),
        st.integers(min_value=0, max_value=2),
        st.frozensets(st.integers(min_value=1, max_value=600), min_size=1, max_size=10),
    ),
    max_size=4,
).map(tuple)
letters = st.text(alphabet=string.ascii_uppercase, min_size=2, max_size=2)
optional_ids = st.none() | ids
custom = st.frozensets(st.integers(min_value=1, max_value=63), max_size=8)


@HYPOTHESIS
@given(
    st.fixed_dictionaries(
        {
            "created": moments,
            "last_updated": moments,
            "cmp_id": st.integers(min_value=0, max_value=4095),
            "cmp_version": st.integers(min_value=0, max_value=4095),
            "consent_screen": st.integers(min_value=0, max_value=63),
            "consent_language": letters,
            "vendor_list_version": st.integers(min_value=0, max_value=4095),
            "tcf_policy_version": st.integers(min_value=0, max_value=63),
            "is_service_specific": st.booleans(),
            "use_non_standard_texts": st.booleans(),
            "special_feature_optins": st.frozensets(st.integers(min_value=1, max_value=12)),
            "purposes_consent": purposes,
            "purposes_li_transparency": purposes,
            "purpose_one_treatment": st.booleans(),
            "publisher_cc": letters,
            "vendor_consents": ids,
            "vendor_legitimate_interests": ids,
            "publisher_restrictions": restrictions,
            "disclosed_vendors": optional_ids,
            "publisher_purposes_consent": st.none() | purposes,
            "publisher_custom_purposes_consent": st.none() | custom,
        }
    ),
    st.sampled_from(["bitfield", "range"]),
    st.booleans(),
)
def test_round_trip_with_the_test_encoder(
    given_fields: dict[str, object], encoding: str, pad: bool
) -> None:
    text = tc_encoder.encode(vendor_encoding=encoding, pad=pad, **given_fields)  # type: ignore[arg-type]
    assert decode(text) == TCString(**fields(**given_fields))
