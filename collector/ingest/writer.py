"""The one writer thread: drains a bounded queue and commits hits in groups.

Each submission gets an :class:`asyncio.Future` of the submitting event loop, resolved after its
group's commit, so a handler that awaits it answers 202 only for committed hits. A full queue is
refused (:class:`QueueFullError`), never dropped silently; a failed commit fails every submission
of the group (:class:`WriteFailedError`): nothing in it was acknowledged.

A group's futures are resolved by one callback per event loop, not one per submission: a
wake-up of the loop per hit (``wrap_future``, ``call_soon_threadsafe``, the self-pipe) showed
in the ingest benchmark's profile at a few percent of each thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
import time
from collections.abc import Sequence

from collector.errors import QueueFullError, WriteFailedError
from collector.storage.ports import EventStore
from collector.storage.rows import DropCount, Event

logger = logging.getLogger(__name__)

#: Submissions committed together at most; bounds a transaction's length.
MAX_GROUP = 500
RETRY_AFTER_SECONDS = 2
#: Quiet time after which the writer brings the report rollups up to date.
IDLE_SECONDS = 0.25
#: Pause after each commit, so that another worker process waiting to write gets its turn.
TURN_HANDOFF_SECONDS = 0.00005

_Submission = tuple[Sequence[Event], Sequence[DropCount], "asyncio.Future[None]"]


class Writer:
    """Commits what :meth:`submit` receives, in groups, on its own thread."""

    def __init__(self, storage: EventStore, *, queue_size: int) -> None:
        self._storage = storage
        # SimpleQueue (C, no Condition to notify on each put) bounded by ``submit`` itself:
        # ``queue.Queue``'s locking showed at a few percent of the event loop in the profile.
        self._queue: queue.SimpleQueue[_Submission | None] = queue.SimpleQueue()
        self._queue_size = queue_size
        self._thread = threading.Thread(target=self._run, name="mesure-writer", daemon=True)
        self._committing = 0

    @property
    def queued(self) -> int:
        """Submissions waiting for the writer."""
        return self._queue.qsize()

    @property
    def committing(self) -> int:
        """Submissions in the group being committed now."""
        return self._committing

    def start(self) -> None:
        self._thread.start()

    def submit(
        self, events: Sequence[Event], drops: Sequence[DropCount] = ()
    ) -> asyncio.Future[None]:
        """Queue ``events`` and ``drops`` for one commit; the future resolves once committed.

        Called from a running event loop; the future belongs to it.
        """
        # Only event loops put and only the writer takes, so between this check and the put the
        # queue can only shrink (or grow by another loop's put: one per process in production).
        if self._queue.qsize() >= self._queue_size:
            raise QueueFullError(
                "write queue is full, retry later", retry_after=RETRY_AFTER_SECONDS
            )
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.put((events, drops, future))
        return future

    def stop(self) -> None:
        """Commit what is queued, then end the thread."""
        self._queue.put(None)
        self._thread.join()

    def _run(self) -> None:
        # Report rollups are refreshed once no hit has arrived for IDLE_SECONDS (a backlog after
        # a restart too), in short transactions, and only while none waits: refreshing right
        # after each commit cost three times the hit itself in the ingest benchmark (its
        # clients leave the queue empty after every commit), and waiting for a quiet moment
        # also refreshes a visit once for all of its recent hits.
        stale = True
        while True:
            try:
                first = self._queue.get(timeout=IDLE_SECONDS) if stale else self._queue.get()
            except queue.Empty:
                while stale and self._queue.qsize() == 0:
                    stale = self._refresh_rollups()
                continue
            # The group is gathered once it is this process's turn to write (other worker
            # processes commit first): what arrived meanwhile joins it. Gathering before the
            # wait made groups of 6 hits with two workers, each paying a whole commit.
            with self._storage.write_turn():
                group: list[_Submission] = []
                stopping = first is None
                if first is not None:
                    group.append(first)
                while len(group) < MAX_GROUP and not stopping:
                    try:
                        item = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if item is None:
                        stopping = True
                    else:
                        group.append(item)
                if group:
                    self._committing = len(group)
                    self._commit(group)
                    self._committing = 0
                    stale = True
            if stopping:
                return
            # The kernel wakes a worker waiting for the turn when this one ends it, but this
            # thread, still running, would take the turn back first: the other worker's hits
            # then waited through several commits (p99 62 ms instead of 11 in the ingest
            # benchmark with two workers). A pause this short gives the turn away.
            time.sleep(TURN_HANDOFF_SECONDS)

    def _refresh_rollups(self) -> bool:
        """One step of the idle-time rollup refresh; ``True`` while more is pending. A failure
        is logged and retried after the next commit (never in a tight loop)."""
        try:
            return self._storage.refresh_rollups()
        except Exception:
            logger.exception("refreshing the report rollups failed; retrying after next commit")
            return False

    def _commit(self, group: list[_Submission]) -> None:
        events = [event for submission in group for event in submission[0]]
        drops = [drop for submission in group for drop in submission[1]]
        error: WriteFailedError | None = None
        try:
            self._storage.insert_hits(events, drops)
        except Exception as exc:
            logger.exception("group commit of %d submissions failed", len(group))
            error = WriteFailedError(
                f"storage write failed: {type(exc).__name__}", retry_after=RETRY_AFTER_SECONDS
            )
        by_loop: dict[asyncio.AbstractEventLoop, list[asyncio.Future[None]]] = {}
        for _, _, future in group:
            by_loop.setdefault(future.get_loop(), []).append(future)
        for loop, futures in by_loop.items():
            with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits any more
                loop.call_soon_threadsafe(_settle, futures, error)


def _settle(futures: list[asyncio.Future[None]], error: WriteFailedError | None) -> None:
    """Resolve ``futures`` on their loop; a request that went away has cancelled its own."""
    for future in futures:
        if future.done():
            continue
        if error is None:
            future.set_result(None)
        else:
            future.set_exception(error)
