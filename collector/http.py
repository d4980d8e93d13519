"""HTTP plumbing of the collector: bounded body reading, CORS for ``/api/``."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from starlette.datastructures import Headers
from starlette.requests import ClientDisconnect, Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from collector.errors import BadRequestError, PayloadTooLargeError, RequestTimeoutError

ACCEPTED_TYPES = ("text/plain", "application/json")


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
