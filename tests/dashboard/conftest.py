"""Fixtures of the dashboard tests: a live collector on the realistic dataset, its accounts,
and Chromium from the OS (launched here with its own arguments, like the snippet tests)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Playwright

from tests.dashboard.dataset import NOW, PASSWORD, USERS, write
from tests.support import Clock, LiveServer

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]


class Dashboard:
    """The running collector and helpers to act as one of its accounts."""

    def __init__(self, server: LiveServer, clock: Clock) -> None:
        self.server = server
        self.clock = clock
        self.url = server.url

    def login(self, role: str) -> tuple[httpx.Client, str]:
        """An httpx client holding ``role``'s session cookie, and its CSRF token."""
        client = httpx.Client(base_url=self.url)
        response = client.post("/login", json={"email": USERS[role], "password": PASSWORD})
        assert response.status_code == 200, response.text
        return client, response.json()["csrf_token"]


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dashboard]:
    config = write(tmp_path_factory.mktemp("dashboard") / "data")
    clock = Clock(NOW)
    server = LiveServer(config, clock)
    server.start()
    try:
        yield Dashboard(server, clock)
    finally:
        server.stop()


@pytest.fixture(scope="session")
def dashboard_browser(playwright: Playwright) -> Iterator[Browser]:
    browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
    yield browser
    browser.close()
