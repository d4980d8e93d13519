from __future__ import annotations

import itertools
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consent import EXEMPT_EVENTS, FieldPolicy, Mode, SitePolicy, policy
from consent.field_policy import WIRE_FIELDS
from tests.consent.vectors import load, site_of

POLICY_VECTORS: list[dict[str, Any]] = load("policy.json")["vectors"]
SITES = [SitePolicy(), SitePolicy(geo="none", exempt_properties=("plan",), id_lifetime_days=900)]
FLAGS = (
    "store",
    "visitor_id",
    "user_id",
    "client_storage",
    "campaign",
    "referrer",
    "revenue",
    "device",
    "country",
    "engagement",
)


def _as_json(field_policy: FieldPolicy) -> dict[str, Any]:
    """The vector form: sorted lists for sets, null for "any"."""
    out: dict[str, Any] = msgspec.to_builtins(field_policy)
    for name in ("events", "properties", "fields"):
        value = getattr(field_policy, name)
        out[name] = None if value is None else sorted(value)
    return out


@pytest.mark.parametrize("vector", POLICY_VECTORS, ids=[v["id"] for v in POLICY_VECTORS])
def test_shared_policy_vector(vector: dict[str, Any]) -> None:
    assert _as_json(policy(Mode(vector["mode"]), site_of(vector))) == vector["expected"]


def _allows(field_policy: FieldPolicy, name: str) -> frozenset[str] | None:
    return getattr(field_policy, name)  # type: ignore[no-any-return]


@pytest.mark.parametrize("site", SITES, ids=["default-site", "custom-site"])
def test_a_more_restrictive_mode_never_keeps_more(site: SitePolicy) -> None:
    for stricter, looser in itertools.combinations(sorted(Mode), 2):
        strict, loose = policy(stricter, site), policy(looser, site)
        assert strict.fields <= loose.fields
        for flag in FLAGS:
            assert getattr(strict, flag) <= getattr(loose, flag), (stricter, looser, flag)
        # The one documented exception: denied counts any event without an identifier, while
        # exempt links events to an identifier and so keeps the technical events only.
        names = (
            ("properties",)
            if (stricter, looser) == (Mode.DENIED, Mode.EXEMPT)
            else (
                "events",
                "properties",
            )
        )
        for name in names:
            kept, looser_kept = _allows(strict, name), _allows(loose, name)
            assert looser_kept is None or (kept is not None and kept <= looser_kept)


@pytest.mark.parametrize("mode", list(Mode), ids=str)
def test_fields_are_wire_fields_and_match_the_flags(mode: Mode) -> None:
    kept = policy(mode, SitePolicy())
    assert kept.fields <= WIRE_FIELDS
    assert ("cid" in kept.fields) == kept.visitor_id
    assert ("uid" in kept.fields) == kept.user_id
    assert ("utm" in kept.fields) == kept.campaign
    assert ("referrer" in kept.fields) == kept.referrer
    assert ("revenue" in kept.fields) == kept.revenue
    assert ("engaged_ms" in kept.fields) == kept.engagement
    assert ("country" in kept.fields) == kept.country
    assert (kept.id_lifetime_days is not None) == kept.client_storage


def test_exempt_keeps_the_technical_events_only_and_denied_counts_any_without_identifier() -> None:
    assert policy(Mode.EXEMPT, SitePolicy()).events == EXEMPT_EVENTS
    assert "purchase" not in EXEMPT_EVENTS
    denied = policy(Mode.DENIED, SitePolicy())
    assert denied.events is None
    assert (denied.visitor_id, denied.properties, denied.fields) == (
        False,
        frozenset(),
        frozenset({"name", "url", "country"}),
    )


@settings(database=None, deadline=None)
@given(st.integers(min_value=1, max_value=36500))
def test_exempt_identifiers_never_outlive_13_months(days: int) -> None:
    site = SitePolicy(id_lifetime_days=days)
    assert policy(Mode.EXEMPT, site).id_lifetime_days == min(days, 395)
    assert policy(Mode.GRANTED, site).id_lifetime_days == days
