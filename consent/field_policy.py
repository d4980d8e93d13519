"""What a hit in each consent mode may keep (docs/design.md §3, issue 3).

Campaign (UTM) attribution is ``granted``-only: issue 3 and ``docs/metrics.md`` follow the CNIL
reading (and Matomo's CNIL FAQ) that acquisition-channel performance is marketing, not audience
measurement. The design as first drawn listed UTM under ``exempt``; docs/design.md §3 says why
the product does not.

A stricter mode never keeps more, with one deliberate exception: ``denied`` counts any event name
(with no identifier, property or referrer), while ``exempt``, whose events are linked to an
identifier, keeps only :data:`EXEMPT_EVENTS`.
"""

from __future__ import annotations

import msgspec

from consent.modes import Mode
from consent.site_policy import MAX_EXEMPT_ID_LIFETIME_DAYS, SitePolicy

__all__ = [
    "EXEMPT_EVENTS",
    "EXEMPT_PROPERTIES",
    "URL_FIELDS",
    "URL_PROPERTIES",
    "WIRE_FIELDS",
    "FieldPolicy",
    "policy",
]

#: Events an exempt hit may carry: pageviews and technical audience-measurement events.
EXEMPT_EVENTS = frozenset({"pageview", "outbound", "download", "navigation", "engagement", "404"})
#: Properties every exempt site keeps: the target of outbound and download clicks.
EXEMPT_PROPERTIES = frozenset({"url"})
#: Wire fields whose value is a URL. In every mode, whatever else the mode keeps of them, such a
#: value is stored only cleaned: scheme, host and path with e-mail addresses and long digit runs
#: masked; no fragment, no user info; no query but the site's campaign parameters, which only the
#: page URL keeps, in ``granted``.
URL_FIELDS = frozenset({"url", "referrer"})
#: Property keys whose value is a URL, cleaned the same way (a value that is not an http(s) URL
#: is not kept). A value under any other key that is an http(s) URL is cleaned too: a URL does
#: not become free text by being named otherwise.
URL_PROPERTIES = frozenset({"url"})
#: Every wire field a hit can carry that a mode may keep or drop (``country`` is derived).
WIRE_FIELDS = frozenset(
    {
        "name",
        "url",
        "referrer",
        "cid",
        "uid",
        "props",
        "revenue",
        "screen",
        "engaged_ms",
        "country",
        "utm",
    }
)


class FieldPolicy(msgspec.Struct, frozen=True, kw_only=True):
    """What a hit in ``mode`` keeps, on the site whose policy produced it."""

    mode: Mode
    #: ``False`` for optout: nothing is stored, the collector only counts the hit.
    store: bool
    #: May keep a visitor identifier (client-id hash, or the daily cookieless hash without one).
    visitor_id: bool
    #: May keep the keyed hash of the site's user id.
    user_id: bool
    #: May the browser keep an identifier.
    client_storage: bool
    #: Lifetime of the client identifier from its creation, never extended.
    id_lifetime_days: int | None
    #: Event names kept (``None``: any).
    events: frozenset[str] | None
    #: Property keys kept (``None``: any; empty: none).
    properties: frozenset[str] | None
    #: UTM / campaign parameters kept.
    campaign: bool
    #: Referrer (source, domain) kept.
    referrer: bool
    revenue: bool
    #: Browser, OS, device class and screen class kept.
    device: bool
    country: bool
    #: ``engaged_ms`` kept.
    engagement: bool
    #: Wire fields kept: a subset of :data:`WIRE_FIELDS`.
    fields: frozenset[str]


def _fields(**kept: bool) -> frozenset[str]:
    return frozenset(name for name, keep in kept.items() if keep)


def policy(mode: Mode, site: SitePolicy) -> FieldPolicy:
    """The field policy of ``mode`` on ``site``."""
    country = site.geo != "none"
    if mode is Mode.OPTOUT:
        return FieldPolicy(
            mode=mode,
            store=False,
            visitor_id=False,
            user_id=False,
            client_storage=False,
            id_lifetime_days=None,
            events=frozenset(),
            properties=frozenset(),
            campaign=False,
            referrer=False,
            revenue=False,
            device=False,
            country=False,
            engagement=False,
            fields=frozenset(),
        )
    if mode is Mode.DENIED:
        return FieldPolicy(
            mode=mode,
            store=True,
            visitor_id=False,
            user_id=False,
            client_storage=False,
            id_lifetime_days=None,
            events=None,
            properties=frozenset(),
            campaign=False,
            referrer=False,
            revenue=False,
            device=False,
            country=country,
            engagement=False,
            fields=_fields(name=True, url=True, country=country),
        )
    if mode is Mode.EXEMPT:
        return FieldPolicy(
            mode=mode,
            store=True,
            visitor_id=True,
            user_id=False,
            client_storage=True,
            id_lifetime_days=min(site.id_lifetime_days, MAX_EXEMPT_ID_LIFETIME_DAYS),
            events=EXEMPT_EVENTS,
            properties=EXEMPT_PROPERTIES | frozenset(site.exempt_properties),
            campaign=False,
            referrer=True,
            revenue=False,
            device=True,
            country=country,
            engagement=True,
            fields=_fields(
                name=True,
                url=True,
                referrer=True,
                cid=True,
                props=True,
                screen=True,
                engaged_ms=True,
                country=country,
            ),
        )
    return FieldPolicy(
        mode=mode,
        store=True,
        visitor_id=True,
        user_id=True,
        client_storage=True,
        id_lifetime_days=site.id_lifetime_days,
        events=None,
        properties=None,
        campaign=True,
        referrer=True,
        revenue=True,
        device=True,
        country=country,
        engagement=True,
        fields=WIRE_FIELDS if country else WIRE_FIELDS - {"country"},
    )
