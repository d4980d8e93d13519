"""``client-ip-header``: which address a hit is attributed to behind a reverse proxy.

The rate limit and the cookieless visitor hash both key on it, so a client must not be able to
choose it (only the entry the proxy appended counts) and one client must be one key however the
proxy spells its address. tests/deploy runs the same through real nginx and Caddy.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from collector.web.routes.ingest import forwarded_address
from tests.support import Clock, LiveServer, browser_client

HIT = {"site": "example", "url": "https://example.com/", "mode": "exempt"}


def _statuses(server: LiveServer, header_sets: list[list[tuple[str, str]]]) -> list[int]:
    with browser_client(server.url) as client:
        return [client.post("/api/hit", json=HIT, headers=h).status_code for h in header_sets]


def test_a_repeated_header_counts_by_its_last_line(
    serve: Callable[..., LiveServer], clock: Clock
) -> None:
    # A proxy that adds its own line (HAProxy's `option forwardfor`) keeps the client's before it.
    server = serve(clock=clock, client_rate_per_minute=1, client_ip_header="x-forwarded-for")
    forged_then_proxy = [
        [("x-forwarded-for", f"192.0.2.{n}"), ("x-forwarded-for", "198.51.100.7")] for n in (1, 2)
    ]
    alone = [("x-forwarded-for", "192.0.2.1")]
    # The second hit is the same client (198.51.100.7) whatever it forged; 192.0.2.1 never spent
    # anything, so its own first hit passes.
    assert _statuses(server, [*forged_then_proxy, alone]) == [202, 429, 202]


def test_one_client_is_one_visitor_however_the_proxy_spells_its_address(
    serve: Callable[..., LiveServer], clock: Clock
) -> None:
    server = serve(clock=clock, client_ip_header="x-forwarded-for")
    spellings = [
        "198.51.100.7",
        "198.51.100.7:4711",  # a proxy that adds the client's port
        "10.0.0.1, [::ffff:198.51.100.7]:443",  # a dual-stack proxy, IPv4-mapped
        "2001:DB8:0::1",
        "[2001:db8::1]:8443",
    ]
    statuses = _statuses(server, [[("x-forwarded-for", value)] for value in spellings])
    assert statuses == [202] * len(spellings)
    rows = server.events()
    assert {row["visitor_kind"] for row in rows} == {"cookieless"}
    visitors = [row["visitor"] for row in rows]
    assert visitors[0] == visitors[1] == visitors[2] != visitors[3] == visitors[4]


def test_a_port_does_not_make_a_new_client_for_the_rate_limit(
    serve: Callable[..., LiveServer], clock: Clock
) -> None:
    server = serve(clock=clock, client_rate_per_minute=1, client_ip_header="x-forwarded-for")
    ports = [[("x-forwarded-for", f"198.51.100.7:{port}")] for port in (4711, 4712)]
    assert _statuses(server, ports) == [202, 429]


def test_an_entry_that_is_no_address_counts_as_the_proxys_own(
    serve: Callable[..., LiveServer], clock: Clock
) -> None:
    # The proxy (here the test itself, on 127.0.0.1) sent something unusable: its clients then
    # share its limit, limited sooner rather than each choosing a key.
    server = serve(clock=clock, client_rate_per_minute=1, client_ip_header="x-real-ip")
    assert _statuses(server, [[("x-real-ip", "unknown")], []]) == [202, 429]


@pytest.mark.parametrize(
    ("value", "address"),
    [
        ("203.0.113.9", "203.0.113.9"),
        (" 10.0.0.1 , 203.0.113.9 ", "203.0.113.9"),
        ("203.0.113.9:65535", "203.0.113.9"),
        ("::FFFF:203.0.113.9", "203.0.113.9"),
        ("2001:0db8:0000::0001", "2001:db8::1"),
        ("[2001:db8::1]", "2001:db8::1"),
        ("[2001:db8::1]:443", "2001:db8::1"),
        ("unknown", None),
        ("", None),
        ("203.0.113.9, ", None),
        ("203.0.113.9:http", None),
        ("[2001:db8::1]443", None),
        ("[2001:db8::1", None),
        ("203.0.113.9\x00", None),
        ("203.0.113", None),
    ],
)
def test_forwarded_address_spelling(value: str, address: str | None) -> None:
    assert forwarded_address(value) == address
