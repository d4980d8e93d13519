"""``live``: start a collector on a privacy test's data directory; every one is stopped after."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from collector.config import Config
from tests.support import Clock, LiveServer


@pytest.fixture
def live() -> Iterator[Callable[[Config, Clock], LiveServer]]:
    started: list[LiveServer] = []

    def start(config: Config, clock: Clock) -> LiveServer:
        server = LiveServer(config, clock)
        started.append(server)
        server.start()
        return server

    yield start
    for server in started:
        server.stop()
