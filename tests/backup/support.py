"""Helpers of the backup tests: real ``mesure`` processes, age identities as files, a client
sending hits with unique paths that records which were acknowledged."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import threading
from contextlib import closing
from pathlib import Path

import httpx
from pyrage import x25519

from tests.support import ROOT, browser_client, mesure_command

SITE = "example.com"
#: Every wait for a ``mesure`` command: a bound, never reached when things work.
COMMAND_TIMEOUT = 120
#: Hits per minute from the test client: the default limit (600) would refuse most of them.
ENV = {**os.environ, "MESURE_CLIENT_RATE_PER_MINUTE": "100000000"}


def mesure(*args: str, expect: int | None = 0) -> subprocess.CompletedProcess[str]:
    """Run ``mesure ARGS`` in its own process; check its exit code unless ``expect`` is None."""
    done = subprocess.run(
        mesure_command(*args),
        cwd=ROOT,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT,
    )
    if expect is not None:
        assert done.returncode == expect, (args, done.returncode, done.stdout, done.stderr)
    return done


def stop_process(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM ``process`` if it still runs, SIGKILL if it has not ended within the bound."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=COMMAND_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def init(data: Path) -> None:
    mesure("init", "--data", str(data), "--site", SITE)


def identity_file(path: Path) -> str:
    """Write a new age identity as ``age-keygen`` does; return its public key."""
    identity = x25519.Identity.generate()
    recipient = str(identity.to_public())
    path.write_text(
        f"# created: by the backup tests\n# public key: {recipient}\n{identity}\n",
        encoding="ascii",
    )
    path.chmod(0o600)
    return recipient


def stored_paths(database: Path) -> tuple[str, set[str]]:
    """``PRAGMA integrity_check``'s verdict and every stored event's path."""
    with closing(sqlite3.connect(f"{database.as_uri()}?mode=ro", uri=True)) as conn:
        integrity = conn.execute("PRAGMA integrity_check").fetchone()[0]
        paths = {row[0] for row in conn.execute("SELECT path FROM events")}
    return integrity, paths


def tree(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` by relative path, with its bytes."""
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


class Sender:
    """A thread sending hits with unique paths (``/b/N``, another prefix than ``b`` if
    given), in order; ``acked`` lists the paths
    that got a 202, in the order of their answers."""

    def __init__(self, port: int, prefix: str = "b") -> None:
        self.prefix = prefix  # senders of one test use different ones, to keep paths unique
        self.url = f"http://127.0.0.1:{port}"
        self.acked: list[str] = []
        self.refused = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="backup-test-sender")

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=COMMAND_TIMEOUT)
        assert not self._thread.is_alive()

    def acknowledged(self) -> list[str]:
        with self._lock:
            return list(self.acked)

    def wait_for(self, count: int) -> None:
        for _attempt in range(2000):  # a bound, not a timing: normally a few hundred ms
            if len(self.acknowledged()) >= count or not self._thread.is_alive():
                break
            threading.Event().wait(0.01)
        assert len(self.acknowledged()) >= count, (len(self.acked), self.refused)

    def _run(self) -> None:
        with browser_client(self.url) as client:
            number = 0
            while not self._stop.is_set():
                path = f"/{self.prefix}/{number}"
                body = {
                    "site": SITE,
                    "url": f"https://{SITE}{path}",
                    "mode": "granted",
                    "cid": f"client-{number % 41}",
                }
                number += 1
                try:
                    response = client.post("/api/hit", json=body, timeout=10)
                except httpx.TransportError:
                    continue
                with self._lock:
                    if response.status_code == 202:
                        self.acked.append(path)
                    else:
                        self.refused += 1
