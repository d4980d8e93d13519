"""``mesure serve --workers 2``: forked workers on one port, one rate limit, no orphans.

Each test runs the real command on 127.0.0.1 and looks at its processes through ``/proc``.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import sqlite3
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support import (
    ROOT,
    browser_client,
    free_port,
    mesure_command,
    start_mesure_serve,
)

HIT = {"site": "example.com", "url": "https://example.com/w"}


@pytest.fixture()
def data(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    subprocess.run(
        mesure_command("init", "--data", str(data), "--site", "example.com"),
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    return data


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _wait_for(condition: object, what: str) -> None:
    for _attempt in range(400):  # a bound, not a timing
        if condition():  # type: ignore[operator]
            return
        threading.Event().wait(0.025)
    raise AssertionError(f"never happened: {what}")


def _connection_ports(pid: int, port: int) -> int:
    """Established connections to ``port`` held by process ``pid``."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    count = 0
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local_port = int(fields[1].split(":")[1], 16)
        if local_port == port and fields[3] == "01" and fields[9] in inodes:
            count += 1
    return count


def _post(url: str, body: object = HIT) -> int:
    """One hit on a connection of its own (a new source port each time)."""
    with browser_client(url) as client:
        return client.post("/api/hit", json=body, timeout=10).status_code


def _stored(data: Path) -> int:
    conn = sqlite3.connect(data / "mesure.db")
    try:
        return int(conn.execute("SELECT count(*) FROM events").fetchone()[0])
    finally:
        conn.close()


def _stop(process: subprocess.Popen[bytes]) -> int:
    process.send_signal(signal.SIGTERM)
    return process.wait(timeout=30)


@contextlib.contextmanager
def _serving(
    data: Path, env: dict[str, str] | None = None, port: int | None = None
) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """``mesure serve --workers 2`` and its port; killed at the end if a test left it running."""
    port = port or free_port()
    process = start_mesure_serve(data, port, env or dict(os.environ), workers=2)
    try:
        yield process, port
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _hits_on_many_connections(supervisor: int, port: int, connections: int) -> list[int]:
    """Send a hit on each of ``connections`` open connections; the connections each worker
    holds, once all were answered."""
    workers = _children(supervisor)
    clients = [browser_client(f"http://127.0.0.1:{port}") for _ in range(connections)]
    try:
        for client in clients:
            assert client.post("/api/hit", json=HIT, timeout=10).status_code == 202
        return [_connection_ports(worker, port) for worker in workers]
    finally:
        for client in clients:
            client.close()


def test_connections_are_spread_over_both_workers(data: Path) -> None:
    with _serving(data) as (process, port):
        assert len(_children(process.pid)) == 2
        held = _hits_on_many_connections(process.pid, port, 24)
        # 24 connections hashed over two sockets: all on one worker has odds of 2 in 16 million.
        assert sum(held) == 24 and min(held) > 0, held
        assert _stop(process) == 0
    assert _stored(data) == 24


def test_a_client_rate_limit_is_one_limit_for_all_workers(data: Path) -> None:
    env = {**os.environ, "MESURE_CLIENT_RATE_PER_MINUTE": "5"}
    with _serving(data, env) as (process, port):
        # The limit counts per clock minute: start well inside one, so all 14 hits share it.
        if time.time() % 60 > 55:
            time.sleep(60 - time.time() % 60)
        # Each hit on a new connection: the kernel hands them to both workers, and two
        # separate limits would let ten through.
        answers = [_post(f"http://127.0.0.1:{port}") for _ in range(14)]
        assert answers == [202] * 5 + [429] * 9
        assert _stop(process) == 0
    assert _stored(data) == 5


def test_a_killed_worker_is_replaced_and_the_collector_keeps_answering(data: Path) -> None:
    with _serving(data) as (process, port):
        first, second = _children(process.pid)
        os.kill(first, signal.SIGKILL)
        _wait_for(lambda: len(set(_children(process.pid)) - {first}) == 2, "a new worker")
        assert _alive(second)
        answers = [_post(f"http://127.0.0.1:{port}") for _ in range(20)]
        assert answers == [202] * 20
        assert _stop(process) == 0
    assert _stored(data) == 20


def test_workers_end_with_their_supervisor_even_after_kill_9(data: Path) -> None:
    with _serving(data) as (process, port):
        workers = _children(process.pid)
        assert _post(f"http://127.0.0.1:{port}") == 202
        process.send_signal(signal.SIGKILL)  # the supervisor alone, not its process group
        process.wait()
        _wait_for(lambda: not any(_alive(worker) for worker in workers), "workers gone")
        with pytest.raises(httpx.ConnectError):
            _post(f"http://127.0.0.1:{port}")
    # The port is free again for the restarted collector, which still has the hit.
    with _serving(data, port=port) as (restarted, _port):
        assert _stop(restarted) == 0
    assert _stored(data) == 1


def test_serve_refuses_a_port_another_program_listens_on(data: Path) -> None:
    port = free_port()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen()
        result = subprocess.run(
            mesure_command("serve", "--data", str(data), "--port", str(port), "--workers", "2"),
            cwd=ROOT,
            capture_output=True,
            timeout=60,
        )
    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr.decode()


def test_sigterm_stops_every_worker_after_committing_what_it_acknowledged(data: Path) -> None:
    with _serving(data) as (process, port):
        _stop_under_load(process, port, data)


def test_sigterm_stops_a_single_process_collector_under_load(data: Path) -> None:
    """``--workers 1`` runs uvicorn in the supervisor's place: the same graceful stop."""
    port = free_port()
    process = start_mesure_serve(data, port, dict(os.environ), workers=1)
    try:
        # uvicorn alone ends by the signal it caught, once it has stopped gracefully.
        _stop_under_load(process, port, data, exits=(0, -signal.SIGTERM))
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _stop_under_load(
    process: subprocess.Popen[bytes], port: int, data: Path, exits: tuple[int, ...] = (0,)
) -> None:
    workers = _children(process.pid)
    acknowledged: list[str] = []
    stop = threading.Event()

    def send(sender: int) -> None:
        with browser_client(f"http://127.0.0.1:{port}") as client:
            number = 0
            while not stop.is_set():
                path = f"/s{sender}/{number}"
                number += 1
                body = {"site": "example.com", "url": f"https://example.com{path}"}
                try:
                    answer = client.post("/api/hit", json=body, timeout=10)
                except httpx.TransportError:
                    return
                if answer.status_code == 202:
                    acknowledged.append(path)

    senders = [threading.Thread(target=send, args=(n,)) for n in range(4)]
    for sender in senders:
        sender.start()
    _wait_for(lambda: len(acknowledged) >= 100, "100 acknowledged hits")
    try:
        assert _stop(process) in exits
    finally:
        stop.set()
        for sender in senders:
            sender.join()
    assert not any(_alive(worker) for worker in workers)
    conn = sqlite3.connect(data / "mesure.db")
    try:
        stored = {row[0] for row in conn.execute("SELECT path FROM events")}
    finally:
        conn.close()
    assert set(acknowledged) <= stored


def test_one_worker_runs_the_start_up_retention(data: Path) -> None:
    with _serving(data) as (process, port):
        held = _hits_on_many_connections(process.pid, port, 24)
        assert min(held) > 0, held  # both workers started (their lifespans ran)
        assert _stop(process) == 0
    audit = [json.loads(line) for line in (data / "audit.log").read_text().splitlines()]
    runs = [entry["detail"]["by"] for entry in audit if entry["action"] == "retention.run"]
    assert runs == ["server (start-up)"]


def test_a_worker_that_cannot_start_stops_the_collector(data: Path) -> None:
    # The command line's own checks pass; the app's start-up (its lifespan) fails in each worker.
    (data / "not-a-geo-database.mmdb").write_bytes(b"not a MaxMind file")
    env = {**os.environ, "MESURE_GEO_DATABASE": str(data / "not-a-geo-database.mmdb")}
    result = subprocess.run(
        mesure_command("serve", "--data", str(data), "--port", str(free_port()), "--workers", "2"),
        cwd=ROOT,
        env=env,
        capture_output=True,
        timeout=60,
    )
    assert result.returncode == 1
    errors = result.stderr.decode()
    assert "cannot open geo database" in errors
    assert "could not start" in errors and "keep dying" not in errors


def test_a_dashboard_session_works_whichever_worker_answers(tmp_path: Path) -> None:
    # A fresh directory (demo site and owner), two workers chosen through the environment.
    data = tmp_path / "fresh"
    port = free_port()
    env = {**os.environ, "MESURE_WORKERS": "2"}
    process = start_mesure_serve(data, port, env, workers=None)
    try:
        assert len(_children(process.pid)) == 2
        printed = (tmp_path / "serve.log").read_text()
        assert "(2 worker(s))" in printed
        password = printed.split("Dashboard account owner@localhost, password ")[1].split()[0]
        url = f"http://127.0.0.1:{port}"
        with browser_client(url) as first:
            login = first.post("/login", json={"email": "owner@localhost", "password": password})
            assert login.status_code == 200, login.text
            cookies = first.cookies
        # Each request on a connection of its own: the kernel sends some to the other worker.
        for _ in range(12):
            with browser_client(url, cookies=cookies) as client:
                assert client.get("/", follow_redirects=False).status_code == 200
                report = client.get("/api/v1/aggregate", params={"site": "localhost"})
                assert report.status_code == 200, report.text
        assert _stop(process) == 0
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
