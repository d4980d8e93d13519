"""The named ingest steps, each ``(Hit) -> Hit | Dropped``, in the order the pipeline runs them
(:class:`~collector.ingest.pipeline.Pipeline`); the enrichment step is
:func:`collector.ingest.enrich.enrich`.

The last step, :func:`pseudonymize`, returns the event alone: raw identifiers end there, so
nothing after it (the writer, storage) can see them.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlsplit

import msgspec

from collector import hashing
from collector.ingest.hit import Dropped, Hit
from collector.ingest.parsers import agents, urls
from collector.ingest.ratelimit import RateLimiter
from collector.ingest.wire import BatchEventIn
from collector.keys import KeyStore
from collector.storage.rows import Event, PropValue
from consent import Signals, policy, resolve, tcf
from consent.field_policy import URL_PROPERTIES


def check_hostname(hit: Hit) -> Hit | Dropped:
    """The page's hostname, and the ``Origin``'s when sent, must be one of the site's."""
    if not urls.host_allowed(hit.event.hostname, hit.site.hostnames):
        return Dropped("hostname")
    origin = hit.client.origin
    if origin is not None and origin != "null":
        origin_host = urlsplit(origin).hostname
        if origin_host is None or not urls.host_allowed(origin_host, hit.site.hostnames):
            return Dropped("hostname")
    return hit


def filter_bots(hit: Hit) -> Hit | Dropped:
    """Crawlers, headless browsers and prefetches are counted, not stored.

    A batch event from an ingest-token holder without its own ``ua`` is vouched for by the caller
    (a server-side client), so the caller's user agent is not judged.
    """
    if hit.client.trusted and isinstance(hit.wire, BatchEventIn) and hit.wire.ua is None:
        return hit
    headers = {name: ", ".join(values) for name, values in hit.client.headers.items()}
    if agents.bot_reason(hit.client.user_agent, headers) is not None:
        return Dropped("bot")
    return hit


def limit_rate(hit: Hit, *, clients: RateLimiter, sites: RateLimiter, salt: bytes) -> Hit | Dropped:
    """Per client (keyed by a keyed hash of its address, never the address) and per site."""
    if not hit.client.trusted:
        wait = clients.hit(hashing.client_address(salt, hit.client.ip))
        if wait is not None:
            return Dropped("rate_limited", retry_after=wait)
    wait = sites.hit(hit.site.id)
    if wait is not None:
        return Dropped("site_rate_limited", retry_after=wait)
    return hit


def resolve_consent(
    hit: Hit, *, decode_tc: Callable[[str], tcf.TCString] = tcf.decode
) -> Hit | Dropped:
    """The most restrictive mode of the claim and every signal the server can check itself."""
    wire = hit.wire
    signals = Signals(
        claim=wire.mode,
        tc_string=wire.tcf,
        gcm={str(kind): str(state) for kind, state in (wire.gcm or {}).items()} or None,
        sec_gpc=hit.client.header("sec-gpc"),
        dnt=hit.client.header("dnt"),
    )
    resolution = resolve(signals, hit.site.consent, now=hit.received, decode_tc=decode_tc)
    hit.event.mode = resolution.mode.value
    hit.event.reasons = " ".join(resolution.reasons)
    hit.policy = policy(resolution.mode, hit.site.consent)
    if not hit.policy.store:
        return Dropped("optout")
    return hit


def apply_policy(hit: Hit) -> Hit | Dropped:
    """Keep only the event, properties and fields the mode allows (docs/design.md §3)."""
    rules, wire, event = hit.policy, hit.wire, hit.event
    assert rules is not None, "apply_policy runs after resolve_consent"
    if rules.events is not None and wire.name not in rules.events:
        return Dropped("event_not_allowed")
    if wire.props is not None and "props" in rules.fields:
        kept = {
            key: value
            for key, value in wire.props.items()
            if rules.properties is None or key in rules.properties
        }
        event.props = kept or None
    if wire.revenue is not None and rules.revenue:
        event.revenue_amount = wire.revenue.decimal
        event.revenue_currency = wire.revenue.currency
    if rules.engagement and "engaged_ms" in rules.fields:
        event.engaged_ms = wire.engaged_ms
    hit.wire = msgspec.structs.replace(
        wire,
        cid=wire.cid if rules.visitor_id and "cid" in rules.fields else None,
        uid=wire.uid if rules.user_id and "uid" in rules.fields else None,
        referrer=wire.referrer if "referrer" in rules.fields else None,
    )
    return hit


def clean_urls(hit: Hit) -> Hit:
    """Clean every URL-valued property the mode kept, as every URL-valued field is cleaned
    (:data:`consent.field_policy.URL_FIELDS`): by
    :func:`collector.ingest.parsers.urls.url_text`, in every mode.

    The page URL was cleaned by :func:`receive` (every step needs its hostname) and the referrer is
    cleaned where it is classified (:func:`collector.ingest.parsers.referrers.classify`), both by
    the same functions. A property is URL-valued by its key
    (:data:`~consent.field_policy.URL_PROPERTIES`) or by its value (an http(s) URL under any key);
    one that does not clean is not kept.
    """
    props = hit.event.props
    if not props:
        return hit
    kept: dict[str, PropValue] = {}
    for key, value in props.items():
        if key not in URL_PROPERTIES and not urls.is_url(value):
            kept[key] = value
        elif isinstance(value, str):  # a number or a boolean under ``url`` is no URL: dropped
            try:
                kept[key] = urls.url_text(value)
            except ValueError:
                continue
    hit.event.props = kept or None
    return hit


def pseudonymize(hit: Hit, *, keys: KeyStore) -> Event:
    """Replace the raw identifiers the mode allows by keyed hashes; the rest is dropped here."""
    event, wire, rules = hit.event, hit.wire, hit.policy
    site = hit.site.id
    assert rules is not None, "pseudonymize runs after resolve_consent"
    if rules.visitor_id:
        if wire.cid is not None:
            client_key = keys.site_key(site, "client")
            event.visitor = hashing.client_visitor(client_key.key, site, wire.cid)
            event.visitor_kind = "client"
            event.key_epoch = client_key.epoch
        else:
            daily = keys.daily_keys(hit.received)
            ip, agent = hit.client.ip, hit.client.user_agent
            event.visitor = hashing.cookieless_visitor(daily.current.key, site, ip, agent)
            event.visitor_kind = "cookieless"
            event.key_epoch = daily.current.epoch
            if daily.previous is not None:
                prev = daily.previous
                event.previous_visitor = hashing.cookieless_visitor(prev.key, site, ip, agent)
                event.previous_key_epoch = prev.epoch
    if rules.user_id and wire.uid is not None:
        user_key = keys.site_key(site, "user")
        event.user = hashing.user(user_key.key, site, wire.uid)
        event.user_epoch = user_key.epoch
    return event
