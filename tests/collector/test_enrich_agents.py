"""User agents → browser, OS and device class; bot, headless and prefetch detection; screens."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.ingest.parsers.agents import (
    MAX_UA_LENGTH,
    Agent,
    bot_reason,
    parse,
    parse_cached,
    screen_class,
)

DATA = json.loads((Path(__file__).parent / "data" / "user_agents.json").read_text("utf-8"))
# Real-world user agents of people's browsers: (id, UA, expected Agent).
BROWSERS: list[tuple[str, str, Agent]] = [
    (
        case["id"],
        case["ua"],
        Agent(
            browser=case["browser"],
            browser_version=case["browser_version"],
            os=case["os"],
            os_version=case["os_version"],
            device=case["device"],
        ),
    )
    for case in DATA["browsers"]
]
# Crawlers, link previews, HTTP clients, automation: (id, UA, reason, reason if headless allowed).
BOTS: list[tuple[str, str, str, str | None]] = [
    (case["id"], case["ua"], case["reason"], case["reason_if_headless_allowed"])
    for case in DATA["bots"]
]


@pytest.mark.parametrize(
    ("ua", "expected"), [c[1:] for c in BROWSERS], ids=[c[0] for c in BROWSERS]
)
def test_parse_real_browsers(ua: str, expected: Agent) -> None:
    assert parse(ua) == expected


@pytest.mark.parametrize("ua", [c[1] for c in BROWSERS], ids=[c[0] for c in BROWSERS])
def test_real_browsers_are_not_bots(ua: str) -> None:
    assert bot_reason(ua, {}) is None


@pytest.mark.parametrize(
    ("ua", "reason", "reason_if_headless_allowed"), [c[1:] for c in BOTS], ids=[c[0] for c in BOTS]
)
def test_bot_reason(ua: str, reason: str, reason_if_headless_allowed: str | None) -> None:
    assert bot_reason(ua, {}) == reason
    assert bot_reason(ua, {}, allow_headless=True) == reason_if_headless_allowed


def test_bots_parse_as_other_devices() -> None:
    crawlers = [ua for _, ua, reason, _ in BOTS if reason == "bot:crawler" and "Mobile" not in ua]
    assert {parse(ua).device for ua in crawlers} == {"other"}


CHROME = BROWSERS[0][1]
PREFETCH: list[tuple[str, dict[str, str], str | None]] = [
    ("no-headers", {}, None),
    ("sec-purpose-prefetch", {"sec-purpose": "prefetch"}, "bot:prefetch"),
    ("sec-purpose-prefetch-uppercase", {"sec-purpose": " Prefetch "}, "bot:prefetch"),
    (
        "sec-purpose-private-prefetch",
        {"sec-purpose": "prefetch;anonymous-client-ip"},
        "bot:prefetch",
    ),
    ("sec-purpose-prerender-is-real", {"sec-purpose": "prefetch;prerender"}, None),
    ("purpose-prefetch", {"purpose": "prefetch"}, "bot:prefetch"),
    ("x-moz-prefetch", {"x-moz": "prefetch"}, "bot:prefetch"),
    ("safari-top-sites-preview", {"x-purpose": "preview"}, "bot:prefetch"),
    ("unrelated-purpose", {"purpose": "navigate"}, None),
    ("other-headers", {"sec-fetch-mode": "no-cors", "dnt": "1"}, None),
]


@pytest.mark.parametrize(
    ("headers", "reason"), [c[1:] for c in PREFETCH], ids=[c[0] for c in PREFETCH]
)
def test_prefetch_headers(headers: dict[str, str], reason: str | None) -> None:
    assert bot_reason(CHROME, headers) == reason


def test_crawler_wins_over_prefetch_and_headless_over_crawler() -> None:
    assert bot_reason("curl/8.5.0", {"sec-purpose": "prefetch"}) == "bot:crawler"
    assert bot_reason("HeadlessChrome/124 Googlebot/2.1", {}) == "bot:headless"
    assert bot_reason("HeadlessChrome/124 Googlebot/2.1", {}, allow_headless=True) == "bot:crawler"


@pytest.mark.parametrize(
    ("width", "expected"),
    [
        (None, None),
        (0, None),
        (-320, None),
        (320, "mobile"),
        (575, "mobile"),
        (576, "tablet"),
        (991, "tablet"),
        (992, "laptop"),
        (1439, "laptop"),
        (1440, "desktop"),
        (7680, "desktop"),
    ],
    ids=lambda value: str(value),
)
def test_screen_class(width: int | None, expected: str | None) -> None:
    assert screen_class(width) == expected


def test_parse_is_cached() -> None:
    parse_cached.cache_clear()
    first = parse(CHROME)
    assert parse(CHROME) is first
    info = parse_cached.cache_info()
    assert (info.hits, info.misses) == (1, 1)


def test_huge_user_agents_are_cut_before_parsing_and_caching() -> None:
    parse_cached.cache_clear()
    huge = CHROME + " " + "x" * 100_000
    assert parse(huge) == parse(CHROME)
    assert bot_reason(huge + " Googlebot/2.1", {}) is None  # past the cut: not seen
    assert bot_reason("Googlebot/2.1 " + huge, {}) == "bot:crawler"
    # Two entries, CHROME and the first MAX_UA_LENGTH characters of huge: never the whole.
    assert parse_cached.cache_info().currsize == 2
    assert len(huge) > MAX_UA_LENGTH


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_any_user_agent_parses_to_a_known_device_class(ua: str) -> None:
    agent = parse(ua)
    assert agent.device in {"desktop", "mobile", "tablet", "other"}
    assert agent.browser_version is None or agent.browser_version.isdigit()
    assert bot_reason(ua, {}) in {None, "bot:crawler", "bot:headless"}
