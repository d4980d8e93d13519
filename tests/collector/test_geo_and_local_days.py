"""Country from the owner's local MaxMind file, and daily counters in the site's time zone."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.collector.mmdb_writer import write_country_db
from tests.support import Clock, LiveServer, browser_client

HIT = {"site": "example", "url": "https://example.com/"}


def _send(server: LiveServer, ip: str, **fields: str) -> None:
    with browser_client(server.url, headers={"x-forwarded-for": f"10.0.0.1, {ip}"}) as client:
        assert client.post("/api/hit", json={**HIT, **fields}).status_code == 202


def test_country_comes_from_the_local_database_in_every_stored_mode(
    serve: Callable[..., LiveServer], clock: Clock, tmp_path: Path
) -> None:
    database = write_country_db(tmp_path / "countries.mmdb", {"203.0.113.0/24": "FR"})
    server = serve(clock=clock, geo_database=str(database), client_ip_header="x-forwarded-for")
    _send(server, "203.0.113.9", mode="granted")
    _send(server, "203.0.113.9", mode="denied")
    _send(server, "198.51.100.1", mode="exempt")
    assert [(row["mode"], row["country"]) for row in server.events()] == [
        ("granted", "FR"),
        ("denied", "FR"),
        ("exempt", None),
    ]


def test_site_without_geolocation_keeps_no_country(
    serve: Callable[..., LiveServer], clock: Clock, tmp_path: Path
) -> None:
    database = write_country_db(tmp_path / "countries.mmdb", {"203.0.113.0/24": "FR"})
    server = serve(
        clock=clock,
        geo_database=str(database),
        client_ip_header="x-forwarded-for",
        consent={"example": {"geo": "none"}},
    )
    _send(server, "203.0.113.9", mode="granted")
    assert [row["country"] for row in server.events()] == [None]


def test_a_missing_geo_database_stops_the_start(
    serve: Callable[..., LiveServer], tmp_path: Path
) -> None:
    with pytest.raises(RuntimeError, match="failed to start"):
        serve(geo_database=str(tmp_path / "absent.mmdb"))


def test_daily_counters_use_the_sites_time_zone(
    serve: Callable[..., LiveServer], clock: Clock
) -> None:
    server = serve(clock=clock, site_options={"example": {"timezone": "Pacific/Auckland"}})
    _send(server, "192.0.2.1", mode="optout")  # 12:00 UTC on the 10th is the 11th in Auckland
    assert server.dropped_hits() == {("2026-03-11", "optout"): 1}
