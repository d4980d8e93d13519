"""Fixed-window rate limits per client and per site, on the injected clock.

The client key is a keyed hash of its address under a random key that lives only in memory, so
the limiter never holds an IP address. Counts live in a :class:`CounterTable`: shared memory that
the worker processes of ``mesure serve --workers N`` inherit from their supervisor, so a limit is
one limit for the whole collector, not one per process (the kernel spreads a client's
connections over the workers).
"""

from __future__ import annotations

import copy
import hashlib
import math
import mmap
import secrets
import struct
import threading
from collections.abc import Callable
from datetime import datetime

WINDOW_SECONDS = 60
#: Keys counted per window and table before keys start sharing counters (see CounterTable).
TABLE_SLOTS = 1 << 16
#: Slots looked at for a key before it shares the last one.
MAX_PROBES = 16
# key fingerprint, window number, count.
_SLOT = struct.Struct("<QII")


class CounterTable:
    """Per-key counts for the current window, in shared memory: one row of ``slots`` 16-byte
    entries per worker process.

    A worker counts only in its own row (:meth:`for_worker`), so no two processes ever write
    the same bytes and no lock is shared between them: a lock across processes measured at 9 %
    of the event loop in the ingest benchmark, its holder often preempted while holding it. A
    key's count is the sum of its entries in every row; two workers counting the same key at
    the same instant may each allow its last hit, so a limit can be passed by at most
    ``workers - 1`` hits.

    In a row, a key lives in one of the ``MAX_PROBES`` slots after its fingerprint's home slot;
    a slot whose window has passed is free, so rows empty themselves at each new window. When
    every probed slot holds another key of this window (more than ``slots`` keys a minute: a
    flood of addresses), the key shares the last probed slot: limits then apply sooner, never
    later, and memory stays fixed whatever clients send.
    """

    def __init__(self, workers: int = 1, slots: int = TABLE_SLOTS) -> None:
        self._slots = slots
        self._rows = workers
        self._row = 0
        self._memory = mmap.mmap(-1, workers * slots * _SLOT.size)  # shared across fork()
        self._lock = threading.Lock()

    def for_worker(self, index: int) -> CounterTable:
        """This table as worker ``index`` (0 ≤ index < workers) counts in it."""
        if not 0 <= index < self._rows:
            raise ValueError(f"worker index {index} outside 0..{self._rows - 1}")
        view = copy.copy(self)
        view._row = index
        view._lock = threading.Lock()
        return view

    def add(self, key: bytes, window: int, count: int, limit: int) -> bool:
        """Add ``count`` to ``key`` in ``window`` unless that would pass ``limit``; ``True`` if
        added (the hit is allowed)."""
        fingerprint = int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "little")
        with self._lock:
            total = 0
            own = -1
            own_used = 0
            for row in range(self._rows):
                offset, used = self._find(row, fingerprint, window)
                total += used
                if row == self._row:
                    own, own_used = offset, used
            if total + count > limit:
                return False
            _SLOT.pack_into(self._memory, own, fingerprint, window, own_used + count)
            return True

    def _find(self, row: int, fingerprint: int, window: int) -> tuple[int, int]:
        """The offset of ``fingerprint``'s entry in ``row`` (or of the entry it would take) and
        its count in ``window``."""
        base = row * self._slots
        home = fingerprint % self._slots
        offset = 0
        for probe in range(MAX_PROBES):
            offset = (base + (home + probe) % self._slots) * _SLOT.size
            held, held_window, used = _SLOT.unpack_from(self._memory, offset)
            if held_window != window:  # free: nobody counted here in this window
                return offset, 0
            if held == fingerprint:
                return offset, used
        return offset, used


class RateLimiter:
    """At most ``per_minute`` hits per key in each clock minute."""

    def __init__(
        self,
        per_minute: int,
        clock: Callable[[], datetime],
        table: CounterTable | None = None,
    ) -> None:
        self._per_minute = per_minute
        self._clock = clock
        self._table = table or CounterTable()

    def hit(self, key: bytes | str, count: int = 1) -> int | None:
        """Count ``count`` hits of ``key``: ``None`` if allowed, else seconds to wait."""
        now = self._clock().timestamp()
        window = int(now // WINDOW_SECONDS)
        raw = key.encode() if isinstance(key, str) else key
        # Window numbers are stored as 32 bits: minutes since 1970 fit until the year 10136.
        if self._table.add(raw, window % (1 << 32), count, self._per_minute):
            return None
        return max(1, math.ceil((window + 1) * WINDOW_SECONDS - now))


class SharedCounters:
    """The rate-limit state the worker processes of one collector share: the client and site
    tables, and the key of the client addresses' hashes (random, in memory only, so counts die
    with the collector and its tables never hold an address)."""

    def __init__(self, workers: int = 1) -> None:
        self.clients = CounterTable(workers)
        self.sites = CounterTable(workers)
        self.salt = secrets.token_bytes(32)

    def for_worker(self, index: int) -> SharedCounters:
        """The counters as worker ``index`` counts in them."""
        view = copy.copy(self)
        view.clients = self.clients.for_worker(index)
        view.sites = self.sites.for_worker(index)
        return view
