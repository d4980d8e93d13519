"""Write ``consent/vectors/{resolve,policy}.json``: ``python -m tests.consent.make_vectors``.

The expected results (here and in ``resolve_cases``) are written by hand from the rules
(docs/consent.md), never computed by ``consent``: the Python tests and the snippet's browser tests
both check against them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.consent.resolve_cases import resolve_vectors

VECTORS_DIR = Path(__file__).resolve().parents[2] / "consent" / "vectors"

RESOLVE_DESCRIPTION = (
    "Consent resolution vectors: consent.resolve(Signals(...), SitePolicy(...), now=...) must give "
    "expected.mode and exactly expected.reasons (in order). Inputs: claim (the client's mode, wire "
    "field `mode`, or null), tc_string (IAB TCF string or null), gcm (Consent Mode v2 state or "
    "null), sec_gpc and dnt (every header value received), site (the [sites.consent] keys that "
    "differ from the defaults, kebab-case), now (ISO 8601 UTC). tcdata is what a CMP's "
    "__tcfapi('addEventListener') callback gives for the same TC string (null without one). "
    "client: true when a browser can reproduce the vector: tcdata through __tcfapi, gcm through "
    "gtag('consent', 'update', gcm), sec_gpc ['1'] as navigator.globalPrivacyControl, claim "
    "through mesure('consent', claim), site exemption=false as data-default-mode='denied', "
    "honour-gpc=false as data-ignore-gpc, tcf-vendor-id as data-tcf-vendor. Vectors that depend "
    "on DNT, several or non-'1' Sec-GPC values, expired, future-dated, outdated or malformed "
    "strings, or other site keys are server-only (client: false)."
)

POLICY_DESCRIPTION = (
    "Field policy vectors: consent.policy(mode, SitePolicy(site)) must equal expected. site holds "
    "the [sites.consent] keys that differ from the defaults (kebab-case). In expected, events and "
    "properties are sorted lists or null (any), fields is the sorted list of wire fields kept, "
    "id_lifetime_days is null when the browser may keep no identifier."
)


_ALL_FIELDS = [
    "cid",
    "country",
    "engaged_ms",
    "name",
    "props",
    "referrer",
    "revenue",
    "screen",
    "uid",
    "url",
    "utm",
]
_EXEMPT_EVENTS = ["404", "download", "engagement", "navigation", "outbound", "pageview"]
_NOTHING: dict[str, Any] = {
    "store": False,
    "visitor_id": False,
    "user_id": False,
    "client_storage": False,
    "id_lifetime_days": None,
    "events": [],
    "properties": [],
    "campaign": False,
    "referrer": False,
    "revenue": False,
    "device": False,
    "country": False,
    "engagement": False,
    "fields": [],
}
_DENIED: dict[str, Any] = {
    **_NOTHING,
    "store": True,
    "events": None,
    "country": True,
    "fields": ["country", "name", "url"],
}
_EXEMPT: dict[str, Any] = {
    **_DENIED,
    "visitor_id": True,
    "client_storage": True,
    "id_lifetime_days": 395,
    "events": _EXEMPT_EVENTS,
    "properties": ["url"],
    "referrer": True,
    "device": True,
    "engagement": True,
    "fields": ["cid", "country", "engaged_ms", "name", "props", "referrer", "screen", "url"],
}
_GRANTED: dict[str, Any] = {
    **_EXEMPT,
    "user_id": True,
    "events": None,
    "properties": None,
    "campaign": True,
    "revenue": True,
    "fields": _ALL_FIELDS,
}


def _without_country(expected: dict[str, Any]) -> dict[str, Any]:
    return {
        **expected,
        "country": False,
        "fields": [f for f in expected["fields"] if f != "country"],
    }


def policy_vectors() -> list[dict[str, Any]]:
    custom = {"exempt-properties": ["plan", "ab_variant"], "id-lifetime-days": 800, "geo": "none"}
    short = {"id-lifetime-days": 30}
    cases: list[tuple[str, str, dict[str, Any], dict[str, Any]]] = [
        ("optout", "optout", {}, _NOTHING),
        ("denied", "denied", {}, _DENIED),
        ("exempt", "exempt", {}, _EXEMPT),
        ("granted", "granted", {}, _GRANTED),
        ("optout-custom-site", "optout", custom, _NOTHING),
        ("denied-without-geo", "denied", custom, _without_country(_DENIED)),
        (
            "exempt-extra-properties-capped-lifetime",
            "exempt",
            custom,
            {**_without_country(_EXEMPT), "properties": ["ab_variant", "plan", "url"]},
        ),
        (
            "granted-long-lifetime-without-geo",
            "granted",
            custom,
            {**_without_country(_GRANTED), "id_lifetime_days": 800},
        ),
        ("exempt-short-lifetime", "exempt", short, {**_EXEMPT, "id_lifetime_days": 30}),
        ("granted-short-lifetime", "granted", short, {**_GRANTED, "id_lifetime_days": 30}),
    ]
    return [
        {"id": case_id, "mode": mode, "site": site, "expected": {"mode": mode, **expected}}
        for case_id, mode, site, expected in cases
    ]


def render(description: str, vectors: list[dict[str, Any]]) -> str:
    return json.dumps({"description": description, "vectors": vectors}, indent=1) + "\n"


def documents() -> dict[str, str]:
    """File name -> exact content of every vector file."""
    return {
        "resolve.json": render(RESOLVE_DESCRIPTION, resolve_vectors()),
        "policy.json": render(POLICY_DESCRIPTION, policy_vectors()),
    }


def main() -> None:
    for name, text in documents().items():
        (VECTORS_DIR / name).write_text(text, encoding="utf-8")
        print(f"wrote {VECTORS_DIR / name}")


if __name__ == "__main__":
    main()
