"""The hit routes: ``POST /api/hit`` (also in plain ASGI, :func:`hit_endpoint`), ``POST
/api/batch``, the ``<noscript>`` pixel and ``/healthz``; and what a request's head says about its
sender (:func:`client_of`, :func:`forwarded_address`), which the login throttle keys on too.
"""

from __future__ import annotations

import base64
import ipaddress
import socket
from collections.abc import Callable, Sequence

import msgspec
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import Receive, Scope, Send

from collector.errors import BadRequestError, ForbiddenError, HTTPError, RateLimitedError
from collector.ingest.hit import SILENT_REASONS, Client, Dropped, receive
from collector.ingest.wire import MAX_BATCH_BYTES, MAX_HIT_BYTES, HitIn, decode_batch, decode_hit
from collector.storage.rows import DropCount, Event
from collector.web.http import read_body, receive_body
from collector.web.services import Services, services

# The smallest transparent GIF: 1×1, one palette entry.
PIXEL_GIF = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
SIGNAL_HEADERS = ("sec-gpc", "dnt", "sec-purpose", "purpose", "x-purpose", "x-moz")
_SIGNAL_NAMES = frozenset(name.encode("latin-1") for name in SIGNAL_HEADERS)
_IPV4_MAPPED = bytes(10) + b"\xff\xff"


def routes() -> list[BaseRoute]:
    return [
        Route("/api/hit", post_hit, methods=["POST"]),
        Route("/api/batch", post_batch, methods=["POST"]),
        Route("/p.gif", get_pixel, methods=["GET"]),
        Route("/healthz", get_health, methods=["GET"]),
    ]


async def post_hit(request: Request) -> Response:
    """``POST /api/hit`` through Starlette (its route stays for the OpenAPI description and for
    mounts that bypass :class:`~collector.web.app.Collector`); :func:`hit_endpoint` answers it in
    production."""
    svc = services(request)
    wire = decode_hit(await read_body(request, MAX_HIT_BYTES, _body_timeout(svc)))
    await _ingest(svc, [(wire, client_of(request))], field_prefix="$")
    return Response(status_code=202)


async def hit_endpoint(
    scope: Scope, receive: Receive, send: Send, origin_allowed: Callable[[str], bool]
) -> None:
    """``POST /api/hit`` in plain ASGI: the answers of :func:`post_hit` behind
    :class:`~collector.web.http.CorsMiddleware` and the app's :class:`HTTPError` handler, for less
    CPU per hit."""
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
    base = client_of(request)
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
    await _ingest(services(request), [(wire, client_of(request))], field_prefix="$")
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


def client_of(request: Request) -> Client:
    """The sender of ``request``, as the hits and the login throttle see it."""
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
