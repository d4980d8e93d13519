"""The SQLite writer process: ``python -m collector.writer_child --fd N --database PATH``.

It owns the database connection of one collector process (:class:`~collector.writer_process.
ProcessWriter` starts it) and reads batches from a Unix socket inherited as file descriptor
``N``: a batch is what the event loop submitted in one pass; the writer commits every batch
waiting in the socket in one transaction (:meth:`Storage.insert_hits`) and answers with one
reply saying how many batches it covered and whether they committed. When no batch has come
for ``IDLE_SECONDS`` it brings the report rollups up to date, in short transactions, as long as
no batch waits.

It ends when the socket closes, which the kernel does when the collector process ends however
it ends (``kill -9`` included): a writer never goes on writing for a collector that is gone.
It ignores SIGINT and SIGTERM (a Ctrl-C or a service manager reaches the whole process group):
the collector, stopping gracefully, sends what it still holds and then closes the socket.

Frames, both ways: a 4-byte big-endian length, then a msgpack document (:class:`Batch` or
:class:`Reply`).
"""

from __future__ import annotations

import argparse
import logging
import os
import select
import signal
import socket
import struct
import sys
from pathlib import Path

import msgspec

from collector.model import DropCount, Event
from collector.storage import Storage, open_storage

#: Quiet time after which the writer brings the report rollups up to date.
IDLE_SECONDS = 0.25
#: Events beyond which waiting batches are left for the next commit (bounds a transaction).
MAX_GROUP_EVENTS = 2_000
HEADER = struct.Struct(">I")

logger = logging.getLogger("collector.writer_child")


class Batch(msgspec.Struct, array_like=True):
    """One group commit: every event and drop counter of the submissions it gathers."""

    events: list[Event]
    drops: list[DropCount]


class Reply(msgspec.Struct, array_like=True):
    """The answer to the next ``batches`` batches, committed together; ``error`` names the
    exception when they were not committed."""

    batches: int
    error: str | None = None


def frame(payload: bytes) -> bytes:
    return HEADER.pack(len(payload)) + payload


class FrameReader:
    """Splits a byte stream into frames."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> None:
        self._buffer += data

    def next_frame(self) -> bytes | None:
        """The next complete frame's payload, or ``None`` until more bytes come."""
        if len(self._buffer) < HEADER.size:
            return None
        (length,) = HEADER.unpack_from(self._buffer)
        end = HEADER.size + length
        if len(self._buffer) < end:
            return None
        payload = bytes(self._buffer[HEADER.size : end])
        del self._buffer[:end]
        return payload


class _Child:
    """The writer's loop: commit each batch, answer it, refresh rollups when idle."""

    def __init__(self, sock: socket.socket, storage: Storage, parent: int) -> None:
        self._sock = sock
        self._storage = storage
        self._parent = parent
        self._reader = FrameReader()
        self._decode = msgspec.msgpack.Decoder(Batch).decode
        self._encode = msgspec.msgpack.Encoder().encode

    def run(self) -> None:
        stale = True  # rollups may be pending from before a restart
        while True:
            payload = self._reader.next_frame()
            if payload is None:
                if stale and not self._readable(IDLE_SECONDS):
                    if os.getppid() != self._parent:
                        return  # the collector is gone (the closed socket says so too)
                    while stale and not self._readable(0):
                        stale = self._refresh_rollups()
                    continue
                data = self._sock.recv(1 << 20)
                if not data:
                    return  # the collector closed the socket, or ended
                self._reader.feed(data)
                continue
            batches = [self._decode(payload), *self._waiting_batches()]
            events = [event for batch in batches for event in batch.events]
            drops = [drop for batch in batches for drop in batch.drops]
            error: str | None = None
            try:
                self._storage.insert_hits(events, drops)
            except Exception as exc:
                logger.exception("group commit of %d events failed", len(events))
                error = type(exc).__name__
            try:
                self._sock.sendall(frame(self._encode(Reply(len(batches), error))))
            except OSError:
                return  # the collector is gone
            stale = True

    def _waiting_batches(self) -> list[Batch]:
        """The batches that arrived during the last commit: they join the next one (a group
        commit across batches, so the writer never waits for the event loop between two)."""
        while True:
            try:
                data = self._sock.recv(1 << 20, socket.MSG_DONTWAIT)
            except BlockingIOError:
                break
            if not data:
                break  # the end of the socket: seen again by the next blocking recv
            self._reader.feed(data)
        batches: list[Batch] = []
        size = 0
        while size < MAX_GROUP_EVENTS and (payload := self._reader.next_frame()) is not None:
            batches.append(self._decode(payload))
            size += len(batches[-1].events)
        return batches

    def _readable(self, timeout: float) -> bool:
        ready, _, _ = select.select([self._sock], [], [], timeout)
        return bool(ready)

    def _refresh_rollups(self) -> bool:
        """One step of the idle-time rollup refresh; ``True`` while more is pending. A failure
        is logged and retried after the next commit (never in a tight loop)."""
        try:
            return self._storage.refresh_rollups()
        except Exception:
            logger.exception("refreshing the report rollups failed; retrying after next commit")
            return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m collector.writer_child")
    parser.add_argument("--fd", type=int, required=True)
    parser.add_argument("--database", required=True)
    parser.add_argument("--lock-timeout-ms", type=int, default=10_000)
    parser.add_argument("--parent", type=int, required=True)
    args = parser.parse_args(argv)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    sock = socket.socket(fileno=args.fd)
    sock.setblocking(True)
    # No migration: the collector process migrated the database before starting this one.
    storage = open_storage(Path(args.database), migrate=False, lock_timeout_ms=args.lock_timeout_ms)
    try:
        _Child(sock, storage, args.parent).run()
    finally:
        storage.close()
        sock.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
