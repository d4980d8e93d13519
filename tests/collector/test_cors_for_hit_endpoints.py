"""CORS on ``/api/``: any configured hostname's origin may post; others get no CORS headers."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.support import LiveServer, browser_client

HIT = {"site": "example", "url": "https://shop.example.com/"}


@pytest.mark.parametrize(
    "origin", ["https://example.com", "https://shop.example.com", "http://localhost:8080"]
)
def test_allowed_origin_gets_cors_headers_on_preflight_and_post(
    serve: Callable[..., LiveServer], origin: str
) -> None:
    server = serve()
    with browser_client(server.url) as client:
        preflight = client.options(
            "/api/hit",
            headers={
                "origin": origin,
                "access-control-request-method": "POST",
                "access-control-request-headers": "content-type",
            },
        )
        url = origin + "/" if "example.com" in origin else "http://localhost/"
        post = client.post("/api/hit", json={**HIT, "url": url}, headers={"origin": origin})
        refused = client.post("/api/hit", json={**HIT, "screen": -1}, headers={"origin": origin})
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == origin
    assert "POST" in preflight.headers["access-control-allow-methods"]
    assert "content-type" in preflight.headers["access-control-allow-headers"].lower()
    assert post.status_code == 202
    assert post.headers["access-control-allow-origin"] == origin
    assert post.headers["vary"] == "Origin"
    # Errors carry the header too, so the page's script can read why it was refused.
    assert refused.status_code == 400
    assert refused.headers["access-control-allow-origin"] == origin


def test_foreign_origin_gets_no_cors_headers(serve: Callable[..., LiveServer]) -> None:
    server = serve()
    origin = "https://evil.test"
    with browser_client(server.url) as client:
        preflight = client.options(
            "/api/hit", headers={"origin": origin, "access-control-request-method": "POST"}
        )
        post = client.post("/api/hit", json=HIT, headers={"origin": origin})
    assert preflight.status_code == 403
    assert "access-control-allow-origin" not in preflight.headers
    assert post.status_code == 403
    assert "access-control-allow-origin" not in post.headers
    assert server.events() == []


def test_cors_is_limited_to_the_api(serve: Callable[..., LiveServer]) -> None:
    server = serve()
    with browser_client(server.url) as client:
        health = client.get("/healthz", headers={"origin": "https://example.com"})
    assert health.status_code == 200
    assert "access-control-allow-origin" not in health.headers
