"""Shared test helpers: a settable clock and a real collector served by uvicorn in a thread."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx
import uvicorn

from collector.config import Config, config_from_mapping
from collector.storage import open_events
from collector.storage.ports import EventStore
from collector.storage.sqlite.events import open_storage
from collector.web.app import create_app
from collector.web.server import UVICORN_SETTINGS, GracefulServer

#: A desktop browser: the collector counts crawler and tool user agents (httpx's too) as bots.
BROWSER_UA = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36"
)

DEFAULT_SITES: dict[str, list[str]] = {
    "example": ["example.com", "*.example.com", "localhost", "127.0.0.1"]
}


def browser_client(base_url: str, **kwargs: Any) -> httpx.Client:
    """An ``httpx.Client`` that presents itself as a desktop browser."""
    headers = {"user-agent": BROWSER_UA, **kwargs.pop("headers", {})}
    return httpx.Client(base_url=base_url, headers=headers, **kwargs)


ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def mesure_command(*args: str) -> list[str]:
    """The ``mesure`` command line, run from this work tree (no installation needed)."""
    return [sys.executable, "-m", "collector", *args]


def start_mesure_serve(
    data: Path, port: int, env: dict[str, str], *, workers: int | None = 1
) -> subprocess.Popen[bytes]:
    """Run ``mesure serve`` in its own process group; return once ``/healthz`` answers.

    ``workers=None`` leaves ``mesure serve`` its default. Its output goes to ``serve.log``
    beside ``data``.
    """
    log = data.parent / "serve.log"
    chosen = [] if workers is None else ["--workers", str(workers)]
    with log.open("ab") as output:
        process = subprocess.Popen(
            mesure_command("serve", "--data", str(data), "--port", str(port), *chosen),
            cwd=ROOT,
            env=env,
            stdout=output,
            stderr=output,
            start_new_session=True,  # a kill of the group reaches every worker
        )
    with browser_client(f"http://127.0.0.1:{port}") as client:
        for _attempt in range(1200):  # a bound, not a timing: normally a few attempts
            if process.poll() is not None:
                break
            try:
                if client.get("/healthz", timeout=1).status_code == 200:
                    return process
            except httpx.TransportError:
                threading.Event().wait(0.05)
    process.kill()
    raise RuntimeError(f"mesure serve did not come up: {log.read_text()}")


class Clock:
    """A settable fake clock, injected into ``create_app(clock=...)``."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("Clock needs an aware datetime")
        self._now = start.astimezone(UTC)
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, **timedelta_kwargs: float) -> None:
        with self._lock:
            self._now += timedelta(**timedelta_kwargs)

    def set(self, when: datetime) -> None:
        if when.tzinfo is None:
            raise ValueError("Clock needs an aware datetime")
        with self._lock:
            self._now = when.astimezone(UTC)


def build_config(
    data_dir: Path,
    sites: dict[str, list[str]] | None = None,
    consent: dict[str, dict[str, Any]] | None = None,
    site_options: dict[str, dict[str, Any]] | None = None,
    **server: Any,
) -> Config:
    """A :class:`Config` as ``mesure.toml`` would give it; ``server`` keys may be snake_case."""
    document = {
        "server": {key.replace("_", "-"): value for key, value in server.items()},
        "sites": [
            {
                "id": site_id,
                "hostnames": hostnames,
                "consent": (consent or {}).get(site_id, {}),
                **(site_options or {}).get(site_id, {}),
            }
            for site_id, hostnames in (sites or DEFAULT_SITES).items()
        ],
    }
    return config_from_mapping(
        document, data_dir=data_dir, environ={}, source=data_dir / "mesure.toml"
    )


class LiveServer:
    """A real collector on 127.0.0.1, in a thread; restartable on the same port and data.

    ``sweep_seconds`` goes to ``create_app``: a test that sets ``clock`` forward makes it short
    for the running collector to notice the new day without a hit.
    """

    def __init__(
        self, config: Config, clock: Clock | None, *, sweep_seconds: float | None = None
    ) -> None:
        self.config = config
        self.clock = clock
        self.sweep_seconds = sweep_seconds
        self.data_dir = config.data_dir
        self.port = 0
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        if self._server is not None:
            raise RuntimeError("server already running")
        options: dict[str, Any] = {}
        if self.clock is not None:
            options["clock"] = self.clock
        if self.sweep_seconds is not None:
            options["sweep_seconds"] = self.sweep_seconds
        app = create_app(self.config, **options)
        server = GracefulServer(
            # The production server and settings (``mesure serve``'s), on a free port of 127.0.0.1.
            uvicorn.Config(app, host="127.0.0.1", port=self.port, lifespan="on", **UVICORN_SETTINGS)
        )

        def run() -> None:
            # uvicorn exits with SystemExit(3) when the lifespan fails; start() reports it.
            with contextlib.suppress(SystemExit):
                server.run()

        thread = threading.Thread(target=run, name="mesure-live-server", daemon=True)
        thread.start()
        started = threading.Event()
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError("the collector failed to start; see the log above")
            started.wait(0.01)
        self.port = server.servers[0].sockets[0].getsockname()[1]
        self._server, self._thread = server, thread

    def stop(self) -> None:
        if self._server is None or self._thread is None:
            return
        self._server.should_exit = True
        self._thread.join()
        self._server = self._thread = None

    def events(self) -> list[dict[str, Any]]:
        """All rows of the events table, ordered by id."""
        storage = _reader(self.config)
        try:
            return storage.events()
        finally:
            storage.close()

    def visits(self) -> list[dict[str, Any]]:
        storage = _reader(self.config)
        try:
            return storage.visits()
        finally:
            storage.close()

    def dropped_hits(self, site: str = "example") -> dict[tuple[str, str], int]:
        storage = _reader(self.config)
        try:
            return storage.dropped_hits(site)
        finally:
            storage.close()


def _reader(config: Config) -> EventStore:
    """The events backend of ``config``: the SQLite file unmigrated, or ClickHouse."""
    if config.clickhouse is None:
        return open_storage(config.database_path, migrate=False)
    return open_events(config)


Found = TypeVar("Found")


def traced_plans(db: Any, run: Callable[[], Found], marker: str) -> tuple[Found, list[str]]:
    """``run()``'s result, and SQLite's query plan of each statement it ran on ``db`` (a
    ``ReportsDatabase``) whose text holds ``marker``: which indexes a report reads."""
    statements: list[str] = []
    db._conn.set_trace_callback(statements.append)
    try:
        found = run()
    finally:
        db._conn.set_trace_callback(None)
    plans = [
        " ".join(str(row[3]) for row in db._conn.execute(f"EXPLAIN QUERY PLAN {sql}"))
        for sql in statements
        if marker in sql
    ]
    return found, plans
