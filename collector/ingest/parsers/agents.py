"""User agent → browser, OS, device class; bot and prefetch detection; screen class.

Browser and OS families are ua-parser's names ("Chrome Mobile", "Mobile Safari", "Mac OS X"),
kept as they are so they follow the maintained regex set. Versions are the major only. Known
limits of the user-agent string itself: Windows 11 reports ``Windows NT 10.0`` (→ Windows 10),
macOS stays frozen at 10.15, Chrome's reduced UA on Android says ``Android 10; K``, and an iPad
in its default "desktop site" mode is indistinguishable from a Mac (→ desktop). An iPad UA
that says so is reported as ``iPadOS`` from version 13, when Apple renamed the system.

Bots (:func:`bot_reason`):

- ``bot:headless`` — an empty UA, or automation markers (HeadlessChrome, HeadlessEdg,
  PhantomJS, SlimerJS, Cypress). ``allow_headless=True`` accepts the automation markers (the
  product's own browser tests run headless Chromium), never an empty UA. Electron is *not*
  flagged: Slack, Teams or Discord desktop users browsing through it are real people.
- ``bot:crawler`` — ua-parser's device ``Spider``, or a token from :data:`_CRAWLER` (crawlers,
  link-preview fetchers, uptime monitors, HTTP libraries and command-line clients).
- ``bot:prefetch`` — a speculative request: ``Sec-Purpose`` with the ``prefetch`` token,
  ``Purpose: prefetch``, ``X-Moz: prefetch``, or ``X-Purpose``/``Purpose: preview`` (Safari's
  Top Sites thumbnails). ``Sec-Purpose: prefetch;prerender`` is *not* filtered: a prerendered
  page is a page the browser expects to show, and the snippet reports it only once the visitor
  actually activates it (``document.prerendering`` turns false), so its hits are real.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache

import msgspec
from ua_parser import Result
from ua_parser import parse as parse_ua

CACHE_SIZE = 4096
#: Longer user agents are cut before parsing: real ones stay well under this, and the caches'
#: memory stays bounded (3 caches × 4096 entries × 1 KiB) whatever a client sends.
MAX_UA_LENGTH = 1024

_HEADLESS_TOKENS = ("headless", "phantomjs", "slimerjs", "cypress/")
# Substrings of a lower-cased UA: crawlers, link-preview fetchers, monitors, audit tools, HTTP
# libraries and command-line clients. Plain substring tests: a big regex alternation cost 90 µs.
_CRAWLER_TOKENS = (
    "crawl", "spider", "slurp", "scrap", "facebookexternalhit", "facebookcatalog",
    "meta-externalagent", "embedly", "skypeuripreview", "whatsapp/", "preview", "ia_archiver",
    "mediapartners-google", "apis-google", "feedfetcher", "google-inspectiontool",
    "google-read-aloud", "qwantify", "lighthouse", "ptst/", "gtmetrix", "pingdom",
    "statuscake", "uptime", "monitor", "validator", "check_http", "curl", "wget",
    "python-requests", "python-urllib", "python/", "aiohttp", "httpx", "go-http-client",
    "java/", "libwww", "lwp-", "node-fetch", "axios/", "undici", "postmanruntime", "insomnia",
    "httpie", "nutch", "zgrab", "masscan", "nmap", "nikto", "sqlmap", "gptbot", "chatgpt-user",
    "claudebot", "anthropic-ai", "ccbot", "perplexitybot", "bytespider", "amazonbot",
)  # fmt: skip
# "…bot" as a word end (Googlebot/2.1, AdsBot-Google, archive.org_bot); "cubot" is a phone maker.
_BOT_WORD = re.compile(r"(?<!cu)bot(?![a-z])")
_TV_OR_CONSOLE = re.compile(
    r"smart-?tv|hbbtv|googletv|appletv|crkey|web0s|netcast|tizen.*tv|bravia|roku"
    r"|playstation|xbox|nintendo|(?-i:\bAFT[A-Z]{1,4}\b)",  # AFT…: Fire TV models
    re.IGNORECASE,
)
_TABLET = re.compile(r"ipad|tablet|kindle|silk/|playbook|\bsm-[tx]\d", re.IGNORECASE)
_MOBILE = re.compile(r"mobi|iphone|ipod|windows phone|opera mini|blackberry|\bbb10\b", re.I)
_DESKTOP_OS = frozenset(
    {
        "Windows",
        "Mac OS X",
        "Linux",
        "Ubuntu",
        "Debian",
        "Fedora",
        "Chrome OS",
        "FreeBSD",
        "OpenBSD",
        "NetBSD",
        "Solaris",
    }
)
_DESKTOP_MARKERS = re.compile(r"windows nt|macintosh|x11|cros\b", re.IGNORECASE)


class Agent(msgspec.Struct, frozen=True):
    """What a user agent says about the browser and device, coarsely."""

    browser: str | None
    browser_version: str | None
    os: str | None
    os_version: str | None
    device: str


@lru_cache(maxsize=CACHE_SIZE)
def _parse_raw(ua: str) -> Result:
    return parse_ua(ua)


def parse(ua: str) -> Agent:
    """Browser family and major version, OS family and major version, device class.

    Results are kept in an LRU cache (:func:`parse_cached`): user agents repeat a lot.
    """
    return parse_cached(ua[:MAX_UA_LENGTH])


@lru_cache(maxsize=CACHE_SIZE)
def parse_cached(ua: str) -> Agent:
    """:func:`parse` for a user agent already cut to :data:`MAX_UA_LENGTH`."""
    result = _parse_raw(ua)
    browser = version = os_name = os_version = None
    if result.user_agent is not None and result.user_agent.family != "Other":
        browser = result.user_agent.family
        version = _major(result.user_agent.major)
    if result.os is not None and result.os.family != "Other":
        os_name = result.os.family
        os_version = _major(result.os.major)
    device = _device_class(ua, result, os_name)
    if os_name == "iOS" and device == "tablet" and os_version and int(os_version) >= 13:
        os_name = "iPadOS"
    return Agent(
        browser=browser, browser_version=version, os=os_name, os_version=os_version, device=device
    )


def bot_reason(ua: str, headers: Mapping[str, str], *, allow_headless: bool = False) -> str | None:
    """Why this request is not a person viewing a page, or ``None``; header keys lower-case."""
    reason = _agent_bot_reason(ua[:MAX_UA_LENGTH], allow_headless)
    if reason is None and _is_prefetch(headers):
        return "bot:prefetch"
    return reason


@lru_cache(maxsize=CACHE_SIZE)
def _agent_bot_reason(ua: str, allow_headless: bool) -> str | None:
    lowered = ua.strip().lower()
    if not lowered:
        return "bot:headless"
    if not allow_headless and any(token in lowered for token in _HEADLESS_TOKENS):
        return "bot:headless"
    if (
        any(token in lowered for token in _CRAWLER_TOKENS)
        or _BOT_WORD.search(lowered)
        or _is_spider(ua)
    ):
        return "bot:crawler"
    return None


def screen_class(width: int | None) -> str | None:
    """CSS width in px → ``mobile`` < 576 ≤ ``tablet`` < 992 ≤ ``laptop`` < 1440 ≤ ``desktop``."""
    if width is None or width <= 0:
        return None
    if width < 576:
        return "mobile"
    if width < 992:
        return "tablet"
    if width < 1440:
        return "laptop"
    return "desktop"


def _major(version: str | None) -> str | None:
    if version is None:
        return None
    digits = version.strip()
    return digits if digits.isdigit() and len(digits) <= 6 else None


def _device_class(ua: str, result: Result, os_name: str | None) -> str:
    family = result.device.family if result.device is not None else None
    if family == "Spider" or _TV_OR_CONSOLE.search(ua):
        return "other"
    if _TABLET.search(ua) or (os_name == "Android" and not _MOBILE.search(ua)):
        return "tablet"
    if _MOBILE.search(ua) or os_name in ("iOS", "Android"):
        return "mobile"
    if os_name in _DESKTOP_OS or _DESKTOP_MARKERS.search(ua):
        return "desktop"
    return "other"


def _is_spider(ua: str) -> bool:
    device = _parse_raw(ua).device
    return device is not None and device.family == "Spider"


def _is_prefetch(headers: Mapping[str, str]) -> bool:
    sec_purpose = _tokens(headers.get("sec-purpose"))
    if "prefetch" in sec_purpose and "prerender" not in sec_purpose:
        return True
    purpose = _tokens(headers.get("purpose")) | _tokens(headers.get("x-purpose"))
    return bool(purpose & {"prefetch", "preview"}) or "prefetch" in _tokens(headers.get("x-moz"))


def _tokens(value: str | None) -> set[str]:
    # Sec-Purpose is a structured-field list ("prefetch;prerender", "prefetch;anonymous-client-ip"):
    # parameters and list members alike are treated as tokens.
    if not value:
        return set()
    return {token.strip().lower() for token in re.split(r"[;,]", value) if token.strip()}
