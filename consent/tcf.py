"""IAB TCF v2.2/v2.3 TC string decoder (``docs/consent.md`` §4).

A TC string is ``.``-separated segments of base64url (padding optional). The core segment comes
first; the optional DisclosedVendors (type 1) and PublisherTC (type 3) segments follow in any
order. Fields are big-endian and read left to right.

Exceptions (drawn in the tree of ``collector/errors.py``)::

    MesureError, ValueError
    └── TCStringError   anything wrong with the string; the message says what and where
"""

from __future__ import annotations

import base64
import binascii
import itertools
import re
from datetime import UTC, datetime, timedelta

import msgspec

from consent.errors import MesureError

__all__ = [
    "SEGMENT_DISCLOSED_VENDORS",
    "SEGMENT_PUBLISHER_TC",
    "TCString",
    "TCStringError",
    "decode",
]

SEGMENT_DISCLOSED_VENDORS = 1
SEGMENT_PUBLISHER_TC = 3
RESTRICTION_TYPES = (0, 1, 2)  # not allowed, require consent, require legitimate interest
#: Most vendor ids one segment may name. A range entry costs 33 bits yet may name 65535 ids, so
#: without a cap an 8 KB string of repeated publisher restrictions expands to tens of millions
#: of ids: seconds of CPU and gigabytes of memory for one hit. Real strings name a few thousand.
MAX_IDS_PER_SEGMENT = 4 * 65536

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Padding is only allowed at the end; "=" anywhere else is refused by this pattern.
_SEGMENT = re.compile(r"[A-Za-z0-9_-]+={0,2}")
# "0"/"1" characters to 0/1 bytes, so itertools.compress picks the ids in C.
_BIT_VALUES = bytes.maketrans(b"01", b"\x00\x01")
_SEGMENT_NAMES = {0: "core-like", 2: "AllowedVendors (removed in TCF v2.2)"}

VendorSet = frozenset[int]
Restriction = tuple[int, int, VendorSet]


class TCStringError(MesureError, ValueError):
    """A TC string that cannot be decoded; the message names the segment and field. A
    ValueError too, as a bad value handed to a decoder is."""


class TCString(msgspec.Struct, frozen=True, kw_only=True):
    """A decoded TC string. Purpose, feature and vendor ids are 1-based, as in the spec."""

    version: int
    created: datetime
    last_updated: datetime
    cmp_id: int
    cmp_version: int
    consent_screen: int
    consent_language: str
    vendor_list_version: int
    tcf_policy_version: int
    is_service_specific: bool
    use_non_standard_texts: bool
    special_feature_optins: VendorSet
    purposes_consent: VendorSet
    purposes_li_transparency: VendorSet
    purpose_one_treatment: bool
    publisher_cc: str
    vendor_consents: VendorSet
    vendor_legitimate_interests: VendorSet
    #: ``(purpose id, restriction type, vendor ids)`` in string order.
    publisher_restrictions: tuple[Restriction, ...]
    disclosed_vendors: VendorSet | None = None
    publisher_purposes_consent: VendorSet | None = None
    publisher_purposes_li_transparency: VendorSet | None = None
    publisher_custom_purposes_consent: VendorSet | None = None
    publisher_custom_purposes_li_transparency: VendorSet | None = None


class _Bits:
    """Reads big-endian unsigned fields from one segment's bits.

    The bits are held as a ``"0101…"`` string: slicing and ``int(…, 2)`` keep a 2 KB string's
    decoding well under a millisecond, where shifting one large integer per field would not.
    """

    __slots__ = ("bits", "ids_left", "pos", "segment")

    def __init__(self, data: bytes, segment: str) -> None:
        self.bits = format(int.from_bytes(data, "big"), f"0{len(data) * 8}b") if data else ""
        self.pos = 0
        self.segment = segment
        self.ids_left = MAX_IDS_PER_SEGMENT

    def take(self, width: int, field: str) -> str:
        end = self.pos + width
        if end > len(self.bits):
            raise TCStringError(
                f"{self.segment} segment truncated in {field}: needs {width} bits at bit "
                f"{self.pos}, {len(self.bits) - self.pos} left"
            )
        chunk = self.bits[self.pos : end]
        self.pos = end
        return chunk

    def uint(self, width: int, field: str) -> int:
        return int(self.take(width, field), 2)

    def flag(self, field: str) -> bool:
        return self.take(1, field) == "1"

    def id_set(self, width: int, field: str) -> VendorSet:
        """A bit field whose bit ``i`` (0-based) stands for id ``i + 1``."""
        flags = self.take(width, field).encode("ascii").translate(_BIT_VALUES)
        return frozenset(itertools.compress(range(1, width + 1), flags))

    def letters(self, field: str) -> str:
        codes = (self.uint(6, field), self.uint(6, field))
        if any(code > 25 for code in codes):
            raise TCStringError(f"{self.segment} segment: {field} letter code out of range a-z")
        return "".join(chr(ord("A") + code) for code in codes)

    def deciseconds(self, field: str) -> datetime:
        return _EPOCH + timedelta(milliseconds=self.uint(36, field) * 100)

    def ranges(self, field: str, max_id: int | None) -> VendorSet:
        """``NumEntries`` then ranges of ids; every id in ``1..max_id`` when ``max_id`` is given.

        Overlapping entries are merged before they are expanded, and the segment's ids are
        capped (:data:`MAX_IDS_PER_SEGMENT`), so decoding costs at most what real strings cost.
        """
        runs: list[tuple[int, int]] = []
        append = runs.append
        count = self.uint(12, f"{field} NumEntries")
        # Up to thousands of entries: read them inline with local variables, naming the field
        # only on error (per-entry calls and messages would dominate the decoding time).
        bits, size, pos = self.bits, len(self.bits), self.pos
        for _ in range(count):
            if pos + 17 > size or (bits[pos] == "1" and pos + 33 > size):
                self.pos = pos
                self._truncated_entry(field)
            if bits[pos] == "1":
                append((int(bits[pos + 1 : pos + 17], 2), int(bits[pos + 17 : pos + 33], 2)))
                pos += 33
            else:
                only = int(bits[pos + 1 : pos + 17], 2)
                append((only, only))
                pos += 17
        self.pos = pos
        top_id = 65535 if max_id is None else max_id
        for start, end in runs:
            if start < 1 or end < start or end > top_id:
                limit = f" within 1..{max_id}" if max_id is not None else ""
                raise TCStringError(
                    f"{self.segment} segment: {field} range {start}-{end} is not an ascending "
                    f"range of ids{limit}"
                )
        # Overlaps merged first, so that the cap counts each id once; single ids (most entries
        # of real strings) are kept as ints rather than one range object each.
        singles: list[int] = []
        spans: list[range] = []
        top = 0
        for start, end in sorted(runs):
            if end > top:
                first = max(start, top + 1)
                if first == end:
                    singles.append(end)
                else:
                    spans.append(range(first, end + 1))
                top = end
        self.ids_left -= len(singles) + sum(map(len, spans))
        if self.ids_left < 0:
            raise TCStringError(
                f"{self.segment} segment: {field} names more than {MAX_IDS_PER_SEGMENT} vendor "
                "ids in all"
            )
        return frozenset(itertools.chain(singles, *spans))

    def _truncated_entry(self, field: str) -> None:
        """Read a range entry that does not fit field by field: :meth:`take` raises, naming
        the part that is missing."""
        if self.flag(f"{field} IsARange"):
            self.uint(16, f"{field} StartOrOnlyVendorId")
            self.uint(16, f"{field} EndVendorId")
        else:
            self.uint(16, f"{field} StartOrOnlyVendorId")
        raise AssertionError("unreachable: the entry was checked to be truncated")

    def vendors(self, field: str) -> VendorSet:
        """A vendor section: ``MaxVendorId``, ``IsRangeEncoding``, then a bit field or ranges."""
        max_id = self.uint(16, f"{field} MaxVendorId")
        if self.flag(f"{field} IsRangeEncoding"):
            return self.ranges(field, max_id)
        return self.id_set(max_id, f"{field} BitField")


def _segment_bytes(text: str, name: str) -> bytes:
    if not _SEGMENT.fullmatch(text):
        raise TCStringError(f"{name} segment is not base64url (A-Za-z0-9-_, '=' only at the end)")
    unpadded = text.rstrip("=")
    if len(unpadded) % 4 == 1:
        raise TCStringError(f"{name} segment has an impossible base64 length ({len(unpadded)})")
    try:
        return base64.urlsafe_b64decode(unpadded + "=" * (-len(unpadded) % 4))
    except (binascii.Error, ValueError) as exc:
        raise TCStringError(f"{name} segment is not base64url: {exc}") from exc


def _core(bits: _Bits) -> dict[str, object]:
    version = bits.uint(6, "Version")
    if version != 2:
        raise TCStringError(f"core segment: Version is {version}, only 2 is supported")
    core: dict[str, object] = {
        "version": version,
        "created": bits.deciseconds("Created"),
        "last_updated": bits.deciseconds("LastUpdated"),
        "cmp_id": bits.uint(12, "CmpId"),
        "cmp_version": bits.uint(12, "CmpVersion"),
        "consent_screen": bits.uint(6, "ConsentScreen"),
        "consent_language": bits.letters("ConsentLanguage"),
        "vendor_list_version": bits.uint(12, "VendorListVersion"),
        "tcf_policy_version": bits.uint(6, "TcfPolicyVersion"),
        "is_service_specific": bits.flag("IsServiceSpecific"),
        "use_non_standard_texts": bits.flag("UseNonStandardTexts"),
        "special_feature_optins": bits.id_set(12, "SpecialFeatureOptIns"),
        "purposes_consent": bits.id_set(24, "PurposesConsent"),
        "purposes_li_transparency": bits.id_set(24, "PurposesLITransparency"),
        "purpose_one_treatment": bits.flag("PurposeOneTreatment"),
        "publisher_cc": bits.letters("PublisherCC"),
        "vendor_consents": bits.vendors("VendorConsents"),
        "vendor_legitimate_interests": bits.vendors("VendorLegitimateInterests"),
    }
    restrictions = []
    for _ in range(bits.uint(12, "NumPubRestrictions")):
        purpose = bits.uint(6, "PurposeId")
        kind = bits.uint(2, "RestrictionType")
        if kind not in RESTRICTION_TYPES:
            raise TCStringError(f"core segment: RestrictionType {kind} is undefined")
        restrictions.append((purpose, kind, bits.ranges("PubRestrictionEntry", None)))
    core["publisher_restrictions"] = tuple(restrictions)
    return core


def _publisher_tc(bits: _Bits) -> dict[str, object]:
    consent = bits.id_set(24, "PubPurposesConsent")
    li = bits.id_set(24, "PubPurposesLITransparency")
    custom = bits.uint(6, "NumCustomPurposes")
    return {
        "publisher_purposes_consent": consent,
        "publisher_purposes_li_transparency": li,
        "publisher_custom_purposes_consent": bits.id_set(custom, "CustomPurposesConsent"),
        "publisher_custom_purposes_li_transparency": bits.id_set(
            custom, "CustomPurposesLITransparency"
        ),
    }


def decode(s: str) -> TCString:
    """Decode a TC string; raise :class:`TCStringError` saying what is wrong."""
    if not isinstance(s, str):
        raise TCStringError(f"a TC string is text, not {type(s).__name__}")
    if not s:
        raise TCStringError("empty TC string")
    texts = s.split(".")
    fields = _core(_Bits(_segment_bytes(texts[0], "core"), "core"))
    seen: set[int] = set()
    for position, text in enumerate(texts[1:], start=2):
        name = f"segment {position}"
        bits = _Bits(_segment_bytes(text, name), name)
        kind = bits.uint(3, "SegmentType")
        if kind in seen:
            raise TCStringError(f"{name}: SegmentType {kind} appears twice")
        seen.add(kind)
        if kind == SEGMENT_DISCLOSED_VENDORS:
            fields["disclosed_vendors"] = bits.vendors("DisclosedVendors")
        elif kind == SEGMENT_PUBLISHER_TC:
            fields.update(_publisher_tc(bits))
        else:
            known = _SEGMENT_NAMES.get(kind, "unknown")
            raise TCStringError(f"{name}: unsupported SegmentType {kind} ({known})")
    return TCString(**fields)  # type: ignore[arg-type]
