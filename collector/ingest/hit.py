"""What a hit is on its way through ingest: the :class:`Hit` the steps pass along, what the
request says of its :class:`Client`, and the :class:`Dropped` outcome with its reason.

A :class:`Hit` holds the decoded request, its raw identifiers (IP address, client id, user id) and
the :class:`~collector.storage.rows.Event` being built; :func:`receive` starts one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Literal

import msgspec

from collector.config import Config, SiteConfig
from collector.errors import BadRequestError, ForbiddenError
from collector.ingest.parsers import urls
from collector.ingest.wire import BatchEventIn, HitIn
from collector.storage.rows import Event
from consent import FieldPolicy

#: A batch event's ``ts`` is clamped to [now − 24 h, now].
MAX_BACKDATE = timedelta(hours=24)

DropReason = Literal[
    "hostname", "bot", "rate_limited", "site_rate_limited", "optout", "event_not_allowed"
]
#: Reasons answered like an accepted hit (202), so the client learns nothing from the answer.
SILENT_REASONS: frozenset[str] = frozenset({"bot", "optout", "event_not_allowed"})


class Dropped(msgspec.Struct, frozen=True):
    """The hit is not stored, for ``reason``; ``retry_after`` for rate limits."""

    reason: DropReason
    retry_after: int = 0


class Client(msgspec.Struct, frozen=True, kw_only=True):
    """What the request says about its sender, besides the body."""

    ip: str
    user_agent: str
    origin: str | None = None
    #: Holds the site's ingest token: the per-client rate limit does not apply.
    trusted: bool = False
    headers: Mapping[str, tuple[str, ...]] = {}

    def header(self, name: str) -> tuple[str, ...]:
        return self.headers.get(name, ())


class Hit(msgspec.Struct, kw_only=True):
    site: SiteConfig
    wire: HitIn
    client: Client
    received: datetime
    event: Event
    #: The page URL, cleaned once (with the site's campaign parameters) for every step.
    page: urls.CleanUrl
    #: What the hit's consent mode keeps; set by :func:`~collector.ingest.steps.resolve_consent`.
    policy: FieldPolicy | None = None


Step = Callable[[Hit], "Hit | Dropped"]


def receive(config: Config, wire: HitIn, client: Client, now: datetime) -> Hit:
    """Start a hit: find its site (403 when unknown) and its time; check its URL is absolute."""
    site = config.site(wire.site)
    if site is None:
        raise ForbiddenError(f"unknown site {wire.site!r}", field="$.site")
    try:
        page = urls.clean_url(wire.url, keep_params=site.consent.campaign_params)
    except ValueError as exc:
        raise BadRequestError(
            f"url must be an absolute http(s) URL: {exc}", field="$.url"
        ) from None
    now_ms = int(now.timestamp() * 1000)
    ts = now_ms
    if isinstance(wire, BatchEventIn) and wire.ts is not None:
        ts = min(max(wire.ts, now_ms - int(MAX_BACKDATE.total_seconds() * 1000)), now_ms)
    event = Event(
        site=site.id,
        ts=ts,
        name=wire.name,
        mode="",
        reasons="",
        hostname=page.hostname,
        path=page.path,
    )
    return Hit(site=site, wire=wire, client=client, received=now, event=event, page=page)
