"""HTTP plumbing of the collector: bounded body reading (hits, JSON and form bodies of the
API), same-origin redirect targets, CORS for ``/api/``."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlsplit

import msgspec
from starlette.datastructures import Headers
from starlette.requests import ClientDisconnect, Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from collector.errors import BadRequestError, PayloadTooLargeError, RequestTimeoutError

ACCEPTED_TYPES = ("text/plain", "application/json")
#: Bodies of the dashboard and API routes (login, goals, funnels, privacy requests).
MAX_BODY_BYTES = 16 * 1024
FORM_TYPE = "application/x-www-form-urlencoded"

T = TypeVar("T")


async def read_body(request: Request, limit: int, timeout: float) -> bytes:
    """The request body, refusing more than ``limit`` bytes without reading them all, and a body
    that takes longer than ``timeout`` seconds to arrive (a slow-loris client)."""
    return await receive_body(
        request.receive,
        limit,
        timeout,
        content_length=request.headers.get("content-length"),
        content_type=request.headers.get("content-type"),
    )


async def receive_body(
    receive: Receive,
    limit: int,
    timeout: float,
    *,
    content_length: str | None,
    content_type: str | None,
) -> bytes:
    """:func:`read_body` at the ASGI level, for the hot ``/api/hit`` route, which has no
    Starlette ``Request`` (its headers are read in one pass by the caller). Raises Starlette's
    ``ClientDisconnect`` when the client goes away before its body is complete."""
    if content_length is not None and content_length.isdigit() and int(content_length) > limit:
        raise PayloadTooLargeError(f"body over {limit} bytes")
    media_type = "text/plain" if content_type is None else _media_type(content_type)
    if media_type not in ACCEPTED_TYPES:
        raise BadRequestError(
            f"content type must be one of {', '.join(ACCEPTED_TYPES)}", field="content-type"
        )
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(timeout):
            while True:
                message = await receive()
                if message["type"] != "http.request":
                    raise ClientDisconnect()
                chunk: bytes = message.get("body", b"")
                size += len(chunk)
                if size > limit:
                    raise PayloadTooLargeError(f"body over {limit} bytes")
                if not message.get("more_body", False):
                    if not chunks:
                        return chunk  # the usual case: the whole body in one message
                    chunks.append(chunk)
                    break
                chunks.append(chunk)
    except TimeoutError:
        raise RequestTimeoutError(f"body not received within {timeout:g} s") from None
    return b"".join(chunks)


async def read_small_body(request: Request) -> bytes:
    """A JSON or form body of the API, any content type, refused past ``MAX_BODY_BYTES``
    before it is all read and when it takes longer than ``body-timeout-ms`` to arrive."""
    timeout = request.state.services.config.server.body_timeout_ms / 1000
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(timeout):
            async for chunk in request.stream():
                size += len(chunk)
                if size > MAX_BODY_BYTES:
                    raise BadRequestError(f"body over {MAX_BODY_BYTES} bytes", field="$")
                chunks.append(chunk)
    except TimeoutError:
        raise RequestTimeoutError(f"body not received within {timeout:g} s") from None
    return b"".join(chunks)


def is_form(request: Request) -> bool:
    return request.headers.get("content-type", "").startswith(FORM_TYPE)


async def read_form(request: Request) -> dict[str, str]:
    """An ``application/x-www-form-urlencoded`` body (parsed here: no multipart dependency)."""
    try:
        text = (await read_small_body(request)).decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequestError("form body is not UTF-8", field="$") from None
    return dict(parse_qsl(text, keep_blank_values=True))


async def read_json(request: Request, decoder: msgspec.json.Decoder[T], expected: str) -> T:
    """A JSON body decoded into its struct; a 400 names the field at fault, or says what was
    ``expected`` when the body is not JSON at all."""
    raw = await read_small_body(request)
    try:
        return decoder.decode(raw)
    except msgspec.ValidationError as exc:
        path = str(exc).partition(" - at `")[2]
        raise BadRequestError(str(exc), field=path.rstrip("`") or "$") from None
    except msgspec.DecodeError:
        raise BadRequestError(f"expected {expected}", field="$") from None


async def read_fields(
    request: Request, decoder: msgspec.json.Decoder[Any], expected: str
) -> dict[str, str]:
    """The string fields of a form post (the dashboard's) or of a JSON body (API clients)."""
    if is_form(request):
        return await read_form(request)
    body = await read_json(request, decoder, expected)
    items = body.items() if isinstance(body, dict) else msgspec.structs.asdict(body).items()
    return {name: value for name, value in items if isinstance(value, str)}


def local_path(target: str) -> str:
    """Only same-origin paths are followed after a form post (no open redirect)."""
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return "/"
    return target


def _media_type(content_type: str) -> str:
    return content_type.split(";")[0].strip().lower()


class CorsMiddleware:
    """CORS for ``/api/`` paths: any origin whose hostname belongs to a configured site.

    The snippet posts ``text/plain`` without credentials (a simple request); JSON clients get
    preflights answered here. Other paths pass through untouched.
    """

    def __init__(self, app: ASGIApp, origin_allowed: Callable[[str], bool]) -> None:
        self.app = app
        self.origin_allowed = origin_allowed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/api/"):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        origin = headers.get("origin")
        allowed = origin is not None and self.origin_allowed(origin)
        if scope["method"] == "OPTIONS" and "access-control-request-method" in headers:
            await self._preflight(send, origin if allowed else None)
            return

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start" and allowed and origin is not None:
                extra = [
                    (b"access-control-allow-origin", origin.encode("latin-1")),
                    (b"vary", b"Origin"),
                    (b"access-control-expose-headers", b"Retry-After"),
                ]
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, send_with_cors)

    async def _preflight(self, send: Send, origin: str | None) -> None:
        headers = [(b"vary", b"Origin"), (b"content-length", b"0")]
        if origin is not None:
            headers += [
                (b"access-control-allow-origin", origin.encode("latin-1")),
                (b"access-control-allow-methods", b"POST, OPTIONS"),
                (b"access-control-allow-headers", b"Content-Type, Authorization"),
                (b"access-control-max-age", b"86400"),
            ]
        status = 204 if origin is not None else 403
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": b""})
