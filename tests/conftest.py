"""Fixtures shared by the whole suite: ``serve`` starts a real collector; ``clock`` fakes time."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests import loopback_guard
from tests.support import Clock, LiveServer, build_config

__all__ = ["Clock", "LiveServer"]

# docs/design.md §5.6: the suite passes with only loopback reachable. Any other connect or name
# lookup raises OSError and is recorded in OUTBOUND_LOG, which must stay empty: in the test process
# (collectors served in threads included) and, through the environment that every subprocess
# inherits, in the Python processes the tests start. Set here, at import, so that environments
# built by test modules from os.environ when they are imported carry it too. A session of its
# own (a pytest run started by a test) gets a log of its own.
OUTBOUND_LOG = Path(tempfile.mkdtemp(prefix="mesure-outbound-")) / "refused.log"
os.environ[loopback_guard.LOG_VARIABLE] = str(OUTBOUND_LOG)
_paths = os.environ.get("PYTHONPATH", "").split(os.pathsep)
os.environ["PYTHONPATH"] = os.pathsep.join(
    [
        loopback_guard.SITE_DIR,
        *(path for path in _paths if path not in ("", loopback_guard.SITE_DIR)),
    ]
)
loopback_guard.install()

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


def _refused() -> list[str]:
    try:
        return OUTBOUND_LOG.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []


def pytest_sessionfinish(session: pytest.Session) -> None:
    """A connection attempt fails the run even when every test passed: the program that made
    it may have swallowed the refusal."""
    if _refused():
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any) -> None:
    # Repeated at the end, where it is seen even with -q.
    terminalreporter.write_line(_clickhouse_note())
    refused = _refused()
    if refused:
        terminalreporter.write_line(
            f"OUTBOUND CONNECTION ATTEMPTS ({len(refused)}), refused by tests/loopback_guard.py;"
            " the run fails:",
            red=True,
            bold=True,
        )
        for line in refused:
            terminalreporter.write_line(f"  {line}", red=True)


def pytest_unconfigure() -> None:
    shutil.rmtree(OUTBOUND_LOG.parent, ignore_errors=True)


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
