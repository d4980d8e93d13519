"""Hostile connections against ``mesure serve`` (its production uvicorn settings): slow bodies,
a thousand idle connections, header floods, a million-key JSON and deeply nested JSON.

Each is bounded: the attacker's connections get an error or are closed, the server's memory
stays under a generous bound, and a normal client sending hits meanwhile is answered every
time. No timing is asserted; the bounds on waiting are only there so a regression fails
instead of hanging.
"""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import socket
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.support import (
    BROWSER_UA,
    ROOT,
    browser_client,
    free_port,
    mesure_command,
    start_mesure_serve,
)

#: Generous: the collector idles around 60 MB; a leak of what an attacker sends would exceed it.
RSS_BOUND_MB = 400
BODY_TIMEOUT_MS = 1500
HIT = b'{"site":"example.com","url":"https://example.com/normal"}'


class Collector:
    def __init__(self, process: subprocess.Popen[bytes], port: int, data: Path) -> None:
        self.process, self.port, self.data = process, port, data

    def peak_rss_mb(self) -> float:
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        line = next(line for line in status.splitlines() if line.startswith("VmHWM:"))
        return int(line.split()[1]) / 1024

    def connect(self) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=30)
        return sock


@pytest.fixture(scope="module")
def collector(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Collector]:
    data = tmp_path_factory.mktemp("hostile-connections") / "data"
    env = {
        **os.environ,
        "MESURE_CLIENT_RATE_PER_MINUTE": "1000000",
        "MESURE_SITE_RATE_PER_MINUTE": "100000000",
        "MESURE_BODY_TIMEOUT_MS": str(BODY_TIMEOUT_MS),
    }
    subprocess.run(
        mesure_command("init", "--data", str(data), "--site", "example.com"),
        env=env,
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    # A thousand sockets on each side: raise a low soft limit of open files (the server,
    # started below, inherits it). A production host is configured the same way.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < 4096:
        wanted = 4096 if hard == resource.RLIM_INFINITY else min(4096, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    port = free_port()
    process = start_mesure_serve(data, port, env)
    try:
        yield Collector(process, port, data)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait()


@contextlib.contextmanager
def normal_client(collector: Collector) -> Iterator[Callable[[], None]]:
    """A client sending hits in a thread while the attack runs; every answer must be a 202."""
    statuses: list[int] = []
    stop = threading.Event()

    def run() -> None:
        with browser_client(f"http://127.0.0.1:{collector.port}", timeout=30) as client:
            while not stop.is_set():
                response = client.post("/api/hit", content=HIT)
                statuses.append(response.status_code)

    thread = threading.Thread(target=run)
    thread.start()
    while not statuses and thread.is_alive():  # the attack starts once the client is served
        threading.Event().wait(0.01)

    def check() -> None:
        with browser_client(f"http://127.0.0.1:{collector.port}", timeout=30) as client:
            assert client.post("/api/hit", content=HIT).status_code == 202

    try:
        yield check
    finally:
        stop.set()
        thread.join()
    assert statuses, "the normal client got no answer at all"
    assert set(statuses) == {202}


def read_status(sock: socket.socket) -> int | None:
    """The status of the response on ``sock``, or ``None`` when the server just closed it."""
    received = b""
    while b"\r\n" not in received:
        try:
            chunk = sock.recv(4096)
        except ConnectionResetError:
            return None
        if not chunk:
            return None
        received += chunk
    return int(received.split(b" ", 2)[1])


def head(path: str, length: int, extra: str = "") -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: {BROWSER_UA}\r\n"
        f"Content-Type: text/plain\r\nContent-Length: {length}\r\n{extra}\r\n"
    ).encode()


def test_slow_bodies_get_408_while_others_are_served(collector: Collector) -> None:
    slow = [collector.connect() for _ in range(20)]
    with normal_client(collector) as check:
        for sock in slow:
            sock.sendall(head("/api/hit", len(HIT)) + HIT[:5])
        for _ in range(3):  # a trickle, too slow to finish before the body timeout
            for sock in slow:
                with contextlib.suppress(OSError):
                    sock.sendall(b" ")
            check()
        statuses = [read_status(sock) for sock in slow]
    for sock in slow:
        sock.close()
    assert statuses == [408] * len(slow)
    assert collector.peak_rss_mb() < RSS_BOUND_MB


def test_a_thousand_idle_connections_are_closed_and_cost_little(collector: Collector) -> None:
    idle = [collector.connect() for _ in range(1000)]
    try:
        with normal_client(collector) as check:
            check()
            # A connection that never sends a request is closed like an idle keep-alive one.
            closed = [read_status(sock) for sock in idle]
            check()
        assert closed == [None] * len(idle)
    finally:
        for sock in idle:
            sock.close()
    assert collector.peak_rss_mb() < RSS_BOUND_MB


@pytest.mark.parametrize(
    ("first", "flood"),
    [
        pytest.param(
            False, "".join(f"X-Flood-{n}: {'v' * 20}\r\n" for n in range(100_000)), id="many"
        ),
        pytest.param(False, f"X-Big: {'v' * 10_000_000}\r\n", id="one-huge"),
        pytest.param(True, f"X-Big: {'v' * 10_000_000}\r\n", id="after-a-request"),
    ],
)
def test_header_floods_are_refused_at_16_kib(collector: Collector, first: bool, flood: str) -> None:
    with normal_client(collector) as check:
        sock = collector.connect()
        with sock:
            if first:  # the flood is the second request of a keep-alive connection
                sock.sendall(head("/api/hit", len(HIT)) + HIT)
                assert read_status(sock) == 202
            with contextlib.suppress(OSError):  # the server may close before all is sent
                sock.sendall(head("/api/hit", len(HIT), flood) + HIT)
            status = read_status(sock)
        check()
    assert status in (400, 431, None)
    assert collector.peak_rss_mb() < RSS_BOUND_MB


def million_keys() -> bytes:
    return b"{" + b",".join(b'"k%d":%d' % (n, n) for n in range(1_000_000)) + b"}"


def test_a_million_key_json_is_refused_by_size(collector: Collector) -> None:
    body = million_keys()
    url = f"http://127.0.0.1:{collector.port}"
    with normal_client(collector) as check, browser_client(url, timeout=60) as client:
        declared = client.post("/api/batch", content=body)
        streamed = client.post(
            "/api/batch", content=iter([body[i : i + 65536] for i in range(0, len(body), 65536)])
        )
        inside = client.post(
            "/api/hit",
            content=b'{"site":"example.com","url":"https://example.com/","props":'
            + body[:60_000].rsplit(b",", 1)[0]
            + b"}}",
        )
        check()
    assert declared.status_code == 413
    assert streamed.status_code == 413  # chunked, no Content-Length: counted while read
    assert inside.status_code == 400  # within 64 KiB but over 30 properties
    assert inside.json()["field"] == "$.props"
    assert collector.peak_rss_mb() < RSS_BOUND_MB


@pytest.mark.parametrize(
    ("path", "depth"), [("/api/hit", 60_000), ("/api/batch", 500_000)], ids=["hit", "batch"]
)
def test_deeply_nested_json_is_a_400(collector: Collector, path: str, depth: int) -> None:
    url = f"http://127.0.0.1:{collector.port}"
    body = b"[" * depth + b"]" * depth
    limit = 64 * 1024 if path == "/api/hit" else 1024 * 1024
    with normal_client(collector) as check, browser_client(url, timeout=60) as client:
        answer = client.post(path, content=body[:limit])
        check()
    assert answer.status_code == 400
    assert answer.json()["field"] in ("$", "$[0]")  # refused at the top, or its first event
    assert collector.peak_rss_mb() < RSS_BOUND_MB


def test_the_attacks_left_nothing_behind(collector: Collector) -> None:
    """Only the normal clients' hits were stored."""
    import sqlite3

    conn = sqlite3.connect(collector.data / "mesure.db")
    try:
        paths = {row[0] for row in conn.execute("SELECT DISTINCT path FROM events")}
    finally:
        conn.close()
    assert paths == {"/normal"}
    with httpx.Client() as client:
        assert client.get(f"http://127.0.0.1:{collector.port}/healthz").status_code == 200
