"""The enrichment step: what the page, the referrer and the user agent say, as the mode allows.

It calls the pure functions of :mod:`collector.ingest.parsers` (``urls``, ``referrers``,
``agents`` and ``geo``); the field policy of the hit's mode decides which of their results the
event keeps.
"""

from __future__ import annotations

from collector.ingest.hit import Hit
from collector.ingest.parsers import agents, referrers
from collector.ingest.parsers.geo import GeoLookup
from consent import Mode


def enrich(hit: Hit, *, geo: GeoLookup) -> Hit:
    event, wire, policy, site = hit.event, hit.wire, hit.policy, hit.site
    assert policy is not None, "enrich runs after the consent steps"
    if policy.campaign:
        page = hit.page
        event.query = page.query
        event.utm_source = page.utm.get("utm_source")
        event.utm_medium = page.utm.get("utm_medium")
        event.utm_campaign = page.utm.get("utm_campaign")
        event.utm_term = page.utm.get("utm_term")
        event.utm_content = page.utm.get("utm_content")
    if policy.referrer:
        ref = referrers.classify(wire.referrer, own_hostnames=site.hostnames)
        event.source = ref.source
        event.referrer_domain = ref.domain
        # The full referring page is visitor-level detail: only with consent. Without it the
        # source and domain are enough for audience measurement (CNIL: anonymised referrer).
        event.referrer = ref.url if policy.mode is Mode.GRANTED else None
    if policy.device:
        agent = agents.parse(hit.client.user_agent)
        event.browser, event.browser_version = agent.browser, agent.browser_version
        event.os, event.os_version = agent.os, agent.os_version
        event.device = agent.device
        event.screen = agents.screen_class(wire.screen) if "screen" in policy.fields else None
    if policy.country:
        event.country = geo.country(hit.client.ip)
    return hit
