"""How ``mesure serve`` runs uvicorn: the settings that bound what one client can hold.

What a hostile client can take, and for how long (tests/collector/test_hostile_connections.py):

- a connection that sends no complete request head is closed after ``timeout_keep_alive``
  seconds, like an idle keep-alive connection (uvicorn alone would keep it forever);
- a request head is at most 16 KiB (400 beyond), so a header flood costs 16 KiB per connection.
  uvicorn's httptools protocol has no such bound (it buffered a 200 MB header: 413 MB of
  memory), so :class:`BoundedHttpToolsProtocol` counts the bytes of each head as they arrive;
  the h11 fallback bounds them with ``h11_max_incomplete_event_size``;
- at most ``limit_concurrency`` connections at once (503 beyond), so idle connections are
  bounded in memory;
- a body must arrive within ``server.body-timeout-ms`` (408) and within the size limit of its
  route (413), both enforced by :func:`collector.web.http.read_body`.

httptools is preferred to h11 because it parses three times faster: the bare Starlette
endpoint of the ingest benchmark answers about three times more requests per second with it.
"""

from __future__ import annotations

import asyncio
import importlib.util
import socket
from typing import Any

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

MAX_REQUEST_HEAD_BYTES = 16 * 1024
LATE_CONNECTION_CHECK_SECONDS = 0.05
#: The exit status of a collector (or worker) whose app could not start (uvicorn's own value).
STARTUP_FAILURE = 3
MAX_CONNECTIONS = 4096
KEEP_ALIVE_SECONDS = 5


class _FirstRequestDeadline:
    """Close a connection whose first request head has not arrived after the keep-alive time."""

    _first_request_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # asyncio.BaseProtocol's parameter type: uvicorn's protocols narrow it to Transport, which
        # the mixin, first in their bases, may not do.
        super().connection_made(transport)  # type: ignore[misc]
        self._first_request_deadline = self.loop.call_later(  # type: ignore[attr-defined]
            self.timeout_keep_alive,  # type: ignore[attr-defined]
            self._close_if_no_request,
        )

    def connection_lost(self, exc: Exception | None) -> None:
        if self._first_request_deadline is not None:
            self._first_request_deadline.cancel()
        super().connection_lost(exc)  # type: ignore[misc]

    def _close_if_no_request(self) -> None:
        transport = self.transport  # type: ignore[attr-defined]
        if self.cycle is None and not transport.is_closing():  # type: ignore[attr-defined]
            transport.close()


class BoundedH11Protocol(_FirstRequestDeadline, H11Protocol):
    """uvicorn's h11 protocol with the first-request deadline (h11 bounds the head itself)."""


if importlib.util.find_spec("httptools") is not None:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    class BoundedHttpToolsProtocol(_FirstRequestDeadline, HttpToolsProtocol):
        """uvicorn's httptools protocol, with the deadline and a bound on each request head."""

        _in_head = True
        _head_bytes = 0

        def on_message_begin(self) -> None:
            self._in_head = True
            super().on_message_begin()

        def on_headers_complete(self) -> None:
            self._in_head = False
            super().on_headers_complete()

        def on_message_complete(self) -> None:
            super().on_message_complete()
            self._in_head = True  # what comes next on a keep-alive connection is a new head
            self._head_bytes = 0

        def data_received(self, data: bytes) -> None:
            if self._in_head:
                end = data.find(b"\r\n\r\n")
                used = self._head_bytes + (len(data) if end < 0 else end + 4)
                if used > MAX_REQUEST_HEAD_BYTES:
                    self.send_400_response("Request head too large.")
                    return
                self._head_bytes = used if end < 0 else 0
            super().data_received(data)

    # Module level, not local: worker processes receive the class by its import path.
    PROTOCOL: type[asyncio.Protocol] = BoundedHttpToolsProtocol
else:  # pragma: no cover - httptools is a dependency; h11 is the fallback
    PROTOCOL = BoundedH11Protocol


class GracefulServer(uvicorn.Server):
    """uvicorn's server, whose graceful stop also reaches the connections accepted as it began.

    uvicorn closes the listener, then tells each open connection to finish its request and
    close. Connections the event loop had already taken from the backlog are made a moment
    later and are never told: a client that keeps sending on one holds the process until it
    stops sending (tests/collector/test_workers.py: a worker under continuous load did not end
    on SIGTERM in 10 runs of 35; in none of 45 with this). Telling every connection again until
    none is left ends them too, each after the response it is writing.
    """

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        async def tell_every_connection() -> None:
            while True:
                await asyncio.sleep(LATE_CONNECTION_CHECK_SECONDS)
                for connection in list(self.server_state.connections):
                    connection.shutdown()

        teller = asyncio.create_task(tell_every_connection())
        try:
            await super().shutdown(sockets)
        finally:
            teller.cancel()


def run_server(config: uvicorn.Config) -> None:
    """``uvicorn.run`` with :class:`GracefulServer`: serve until SIGTERM or SIGINT."""
    server = GracefulServer(config)
    server.run()
    if not server.started:
        raise SystemExit(STARTUP_FAILURE)


#: The uvicorn settings of ``mesure serve`` (the ingest benchmark runs its ceiling on the same).
UVICORN_SETTINGS: dict[str, Any] = {
    "log_level": "warning",
    "access_log": False,  # access logs would write client IP addresses
    "ws": "none",
    "http": PROTOCOL,
    "h11_max_incomplete_event_size": MAX_REQUEST_HEAD_BYTES,
    "limit_concurrency": MAX_CONNECTIONS,
    "timeout_keep_alive": KEEP_ALIVE_SECONDS,
    # The client address comes from the socket, or from ``client-ip-header`` when configured:
    # uvicorn's own handling would trust X-Forwarded-For from 127.0.0.1 without being asked.
    "proxy_headers": False,
    "server_header": False,
}
