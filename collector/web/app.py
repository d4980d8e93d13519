"""The Starlette application: ``create_app(config, *, clock, keys)``, its lifespan (what a
process opens, :class:`~collector.web.services.Services`) and the daily sweep; the routes are in
:mod:`collector.web.routes` and :mod:`collector.web.dashboard`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute
from starlette.types import Receive, Scope, Send

from collector.audit import AuditLog
from collector.config import CONFIG_FILE, Config, load_config
from collector.errors import (
    ConfigError,
    HTTPError,
)
from collector.ingest.parsers.geo import GeoLookup
from collector.ingest.parsers.urls import host_allowed
from collector.ingest.pipeline import Pipeline
from collector.ingest.ratelimit import SharedCounters
from collector.ingest.writer import Writer
from collector.keys import KeyStore
from collector.privacy.retention import ServerRetention
from collector.serving_lock import hold as hold_serving_lock
from collector.storage import open_events
from collector.web import openapi
from collector.web.dashboard import routes as dashboard_routes
from collector.web.http import CorsMiddleware
from collector.web.routes import accounts as account_routes
from collector.web.routes import funnels as funnel_routes
from collector.web.routes import ingest as ingest_routes
from collector.web.routes import privacy as privacy_routes
from collector.web.routes import reports as api_routes
from collector.web.routes import snippet as snippet_routes
from collector.web.services import Services

#: The longest the collector goes without looking at the clock for a new UTC day (expired daily
#: keys to destroy, the day's retention run to make). It also wakes at each midnight of its clock;
#: this bound covers a wall clock that was set forward meanwhile.
KEY_SWEEP_SECONDS = 600


def utc_now() -> datetime:
    return datetime.now(UTC)


def create_app(
    config: Config,
    *,
    clock: Callable[[], datetime] = utc_now,
    keys: KeyStore | None = None,
    counters: SharedCounters | None = None,
    runs_retention: bool = True,
    sweep_seconds: float = KEY_SWEEP_SECONDS,
) -> Starlette:
    """The collector for ``config``; ``clock`` and ``keys`` are injectable for tests.

    ``counters``: the rate-limit state shared by the worker processes of one collector
    (:mod:`collector.web.workers`); the process's own when not given. ``runs_retention``: whether
    this process runs the start-up and daily retention (one worker of several does).
    ``sweep_seconds``: the longest time between two looks at ``clock`` for a new UTC day; a
    test that sets its clock forward makes it short, so the running collector notices.
    """

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        config.data_dir.mkdir(parents=True, exist_ok=True)
        # Tells `mesure restore` that this directory is served, until this process ends.
        serving = hold_serving_lock(config.data_dir)
        audit = AuditLog(config.audit_path, clock)
        key_store = keys or KeyStore.open(config.keys_dir, audit, [s.id for s in config.sites])
        storage = open_events(config, lock_timeout_ms=config.server.write_timeout_ms)
        geo = _open_geo(config)
        writer = Writer(storage, queue_size=config.server.queue_size)
        writer.start()
        pipeline = Pipeline(config, key_store, clock, geo, counters)
        key_store.daily_keys(clock())  # destroys keys that expired while the collector was down
        retention = ServerRetention(config, key_store, clock) if runs_retention else None
        if retention is not None:
            await asyncio.to_thread(retention.run_if_due)  # data that expired while it was down
        stopping = asyncio.Event()
        sweeper = asyncio.create_task(
            _sweep_daily(key_store, retention, clock, sweep_seconds, stopping)
        )
        try:
            yield {"services": Services(config, clock, storage, writer, key_store, pipeline)}
        finally:
            # Not cancelled: a retention run under way finishes before the database is closed
            # (in its thread it would go on regardless).
            stopping.set()
            await sweeper
            writer.stop()
            storage.close()
            geo.close()
            os.close(serving)

    routes: list[BaseRoute] = [
        *ingest_routes.routes(),
        *snippet_routes.routes(config),
        *api_routes.routes(config),
        *account_routes.routes(config),
        *funnel_routes.routes(config),
        *privacy_routes.routes(config),
        *dashboard_routes.routes(config),
        *openapi.routes(),
    ]
    origin_allowed = _origin_checker(config)
    return Collector(
        routes=routes,
        middleware=[Middleware(CorsMiddleware, origin_allowed=origin_allowed)],
        exception_handlers={HTTPError: _http_error},
        lifespan=lifespan,
        origin_allowed=origin_allowed,
    )


class Collector(Starlette):
    """The Starlette app, with ``POST /api/hit`` answered before Starlette's stack.

    A hit is the one request that comes by the thousand per second; through Starlette it paid
    for the error middleware, our CORS middleware (a ``Headers`` object and a wrapped ``send``),
    the router's matching, a ``Request``, a ``Response`` and the exception middleware: about a
    third of its CPU time in the ingest benchmark's profile.
    :func:`~collector.web.routes.ingest.hit_endpoint` does the same work in plain ASGI (CORS
    included, the same answers); every other request, preflights of ``/api/hit`` included, goes
    through Starlette as before.
    """

    def __init__(self, *args: Any, origin_allowed: Callable[[str], bool], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._origin_allowed = origin_allowed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] == "POST"
            and scope["path"] == scope.get("root_path", "") + "/api/hit"
        ):
            await ingest_routes.hit_endpoint(scope, receive, send, self._origin_allowed)
            return
        await super().__call__(scope, receive, send)


async def _sweep_daily(
    keys: KeyStore,
    retention: ServerRetention | None,
    clock: Callable[[], datetime],
    every: float,
    stopping: asyncio.Event,
) -> None:
    """Rotate daily keys and destroy expired ones even when no hit asks for them; run the
    day's retention once the UTC day has changed (in the process that runs it). Until
    ``stopping`` is set."""
    while True:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), sweep_delay(clock(), every))
        if stopping.is_set():
            return
        try:
            # In a thread: destroying a key syncs its file, which the hits must not wait for.
            await asyncio.to_thread(keys.daily_keys, clock())
        except Exception:
            # A key that cannot be written today (a full disk) must not end the sweeps: the
            # expired keys would then outlive their 48 hours.
            logging.getLogger("mesure").exception("daily key sweep failed; retrying later")
        if retention is not None:
            await asyncio.to_thread(retention.run_if_due)  # logs and retries its own failures


def sweep_delay(now: datetime, every: float) -> float:
    """Seconds until the next sweep: the next UTC midnight of ``now``'s clock, at most
    ``every``. The keys of a day that just ended are destroyed on time, not up to ``every``
    seconds late."""
    now = now.astimezone(UTC)
    midnight = datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), UTC)
    return min(every, (midnight - now).total_seconds())


def _open_geo(config: Config) -> GeoLookup:
    path = config.server.geo_database
    try:
        return GeoLookup.open(None if path is None else Path(path))
    except ValueError as exc:
        raise ConfigError(
            str(exc), path=config.data_dir / CONFIG_FILE, key="server.geo-database"
        ) from exc


def app_from_env() -> Starlette:
    """Factory for ``uvicorn --factory collector.web.app:app_from_env`` (reads ``MESURE_DATA``)."""
    data_dir = Path(os.environ.get("MESURE_DATA", "mesure-data")).resolve()
    return create_app(load_config(data_dir, os.environ))


def _origin_checker(config: Config) -> Callable[[str], bool]:
    def origin_allowed(origin: str) -> bool:
        hostname = urlsplit(origin).hostname
        return hostname is not None and any(
            host_allowed(hostname, site.hostnames) for site in config.sites
        )

    return origin_allowed


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPError)
    return JSONResponse(
        {"error": exc.message, "field": exc.field}, status_code=exc.status, headers=exc.headers
    )
