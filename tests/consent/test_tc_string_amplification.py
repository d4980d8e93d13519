"""Range entries cost 33 bits but may name 65535 vendor ids: decoding must not let a short string
expand into millions of ids (the collector decodes every hit's TC string, up to 8 KB of it)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from consent import Mode, Signals, SitePolicy, resolve
from consent.tcf import MAX_IDS_PER_SEGMENT, TCStringError, decode
from tests.consent.tc_encoder import bits_to_segment, core_bits, fields, uint

# Bits of the core segment before the vendor consent section (Version .. PublisherCC).
CORE_FIXED_BITS = 213
FULL_RANGE = "1" + uint(1, 16) + uint(65535, 16)  # IsARange, 1, 65535
NO_VENDORS = uint(0, 16) + "0"  # MaxVendorId 0, bit field


def _core_prefix() -> str:
    return core_bits(fields(purposes_consent={1, 8}))[:CORE_FIXED_BITS]


def _vendor_ranges(entries: int) -> str:
    return uint(65535, 16) + "1" + uint(entries, 12) + FULL_RANGE * entries


def _restrictions(count: int) -> str:
    entry = uint(1, 6) + uint(1, 2) + uint(1, 12) + FULL_RANGE
    return uint(count, 12) + entry * count


def test_repeated_full_vendor_ranges_are_merged_not_expanded_per_entry() -> None:
    # ~740 entries of 1-65535 in each vendor section: just under the collector's 8 KB limit.
    text = bits_to_segment(_core_prefix() + _vendor_ranges(740) + _vendor_ranges(740) + uint(0, 12))
    assert len(text) <= 8192
    tc = decode(text)
    assert tc.vendor_consents == tc.vendor_legitimate_interests == frozenset(range(1, 65536))


def test_overlapping_and_unordered_ranges_give_their_union() -> None:
    entries = [(5, 9), (1, 3), (2, 6), (20, 20), (7, 8)]
    section = uint(30, 16) + "1" + uint(len(entries), 12)
    for start, end in entries:
        section += "1" + uint(start, 16) + uint(end, 16) if end != start else "0" + uint(start, 16)
    tc = decode(bits_to_segment(_core_prefix() + section + NO_VENDORS + uint(0, 12)))
    assert tc.vendor_consents == {1, 2, 3, 4, 5, 6, 7, 8, 9, 20}


def test_publisher_restrictions_naming_millions_of_ids_are_refused() -> None:
    # 920 restrictions of vendors 1-65535 would be 60 million ids (gigabytes) in 8 KB.
    text = bits_to_segment(_core_prefix() + NO_VENDORS + NO_VENDORS + _restrictions(920))
    assert len(text) <= 8192
    with pytest.raises(TCStringError, match="more than"):
        decode(text)
    resolution = resolve(
        Signals(tc_string=text), SitePolicy(), now=datetime(2026, 6, 2, tzinfo=UTC)
    )
    assert resolution.mode is Mode.EXEMPT
    assert resolution.reasons == ("tcf:malformed",)


def test_the_cap_still_admits_four_full_vendor_sets() -> None:
    full_sets = MAX_IDS_PER_SEGMENT // 65535
    assert full_sets >= 4
    text = bits_to_segment(
        _core_prefix() + _vendor_ranges(1) + _vendor_ranges(1) + _restrictions(full_sets - 2)
    )
    tc = decode(text)
    assert len(tc.publisher_restrictions) == full_sets - 2
    assert all(vendors == frozenset(range(1, 65536)) for *_, vendors in tc.publisher_restrictions)
    one_more = bits_to_segment(
        _core_prefix() + _vendor_ranges(1) + _vendor_ranges(1) + _restrictions(full_sets - 1)
    )
    with pytest.raises(TCStringError, match="more than"):
        decode(one_more)
