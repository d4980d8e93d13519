"""Fixtures shared by the whole suite: ``serve`` starts a real collector; ``clock`` fakes time."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.loopback_guard import install as install_loopback_guard
from tests.support import Clock, LiveServer, build_config

__all__ = ["Clock", "LiveServer"]

# DESIGN.md §5.6: the suite passes with only loopback reachable. Any other connect or name lookup
# made by the test process (collectors served in threads included) raises OSError.
install_loopback_guard(None)

#: A Tuesday noon, far from any daylight-saving change.
CLOCK_START = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


def _clickhouse_note() -> str:
    url = "MESURE_TEST_CLICKHOUSE_URL"
    if os.environ.get(url):
        return f"ClickHouse backend tests: embedded chDB and the server at ${url}"
    return f"ClickHouse backend tests: embedded chDB only; server variants NOT run (set ${url})"


def pytest_report_header() -> str:
    """Say whether the ClickHouse backend tests also run against a networked server."""
    return _clickhouse_note()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    # Repeated at the end, where it is seen even with -q.
    terminalreporter.write_line(_clickhouse_note())


@pytest.fixture
def clock() -> Clock:
    return Clock(CLOCK_START)


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., LiveServer]]:
    """Start collectors: ``serve(sites=..., consent=..., clock=..., **server_overrides)``.

    Every server started is stopped at teardown. Each call gets its own data directory.
    """
    started: list[LiveServer] = []

    def start(
        sites: dict[str, list[str]] | None = None,
        consent: dict[str, dict[str, Any]] | None = None,
        clock: Clock | None = None,
        site_options: dict[str, dict[str, Any]] | None = None,
        **config_overrides: Any,
    ) -> LiveServer:
        data_dir = tmp_path / f"data{len(started)}"
        config = build_config(data_dir, sites, consent, site_options, **config_overrides)
        server = LiveServer(config, clock)
        started.append(server)
        server.start()
        return server

    yield start
    for server in started:
        server.stop()
