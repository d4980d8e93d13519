"""``mesure serve --workers N``: N worker processes on one port, each a whole collector.

Each worker listens on a socket of its own with ``SO_REUSEPORT``, so the kernel spreads new
connections evenly over the workers. uvicorn's own ``workers`` share one listening socket, and
whichever worker wakes first takes the connection: in the ingest benchmark one of two workers
took three quarters of the load (87 % of a core against 31 %), and two workers did no better than
one.

The supervisor (the ``mesure serve`` process) forks the workers after creating what they share: the
rate-limit counters (:class:`~collector.ingest.ratelimit.SharedCounters`), so a limit is one limit
for the collector. Everything else a worker needs is its own (its SQLite connection, writer thread
and caches), opened by the app's lifespan after the fork. Worker writes are serialized by the
storage's write lock (:mod:`collector.storage.sqlite.events`).

A worker that dies is replaced; a worker that cannot start (its lifespan failed) stops the
collector. A worker ends when the supervisor does, even by ``kill -9`` (``PR_SET_PDEATHSIG``):
no orphan keeps the port after the collector is gone. Linux only, like ``SO_REUSEPORT``'s
balancing and the death signal.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import logging
import os
import signal
import socket
import sys
import time
from collections import deque
from collections.abc import Callable
from functools import partial
from typing import Any

import uvicorn
from starlette.types import ASGIApp

from collector.errors import WorkersFailedError
from collector.ingest.ratelimit import SharedCounters
from collector.web.server import STARTUP_FAILURE, GracefulServer

logger = logging.getLogger("mesure.workers")

#: This many worker deaths within RESTART_WINDOW_SECONDS stop the collector: a crash loop.
MAX_RESTARTS = 5
RESTART_WINDOW_SECONDS = 10.0
PORT_WAIT_SECONDS = 2.0
MAX_DEFAULT_WORKERS = 4
_PR_SET_PDEATHSIG = 1


def default_count(*, clickhouse: bool) -> int:
    """Workers of ``mesure serve`` without ``--workers``: one per core this process may use, at
    most MAX_DEFAULT_WORKERS (each is a whole collector: about 50 MB of its own); one with
    ClickHouse storage, whose writer keeps the open visits in its memory, and off Linux."""
    if clickhouse or not sys.platform.startswith("linux"):
        return 1
    return min(len(os.sched_getaffinity(0)), MAX_DEFAULT_WORKERS)


def serve(
    make_app: Callable[[SharedCounters, int], ASGIApp],
    *,
    host: str,
    port: int,
    workers: int,
    settings: dict[str, Any],
) -> None:
    """Run ``workers`` processes serving ``make_app(counters, index)`` on ``host:port`` until
    SIGTERM or SIGINT, then stop them gracefully (each commits what it acknowledged). ``index``
    is the worker's number, 0 to ``workers - 1``; a replaced worker gets the number of the one
    it replaces."""
    if not sys.platform.startswith("linux"):
        raise WorkersFailedError("several workers need Linux (SO_REUSEPORT, PR_SET_PDEATHSIG)")
    _check_port_free(host, port)
    counters = SharedCounters(workers)
    supervisor = os.getpid()
    children: dict[int, tuple[int, float]] = {}  # pid: (worker index, started at)
    restarts: deque[float] = deque(maxlen=MAX_RESTARTS)
    stopping = False

    def start_worker(index: int) -> None:
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                app = partial(make_app, counters.for_worker(index), index)
                code = _run_worker(app, host, port, settings, supervisor)
            except SystemExit as exc:  # uvicorn exits with STARTUP_FAILURE itself
                code = exc.code if isinstance(exc.code, int) else 1
            finally:
                os._exit(code)
        children[pid] = (index, time.monotonic())

    def stop_workers(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        for pid in list(children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    # What the supervisor holds now stays out of the workers' garbage collections, which would
    # otherwise write to (and so copy) every page of it in each worker.
    gc.freeze()
    for index in range(workers):
        start_worker(index)
    signal.signal(signal.SIGTERM, stop_workers)
    signal.signal(signal.SIGINT, stop_workers)
    failure: str | None = None
    while children:
        pid, status = os.wait()
        ended = children.pop(pid, None)
        if ended is None or stopping:
            continue
        code = os.waitstatus_to_exitcode(status)
        now = time.monotonic()
        restarts.append(now)
        if code == STARTUP_FAILURE:
            failure = f"worker {pid} could not start"
        elif len(restarts) == MAX_RESTARTS and now - restarts[0] < RESTART_WINDOW_SECONDS:
            failure = f"workers keep dying ({MAX_RESTARTS} in {RESTART_WINDOW_SECONDS:.0f} s)"
        if failure is not None:
            stop_workers(signal.SIGTERM, None)
            continue
        logger.warning("worker %d ended (exit status %d); starting another", pid, code)
        start_worker(ended[0])  # in the same row of the counters: its counts stay valid
    if failure is not None:
        raise WorkersFailedError(failure)


def _run_worker(
    make_app: Callable[[], ASGIApp],
    host: str,
    port: int,
    settings: dict[str, Any],
    supervisor: int,
) -> int:
    """One worker's life; its exit status."""
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, signal.SIG_DFL)  # uvicorn installs its own once serving
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != supervisor:  # the supervisor died before the death signal was set
        return 1
    sock = _listening_socket(host, port)
    server = GracefulServer(uvicorn.Config(make_app(), host=host, port=port, **settings))
    server.run(sockets=[sock])
    return 0 if server.started else STARTUP_FAILURE


def _listening_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _check_port_free(host: str, port: int) -> None:
    """Fail before forking when another program listens on the port: without ``SO_REUSEPORT``
    the probe cannot join another collector's workers either. A collector restarted right after
    it was killed may still see its old workers' sockets for a moment, so the probe retries for
    up to PORT_WAIT_SECONDS."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    deadline = time.monotonic() + PORT_WAIT_SECONDS
    while True:
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((host, port))
                return
            except OSError as exc:
                if time.monotonic() > deadline:
                    raise WorkersFailedError(
                        f"cannot listen on {host}:{port}: {exc.strerror}"
                    ) from None
        time.sleep(0.05)
