"""What the ingest pipeline hands to storage: pseudonymized events and drop counts.

These Structs carry no raw identifier by construction: there is no field for an IP address, a
client id or a user id, only their keyed hashes.
"""

from __future__ import annotations

from typing import Literal

import msgspec

VisitorKind = Literal["client", "cookieless"]
PropValue = str | int | float | bool


class Event(msgspec.Struct, kw_only=True):
    """One hit after consent, pseudonymization and enrichment; a row of the ``events`` table."""

    site: str
    ts: int  # epoch milliseconds, UTC
    name: str
    mode: str
    reasons: str  # space-separated reason codes of the consent resolution
    hostname: str
    path: str
    visitor: bytes | None = None
    visitor_kind: VisitorKind | None = None
    key_epoch: int | None = None
    #: Hash of the same cookieless visitor under the previous daily key: a visit still active
    #: under it keeps that identifier, so a visit crossing midnight is not split. Never stored.
    previous_visitor: bytes | None = None
    previous_key_epoch: int | None = None
    user: bytes | None = None
    user_epoch: int | None = None
    query: str | None = None
    referrer: str | None = None
    referrer_domain: str | None = None
    source: str | None = None
    utm_source: str | None = None
    utm_medium: str | None = None
    utm_campaign: str | None = None
    utm_term: str | None = None
    utm_content: str | None = None
    browser: str | None = None
    browser_version: str | None = None
    os: str | None = None
    os_version: str | None = None
    device: str | None = None
    screen: str | None = None
    country: str | None = None
    props: dict[str, PropValue] | None = None
    revenue_amount: str | None = None
    revenue_currency: str | None = None
    engaged_ms: int | None = None


class DropCount(msgspec.Struct, frozen=True):
    """Hits of ``site`` on local ``day`` (``YYYY-MM-DD``) not stored, for ``reason``."""

    site: str
    day: str
    reason: str
    hits: int = 1
