"""Fixed-window rate limits per client and per site, on the injected clock.

The client key is a keyed hash of its address under a random per-process key, so the limiter
never holds an IP address, and its table is dropped at every new window.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Hashable
from datetime import datetime

WINDOW_SECONDS = 60


class RateLimiter:
    """At most ``per_minute`` hits per key in each clock minute."""

    def __init__(self, per_minute: int, clock: Callable[[], datetime]) -> None:
        self._per_minute = per_minute
        self._clock = clock
        self._lock = threading.Lock()
        self._window = -1
        self._counts: dict[Hashable, int] = {}

    def hit(self, key: Hashable, count: int = 1) -> int | None:
        """Count ``count`` hits of ``key``: ``None`` if allowed, else seconds to wait."""
        now = self._clock().timestamp()
        window = int(now // WINDOW_SECONDS)
        with self._lock:
            if window != self._window:
                self._window = window
                self._counts = {}
            used = self._counts.get(key, 0) + count
            if used > self._per_minute:
                return max(1, math.ceil((window + 1) * WINDOW_SECONDS - now))
            self._counts[key] = used
            return None
