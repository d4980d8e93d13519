"""Build IAB TCF v2.2 TC strings, as a CMP writes them, for the TCF example and its tests.

A real CMP writes the string; the example's stand-in CMP gets two of them from here (all purposes,
purpose 1 only), dated today so that the collector does not find them expired (13 months).
Segments: core, DisclosedVendors (mandatory since TCF v2.3) and PublisherTC.
"""

from __future__ import annotations

import base64
from collections.abc import Collection
from datetime import UTC, date, datetime

CMP_ID = 300
POLICY_VERSION = 4


def _bits(value: int, width: int) -> str:
    return format(value, f"0{width}b")


def _letters(code: str) -> str:
    return "".join(_bits(ord(letter) - ord("A"), 6) for letter in code.upper())


def _id_bits(ids: Collection[int], width: int) -> str:
    return "".join("1" if index in ids else "0" for index in range(1, width + 1))


def _segment(bits: str) -> str:
    bits += "0" * (-len(bits) % 8)
    raw = int(bits, 2).to_bytes(len(bits) // 8, "big")
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def encode_tc_string(
    purposes: Collection[int],
    vendors: Collection[int] = (),
    publisher_purposes: Collection[int] = (),
    day: date | None = None,
) -> str:
    """A service-specific TC string with these purpose, vendor and publisher-purpose consents."""
    day = day or datetime.now(UTC).date()
    # Created and LastUpdated are the same day-level value, in deciseconds (TCF since 2021).
    deciseconds = int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() * 10)
    max_vendor = max(vendors, default=0)
    core = "".join(
        [
            _bits(2, 6),  # Version
            _bits(deciseconds, 36),  # Created
            _bits(deciseconds, 36),  # LastUpdated
            _bits(CMP_ID, 12),
            _bits(1, 12),  # CmpVersion
            _bits(1, 6),  # ConsentScreen
            _letters("EN"),
            _bits(120, 12),  # VendorListVersion
            _bits(POLICY_VERSION, 6),
            "1",  # IsServiceSpecific
            "0",  # UseNonStandardTexts
            _bits(0, 12),  # SpecialFeatureOptIns
            _id_bits(purposes, 24),
            _bits(0, 24),  # PurposesLITransparency
            "0",  # PurposeOneTreatment
            _letters("FR"),  # PublisherCC
            _bits(max_vendor, 16) + "0" + _id_bits(vendors, max_vendor),  # vendor consents
            _bits(0, 16) + "0",  # vendor legitimate interests: none
            _bits(0, 12),  # NumPubRestrictions
        ]
    )
    disclosed = _bits(1, 3) + _bits(max_vendor, 16) + "0" + _id_bits(vendors, max_vendor)
    publisher = _bits(3, 3) + _id_bits(publisher_purposes, 24) + _bits(0, 24) + _bits(0, 6)
    return ".".join(_segment(part) for part in (core, disclosed, publisher))
