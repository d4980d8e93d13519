"""docs/design.md §5.6: Mesure opens no outbound connection. Every Python process of the suite runs
under :mod:`tests.loopback_guard`, which refuses and records any non-loopback connect or name
lookup, and a session whose record is not empty fails. Here ``mesure serve`` and the DPO
walkthrough exercise every feature with a record of their own, which must stay empty. The first
tests show that the guard catches such a connection wherever it is made: in a subprocess (forked
ones too), in one whose environment was built from scratch, in the test process itself, and that
a session with one fails even though its tests pass."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from collector.cli.main import main
from tests import loopback_guard
from tests.consent.tc_encoder import encode
from tests.privacy.support import scan
from tests.support import BROWSER_UA, ROOT, free_port

SITE = "shop.example"
USER_ID = "guard-user-5k2"
# TEST-NET addresses (RFC 5737), with a short timeout: without the guard a connect would wait
# for an answer that never comes, and the test fails on what it printed.
REACH_OUT = """
import os, socket, sys

def connect(host):
    try:
        with socket.socket() as sock:
            sock.settimeout(1)
            sock.connect((host, 80))
    except OSError as exc:
        print(exc, flush=True)

connect("192.0.2.1")
try:
    socket.getaddrinfo("example.org", 443)
except OSError as exc:
    print(exc, flush=True)
if "--fork" in sys.argv:  # as `mesure serve` forks its workers
    child = os.fork()
    if child == 0:
        connect("192.0.2.2")
        os._exit(0)
    os.waitpid(child, 0)
listener = socket.create_server(("127.0.0.1", 0))
socket.create_connection(listener.getsockname()).close()
print("loopback ok")
"""


def _guarded(log: Path) -> dict[str, str]:
    """The suite's environment, with a guard record of the test's own (the session's must stay
    empty)."""
    return {**os.environ, loopback_guard.LOG_VARIABLE: str(log)}


def _refusals(log: Path) -> list[str]:
    """The recorded attempts, without the process each line names."""
    return [line.split("\t")[0] for line in log.read_text().splitlines()]


def test_a_subprocess_and_its_forked_child_are_refused_and_recorded(tmp_path: Path) -> None:
    script, log = tmp_path / "reach_out.py", tmp_path / "guard.log"
    script.write_text(REACH_OUT)
    run = subprocess.run(
        [sys.executable, str(script), "--fork"],
        env=_guarded(log),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines() == [
        "loopback guard: socket.connect to ('192.0.2.1', 80) refused",
        "loopback guard: socket.getaddrinfo to 'example.org' refused",
        "loopback guard: socket.connect to ('192.0.2.2', 80) refused",
        "loopback ok",
    ]
    assert _refusals(log) == [
        "socket.connect ('192.0.2.1', 80)",
        "socket.getaddrinfo 'example.org'",
        "socket.connect ('192.0.2.2', 80)",
    ]
    # Each line says which process made the attempt, and during which test.
    assert all(str(script) in line for line in log.read_text().splitlines())
    assert "test_a_subprocess_and_its_forked_child" in log.read_text()


def test_an_environment_built_from_scratch_carries_the_guard(tmp_path: Path) -> None:
    """As tests/release/test_wheel.py builds the environment of the installed ``mesure``."""
    log = tmp_path / "guard.log"
    env = {"PATH": os.environ["PATH"], **loopback_guard.environment(log)}
    run = subprocess.run(
        [sys.executable, "-c", REACH_OUT], env=env, capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 0, run.stderr
    assert _refusals(log) == [
        "socket.connect ('192.0.2.1', 80)",
        "socket.getaddrinfo 'example.org'",
    ]


def test_the_test_process_itself_runs_under_the_guard() -> None:
    """tests/conftest.py installs it: the whole suite runs with only loopback reachable."""
    with loopback_guard.refusals_expected():
        with socket.socket() as sock, pytest.raises(OSError, match="loopback guard"):
            sock.connect(("192.0.2.1", 80))
        with pytest.raises(OSError, match="loopback guard"):
            socket.getaddrinfo("example.org", 443)


def test_a_session_whose_subprocess_reached_out_fails_though_its_tests_pass(
    tmp_path: Path,
) -> None:
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    (tmp_path / "test_swallowed.py").write_text(
        "import socket, subprocess, sys\n"
        f"REACH_OUT = {REACH_OUT!r}\n"
        "def test_reaches_out_and_swallows_the_error():\n"
        "    subprocess.run([sys.executable, '-c', REACH_OUT], check=True, timeout=60)\n"
        "    try:\n"
        "        socket.getaddrinfo('example.net', 443)\n"
        "    except OSError:\n"
        "        pass\n"
    )
    # Started from the suite's environment: the inner session makes a record of its own.
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "tests.conftest", "-c", "pytest.ini", "-q"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ["PYTHONPATH"]])},
        capture_output=True,
        text=True,
        timeout=100,
    )
    assert "1 passed" in run.stdout, run.stdout + run.stderr
    assert run.returncode == pytest.ExitCode.TESTS_FAILED, run.stdout
    # Two from the subprocess, one from the test process itself.
    assert "OUTBOUND CONNECTION ATTEMPTS (3)" in run.stdout
    assert "socket.connect ('192.0.2.1', 80)" in run.stdout
    assert "socket.getaddrinfo 'example.net'" in run.stdout
    assert "test_swallowed.py::test_reaches_out_and_swallows_the_error" in run.stdout


def _init(data: Path) -> tuple[str, str]:
    """A data directory for ``SITE``: its batch ingest token and an owner API token."""
    runner = CliRunner()
    made = runner.invoke(main, ["init", "--data", str(data), "--site", SITE])
    assert made.exit_code == 0, made.output
    ingest = made.output.split(f"Batch ingest token of {SITE}")[1].split(": ")[1].split()[0]
    owner = runner.invoke(main, ["token", "create", "--data", str(data), "--role", "owner"])
    assert owner.exit_code == 0, owner.output
    return ingest, owner.output.splitlines()[-1]


def _wait_until_up(process: subprocess.Popen[bytes], url: str) -> None:
    for _attempt in range(1200):  # a bound, not a timing: normally a few attempts
        assert process.poll() is None, "mesure serve exited"
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            threading.Event().wait(0.05)
    raise AssertionError("mesure serve did not come up")


def _exercise(url: str, ingest_token: str, owner_token: str) -> None:
    """Every kind of request the collector answers, each with its expected status."""
    page = f"https://{SITE}/pricing?utm_source=news"
    granted_tcf = encode(purposes_consent={1, 8, 9}, created=datetime.now(UTC))
    owner = {"authorization": f"Bearer {owner_token}"}
    with httpx.Client(base_url=url, headers={"user-agent": BROWSER_UA}) as client:
        for fields in (
            {"mode": "granted", "cid": "cid-guard-1", "uid": USER_ID, "tcf": granted_tcf},
            {"mode": "exempt", "gcm": {"analytics_storage": "denied"}},
            {"mode": "denied", "referrer": "https://www.google.com/"},
            {"mode": "optout"},
        ):
            hit = client.post("/api/hit", json={"site": SITE, "url": page, **fields})
            assert hit.status_code == 202, hit.text
        batch = [{"site": SITE, "url": page, "ip": "192.0.2.5", "ua": BROWSER_UA}]
        sent = client.post(
            "/api/batch", json=batch, headers={"authorization": f"Bearer {ingest_token}"}
        )
        assert sent.status_code == 202, sent.text
        assert client.get("/p.gif", params={"site": SITE, "url": page}).status_code == 200
        assert client.get("/m.js").status_code == 200
        assert client.get("/optout", params={"site": SITE}).status_code == 200
        wrong = {"email": "x@y.z", "password": "wrong"}
        assert client.post("/login", json=wrong).status_code == 401
        period = {"site": SITE, "period": "30d"}
        assert client.get("/api/v1/aggregate", params=period, headers=owner).status_code == 200
        exported = client.post(
            "/api/v1/privacy/export",
            json={"site": SITE, "first_day": "2000-01-01", "last_day": "2100-12-31"},
            headers=owner,
        )
        assert exported.status_code == 200, exported.text
        assert exported.json()["manifest"]["total_rows"] == 5
        erased = client.post(
            "/api/v1/privacy/dsar/erase", json={"site": SITE, "user_id": USER_ID}, headers=owner
        )
        assert erased.json()["report"]["events_after"] == 0
        assert client.get("/api/v1/privacy/register", headers=owner).status_code == 200


def test_mesure_serve_opens_no_outbound_connection(tmp_path: Path) -> None:
    data, log, port = tmp_path / "data", tmp_path / "guard.log", free_port()
    ingest_token, owner_token = _init(data)
    with (tmp_path / "serve.log").open("wb") as output:
        # Its default number of workers: forked after the guard was installed, they have it too.
        serve = ["-m", "collector", "serve", "--data", str(data), "--port", str(port)]
        process = subprocess.Popen(
            [sys.executable, *serve],
            cwd=ROOT,
            env=_guarded(log),
            stdout=output,
            stderr=output,
        )
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_until_up(process, url)
        _exercise(url, ingest_token, owner_token)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
    assert not log.exists(), log.read_text()
    assert f"Mesure listening on http://127.0.0.1:{port}" in (tmp_path / "serve.log").read_text()
    # docs/design.md §5.1: no raw identifier in the data directory (exports included) or the log.
    needles = {"client id": "cid-guard-1", "user id": USER_ID, "batch ip": "192.0.2.5"}
    assert scan(tmp_path, needles) == []


def test_the_dpo_walkthrough_runs_offline_and_leaves_no_raw_identifier(tmp_path: Path) -> None:
    data, log = tmp_path / "data", tmp_path / "guard.log"
    run = subprocess.run(
        [sys.executable, "examples/dpo_walkthrough.py", "--data", str(data)],
        cwd=ROOT,
        env=_guarded(log),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert not log.exists(), log.read_text()
    out = run.stdout
    titles = [line[4:] for line in out.splitlines() if line.startswith("=== ")]
    assert titles == [
        "CNIL exemption conformance",
        "Record of processing (GDPR Art. 30)",
        "Signed export of everything stored",
        "The public key an auditor verifies with",
        "Verify the export",
        "Access request (Art. 15) by user id",
        "Erasure request (Art. 17) by client id, from the opt-out page",
        "Key rotation",
        "Key epochs",
        "Retention dry run",
        "Audit log verification",
        "Audit log",
    ]
    assert "Sent 4 hits" in out
    assert "(exit code" not in out  # `mesure check` passes on the fresh configuration
    assert "**Residency:** eu; host location: Paris, France" in out
    assert "4 rows; manifest signed with Ed25519 key" in out
    assert "export verified" in out
    assert "1 event(s) in 1 visit(s) found under user-id epochs [1]" in out
    assert "found 2 event(s) in 1 visit(s) under client-id epochs [1]" in out
    assert "searched again: 0 event(s) left" in out
    assert "Cookieless visitors" in out and "cannot be found by this request" in out
    assert "client key: now epoch 2; epoch 1 kept" in out
    assert "would delete 0" in out
    assert "audit log intact" in out
    needles = {"client id": "cid-walkthrough-Ab12Cd34", "user id": "customer-1042"}
    assert scan(data, needles) == []  # database, WAL, keys, audit log
    # The erasure took the copies of the erased rows with it: both exports held some.
    assert "2 export(s) holding the subject's rows deleted: exports/access, exports/all" in out
    assert not (data / "exports" / "all").exists()
