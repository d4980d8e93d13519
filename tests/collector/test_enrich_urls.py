"""URL cleaning and personal-data masking (docs/design.md §5 invariant 4), and hostname
allowlists."""

from __future__ import annotations

import re
from urllib.parse import parse_qsl

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.ingest.parsers.urls import (
    CleanUrl,
    clean_url,
    host_allowed,
    is_url,
    mask_personal_data,
    url_text,
)

CAMPAIGN = ("utm_source", "utm_medium", "utm_campaign", "ref")

# (url, expected CleanUrl), with the default keep_params above.
CLEAN_CASES: list[tuple[str, str, CleanUrl]] = [
    (
        "plain",
        "https://example.com/pricing",
        CleanUrl("example.com", "/pricing", None, {}),
    ),
    ("empty-path", "https://example.com", CleanUrl("example.com", "/", None, {})),
    (
        "host-lowercased-path-case-kept",
        "HTTPS://WWW.Example.COM/About/Team",
        CleanUrl("www.example.com", "/About/Team", None, {}),
    ),
    ("default-port", "http://example.com:80/a", CleanUrl("example.com", "/a", None, {})),
    ("other-port", "https://example.com:8443/a", CleanUrl("example.com", "/a", None, {})),
    ("trailing-dot-host", "https://example.com./a", CleanUrl("example.com", "/a", None, {})),
    (
        "userinfo-dropped",
        "https://alice:secret@example.com/a",
        CleanUrl("example.com", "/a", None, {}),
    ),
    (
        "fragment-dropped",
        "https://example.com/a#section-2",
        CleanUrl("example.com", "/a", None, {}),
    ),
    (
        "fragment-with-email-dropped",
        "https://example.com/a#to=bob@example.org",
        CleanUrl("example.com", "/a", None, {}),
    ),
    (
        "query-stripped",
        "https://example.com/search?q=my+name&session=abc123&fbclid=IwAR0",
        CleanUrl("example.com", "/search", None, {}),
    ),
    (
        "utm-kept-and-extracted",
        "https://example.com/?utm_source=Newsletter&utm_medium=email&utm_campaign=spring%202026",
        CleanUrl(
            "example.com",
            "/",
            "utm_campaign=spring+2026&utm_medium=email&utm_source=Newsletter",
            {"utm_source": "Newsletter", "utm_medium": "email", "utm_campaign": "spring 2026"},
        ),
    ),
    (
        "utm-extracted-even-when-not-kept",
        "https://example.com/?utm_term=shoes&utm_content=banner&page=2",
        CleanUrl("example.com", "/", None, {"utm_term": "shoes", "utm_content": "banner"}),
    ),
    (
        "campaign-values-trimmed-and-masked",
        "https://example.com/?utm_source=%20list%20&utm_campaign=for+jane.doe%40mail.fr+0612345678",
        CleanUrl(
            "example.com",
            "/",
            "utm_campaign=for+%5Bemail%5D+%5Bnumber%5D&utm_source=list",
            {"utm_source": "list", "utm_campaign": "for [email] [number]"},
        ),
    ),
    (
        "campaign-value-capped",
        "https://example.com/?utm_source=" + "x" * 500,
        CleanUrl("example.com", "/", "utm_source=" + "x" * 200, {"utm_source": "x" * 200}),
    ),
    (
        "first-utm-wins-blank-ignored",
        "https://example.com/?utm_source=&utm_source=a&utm_source=b",
        CleanUrl("example.com", "/", "utm_source=a&utm_source=b", {"utm_source": "a"}),
    ),
    (
        "allowlisted-custom-param-uppercase-name",
        "https://example.com/?REF=producthunt&x=1",
        CleanUrl("example.com", "/", "ref=producthunt", {}),
    ),
    (
        "email-in-path",
        "https://example.com/unsubscribe/jane.doe@example.org/confirm",
        CleanUrl("example.com", "/unsubscribe/[email]/confirm", None, {}),
    ),
    (
        "percent-encoded-email",
        "https://example.com/u/jane.doe%40example.org",
        CleanUrl("example.com", "/u/[email]", None, {}),
    ),
    (
        "double-encoded-email",
        "https://example.com/u/jane%2540example.org",
        CleanUrl("example.com", "/u/[email]", None, {}),
    ),
    (
        "card-number-with-dashes",
        "https://example.com/pay/4111-1111-1111-1111",
        CleanUrl("example.com", "/pay/[number]", None, {}),
    ),
    (
        "phone-with-encoded-spaces",
        "https://example.com/call/06%2012%2034%2056%2078",
        CleanUrl("example.com", "/call/[number]", None, {}),
    ),
    (
        "phone-with-dots",
        "https://example.com/contact/06.12.34.56.78/",
        CleanUrl("example.com", "/contact/[number]/", None, {}),
    ),
    (
        "order-id-long-digits",
        "https://example.com/orders/123456/receipt",
        CleanUrl("example.com", "/orders/[number]/receipt", None, {}),
    ),
    (
        "short-digits-kept",
        "https://example.com/products/12345/page/2",
        CleanUrl("example.com", "/products/12345/page/2", None, {}),
    ),
    (
        "date-path-kept",
        "https://example.com/blog/2024/05/12/hello",
        CleanUrl("example.com", "/blog/2024/05/12/hello", None, {}),
    ),
    (
        "iso-date-slug-kept",
        "https://example.com/news/2024-05-12-ten-tips",
        CleanUrl("example.com", "/news/2024-05-12-ten-tips", None, {}),
    ),
    (
        "date-then-long-number-masked",
        "https://example.com/a/2024-05-12-987654",
        CleanUrl("example.com", "/a/2024-05-12-[number]", None, {}),
    ),
    (
        "uuid-kept",
        "https://example.com/item/3f2504e0-4f89-41d3-9a0c-0305e82c3301",
        CleanUrl("example.com", "/item/3f2504e0-4f89-41d3-9a0c-0305e82c3301", None, {}),
    ),
    (
        "idn-host-unicode",
        "https://Café.Example/menu",
        CleanUrl("xn--caf-dma.example", "/menu", None, {}),
    ),
    (
        "idn-host-punycode",
        "https://xn--caf-dma.example/menu",
        CleanUrl("xn--caf-dma.example", "/menu", None, {}),
    ),
    (
        "path-decoded-to-unicode",
        "https://example.com/caf%C3%A9/cr%c3%a8me",
        CleanUrl("example.com", "/café/crème", None, {}),
    ),
    (
        "encoded-slash-and-invalid-utf8-stay-encoded",
        "https://example.com/a%2fb/%FF%FE",
        CleanUrl("example.com", "/a%2Fb/%FF%FE", None, {}),
    ),
    (
        "control-and-bidi-characters-encoded",
        "https://example.com/a%00b%E2%80%AEc",
        CleanUrl("example.com", "/a%00b%E2%80%AEc", None, {}),
    ),
    (
        "literal-percent-and-encoded-question-mark",
        "https://example.com/100%25/what%3F",
        CleanUrl("example.com", "/100%25/what%3F", None, {}),
    ),
    (
        "session-id-in-path-dropped",
        "https://example.com/cart;jsessionid=0A1B2C3D4E/checkout",
        CleanUrl("example.com", "/cart/checkout", None, {}),
    ),
    (
        "dotted-price-with-six-digits-masked",
        "https://example.com/deals/1299.99",
        CleanUrl("example.com", "/deals/[number]", None, {}),
    ),
    (
        "address-chunk-replaced-whole",
        "https://example.com/share/to=jane@example.org&x/next",
        CleanUrl("example.com", "/share/[email]/next", None, {}),
    ),
    ("ipv4-host", "http://192.0.2.10:8080/x", CleanUrl("192.0.2.10", "/x", None, {})),
    ("ipv6-host", "http://[2001:DB8::1]:8080/x", CleanUrl("2001:db8::1", "/x", None, {})),
    (
        "script-in-path-kept-as-text",
        "https://example.com/<script>alert(1)</script>",
        CleanUrl("example.com", "/<script>alert(1)</script>", None, {}),
    ),
]

REJECTED: list[tuple[str, str]] = [
    ("javascript", "javascript:alert(document.cookie)"),
    ("data", "data:text/html,<h1>hi</h1>"),
    ("ftp", "ftp://example.com/file"),
    ("file", "file:///etc/passwd"),
    ("relative", "/just/a/path"),
    ("no-host", "https:///path"),
    ("empty", ""),
    ("space-in-host", "https://exa mple.com/"),
    ("port-out-of-range", "https://example.com:99999/"),
    ("port-not-numeric", "https://example.com:http/"),
    ("broken-ipv6", "http://[::1/"),
    ("label-too-long", "https://" + "a" * 64 + ".com/"),
    ("slash-lookalike-in-host", "https://example.com\uff0fevil/"),
]


@pytest.mark.parametrize(
    ("url", "expected"), [c[1:] for c in CLEAN_CASES], ids=[c[0] for c in CLEAN_CASES]
)
def test_clean_url(url: str, expected: CleanUrl) -> None:
    assert clean_url(url, keep_params=CAMPAIGN) == expected


@pytest.mark.parametrize("url", [c[1] for c in REJECTED], ids=[c[0] for c in REJECTED])
def test_clean_url_rejects(url: str) -> None:
    with pytest.raises(ValueError):
        clean_url(url, keep_params=CAMPAIGN)


def test_kept_params_are_in_a_stable_order_whatever_the_input_order() -> None:
    first = clean_url("https://example.com/?utm_medium=m&ref=r&utm_source=s", keep_params=CAMPAIGN)
    second = clean_url("https://example.com/?utm_source=s&utm_medium=m&ref=r", keep_params=CAMPAIGN)
    assert first.query == second.query == "ref=r&utm_medium=m&utm_source=s"


def test_spellings_of_one_page_group_together() -> None:
    spellings = [
        "https://example.com/caf%C3%A9?utm_x=1#top",
        "https://EXAMPLE.com:443/café",
        "https://example.com./caf%c3%a9",
    ]
    assert {clean_url(url, keep_params=()).path for url in spellings} == {"/café"}
    assert {clean_url(url, keep_params=()).hostname for url in spellings} == {"example.com"}


MASK_CASES: list[tuple[str, str, str]] = [
    ("email", "/a/john@example.com/b", "/a/[email]/b"),
    ("email-encoded-uppercase", "/a/john%40Example.COM", "/a/[email]"),
    ("email-with-plus-tag", "/a/jo.hn+news@mail.example.co.uk", "/a/[email]"),
    ("handle-is-not-email", "/@john", "/@john"),
    ("at-without-domain-dot", "/user@localhost/x", "/user@localhost/x"),
    ("six-digits", "/x/123456", "/x/[number]"),
    ("five-digits", "/x/12345", "/x/12345"),
    ("phone-international", "/tel/+33 6 12 34 56 78", "/tel/+[number]"),
    ("ip-address", "/ban/203.0.113.254", "/ban/[number]"),
    ("german-date", "/termine/12.05.2024", "/termine/12.05.2024"),
    ("compact-date-masked", "/archive/20240512", "/archive/[number]"),
    ("date-inside-longer-run", "/x/12024-05-12", "/x/[number]"),
    ("arabic-indic-digits", "/x/١٢٣٤٥٦٧", "/x/[number]"),
    ("both", "/r/jane@example.org/0612345678", "/r/[email]/[number]"),
    ("chained-addresses", "/a/x@y.com@z.org", "/a/[email]"),
    ("raw-encoded-dot", "/a/jane%40example%2Eorg", "/a/[email]"),
    ("fullwidth-at-sign", "/a/jane＠example.org", "/a/[email]"),
]


@pytest.mark.parametrize(
    ("path", "expected"), [c[1:] for c in MASK_CASES], ids=[c[0] for c in MASK_CASES]
)
def test_mask_personal_data(path: str, expected: str) -> None:
    assert mask_personal_data(path) == expected


HOST_CASES: list[tuple[str, str, list[str], bool]] = [
    ("exact", "example.com", ["example.com"], True),
    ("exact-case-insensitive", "Example.COM", ["example.com"], True),
    ("other-host", "example.org", ["example.com"], False),
    ("subdomain-not-exact", "www.example.com", ["example.com"], False),
    ("wildcard-subdomain", "www.example.com", ["*.example.com"], True),
    ("wildcard-deep-subdomain", "a.b.example.com", ["*.example.com"], True),
    ("wildcard-not-apex", "example.com", ["*.example.com"], False),
    ("wildcard-apex-listed", "example.com", ["*.example.com", "example.com"], True),
    ("suffix-lookalike", "evilexample.com", ["*.example.com"], False),
    ("suffix-lookalike-exact", "notexample.com", ["example.com"], False),
    ("trailing-dot", "example.com.", ["example.com"], True),
    ("idn-pattern-unicode", "xn--caf-dma.fr", ["café.fr"], True),
    ("idn-host-unicode", "café.fr", ["xn--caf-dma.fr"], True),
    ("empty-host", "", ["example.com"], False),
    ("garbage-host", "exa mple.com", ["exa mple.com"], False),
    ("no-patterns", "example.com", [], False),
    ("localhost", "localhost", ["localhost"], True),
    ("bare-star-matches-nothing", "example.com", ["*"], False),
    ("pattern-with-port-matches-nothing", "localhost", ["localhost:8000"], False),
    ("ipv4-exact", "127.0.0.1", ["127.0.0.1"], True),
]


@pytest.mark.parametrize(
    ("hostname", "patterns", "allowed"), [c[1:] for c in HOST_CASES], ids=[c[0] for c in HOST_CASES]
)
def test_host_allowed(hostname: str, patterns: list[str], allowed: bool) -> None:
    assert host_allowed(hostname, patterns) is allowed


# Anything a visitor's browser or a hostile client might send as a URL.
_url_text = st.one_of(
    st.text(max_size=200),
    st.builds(
        lambda scheme, host, path, query: f"{scheme}://{host}{path}{query}",
        st.sampled_from(["http", "https", "HTTP", "javascript", "data", "ftp", ""]),
        st.one_of(
            st.sampled_from(["example.com", "EXAMPLE.com:8080", "[::1]", "[::1", "a@b", "café.fr"]),
            st.text(max_size=30),
        ),
        st.text(max_size=120).map(lambda s: "/" + s),
        st.one_of(st.just(""), st.text(max_size=60).map(lambda s: "?" + s)),
    ),
)
_path_piece = st.one_of(
    st.text(max_size=20),
    st.from_regex(r"[a-z.]{1,8}(@|%40|%2540)[a-z]{1,8}\.[a-z]{2,4}", fullmatch=True),
    st.from_regex(r"\d{1,4}([ .\-]|%20)?\d{1,4}([ .\-]|%20)?\d{0,6}", fullmatch=True),
)
_hostile_url = st.lists(_path_piece, max_size=8).map(
    lambda parts: "https://example.com/" + "".join(parts)
)

_EMAIL = re.compile(r"[^\s/@]+@[^\s/@.]+\.[^\s/@.]+")
_SIX_DIGITS = re.compile(r"\d{6}")


@settings(max_examples=400, deadline=None)
@given(st.one_of(_url_text, _hostile_url), st.lists(st.sampled_from(CAMPAIGN), max_size=3))
def test_clean_url_only_raises_value_error_and_never_leaks(url: str, keep: list[str]) -> None:
    try:
        cleaned = clean_url(url, keep_params=keep)
    except ValueError:
        return
    kept_values = [value for _, value in parse_qsl(cleaned.query or "")]
    for text in (cleaned.path, *cleaned.utm.values(), *kept_values):
        assert not _EMAIL.search(text), text
        assert not _SIX_DIGITS.search(text), text
    assert cleaned.path.startswith("/")
    assert "#" not in cleaned.path and "?" not in cleaned.path
    assert cleaned.hostname == cleaned.hostname.lower()


@pytest.mark.parametrize(
    ("url", "stored"),
    [
        (
            "https://site.example/files/jane.doe@example.org/invoice-4970123456789012.pdf?sig=S",
            "https://site.example/files/[email]/invoice-[number].pdf",
        ),
        ("HTTP://User:pw@Site.Example:8080/a#frag", "http://site.example/a"),
        ("https://[2001:DB8::1]/x?utm_source=news", "https://[2001:db8::1]/x"),
        ("https://site.example", "https://site.example/"),
    ],
    ids=["download-link", "userinfo-port-fragment", "ipv6-query", "no-path"],
)
def test_url_text_is_the_stored_form_of_a_url_valued_field(url: str, stored: str) -> None:
    assert url_text(url) == stored
    assert is_url(url)


def test_url_text_keeps_only_the_parameters_it_is_given() -> None:
    url = "https://site.example/?utm_source=news&email=jane@example.org&ref=x"
    assert url_text(url, keep_params=("utm_source", "ref")) == (
        "https://site.example/?ref=x&utm_source=news"
    )
    assert not is_url("mailto:jane@example.org") and not is_url(12) and not is_url("/files/a")


@settings(max_examples=300, deadline=None)
@given(st.one_of(_url_text, _hostile_url))
def test_url_text_never_leaks(url: str) -> None:
    try:
        stored = url_text(url)
    except ValueError:
        return
    # The cleaning masks the path (the host is kept as the normalized hostname, whose punycode
    # may hold digits, as clean_url's own property test allows).
    path = stored.split("://", 1)[1].partition("/")[2]
    assert not _EMAIL.search(path) and not _SIX_DIGITS.search(path), stored
    assert "?" not in stored and "#" not in stored
