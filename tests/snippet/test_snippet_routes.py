"""``/m.js`` and the opt-out page over HTTP, on a real uvicorn server."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

import sdk_snippet
from tests.support import LiveServer


@pytest.fixture
def client(collector: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=collector.url, follow_redirects=False) as client:
        yield client


def test_script_is_served_with_long_cache_etag_cors_and_corp(client: httpx.Client) -> None:
    response = client.get("/m.js")
    assert response.status_code == 200
    assert response.content == sdk_snippet.script_bytes()
    assert response.headers["content-type"].startswith("application/javascript")
    assert response.headers["etag"] == sdk_snippet.etag()
    assert "max-age=604800" in response.headers["cache-control"]
    assert response.headers["access-control-allow-origin"] == "*"
    assert response.headers["cross-origin-resource-policy"] == "cross-origin"


@pytest.mark.parametrize(
    "if_none_match",
    [sdk_snippet.etag(), "W/" + sdk_snippet.etag(), f'"other", {sdk_snippet.etag()}', "*"],
    ids=["exact", "weak", "list", "star"],
)
def test_script_answers_304_when_the_client_holds_it(
    client: httpx.Client, if_none_match: str
) -> None:
    response = client.get("/m.js", headers={"If-None-Match": if_none_match})
    assert response.status_code == 304
    assert response.content == b""
    assert response.headers["etag"] == sdk_snippet.etag()


def test_script_is_sent_again_for_another_version(client: httpx.Client) -> None:
    response = client.get("/m.js", headers={"If-None-Match": '"an-older-build"'})
    assert response.status_code == 200
    assert response.content == sdk_snippet.script_bytes()


def test_optout_page_has_a_strict_csp_framable_by_the_site_only(
    client: httpx.Client, collector: LiveServer
) -> None:
    response = client.get("/optout", params={"site": "example"})
    assert response.status_code == 200
    csp = response.headers["content-security-policy"]
    directives = dict(part.strip().split(" ", 1) for part in csp.split(";"))
    assert directives["default-src"] == "'none'"
    assert directives["script-src"] == "'self'"
    assert "unsafe-inline" not in csp
    site = collector.config.site("example")
    assert site is not None
    ancestors = " ".join(f"{name}:*" for name in site.hostnames)
    assert directives["frame-ancestors"] == f"'self' {ancestors}"
    assert "*.example.com:*" in ancestors
    assert '<script src="/optout.js"></script>' in response.text
    # No inline script at all: the only <script> element has a src.
    assert response.text.count("<script") == 1


def test_optout_script_is_served_as_javascript(client: httpx.Client) -> None:
    response = client.get("/optout.js")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/javascript")
    assert "postMessage" in response.text


def test_optout_page_of_an_unknown_site_is_404(client: httpx.Client) -> None:
    assert client.get("/optout", params={"site": "nope"}).status_code == 404
    assert client.get("/optout").status_code == 404


@pytest.mark.parametrize(
    ("choice", "marker"), [("optout", "#mesure-optout"), ("optin", "#mesure-optin")]
)
def test_choice_redirects_back_to_the_site_with_the_marker(
    client: httpx.Client, choice: str, marker: str
) -> None:
    back = "https://www.example.com/privacy?lang=fr"
    response = client.get(
        "/optout/choose", params={"site": "example", "choice": choice, "return": back}
    )
    assert response.status_code == 303
    assert response.headers["location"] == back + marker


@pytest.mark.parametrize(
    "back",
    ["https://evil.test/", "javascript:alert(1)", "https://example.com.evil.test/", "//evil.test/"],
    ids=["other-host", "javascript", "suffix-trick", "scheme-relative"],
)
def test_choice_never_redirects_outside_the_site(client: httpx.Client, back: str) -> None:
    response = client.get(
        "/optout/choose", params={"site": "example", "choice": "optout", "return": back}
    )
    assert response.status_code == 303
    assert response.headers["location"] == "https://example.com/#mesure-optout"


def test_choice_falls_back_to_the_referring_page_of_the_site(client: httpx.Client) -> None:
    response = client.get(
        "/optout/choose",
        params={"site": "example", "choice": "optout"},
        headers={"Referer": "https://blog.example.com/about"},
    )
    assert response.headers["location"] == "https://blog.example.com/about#mesure-optout"


def test_optout_page_links_carry_the_return_url(client: httpx.Client) -> None:
    back = "https://example.com/legal"
    page = client.get("/optout", params={"site": "example", "return": back}).text
    start = page.index('href="/optout/choose?') + len('href="')
    link = page[start : page.index('"', start)].replace("&amp;", "&")
    query = parse_qs(urlsplit(link).query)
    assert query == {"site": ["example"], "choice": ["optout"], "return": [back]}


def test_unknown_choice_is_404(client: httpx.Client) -> None:
    response = client.get("/optout/choose", params={"site": "example", "choice": "maybe"})
    assert response.status_code == 404
