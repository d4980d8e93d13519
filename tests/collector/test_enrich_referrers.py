"""Referrer → source and medium, own-site referrers ignored, registrable domains."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.ingest.parsers.referrers import DIRECT, RefInfo, classify, registrable_domain

OWN = ["example.com", "*.example.com"]

# (id, referrer, url, domain, source, medium)
CASES: list[tuple[str, str | None, str | None, str | None, str, str]] = [
    ("none", None, None, None, DIRECT, "direct"),
    ("empty", "", None, None, DIRECT, "direct"),
    ("blank", "   ", None, None, DIRECT, "direct"),
    ("own-site", "https://example.com/pricing", None, None, DIRECT, "direct"),
    ("own-subdomain", "https://blog.example.com/post", None, None, DIRECT, "direct"),
    ("own-site-uppercase", "HTTPS://WWW.EXAMPLE.COM/", None, None, DIRECT, "direct"),
    ("about-blank", "about:blank", None, None, DIRECT, "direct"),
    ("javascript", "javascript:void(0)", None, None, DIRECT, "direct"),
    ("garbage", "not a url at all", None, None, DIRECT, "direct"),
    (
        "lookalike-not-own",
        "https://evilexample.com/",
        "https://evilexample.com/",
        "evilexample.com",
        "evilexample.com",
        "referral",
    ),
    (
        "google-com",
        "https://www.google.com/",
        "https://www.google.com/",
        "google.com",
        "Google",
        "search",
    ),
    (
        "google-fr",
        "https://www.google.fr/",
        "https://www.google.fr/",
        "google.fr",
        "Google",
        "search",
    ),
    (
        "google-co-uk",
        "https://www.google.co.uk/search?q=secret",
        "https://www.google.co.uk/search",
        "google.co.uk",
        "Google",
        "search",
    ),
    (
        "google-com-br",
        "https://www.google.com.br/",
        "https://www.google.com.br/",
        "google.com.br",
        "Google",
        "search",
    ),
    (
        "gmail-web",
        "https://mail.google.com/mail/u/0/",
        "https://mail.google.com/mail/u/0/",
        "google.com",
        "Gmail",
        "email",
    ),
    (
        "gmail-app",
        "android-app://com.google.android.gm/",
        "android-app://com.google.android.gm",
        "com.google.android.gm",
        "Gmail",
        "email",
    ),
    (
        "google-app",
        "android-app://com.google.android.googlequicksearchbox",
        "android-app://com.google.android.googlequicksearchbox",
        "com.google.android.googlequicksearchbox",
        "Google",
        "search",
    ),
    ("app-package-not-a-package", "android-app://not a package/", None, None, DIRECT, "direct"),
    (
        "unknown-webmail",
        "https://webmail.example.net/?_task=mail",
        "https://webmail.example.net/",
        "example.net",
        "example.net",
        "email",
    ),
    (
        "unknown-app",
        "android-app://org.example.reader/",
        "android-app://org.example.reader",
        "org.example.reader",
        "org.example.reader",
        "referral",
    ),
    ("bing", "https://www.bing.com/", "https://www.bing.com/", "bing.com", "Bing", "search"),
    (
        "duckduckgo",
        "https://duckduckgo.com/",
        "https://duckduckgo.com/",
        "duckduckgo.com",
        "DuckDuckGo",
        "search",
    ),
    (
        "qwant",
        "https://www.qwant.com/?q=x",
        "https://www.qwant.com/",
        "qwant.com",
        "Qwant",
        "search",
    ),
    (
        "ecosia",
        "https://www.ecosia.org/search",
        "https://www.ecosia.org/search",
        "ecosia.org",
        "Ecosia",
        "search",
    ),
    ("lilo", "https://search.lilo.org/", "https://search.lilo.org/", "lilo.org", "Lilo", "search"),
    (
        "yandex-ru",
        "https://yandex.ru/search/",
        "https://yandex.ru/search/",
        "yandex.ru",
        "Yandex",
        "search",
    ),
    (
        "yandex-mail",
        "https://mail.yandex.ru/",
        "https://mail.yandex.ru/",
        "yandex.ru",
        "Yandex Mail",
        "email",
    ),
    (
        "seznam",
        "https://search.seznam.cz/",
        "https://search.seznam.cz/",
        "seznam.cz",
        "Seznam",
        "search",
    ),
    (
        "yahoo-search-jp",
        "https://search.yahoo.co.jp/",
        "https://search.yahoo.co.jp/",
        "yahoo.co.jp",
        "Yahoo!",
        "search",
    ),
    (
        "yahoo-mail",
        "https://mail.yahoo.com/d/folders/1",
        "https://mail.yahoo.com/d/folders/1",
        "yahoo.com",
        "Yahoo Mail",
        "email",
    ),
    (
        "orange-mail",
        "https://messagerie.orange.fr/",
        "https://messagerie.orange.fr/",
        "orange.fr",
        "Orange Mail",
        "email",
    ),
    (
        "gmx-mail",
        "https://navigator.gmx.net/mail",
        "https://navigator.gmx.net/mail",
        "gmx.net",
        "GMX Mail",
        "email",
    ),
    (
        "gmx-search",
        "https://suche.gmx.de/web",
        "https://suche.gmx.de/web",
        "gmx.de",
        "GMX",
        "search",
    ),
    (
        "webde-mail",
        "https://3c.web.de/mail",
        "https://3c.web.de/mail",
        "web.de",
        "WEB.DE Mail",
        "email",
    ),
    (
        "outlook",
        "https://outlook.live.com/",
        "https://outlook.live.com/",
        "live.com",
        "Outlook",
        "email",
    ),
    (
        "facebook-mobile",
        "https://m.facebook.com/",
        "https://m.facebook.com/",
        "facebook.com",
        "Facebook",
        "social",
    ),
    (
        "facebook-link-shim",
        "https://l.facebook.com/l.php?u=https%3A%2F%2Fexample.com",
        "https://l.facebook.com/l.php",
        "facebook.com",
        "Facebook",
        "social",
    ),
    ("t-co", "https://t.co/AbCd123", "https://t.co/AbCd123", "t.co", "X (Twitter)", "social"),
    (
        "x-com",
        "https://x.com/someone/status/1",
        "https://x.com/someone/status/1",
        "x.com",
        "X (Twitter)",
        "social",
    ),
    (
        "linkedin",
        "https://www.linkedin.com/feed/",
        "https://www.linkedin.com/feed/",
        "linkedin.com",
        "LinkedIn",
        "social",
    ),
    (
        "reddit-old",
        "https://old.reddit.com/r/python/",
        "https://old.reddit.com/r/python/",
        "reddit.com",
        "Reddit",
        "social",
    ),
    (
        "instagram-shim",
        "https://l.instagram.com/",
        "https://l.instagram.com/",
        "instagram.com",
        "Instagram",
        "social",
    ),
    (
        "youtube-short",
        "https://youtu.be/dQw4w9WgXcQ",
        "https://youtu.be/dQw4w9WgXcQ",
        "youtu.be",
        "YouTube",
        "social",
    ),
    (
        "github",
        "https://github.com/org/repo/issues/12",
        "https://github.com/org/repo/issues/12",
        "github.com",
        "GitHub",
        "social",
    ),
    (
        "hacker-news",
        "https://news.ycombinator.com/item?id=123",
        "https://news.ycombinator.com/item",
        "ycombinator.com",
        "Hacker News",
        "social",
    ),
    (
        "pinterest-fr",
        "https://fr.pinterest.com/pin/1/",
        "https://fr.pinterest.com/pin/1/",
        "pinterest.com",
        "Pinterest",
        "social",
    ),
    (
        "github-pages-own-domain",
        "https://alice.github.io/notes",
        "https://alice.github.io/notes",
        "alice.github.io",
        "alice.github.io",
        "referral",
    ),
    (
        "gouv-fr",
        "https://www.service-public.gouv.fr/particuliers",
        "https://www.service-public.gouv.fr/particuliers",
        "service-public.gouv.fr",
        "service-public.gouv.fr",
        "referral",
    ),
    (
        "bbc-co-uk",
        "https://www.bbc.co.uk/news",
        "https://www.bbc.co.uk/news",
        "bbc.co.uk",
        "bbc.co.uk",
        "referral",
    ),
    (
        "referrer-path-masked",
        "https://forum.example.org/u/jane@doe.fr/0612345678#top",
        "https://forum.example.org/u/[email]/[number]",
        "example.org",
        "example.org",
        "referral",
    ),
    (
        "ip-referrer",
        "http://192.0.2.7:8080/x",
        "http://192.0.2.7/x",
        "192.0.2.7",
        "192.0.2.7",
        "referral",
    ),
    (
        "ipv6-referrer",
        "http://[2001:db8::7]/",
        "http://[2001:db8::7]/",
        "2001:db8::7",
        "2001:db8::7",
        "referral",
    ),
    (
        "idn-referrer",
        "https://bücher.de/x",
        "https://xn--bcher-kva.de/x",
        "xn--bcher-kva.de",
        "xn--bcher-kva.de",
        "referral",
    ),
]


@pytest.mark.parametrize(
    ("referrer", "url", "domain", "source", "medium"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_classify(
    referrer: str | None, url: str | None, domain: str | None, source: str, medium: str
) -> None:
    assert classify(referrer, own_hostnames=OWN) == RefInfo(
        url=url, domain=domain, source=source, medium=medium
    )


def test_a_site_that_is_a_known_source_sees_its_own_pages_as_direct() -> None:
    info = classify("https://www.google.com/maps", own_hostnames=["*.google.com"])
    assert info.medium == "direct" and info.url is None


@pytest.mark.parametrize(
    ("hostname", "domain"),
    [
        ("example.com", "example.com"),
        ("a.b.c.example.com", "example.com"),
        ("www.example.co.uk", "example.co.uk"),
        ("co.uk", "co.uk"),
        ("shop.example.com.au", "example.com.au"),
        ("localhost", "localhost"),
        ("203.0.113.9", "203.0.113.9"),
    ],
    ids=["apex", "deep", "co-uk", "bare-suffix", "com-au", "single-label", "ipv4"],
)
def test_registrable_domain(hostname: str, domain: str) -> None:
    assert registrable_domain(hostname) == domain


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.none(),
        st.text(max_size=200),
        st.text(max_size=80).map("https://".__add__),
        st.text(max_size=80).map("android-app://".__add__),
    )
)
def test_classify_never_raises_and_answers_a_known_medium(referrer: str | None) -> None:
    info = classify(referrer, own_hostnames=OWN)
    assert info.medium in {"search", "social", "email", "referral", "direct"}
    assert (info.medium == "direct") == (info.url is None)
    assert info.url is None or ("?" not in info.url and "#" not in info.url)
