"""The ingest pipeline: the named steps of :mod:`collector.ingest.steps` in order, with the state
one collector process shares between hits (keys, rate limits, geo, the TC string cache).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from functools import lru_cache, partial

from collector.config import Config, SiteConfig
from collector.ingest.enrich import enrich
from collector.ingest.hit import Dropped, Hit, Step
from collector.ingest.parsers.geo import GeoLookup
from collector.ingest.ratelimit import RateLimiter, SharedCounters
from collector.ingest.steps import (
    apply_policy,
    check_hostname,
    clean_urls,
    filter_bots,
    limit_rate,
    pseudonymize,
    resolve_consent,
)
from collector.keys import KeyStore
from collector.storage.rows import DropCount, Event
from consent import tcf


class Pipeline:
    """The steps of one collector process, with their shared state (keys, limits, geo)."""

    def __init__(
        self,
        config: Config,
        keys: KeyStore,
        clock: Callable[[], datetime],
        geo: GeoLookup,
        counters: SharedCounters | None = None,
    ) -> None:
        """``counters``: the rate-limit state shared with the collector's other worker
        processes (``mesure serve --workers N``); a process of its own by default."""
        self.keys = keys
        server = config.server
        counters = counters or SharedCounters()
        self.steps: list[tuple[str, Step]] = [
            ("check_hostname", check_hostname),
            ("filter_bots", filter_bots),
            (
                "limit_rate",
                partial(
                    limit_rate,
                    clients=RateLimiter(server.client_rate_per_minute, clock, counters.clients),
                    sites=RateLimiter(server.site_rate_per_minute, clock, counters.sites),
                    salt=counters.salt,
                ),
            ),
            ("resolve_consent", partial(resolve_consent, decode_tc=_cached_tc_decoder())),
            ("apply_policy", apply_policy),
            ("clean_urls", clean_urls),
            ("enrich", partial(enrich, geo=geo)),
        ]

    def run(self, hit: Hit) -> Event | Dropped:
        for _name, step in self.steps:
            outcome = step(hit)
            if isinstance(outcome, Dropped):
                return outcome
            hit = outcome
        return pseudonymize(hit, keys=self.keys)

    def drop_count(self, site: SiteConfig, reason: str, now: datetime) -> DropCount:
        day = now.astimezone(site.zone).date().isoformat()
        return DropCount(site=site.id, day=day, reason=reason)


#: TC strings whose decoding is kept, per process. A visitor's CMP sends the same string with
#: every hit until the choice changes, and decoding it was the largest single cost of a
#: TCF hit in the ingest benchmark's profile (about a quarter of the pipeline). Only strings up
#: to ``TC_CACHE_MAX_CHARS`` are kept, so the cache holds at most a few megabytes of vendor sets.
TC_CACHE_SIZE = 256
TC_CACHE_MAX_CHARS = 1024


def _cached_tc_decoder() -> Callable[[str], tcf.TCString]:
    """:func:`consent.tcf.decode` with a bounded cache (malformed strings are not cached)."""
    cached = lru_cache(maxsize=TC_CACHE_SIZE)(tcf.decode)

    def decode(tc_string: str) -> tcf.TCString:
        if len(tc_string) > TC_CACHE_MAX_CHARS:
            return tcf.decode(tc_string)
        return cached(tc_string)

    return decode
