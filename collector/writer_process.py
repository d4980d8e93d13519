"""The SQLite writer in a process of its own, fed by the event loop through a Unix socket.

Why a process: in a thread, every SQLite statement of a group commit gives the GIL up while
SQLite runs and must take it back from the busy event loop. In the ingest benchmark a 16-event
group that commits in 1.2 ms alone took 13 to 31 ms next to the event loop, and those hand-offs
cost about as much CPU per hit as the storage itself. Here the event loop only encodes the
group (msgpack) and reads a one-byte-ish reply; the writer process (:mod:`collector.
writer_child`) runs SQLite on its own interpreter and, on a machine with two cores, on the
other core.

The contract is the thread writer's (:class:`collector.writer.Writer`): each submission gets a
future resolved only after the writer process said its group committed, so a 202 still means
durable; a full queue is refused (:class:`QueueFullError`); a failed commit fails every
submission of its group (:class:`WriteFailedError`). Group commit: the submissions of one pass
of the event loop are sent as one batch at once, and the writer commits every batch waiting
when its previous commit ends in one transaction.

If the writer process ends unexpectedly, the submissions it held fail with
:class:`WriteFailedError` (the commit may or may not have happened: nothing of it was
acknowledged) and the next submission starts a new one.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import os
import socket
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import msgspec

import collector
from collector.errors import QueueFullError, WriteFailedError
from collector.model import DropCount, Event
from collector.writer import MAX_GROUP, RETRY_AFTER_SECONDS
from collector.writer_child import Batch, FrameReader, Reply, frame

logger = logging.getLogger(__name__)

#: How long a graceful stop waits for the writer process to exit once its socket is closed.
EXIT_TIMEOUT_SECONDS = 30

# ``python -m collector.writer_child``, finding this very package even when it was imported from
# a path the new interpreter would not search (appended: it never shadows anything).
_CHILD_MAIN = (
    "import sys; sys.argv[0] = 'collector.writer_child'; "
    f"sys.path.append({str(Path(collector.__file__).resolve().parents[1])!r}); "
    "from collector.writer_child import main; sys.exit(main(sys.argv[1:]))"
)

_Submission = tuple[Sequence[Event], Sequence[DropCount], "asyncio.Future[None]"]


class ProcessWriter:
    """Commits what :meth:`submit` receives, in groups, in a writer process of its own."""

    def __init__(self, database: Path, *, queue_size: int, lock_timeout_ms: int) -> None:
        self._database = database
        self._queue_size = queue_size
        self._lock_timeout_ms = lock_timeout_ms
        self._pending: list[_Submission] = []
        # Sent, not yet answered: one list of futures per batch, oldest first.
        self._in_flight: collections.deque[list[asyncio.Future[None]]] = collections.deque()
        self._in_flight_count = 0
        self._send_scheduled = False
        self._closing = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._transport: asyncio.Transport | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._starting: asyncio.Task[None] | None = None
        self._drained = asyncio.Event()
        self._encode = msgspec.msgpack.Encoder().encode
        self._decode_reply = msgspec.msgpack.Decoder(Reply).decode

    @property
    def queued(self) -> int:
        """Submissions waiting for the writer (here, or sent and behind the oldest batch)."""
        return len(self._pending) + self._in_flight_count - self.committing

    @property
    def committing(self) -> int:
        """Submissions of the oldest batch sent, the one being committed now."""
        return len(self._in_flight[0]) if self._in_flight else 0

    @property
    def pid(self) -> int | None:
        """The writer process's id, while one runs."""
        return None if self._process is None else self._process.pid

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        await self._spawn()

    def submit(
        self, events: Sequence[Event], drops: Sequence[DropCount] = ()
    ) -> asyncio.Future[None]:
        """Queue ``events`` and ``drops`` for one commit; the future resolves once committed.

        Called from the event loop that started the writer.
        """
        if self.queued >= self._queue_size:
            raise QueueFullError(
                "write queue is full, retry later", retry_after=RETRY_AFTER_SECONDS
            )
        assert self._loop is not None, "start() first"
        future: asyncio.Future[None] = self._loop.create_future()
        self._pending.append((events, drops, future))
        self._drained.clear()
        if self._transport is None:
            if self._starting is None and not self._closing:
                self._starting = self._loop.create_task(self._respawn())
        elif not self._send_scheduled:
            # Sent after the callbacks already scheduled (hits read in the same pass of the
            # loop), so that they form one batch. Sent at once, not after the previous batch's
            # reply: the writer finds it waiting when its commit ends and commits every
            # waiting batch together, never idle while the event loop is busy.
            self._send_scheduled = True
            self._loop.call_soon(self._send_pending)
        return future

    async def close(self) -> None:
        """Commit what is queued, then end the writer process."""
        self._closing = True
        if self._starting is not None:
            await self._starting
        if self._transport is not None and (self._pending or self._in_flight):
            await self._drained.wait()
        if self._transport is not None:
            self._transport.close()
        process = self._process
        if process is not None:
            try:
                await asyncio.to_thread(process.wait, EXIT_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                logger.error("the writer process did not exit; killing it")
                process.kill()
                await asyncio.to_thread(process.wait)
        self._fail(self._take_pending(), "writer stopped")

    # -- the writer process ------------------------------------------------------------------

    async def _spawn(self) -> None:
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self._process = subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    _CHILD_MAIN,
                    "--fd",
                    str(child.fileno()),
                    "--database",
                    str(self._database),
                    "--lock-timeout-ms",
                    str(self._lock_timeout_ms),
                    "--parent",
                    str(os.getpid()),
                ],
                pass_fds=[child.fileno()],
                stdin=subprocess.DEVNULL,
            )
        finally:
            child.close()  # the writer's end lives on in the writer process only
        assert self._loop is not None
        transport, _ = await self._loop.connect_accepted_socket(lambda: _Replies(self), sock=parent)
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    async def _respawn(self) -> None:
        """Start a new writer process after the last one ended; send what waits."""
        try:
            if self._process is not None:
                await asyncio.to_thread(self._process.wait)
            await self._spawn()
        except Exception as exc:
            logger.exception("could not start a writer process")
            self._fail(self._take_pending(), f"storage write failed: {type(exc).__name__}")
            return
        finally:
            self._starting = None
        self._send_pending()

    def _send_pending(self) -> None:
        self._send_scheduled = False
        while self._transport is not None and self._pending:
            group = self._pending[:MAX_GROUP]
            del self._pending[:MAX_GROUP]
            batch = Batch(
                [event for submission in group for event in submission[0]],
                [drop for submission in group for drop in submission[1]],
            )
            self._in_flight.append([submission[2] for submission in group])
            self._in_flight_count += len(group)
            self._transport.write(frame(self._encode(batch)))

    def _on_reply(self, payload: bytes) -> None:
        reply = self._decode_reply(payload)
        for _ in range(reply.batches):
            futures = self._in_flight.popleft()
            self._in_flight_count -= len(futures)
            if reply.error is None:
                for future in futures:
                    if not future.done():  # a request that went away cancelled its own
                        future.set_result(None)
            else:
                self._fail(futures, f"storage write failed: {reply.error}")
        if not self._pending and not self._in_flight:
            self._drained.set()

    def _on_lost(self) -> None:
        """The writer process ended (or its socket closed): nothing it held was acknowledged."""
        self._transport = None
        while self._in_flight:
            self._fail(self._in_flight.popleft(), "storage write failed: writer process exited")
        self._in_flight_count = 0
        if self._closing:
            self._fail(self._take_pending(), "storage write failed: writer process exited")
        else:
            logger.error("the writer process ended; a new one starts with the next hit")
            if self._pending and self._starting is None and self._loop is not None:
                self._starting = self._loop.create_task(self._respawn())
        self._drained.set()

    def _take_pending(self) -> list[asyncio.Future[None]]:
        futures = [submission[2] for submission in self._pending]
        self._pending.clear()
        return futures

    @staticmethod
    def _fail(futures: list[asyncio.Future[None]], message: str) -> None:
        for future in futures:
            if not future.done():
                future.set_exception(WriteFailedError(message, retry_after=RETRY_AFTER_SECONDS))


class _Replies(asyncio.Protocol):
    """The event loop's end of the writer's socket."""

    def __init__(self, writer: ProcessWriter) -> None:
        self._writer = writer
        self._reader = FrameReader()

    def data_received(self, data: bytes) -> None:
        self._reader.feed(data)
        while (payload := self._reader.next_frame()) is not None:
            self._writer._on_reply(payload)

    def connection_lost(self, exc: Exception | None) -> None:
        self._writer._on_lost()
