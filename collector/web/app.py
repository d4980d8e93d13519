"""The Starlette application: ``create_app(config, *, clock, keys)`` and its routes."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ipaddress
import logging
import os
import socket
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import msgspec
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import Receive, Scope, Send

from collector.audit import AuditLog
from collector.config import CONFIG_FILE, Config, load_config
from collector.errors import (
    BadRequestError,
    ConfigError,
    ForbiddenError,
    HTTPError,
    RateLimitedError,
)
from collector.ingest.parsers.geo import GeoLookup
from collector.ingest.parsers.urls import host_allowed
from collector.ingest.hit import SILENT_REASONS, Client, Dropped, receive
from collector.ingest.pipeline import Pipeline
from collector.ingest.ratelimit import SharedCounters
from collector.ingest.wire import MAX_BATCH_BYTES, MAX_HIT_BYTES, HitIn, decode_batch, decode_hit
from collector.ingest.writer import Writer
from collector.keys import KeyStore
from collector.privacy.retention import ServerRetention
from collector.serving_lock import hold as hold_serving_lock
from collector.storage import EventStore, open_events
from collector.storage.rows import DropCount, Event
from collector.web import openapi
from collector.web.dashboard import routes as dashboard_routes
from collector.web.http import CorsMiddleware, read_body, receive_body
from collector.web.routes import accounts as account_routes
from collector.web.routes import funnels as funnel_routes
from collector.web.routes import privacy as privacy_routes
from collector.web.routes import reports as api_routes
from collector.web.routes import snippet as snippet_routes

# The smallest transparent GIF: 1×1, one palette entry.
PIXEL_GIF = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
#: The longest the collector goes without looking at the clock for a new UTC day (expired daily
#: keys to destroy, the day's retention run to make). It also wakes at each midnight of its clock;
#: this bound covers a wall clock that was set forward meanwhile.
KEY_SWEEP_SECONDS = 600
SIGNAL_HEADERS = ("sec-gpc", "dnt", "sec-purpose", "purpose", "x-purpose", "x-moz")
_SIGNAL_NAMES = frozenset(name.encode("latin-1") for name in SIGNAL_HEADERS)
_IPV4_MAPPED = bytes(10) + b"\xff\xff"


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Services:
    """What the lifespan opens, shared by every request of the process."""

    config: Config
    clock: Callable[[], datetime]
    storage: EventStore
    writer: Writer
    keys: KeyStore
    pipeline: Pipeline


def services(request: Request) -> Services:
    found: Services = request.state.services
    return found


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
        Route("/api/hit", post_hit, methods=["POST"]),
        Route("/api/batch", post_batch, methods=["POST"]),
        Route("/p.gif", get_pixel, methods=["GET"]),
        Route("/healthz", get_health, methods=["GET"]),
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
    third of its CPU time in the ingest benchmark's profile. :func:`hit_endpoint` does the same
    work in plain ASGI (CORS included, the same answers); every other request, preflights of
    ``/api/hit`` included, goes through Starlette as before.
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
            await hit_endpoint(scope, receive, send, self._origin_allowed)
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


async def post_hit(request: Request) -> Response:
    """``POST /api/hit`` through Starlette (its route stays for the OpenAPI description and for
    mounts that bypass :class:`Collector`); :func:`hit_endpoint` answers it in production."""
    svc = services(request)
    wire = decode_hit(await read_body(request, MAX_HIT_BYTES, _body_timeout(svc)))
    await _ingest(svc, [(wire, _client(request))], field_prefix="$")
    return Response(status_code=202)


async def hit_endpoint(
    scope: Scope, receive: Receive, send: Send, origin_allowed: Callable[[str], bool]
) -> None:
    """``POST /api/hit`` in plain ASGI: the answers of :func:`post_hit` behind
    :class:`~collector.web.http.CorsMiddleware` and :func:`_http_error`, for less CPU per hit."""
    svc: Services = scope["state"]["services"]
    head = _read_head(scope, svc.config.server.client_ip_header)
    origin = head.client.origin
    headers: list[tuple[bytes, bytes]] = []
    if origin is not None and origin_allowed(origin):
        headers = [
            (b"access-control-allow-origin", origin.encode("latin-1")),
            (b"vary", b"Origin"),
            (b"access-control-expose-headers", b"Retry-After"),
        ]
    try:
        body = await receive_body(
            receive,
            MAX_HIT_BYTES,
            _body_timeout(svc),
            content_length=head.content_length,
            content_type=head.content_type,
        )
        await _ingest(svc, [(decode_hit(body), head.client)], field_prefix="$")
    except ClientDisconnect:
        return  # nobody to answer; nothing was queued
    except HTTPError as exc:
        payload = msgspec.json.encode({"error": exc.message, "field": exc.field})
        extra = [(name.lower().encode("latin-1"), v.encode()) for name, v in exc.headers.items()]
        start_headers = [
            (b"content-length", str(len(payload)).encode()),
            (b"content-type", b"application/json"),
            *extra,
            *headers,
        ]
        await send({"type": "http.response.start", "status": exc.status, "headers": start_headers})
        await send({"type": "http.response.body", "body": payload})
        return
    headers.append((b"content-length", b"0"))
    await send({"type": "http.response.start", "status": 202, "headers": headers})
    await send({"type": "http.response.body", "body": b""})


async def post_batch(request: Request) -> Response:
    """Up to 1,000 events; ``ip``/``ua`` per event only with the site's ingest token."""
    timeout = _body_timeout(services(request))
    wires = decode_batch(await read_body(request, MAX_BATCH_BYTES, timeout))
    token = _bearer_token(request)
    base = _client(request)
    config = services(request).config
    batch: list[tuple[HitIn, Client]] = []
    for index, wire in enumerate(wires):
        site = config.site(wire.site)
        trusted = token is not None and site is not None and site.token_matches(token)
        if token is not None and not trusted:
            raise ForbiddenError("invalid ingest token for this site", field=f"$[{index}].site")
        if not trusted and (wire.ip is not None or wire.ua is not None):
            field = f"$[{index}].{'ip' if wire.ip is not None else 'ua'}"
            raise ForbiddenError("ip and ua need the site's ingest token", field=field)
        if wire.ip is not None:
            try:
                ipaddress.ip_address(wire.ip)
            except ValueError:
                raise BadRequestError("not an IP address", field=f"$[{index}].ip") from None
        client = msgspec.structs.replace(
            base,
            ip=wire.ip or base.ip,
            user_agent=base.user_agent if wire.ua is None else wire.ua,
            trusted=trusted,
        )
        batch.append((wire, client))
    await _ingest(services(request), batch, field_prefix="$[{index}]")
    return JSONResponse({"received": len(batch)}, status_code=202)


async def get_pixel(request: Request) -> Response:
    """The ``<noscript>`` pixel: the page is the ``url`` parameter or the ``Referer``."""
    site = request.query_params.get("site", "")
    url = request.query_params.get("url") or request.headers.get("referer", "")
    wire = decode_hit(msgspec.json.encode({"site": site, "url": url}))
    await _ingest(services(request), [(wire, _client(request))], field_prefix="$")
    return Response(PIXEL_GIF, media_type="image/gif", headers={"Cache-Control": "no-store"})


async def get_health(request: Request) -> Response:
    """Liveness, with the write queue's state (what operators watch under load)."""
    writer = services(request).writer
    return JSONResponse({"status": "ok", "queued": writer.queued, "committing": writer.committing})


async def _ingest(
    svc: Services, batch: Sequence[tuple[HitIn, Client]], *, field_prefix: str
) -> None:
    """Run each hit through the pipeline; return once everything kept is committed.

    Any refused hit refuses the whole request (nothing of it is stored).
    """
    now = svc.clock()
    events: list[Event] = []
    drops: list[DropCount] = []
    for index, (wire, client) in enumerate(batch):
        prefix = field_prefix.format(index=index)
        try:
            hit = receive(svc.config, wire, client, now)
            outcome = svc.pipeline.run(hit)
        except HTTPError as exc:
            exc.field = prefix + (exc.field or "$")[1:]
            raise
        if isinstance(outcome, Dropped):
            if outcome.reason == "hostname":
                raise ForbiddenError(
                    "page or Origin hostname not allowed for this site", field=prefix + ".url"
                )
            if outcome.reason not in SILENT_REASONS:
                raise RateLimitedError(
                    "too many hits, retry later", retry_after=outcome.retry_after
                )
            drops.append(svc.pipeline.drop_count(hit.site, outcome.reason, now))
        else:
            events.append(outcome)
    await svc.writer.submit(events, drops)


class _Head(msgspec.Struct):
    """What one pass over a request's headers finds."""

    client: Client
    content_length: str | None = None
    content_type: str | None = None


def _client(request: Request) -> Client:
    return _read_head(request.scope, services(request).config.server.client_ip_header).client


def _read_head(scope: Scope, proxy_header: str | None) -> _Head:
    """What the headers say about the sender, read in one pass over the raw headers (this runs
    for every hit: six ``getlist`` scans were about half of its cost in a profile)."""
    proxy_name = None if proxy_header is None else proxy_header.encode("latin-1")
    signals: dict[str, tuple[str, ...]] = {}
    user_agent: str | None = None
    origin: str | None = None
    forwarded: str | None = None
    content_length: str | None = None
    content_type: str | None = None
    for raw_name, raw_value in scope["headers"]:
        name = raw_name.lower()  # uvicorn lower-cases already; other servers may not
        if name == b"user-agent":
            if user_agent is None:
                user_agent = raw_value.decode("latin-1")
        elif name == b"content-type":
            if content_type is None:
                content_type = raw_value.decode("latin-1")
        elif name == b"content-length":
            if content_length is None:
                content_length = raw_value.decode("latin-1")
        elif name == b"origin":
            if origin is None:
                origin = raw_value.decode("latin-1")
        elif name == proxy_name:
            # The last line: a proxy that adds its own line (HAProxy's `option forwardfor`)
            # leaves the client's lines before it.
            forwarded = raw_value.decode("latin-1")
        elif name in _SIGNAL_NAMES:
            key = name.decode("latin-1")
            signals[key] = (*signals.get(key, ()), raw_value.decode("latin-1"))
    ip = None if forwarded is None else forwarded_address(forwarded)
    if ip is None:
        peer = scope.get("client")
        ip = peer[0] if peer else ""
    client = Client(ip=ip, user_agent=user_agent or "", origin=origin, headers=signals)
    return _Head(client, content_length, content_type)


def forwarded_address(value: str) -> str | None:
    """The client address in a ``client-ip-header`` value: its last entry, the one the nearest
    proxy appended (what comes before may be anything the client sent). It is spelled one way
    per address, or the rate limit and the cookieless hash would count one client as several:
    without the port some proxies add (``192.0.2.1:4711``, ``[2001:db8::1]:443``), IPv6
    compressed and lower case, an IPv4-mapped IPv6 address as IPv4. ``None`` when the entry is
    not an address (``unknown``, empty): the caller then keys on the proxy's own address, so a
    broken proxy makes limits apply sooner, never later."""
    entry = value.rpartition(",")[2].strip()
    if entry.startswith("["):
        host, closed, port = entry[1:].partition("]")
        if not closed or (port and not (port[0] == ":" and port[1:].isdigit())):
            return None
        entry = host
    elif entry.count(":") == 1:
        host, _, port = entry.partition(":")
        if not port.isdigit():
            return None
        entry = host
    # inet_pton/inet_ntop rather than ipaddress: this runs for every hit (0.7 µs against 3).
    family = socket.AF_INET6 if ":" in entry else socket.AF_INET
    try:
        packed = socket.inet_pton(family, entry)
    except (OSError, ValueError):  # ValueError: a NUL character
        return None
    if family == socket.AF_INET6 and packed.startswith(_IPV4_MAPPED):
        return socket.inet_ntop(socket.AF_INET, packed[12:])
    return socket.inet_ntop(family, packed)


def _body_timeout(svc: Services) -> float:
    return svc.config.server.body_timeout_ms / 1000


def _bearer_token(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


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
