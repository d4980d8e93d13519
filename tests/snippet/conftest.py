"""Fixtures of the snippet's tests: Chromium from the OS, the fixture-page server, a collector.

The snippet's tests launch their own Chromium (from pytest-playwright's ``playwright``), with the
name mapping they need, rather than the session's shared ``browser``: another part of the suite
may launch that one first, with other arguments.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright

from tests.snippet.harness import COLLECTOR_HOST, SITE_HOST, PageServer
from tests.support import LiveServer, build_config

#: A desktop browser's user agent: the collector filters HeadlessChrome as a bot.
DESKTOP_UA = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    # Both test hosts are this machine; every other name fails to resolve, so an outbound link
    # clicked in a test goes nowhere.
    f"--host-resolver-rules=MAP {SITE_HOST} 127.0.0.1, MAP {COLLECTOR_HOST} 127.0.0.1, "
    "MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost",
    # Keepalive requests sent while a page unloads skip the context's user-agent override.
    f"--user-agent={DESKTOP_UA}",
]


@pytest.fixture(scope="session")
def snippet_browser(playwright: Playwright) -> Iterator[Browser]:
    browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
    yield browser
    browser.close()


@pytest.fixture
def context(snippet_browser: Browser) -> Iterator[BrowserContext]:
    """A fresh profile per test: empty storage and cookies."""
    context = snippet_browser.new_context(user_agent=DESKTOP_UA)
    yield context
    context.close()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    return context.new_page()


@pytest.fixture(scope="session")
def page_server() -> Iterator[PageServer]:
    server = PageServer()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def collector(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One real collector for the browser tests; each test reads the rows of its own paths."""
    data_dir: Path = tmp_path_factory.mktemp("collector")
    server = LiveServer(build_config(data_dir), None)
    server.start()
    yield server
    server.stop()
