"""Each consent mode end to end: the same hit, sent in each mode, stored column by column."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.consent.tc_encoder import encode
from tests.support import Clock, LiveServer, browser_client

PAGE = (
    "https://www.example.com/shop/jane.doe@mail.com/12345678"
    "?utm_source=news&utm_medium=email&utm_campaign=spring&secret=1#fragment"
)
EVERYTHING = {
    "site": "example",
    "url": PAGE,
    "referrer": "https://www.google.com/search?q=private+words",
    "cid": "client-abc",
    "uid": "user-1",
    "props": {"plan": "pro", "url": "https://downloads.example.org/file.pdf"},
    "revenue": {"amount": "12.50", "currency": "EUR"},
    "screen": 1280,
    "engaged_ms": 1500,
}
DAY = "2026-03-10"

# What every stored row of this hit has in common, whatever the mode.
COMMON = {
    "site": "example",
    "hostname": "www.example.com",
    "path": "/shop/[email]/[number]",
    "country": None,  # no geo database configured
}
NOTHING_ELSE = {
    "visitor": None,
    "visitor_kind": None,
    "key_epoch": None,
    "user": None,
    "user_epoch": None,
    "visit": None,
    "query": None,
    "referrer": None,
    "referrer_domain": None,
    "source": None,
    "utm_source": None,
    "utm_medium": None,
    "utm_campaign": None,
    "utm_term": None,
    "utm_content": None,
    "browser": None,
    "browser_version": None,
    "os": None,
    "os_version": None,
    "device": None,
    "screen": None,
    "props": None,
    "revenue_amount": None,
    "revenue_currency": None,
    "engaged_ms": None,
}
DEVICE = {
    "browser": "Chrome",
    "browser_version": "126",
    "os": "Linux",
    "os_version": None,
    "device": "desktop",
    "screen": "laptop",
}


def _post(server: LiveServer, body: dict[str, Any], **headers: str) -> None:
    with browser_client(server.url, headers=headers) as client:
        response = client.post("/api/hit", json=body)
    assert response.status_code == 202, response.text


def _only_row(server: LiveServer) -> dict[str, Any]:
    (row,) = server.events()
    row.pop("id")
    assert row.pop("ts") == int(datetime(2026, 3, 10, 12, tzinfo=UTC).timestamp() * 1000)
    for column in ("visitor", "user"):
        if row[column] is not None:
            assert len(row[column]) == 16
            row[column] = "16 bytes"
    return row


def test_granted_keeps_everything_pseudonymized(
    serve: Callable[..., LiveServer], clock: Clock
) -> None:
    server = serve(clock=clock)
    _post(server, {**EVERYTHING, "name": "purchase", "mode": "granted"})
    assert _only_row(server) == {
        **COMMON,
        **DEVICE,
        "name": "purchase",
        "mode": "granted",
        "reasons": "claim:granted",
        "visitor": "16 bytes",
        "visitor_kind": "client",
        "key_epoch": 1,
        "user": "16 bytes",
        "user_epoch": 1,
        "visit": 1,
        "query": "utm_campaign=spring&utm_medium=email&utm_source=news",
        "referrer": "https://www.google.com/search",
        "referrer_domain": "google.com",
        "source": "Google",
        "utm_source": "news",
        "utm_medium": "email",
        "utm_campaign": "spring",
        "utm_term": None,
        "utm_content": None,
        "props": EVERYTHING["props"],
        "revenue_amount": "12.50",
        "revenue_currency": "EUR",
        "engaged_ms": 1500,
    }


def test_exempt_keeps_only_the_allowlist(serve: Callable[..., LiveServer], clock: Clock) -> None:
    server = serve(clock=clock)
    _post(server, {**EVERYTHING, "mode": "exempt"})
    assert _only_row(server) == {
        **COMMON,
        **NOTHING_ELSE,
        **DEVICE,
        "name": "pageview",
        "mode": "exempt",
        "reasons": "claim:exempt",
        "visitor": "16 bytes",
        "visitor_kind": "client",
        "key_epoch": 1,
        "visit": 1,
        "referrer_domain": "google.com",
        "source": "Google",
        "props": {"url": "https://downloads.example.org/file.pdf"},
        "engaged_ms": 1500,
    }


def test_exempt_drops_events_outside_the_allowlist_and_counts_them(
    serve: Callable[..., LiveServer], clock: Clock
) -> None:
    server = serve(clock=clock)
    _post(server, {**EVERYTHING, "name": "purchase", "mode": "exempt"})
    assert server.events() == []
    assert server.dropped_hits() == {(DAY, "event_not_allowed"): 1}


def test_denied_keeps_no_identifier(serve: Callable[..., LiveServer], clock: Clock) -> None:
    server = serve(clock=clock)
    _post(server, {**EVERYTHING, "name": "purchase", "mode": "denied"})
    assert _only_row(server) == {
        **COMMON,
        **NOTHING_ELSE,
        "name": "purchase",
        "mode": "denied",
        "reasons": "claim:denied",
    }
    assert server.visits() == []


def test_optout_leaves_no_row_only_the_daily_counter(
    serve: Callable[..., LiveServer], clock: Clock
) -> None:
    server = serve(clock=clock)
    _post(server, {**EVERYTHING, "mode": "optout"})
    _post(server, {**EVERYTHING, "mode": "optout"})
    assert server.events() == []
    assert server.visits() == []
    assert server.dropped_hits() == {(DAY, "optout"): 2}


def test_granted_claim_with_a_refusing_tc_string_is_stored_as_exempt(
    serve: Callable[..., LiveServer], clock: Clock
) -> None:
    server = serve(clock=clock)
    refusing = encode(purposes_consent={1}, created=clock())  # purpose 1 only: no measurement
    _post(server, {**EVERYTHING, "mode": "granted", "tcf": refusing})
    row = _only_row(server)
    assert (row["mode"], row["reasons"]) == ("exempt", "claim:granted tcf:measurement-refused")
    assert (row["user"], row["revenue_amount"], row["query"]) == (None, None, None)


def test_consenting_tc_string_without_a_claim_is_granted(
    serve: Callable[..., LiveServer], clock: Clock
) -> None:
    server = serve(clock=clock)
    consenting = encode(purposes_consent={1, 8, 9}, created=clock())
    _post(server, {**EVERYTHING, "tcf": consenting})
    row = _only_row(server)
    assert (row["mode"], row["reasons"], row["user"]) == ("granted", "tcf:granted", "16 bytes")


def test_consent_mode_denied_analytics_storage_lowers_a_granted_claim(
    serve: Callable[..., LiveServer], clock: Clock
) -> None:
    server = serve(clock=clock)
    gcm = {"analytics_storage": "denied", "ad_storage": "granted"}
    _post(server, {**EVERYTHING, "mode": "granted", "gcm": gcm})
    row = _only_row(server)
    assert (row["mode"], row["reasons"]) == ("exempt", "claim:granted gcm:denied")


@pytest.mark.parametrize(
    ("honour_gpc", "stored_modes"), [(True, []), (False, ["granted"])], ids=["honoured", "ignored"]
)
def test_gpc_makes_the_visitor_opt_out_where_the_site_honours_it(
    serve: Callable[..., LiveServer], clock: Clock, honour_gpc: bool, stored_modes: list[str]
) -> None:
    server = serve(clock=clock, consent={"example": {"honour-gpc": honour_gpc}})
    _post(server, {**EVERYTHING, "mode": "granted"}, **{"sec-gpc": "1"})
    assert [row["mode"] for row in server.events()] == stored_modes
    assert server.dropped_hits() == ({(DAY, "optout"): 1} if honour_gpc else {})


def test_without_the_exemption_an_unconsented_hit_is_denied(
    serve: Callable[..., LiveServer], clock: Clock
) -> None:
    server = serve(clock=clock, consent={"example": {"exemption": False}})
    _post(server, {**EVERYTHING})
    row = _only_row(server)
    assert (row["mode"], row["reasons"], row["visitor"]) == (
        "denied",
        "no-signal site:exemption-off",
        None,
    )


def test_noscript_pixel_uses_the_sites_no_signal_mode(
    serve: Callable[..., LiveServer], clock: Clock
) -> None:
    server = serve(clock=clock)
    with browser_client(server.url) as client:
        response = client.get(
            "/p.gif",
            params={"site": "example"},
            headers={"referer": "https://example.com/noscript"},
        )
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/gif"
    row = _only_row(server)
    assert (row["mode"], row["reasons"], row["path"]) == ("exempt", "no-signal", "/noscript")
    assert (row["visitor_kind"], row["key_epoch"]) == ("cookieless", 20260310)


def test_bots_are_counted_not_stored(serve: Callable[..., LiveServer], clock: Clock) -> None:
    server = serve(clock=clock)
    hit = {"site": "example", "url": "https://example.com/"}
    with browser_client(server.url) as client:
        crawler = {"user-agent": "Mozilla/5.0 (compatible; Googlebot/2.1)"}
        assert client.post("/api/hit", json=hit, headers=crawler).status_code == 202
        prefetch = {"sec-purpose": "prefetch"}
        assert client.post("/api/hit", json=hit, headers=prefetch).status_code == 202
    assert server.events() == []
    assert server.dropped_hits() == {(DAY, "bot"): 2}
