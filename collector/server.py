"""How ``mesure serve`` runs uvicorn: the settings that bound what one client can hold.

What a hostile client can take, and for how long (tests/collector/test_hostile_connections.py):

- a connection that sends no complete request head is closed after ``timeout_keep_alive``
  seconds, like an idle keep-alive connection (uvicorn alone would keep it forever);
- a request head is at most 16 KiB (h11's incomplete-event buffer: 400 beyond it), so a
  header flood costs 16 KiB per connection; h11 is chosen even when httptools is installed,
  whose parser has no such bound;
- at most ``limit_concurrency`` connections at once (503 beyond), so idle connections are
  bounded in memory;
- a body must arrive within ``server.body-timeout-ms`` (408) and within the size limit of its
  route (413), both enforced by :func:`collector.http.read_body`.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

MAX_REQUEST_HEAD_BYTES = 16 * 1024
MAX_CONNECTIONS = 4096
KEEP_ALIVE_SECONDS = 5


class BoundedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol, with a deadline for the first request head of a connection."""

    _first_request_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._first_request_deadline = self.loop.call_later(
            self.timeout_keep_alive, self._close_if_no_request
        )

    def connection_lost(self, exc: Exception | None) -> None:
        if self._first_request_deadline is not None:
            self._first_request_deadline.cancel()
        super().connection_lost(exc)

    def _close_if_no_request(self) -> None:
        if self.cycle is None and not self.transport.is_closing():
            self.transport.close()


#: The uvicorn settings of ``mesure serve`` (the ingest benchmark runs its ceiling on the same).
UVICORN_SETTINGS: dict[str, Any] = {
    "log_level": "warning",
    "access_log": False,  # access logs would write client IP addresses
    "ws": "none",
    "http": BoundedH11Protocol,
    "h11_max_incomplete_event_size": MAX_REQUEST_HEAD_BYTES,
    "limit_concurrency": MAX_CONNECTIONS,
    "timeout_keep_alive": KEEP_ALIVE_SECONDS,
}
