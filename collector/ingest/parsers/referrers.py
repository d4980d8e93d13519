"""Referrer → source and channel (medium), the way Plausible and Matomo group traffic.

``medium`` is one of ``search``, ``social``, ``email``, ``referral``, ``direct``. Known sources
are matched on the referrer's hostname (most specific suffix first: ``mail.google.com`` is
Gmail, ``www.google.fr`` is Google), then on the first label of its registrable domain for
engines present under many country domains (``google.co.uk``, ``yandex.ru``, ``gmx.at``), then
on the package name of an ``android-app://`` referrer. Anything else is a ``referral`` named by
its registrable domain.

The registrable domain is computed without downloading the Public Suffix List: a small table
of common two-label public suffixes (``co.uk``, ``com.au``, ``gouv.fr``, …) and hosting
suffixes (``github.io``, ``netlify.app``, …) covers the frequent cases. A host under a suffix
missing from the table is grouped one label too high (``shop.example.ck`` → ``example.ck``
is right, but ``a.b.unknown-suffix.xx`` → ``unknown-suffix.xx``); nothing worse happens than
a coarser grouping.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from functools import lru_cache

import msgspec

from collector.ingest.parsers.urls import clean_url, host_allowed, url_text

DIRECT = "Direct / None"

Known = tuple[str, str]  # (source, medium)

# Source name, medium, hostnames (each also matches its subdomains).
_HOST_TABLE: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("DuckDuckGo", "search", ("duckduckgo.com", "duck.com")),
    ("Baidu", "search", ("baidu.com",)),
    ("Qwant", "search", ("qwant.com",)),
    ("Ecosia", "search", ("ecosia.org",)),
    ("Lilo", "search", ("lilo.org",)),
    ("Seznam", "search", ("seznam.cz",)),
    ("Seznam Email", "email", ("email.seznam.cz",)),
    ("Startpage", "search", ("startpage.com", "startpage.nl")),
    ("Brave Search", "search", ("search.brave.com",)),
    ("Yandex", "search", ("ya.ru",)),
    ("Ask", "search", ("ask.com",)),
    ("AOL", "search", ("search.aol.com",)),
    ("AOL Mail", "email", ("mail.aol.com",)),
    ("Naver", "search", ("naver.com",)),
    ("Mojeek", "search", ("mojeek.com",)),
    ("MetaGer", "search", ("metager.org", "metager.de")),
    ("Swisscows", "search", ("swisscows.com",)),
    ("Kagi", "search", ("kagi.com",)),
    ("Orange", "search", ("lemoteur.orange.fr",)),
    ("Orange Mail", "email", ("messagerie.orange.fr", "mail.orange.fr", "webmail.orange.fr")),
    ("SFR Mail", "email", ("webmail.sfr.fr", "messagerie.sfr.fr")),
    ("Free Mail", "email", ("zimbra.free.fr", "webmail.free.fr")),
    ("La Poste Mail", "email", ("laposte.net",)),
    ("WEB.DE", "search", ("suche.web.de",)),
    ("WEB.DE Mail", "email", ("web.de",)),
    ("T-Online Mail", "email", ("email.t-online.de",)),
    ("Libero Mail", "email", ("mail.libero.it",)),
    ("Mail.ru", "email", ("e.mail.ru", "mail.ru")),
    ("Gmail", "email", ("mail.google.com",)),
    ("Outlook", "email", ("outlook.live.com", "outlook.office.com", "outlook.office365.com")),
    ("Proton Mail", "email", ("mail.proton.me", "mail.protonmail.com")),
    ("Tuta", "email", ("app.tuta.com", "mail.tutanota.com")),
    ("Zoho Mail", "email", ("mail.zoho.com", "mail.zoho.eu")),
    ("Posteo", "email", ("posteo.de",)),
    ("Facebook", "social", ("facebook.com", "fb.com", "fb.me", "messenger.com")),
    ("Instagram", "social", ("instagram.com",)),
    ("X (Twitter)", "social", ("twitter.com", "x.com", "t.co")),
    ("LinkedIn", "social", ("linkedin.com", "lnkd.in")),
    ("Reddit", "social", ("reddit.com", "redd.it")),
    ("YouTube", "social", ("youtube.com", "youtu.be")),
    ("GitHub", "social", ("github.com",)),
    ("TikTok", "social", ("tiktok.com",)),
    ("Mastodon", "social", ("mastodon.social", "mastodon.online", "mstdn.social")),
    ("Bluesky", "social", ("bsky.app",)),
    ("Threads", "social", ("threads.net", "threads.com")),
    ("Hacker News", "social", ("news.ycombinator.com",)),
    ("Lobsters", "social", ("lobste.rs",)),
    ("Telegram", "social", ("t.me", "web.telegram.org")),
    ("WhatsApp", "social", ("whatsapp.com", "wa.me")),
    ("Discord", "social", ("discord.com", "discord.gg")),
    ("Slack", "social", ("slack.com",)),
    ("VK", "social", ("vk.com",)),
    ("Xing", "social", ("xing.com",)),
    ("Tumblr", "social", ("tumblr.com",)),
    ("Snapchat", "social", ("snapchat.com",)),
    ("Quora", "social", ("quora.com",)),
    ("Twitch", "social", ("twitch.tv",)),
    ("Vimeo", "social", ("vimeo.com",)),
    ("Google News", "referral", ("news.google.com",)),
    ("Wikipedia", "referral", ("wikipedia.org",)),
    ("Stack Overflow", "referral", ("stackoverflow.com",)),
    ("ChatGPT", "referral", ("chatgpt.com", "chat.openai.com")),
    ("Perplexity", "referral", ("perplexity.ai",)),
)
HOST_SOURCES: dict[str, Known] = {
    host: (source, medium) for source, medium, hosts in _HOST_TABLE for host in hosts
}

# Engines present under many country domains, by the first label of the registrable domain:
# (subdomain it must be or end with, or None for any) → known source, first match wins.
BRAND_SOURCES: dict[str, tuple[tuple[str | None, Known], ...]] = {
    "google": ((None, ("Google", "search")),),
    "bing": ((None, ("Bing", "search")),),
    "yahoo": (("mail", ("Yahoo Mail", "email")), (None, ("Yahoo!", "search"))),
    "yandex": (("mail", ("Yandex Mail", "email")), (None, ("Yandex", "search"))),
    "gmx": (("suche", ("GMX", "search")), (None, ("GMX Mail", "email"))),
    "pinterest": ((None, ("Pinterest", "social")),),
    "ecosia": ((None, ("Ecosia", "search")),),
    "qwant": ((None, ("Qwant", "search")),),
}

APP_SOURCES: dict[str, Known] = {
    "com.google.android.gm": ("Gmail", "email"),
    "com.google.android.googlequicksearchbox": ("Google", "search"),
    "com.google.android.apps.searchlite": ("Google", "search"),
    "com.microsoft.office.outlook": ("Outlook", "email"),
    "com.yahoo.mobile.client.android.mail": ("Yahoo Mail", "email"),
    "ch.protonmail.android": ("Proton Mail", "email"),
    "com.facebook.katana": ("Facebook", "social"),
    "com.facebook.orca": ("Facebook", "social"),
    "com.instagram.android": ("Instagram", "social"),
    "com.twitter.android": ("X (Twitter)", "social"),
    "com.linkedin.android": ("LinkedIn", "social"),
    "com.reddit.frontpage": ("Reddit", "social"),
    "com.google.android.youtube": ("YouTube", "social"),
    "org.telegram.messenger": ("Telegram", "social"),
    "com.whatsapp": ("WhatsApp", "social"),
    "com.slack": ("Slack", "social"),
    "com.discord": ("Discord", "social"),
    "com.zhiliaoapp.musically": ("TikTok", "social"),
    "com.pinterest": ("Pinterest", "social"),
}

_WEBMAIL_LABELS = frozenset({"mail", "webmail", "email", "messagerie", "courrier", "posta"})

# Public suffixes of two or three labels that people register names under (a PSL excerpt).
MULTI_LABEL_SUFFIXES: frozenset[str] = frozenset(
    {
        *(f"{second}.uk" for second in ("co", "org", "ac", "gov", "me", "ltd", "plc", "net")),
        *(f"{second}.au" for second in ("com", "net", "org", "edu", "gov")),
        *(f"{second}.nz" for second in ("co", "org", "net", "govt", "ac")),
        *(f"{second}.jp" for second in ("co", "ne", "or", "ac", "go")),
        *(f"{second}.fr" for second in ("gouv", "asso", "nom", "com", "tm")),
        *(f"com.{tld}" for tld in ("br", "mx", "ar", "tr", "cn", "hk", "sg", "tw", "ua", "pl")),
        *(f"co.{tld}" for tld in ("in", "za", "kr", "il", "id", "th", "ke")),
        "gv.at",
        "ac.at",
        "co.at",
        "or.at",
        "gov.it",
        "gob.es",
        "gov.pl",
        "edu.pl",
        "github.io",
        "gitlab.io",
        "blogspot.com",
        "wordpress.com",
        "netlify.app",
        "vercel.app",
        "pages.dev",
        "herokuapp.com",
        "azurewebsites.net",
        "cloudfront.net",
        "appspot.com",
        "web.app",
        "firebaseapp.com",
        "fly.dev",
        "onrender.com",
        "s3.amazonaws.com",
        "substack.com",
        "medium.com",
    }
)


class RefInfo(msgspec.Struct, frozen=True):
    """Where a visit came from."""

    url: str | None
    domain: str | None
    source: str
    medium: str


_DIRECT = RefInfo(url=None, domain=None, source=DIRECT, medium="direct")


def classify(referrer: str | None, *, own_hostnames: Sequence[str]) -> RefInfo:
    """Classify a ``Referer``; own hostnames (``host_allowed`` patterns) count as direct."""
    if referrer is None or not referrer.strip():
        return _DIRECT
    referrer = referrer.strip()
    scheme = referrer.split(":", 1)[0].lower() if ":" in referrer else ""
    if scheme == "android-app":
        return _classify_app(referrer)
    try:
        host = clean_url(referrer, keep_params=()).hostname
    except ValueError:
        return _DIRECT  # not a web page (about:blank, file:, an extension) or unreadable
    if host_allowed(host, own_hostnames):
        return _DIRECT
    # Cleaned like every URL-valued field: no query, no fragment, personal data masked.
    url = url_text(referrer)
    domain = registrable_domain(host)
    source, medium = _known_source(host, domain) or (domain, _unknown_medium(host))
    return RefInfo(url=url, domain=domain, source=source, medium=medium)


def _unknown_medium(host: str) -> str:
    # A provider's or a company's own webmail (webmail.example.net) sends e-mail traffic.
    return "email" if host.split(".", 1)[0] in _WEBMAIL_LABELS else "referral"


@lru_cache(maxsize=4096)
def registrable_domain(hostname: str) -> str:
    """``m.facebook.com`` → ``facebook.com``, ``www.bbc.co.uk`` → ``bbc.co.uk``; IPs unchanged."""
    try:
        ipaddress.ip_address(hostname)
    except ValueError:
        pass
    else:
        return hostname
    labels = hostname.split(".")
    for size in (3, 2):
        if len(labels) > size and ".".join(labels[-size:]) in MULTI_LABEL_SUFFIXES:
            return ".".join(labels[-size - 1 :])
    return ".".join(labels[-2:])


@lru_cache(maxsize=4096)
def _known_source(host: str, domain: str) -> Known | None:
    labels = host.split(".")
    for start in range(len(labels)):
        known = HOST_SOURCES.get(".".join(labels[start:]))
        if known is not None:
            return known
    if "." in domain:
        brand = domain.split(".", 1)[0]
        subdomain = host.removesuffix(domain).rstrip(".")
        by_brand = BRAND_SOURCES.get(brand)
        if by_brand is not None:
            # Webmail and search often share a brand (mail.yahoo.co.jp, search.yahoo.co.jp).
            for prefix, known in by_brand:
                if prefix is None or subdomain == prefix or subdomain.endswith("." + prefix):
                    return known
    return None


def _classify_app(referrer: str) -> RefInfo:
    package = referrer.split("://", 1)[-1].split("/", 1)[0].strip().lower()
    parts = package.split(".")
    if len(package) > 255 or not all(part.isascii() and part.isidentifier() for part in parts):
        return _DIRECT
    source, medium = APP_SOURCES.get(package, (package, "referral"))
    return RefInfo(url=f"android-app://{package}", domain=package, source=source, medium=medium)
