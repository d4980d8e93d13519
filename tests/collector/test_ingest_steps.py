"""Each ingest step alone: ``(Hit) -> Hit | Dropped``, on hits built by ``receive``."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import pytest

from collector.errors import BadRequestError, ForbiddenError
from collector.ingest.hit import Client, Dropped, Hit, receive
from collector.ingest.ratelimit import RateLimiter
from collector.ingest.steps import apply_policy, check_hostname, limit_rate, resolve_consent
from collector.ingest.wire import BatchEventIn, HitIn
from tests.support import BROWSER_UA, Clock, build_config

NOW = datetime(2026, 3, 10, 12, tzinfo=UTC)
CONFIG = build_config(Path("/nonexistent"), {"example": ["example.com", "*.example.com"]})


def _hit(origin: str | None = None, trusted: bool = False, **fields: Any) -> Hit:
    wire = msgspec.convert({"site": "example", "url": "https://example.com/", **fields}, HitIn)
    client = Client(ip="192.0.2.1", user_agent=BROWSER_UA, origin=origin, trusted=trusted)
    return receive(CONFIG, wire, client, NOW)


@pytest.mark.parametrize(
    ("url", "origin", "allowed"),
    [
        ("https://example.com/", None, True),
        ("https://shop.example.com/", "https://www.example.com", True),
        ("https://EXAMPLE.com./", None, True),
        ("https://example.com.evil.test/", None, False),
        ("https://notexample.com/", None, False),
        ("https://example.com/", "https://evil.test", False),
        ("https://example.com/", "null", True),
    ],
    ids=[
        "exact",
        "wildcard",
        "normalized",
        "suffix-trick",
        "prefix-trick",
        "origin",
        "null-origin",
    ],
)
def test_check_hostname(url: str, origin: str | None, allowed: bool) -> None:
    hit = _hit(origin=origin, url=url)
    assert (check_hostname(hit) is hit) is allowed


def test_receive_refuses_unknown_sites_and_relative_urls() -> None:
    with pytest.raises(ForbiddenError):
        _hit(site="other")
    with pytest.raises(BadRequestError) as caught:
        _hit(url="ftp://example.com/file")
    assert caught.value.field == "$.url"


def test_receive_clamps_batch_timestamps_to_the_last_day() -> None:
    now_ms = int(NOW.timestamp() * 1000)
    for ts, expected in [(0, now_ms - 86_400_000), (now_ms + 1, now_ms), (now_ms - 5, now_ms - 5)]:
        wire = BatchEventIn(site="example", url="https://example.com/", ts=ts)
        client = Client(ip="192.0.2.1", user_agent=BROWSER_UA)
        assert receive(CONFIG, wire, client, NOW).event.ts == expected


def test_limit_rate_spares_token_holders_but_not_the_site_limit() -> None:
    clock = Clock(NOW)
    clients, sites = RateLimiter(1, clock), RateLimiter(3, clock)

    def step(hit: Hit) -> Hit | Dropped:
        return limit_rate(hit, clients=clients, sites=sites, salt=b"s" * 32)

    assert isinstance(step(_hit()), Hit)
    assert step(_hit()) == Dropped("rate_limited", retry_after=60)
    assert isinstance(step(_hit(trusted=True)), Hit)
    assert isinstance(step(_hit(trusted=True)), Hit)
    assert step(_hit(trusted=True)) == Dropped("site_rate_limited", retry_after=60)


def test_resolve_consent_then_apply_policy_in_exempt() -> None:
    hit = _hit(
        mode="exempt",
        cid="abc",
        uid="user",
        props={"url": "https://x.test/", "plan": "pro"},
        revenue={"amount": 3, "currency": "EUR"},
    )
    resolved = resolve_consent(hit)
    assert isinstance(resolved, Hit)
    kept = apply_policy(resolved)
    assert isinstance(kept, Hit)
    assert kept.event.props == {"url": "https://x.test/"}
    assert (kept.event.revenue_amount, kept.wire.uid, kept.wire.cid) == (None, None, "abc")
    purchase = resolve_consent(_hit(mode="exempt", name="buy"))
    assert isinstance(purchase, Hit)
    assert apply_policy(purchase) == Dropped("event_not_allowed")


def test_resolve_consent_drops_optout() -> None:
    assert resolve_consent(_hit(mode="optout")) == Dropped("optout")
