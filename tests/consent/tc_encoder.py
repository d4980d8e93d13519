"""A TC string encoder for tests, written from the spec independently of ``consent.tcf``.

    encode(purposes_consent={1, 8}, vendor_consents={42}, created=datetime(2026, 6, 1, tzinfo=UTC))
    tcdata(purposes_consent={1, 8}, vendor_consents={42}, created=...)   # what a CMP would expose

Both take ``consent.tcf.TCString``'s field names as keyword arguments (missing ones get the
defaults of :data:`DEFAULTS`: a valid TCF v2.2 service-specific string with no consent), so
``decode(encode(**f))`` equals ``TCString(**fields(**f))``. Lower-level helpers
(:func:`bits_to_segment`, :func:`core_bits`, :func:`vendor_bits`, ...) build broken strings.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

Encoding = Literal["bitfield", "range"]
Ids = Iterable[int]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_DECISECOND = timedelta(milliseconds=100)

DEFAULTS: Mapping[str, Any] = {
    "version": 2,
    "created": datetime(2026, 6, 1, tzinfo=UTC),
    "last_updated": None,  # None: the same as created, as CMPs write since Dec 2021
    "cmp_id": 300,
    "cmp_version": 1,
    "consent_screen": 1,
    "consent_language": "EN",
    "vendor_list_version": 100,
    "tcf_policy_version": 4,
    "is_service_specific": True,
    "use_non_standard_texts": False,
    "special_feature_optins": frozenset(),
    "purposes_consent": frozenset(),
    "purposes_li_transparency": frozenset(),
    "purpose_one_treatment": False,
    "publisher_cc": "FR",
    "vendor_consents": frozenset(),
    "vendor_legitimate_interests": frozenset(),
    "publisher_restrictions": (),
    "disclosed_vendors": None,
    "publisher_purposes_consent": None,
    "publisher_purposes_li_transparency": None,
    "publisher_custom_purposes_consent": None,
    "publisher_custom_purposes_li_transparency": None,
}
_PUBLISHER_TC = (
    "publisher_purposes_consent",
    "publisher_purposes_li_transparency",
    "publisher_custom_purposes_consent",
    "publisher_custom_purposes_li_transparency",
)


def fields(**overrides: Any) -> dict[str, Any]:
    """Every TCString field: :data:`DEFAULTS` with ``overrides``, id collections as frozensets."""
    unknown = set(overrides) - set(DEFAULTS)
    if unknown:
        raise TypeError(f"not TCString fields: {sorted(unknown)}")
    result = {**DEFAULTS, **overrides}
    if result["last_updated"] is None:
        result["last_updated"] = result["created"]
    for name, value in result.items():
        if isinstance(value, set | frozenset | list) and name != "publisher_restrictions":
            result[name] = frozenset(value)
    result["publisher_restrictions"] = tuple(
        (purpose, kind, frozenset(vendors))
        for purpose, kind, vendors in result["publisher_restrictions"]
    )
    if any(result[name] is not None for name in _PUBLISHER_TC):
        for name in _PUBLISHER_TC:
            result[name] = result[name] or frozenset()
    return result


def uint(value: int, width: int) -> str:
    """``value`` as ``width`` bits, big-endian."""
    if not 0 <= value < 1 << width:
        raise ValueError(f"{value} does not fit in {width} bits")
    return format(value, f"0{width}b")


def id_bits(ids: Ids, width: int) -> str:
    """A bit field of ``width`` bits where bit ``i`` stands for id ``i + 1``."""
    chosen = set(ids)
    return "".join("1" if i + 1 in chosen else "0" for i in range(width))


def letters(code: str) -> str:
    return "".join(uint(ord(letter) - ord("A"), 6) for letter in code.upper())


def deciseconds(moment: datetime) -> str:
    return uint((moment - _EPOCH) // _DECISECOND, 36)


def ranges(ids: Ids) -> list[tuple[int, int]]:
    """Sorted ids grouped into inclusive runs of consecutive ids."""
    runs: list[tuple[int, int]] = []
    for vendor in sorted(set(ids)):
        if runs and runs[-1][1] == vendor - 1:
            runs[-1] = (runs[-1][0], vendor)
        else:
            runs.append((vendor, vendor))
    return runs


def range_bits(runs: list[tuple[int, int]]) -> str:
    """``NumEntries`` then one entry per run (``IsARange`` and one or two vendor ids)."""
    out = [uint(len(runs), 12)]
    for start, end in runs:
        out.append("1" + uint(start, 16) + uint(end, 16) if end != start else "0" + uint(start, 16))
    return "".join(out)


def vendor_bits(ids: Ids, *, encoding: Encoding = "bitfield", max_id: int | None = None) -> str:
    """A vendor section: ``MaxVendorId``, ``IsRangeEncoding``, then a bit field or ranges."""
    chosen = set(ids)
    top = max(chosen, default=0) if max_id is None else max_id
    if encoding == "range":
        return uint(top, 16) + "1" + range_bits(ranges(chosen))
    return uint(top, 16) + "0" + id_bits(chosen, top)


def core_bits(f: Mapping[str, Any], *, encoding: Encoding = "bitfield") -> str:
    """The core segment's bits for complete fields ``f`` (see :func:`fields`)."""
    out = [
        uint(f["version"], 6),
        deciseconds(f["created"]),
        deciseconds(f["last_updated"]),
        uint(f["cmp_id"], 12),
        uint(f["cmp_version"], 12),
        uint(f["consent_screen"], 6),
        letters(f["consent_language"]),
        uint(f["vendor_list_version"], 12),
        uint(f["tcf_policy_version"], 6),
        "1" if f["is_service_specific"] else "0",
        "1" if f["use_non_standard_texts"] else "0",
        id_bits(f["special_feature_optins"], 12),
        id_bits(f["purposes_consent"], 24),
        id_bits(f["purposes_li_transparency"], 24),
        "1" if f["purpose_one_treatment"] else "0",
        letters(f["publisher_cc"]),
        vendor_bits(f["vendor_consents"], encoding=encoding),
        vendor_bits(f["vendor_legitimate_interests"], encoding=encoding),
        uint(len(f["publisher_restrictions"]), 12),
    ]
    for purpose, kind, vendors in f["publisher_restrictions"]:
        out.append(uint(purpose, 6) + uint(kind, 2) + range_bits(ranges(vendors)))
    return "".join(out)


def publisher_tc_bits(f: Mapping[str, Any]) -> str:
    custom = set(f["publisher_custom_purposes_consent"]) | set(
        f["publisher_custom_purposes_li_transparency"]
    )
    count = max(custom, default=0)
    return (
        uint(3, 3)
        + id_bits(f["publisher_purposes_consent"], 24)
        + id_bits(f["publisher_purposes_li_transparency"], 24)
        + uint(count, 6)
        + id_bits(f["publisher_custom_purposes_consent"], count)
        + id_bits(f["publisher_custom_purposes_li_transparency"], count)
    )


def bits_to_segment(bits: str, *, pad: bool = False) -> str:
    """Base64url of ``bits`` zero-filled to whole bytes; ``=`` padding only when ``pad``."""
    data = bytes(int(bits[i : i + 8].ljust(8, "0"), 2) for i in range(0, len(bits), 8))
    text = base64.urlsafe_b64encode(data).decode("ascii")
    return text if pad else text.rstrip("=")


def encode(*, vendor_encoding: Encoding = "bitfield", pad: bool = False, **overrides: Any) -> str:
    """A TC string with the given TCString fields (the rest from :data:`DEFAULTS`).

    The DisclosedVendors segment follows the core when ``disclosed_vendors`` is set, then the
    PublisherTC segment when any publisher field is set.
    """
    f = fields(**overrides)
    segments = [core_bits(f, encoding=vendor_encoding)]
    if f["disclosed_vendors"] is not None:
        segments.append(uint(1, 3) + vendor_bits(f["disclosed_vendors"], encoding=vendor_encoding))
    if f["publisher_purposes_consent"] is not None:
        segments.append(publisher_tc_bits(f))
    return ".".join(bits_to_segment(bits, pad=pad) for bits in segments)


def _flags(ids: Ids, upto: int) -> dict[str, bool]:
    """Every id from 1 to ``upto`` (or the largest chosen) with its consent, as CMPs give them."""
    chosen = set(ids)
    return {str(i): i in chosen for i in range(1, max(upto, *chosen, 0) + 1)}


def _vendor_flags(ids: Ids) -> dict[str, bool]:
    """Consented vendors only: a missing vendor reads as no consent, and the GVL is long."""
    return {str(i): True for i in sorted(set(ids))}


def tcdata(**overrides: Any) -> dict[str, Any]:
    """What a CMP's ``__tcfapi('addEventListener', 2, cb)`` gives for the same fields
    (``tcString`` is the string :func:`encode` makes of them), with GDPR applying."""
    f = fields(**overrides)
    restrictions: dict[str, dict[str, int]] = {}
    for purpose, kind, vendors in f["publisher_restrictions"]:
        restrictions.setdefault(str(purpose), {}).update({str(v): kind for v in sorted(vendors)})
    return {
        "tcString": encode(**overrides),
        "gdprApplies": True,
        "eventStatus": "tcloaded",
        "cmpStatus": "loaded",
        "cmpId": f["cmp_id"],
        "cmpVersion": f["cmp_version"],
        "tcfPolicyVersion": f["tcf_policy_version"],
        "isServiceSpecific": f["is_service_specific"],
        "useNonStandardTexts": f["use_non_standard_texts"],
        "publisherCC": f["publisher_cc"],
        "purposeOneTreatment": f["purpose_one_treatment"],
        "purpose": {
            "consents": _flags(f["purposes_consent"], 11),
            "legitimateInterests": _flags(f["purposes_li_transparency"], 11),
        },
        "vendor": {
            "consents": _vendor_flags(f["vendor_consents"]),
            "legitimateInterests": _vendor_flags(f["vendor_legitimate_interests"]),
        },
        "specialFeatureOptins": _flags(f["special_feature_optins"], 2),
        "publisher": {
            "consents": _flags(f["publisher_purposes_consent"] or (), 11),
            "legitimateInterests": _flags(f["publisher_purposes_li_transparency"] or (), 11),
            "customPurpose": {
                "consents": _flags(f["publisher_custom_purposes_consent"] or (), 0),
                "legitimateInterests": _flags(
                    f["publisher_custom_purposes_li_transparency"] or (), 0
                ),
            },
            "restrictions": restrictions,
        },
    }
