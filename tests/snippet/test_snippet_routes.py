"""``/m.js`` and the opt-out page over HTTP, on a real uvicorn server."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator

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
    # The form posts here, and its redirect goes back to the site only.
    assert directives["form-action"] == f"'self' {ancestors}"
    assert "*.example.com:*" in ancestors
    assert re.search(r'<script src="/optout\.js\?v=[0-9a-f]{12}"></script>', response.text)
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


def _choose(
    client: httpx.Client, headers: dict[str, str] | None = None, **fields: str
) -> httpx.Response:
    """A post of the opt-out page's form, as a browser sends it from the page itself."""
    sent = {"sec-fetch-site": "same-origin", **(headers or {})}
    return client.post("/optout/choose", data={"site": "example", **fields}, headers=sent)


@pytest.mark.parametrize(
    ("choice", "secret", "marker"),
    [
        ("optout", "", "#mesure-optout"),
        ("optout", "1-2-3-4", "#mesure-optout"),
        (
            "optin",
            "3141592653-589793238-4626433832-795028841",
            "#mesure-3141592653-589793238-4626433832-795028841",
        ),
    ],
    ids=["optout", "optout-with-secret", "optin"],
)
def test_choice_redirects_back_to_the_site_with_the_marker(
    client: httpx.Client, choice: str, secret: str, marker: str
) -> None:
    back = "https://www.example.com/privacy?lang=fr"
    response = _choose(client, choice=choice, back=back, secret=secret)
    assert response.status_code == 303
    assert response.headers["location"] == back + marker


@pytest.mark.parametrize(
    "secret",
    [
        "",
        "optin",
        "api",
        "page",
        "undefined",
        "1-2-3",
        "1-2-3-4-5",
        "1-2-3-4#x",
        "12345678901-1-1-1",
    ],
)
def test_opting_in_without_the_snippets_secret_goes_back_without_a_marker(
    client: httpx.Client, secret: str
) -> None:
    back = "https://example.com/privacy"
    response = _choose(client, choice="optin", back=back + "#top", secret=secret)
    assert response.status_code == 303
    assert response.headers["location"] == back


def test_choice_is_a_post_a_get_changes_nothing(client: httpx.Client) -> None:
    params = {"site": "example", "choice": "optin", "return": "https://example.com/"}
    response = client.get("/optout/choose", params=params)
    assert response.status_code == 405
    assert "location" not in response.headers


@pytest.mark.parametrize(
    "headers",
    [
        {"sec-fetch-site": "cross-site"},
        # The site itself, or any other subdomain of it, is not the opt-out page either.
        {"sec-fetch-site": "same-site"},
        {"sec-fetch-site": "none"},
        {"sec-fetch-site": "cross-site", "origin": "REQUEST_ORIGIN"},
    ],
    ids=["cross-site", "same-site", "typed", "fetch-site-wins"],
)
def test_choice_posted_from_elsewhere_is_refused(
    client: httpx.Client, headers: dict[str, str]
) -> None:
    if headers.get("origin") == "REQUEST_ORIGIN":
        headers = {**headers, "origin": str(client.base_url).rstrip("/")}
    response = _choose(client, headers, choice="optout", back="https://example.com/")
    assert response.status_code == 403
    assert response.json()["field"] == "origin"


@pytest.mark.parametrize(
    ("origin", "status"),
    [("https://evil.test", 403), ("null", 403), ("REQUEST_ORIGIN", 303)],
    ids=["other", "null", "own"],
)
def test_without_sec_fetch_site_the_origin_decides(
    client: httpx.Client, origin: str, status: int
) -> None:
    if origin == "REQUEST_ORIGIN":
        origin = str(client.base_url).rstrip("/")
    response = client.post(
        "/optout/choose",
        data={"site": "example", "choice": "optout"},
        headers={"origin": origin},
    )
    assert response.status_code == status


@pytest.mark.parametrize(
    "back",
    ["https://evil.test/", "javascript:alert(1)", "https://example.com.evil.test/", "//evil.test/"],
    ids=["other-host", "javascript", "suffix-trick", "scheme-relative"],
)
def test_choice_never_redirects_outside_the_site(client: httpx.Client, back: str) -> None:
    response = _choose(client, choice="optout", back=back)
    assert response.status_code == 303
    assert response.headers["location"] == "https://example.com/#mesure-optout"


def _form_fields(page: str) -> dict[str, str]:
    return {
        name: html.unescape(value)
        for name, value in re.findall(
            r'<input type="hidden" name="(\w+)"[^>]* value="([^"]*)"', page
        )
    }


def test_optout_page_form_carries_the_return_url(client: httpx.Client) -> None:
    back = "https://example.com/legal?a=1&b=2"
    page = client.get("/optout", params={"site": "example", "return": back}).text
    assert '<form method="post" action="/optout/choose">' in page
    # The secret is the script's to fill in, from the fragment that the server never sees.
    assert _form_fields(page) == {"site": "example", "back": back, "secret": ""}


def test_optout_page_falls_back_to_the_referring_page_of_the_site(client: httpx.Client) -> None:
    page = client.get(
        "/optout",
        params={"site": "example"},
        headers={"Referer": "https://blog.example.com/about"},
    ).text
    assert _form_fields(page)["back"] == "https://blog.example.com/about"


def test_unknown_choice_is_404(client: httpx.Client) -> None:
    assert _choose(client, choice="maybe").status_code == 404
    assert _choose(client, site="nope", choice="optout").status_code == 404
