"""examples/deploy/systemd/mesure.service: accepted by systemd's own checks, and the collector
does its whole job within what the unit allows.

No systemd runs here, so the unit itself is not started. What a process can apply to itself is
applied (tests/deploy/confine.py: the umask, no new privileges, no writable and executable
memory); for the rest, strace records what ``mesure serve`` does while it starts, takes hits,
serves the dashboard and reports and stops, and each record is held against the unit: every
system call within its filter, every socket of its families, every connection to loopback,
every file written in the data directory or the private /tmp, no other process's /proc.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from functools import partial
from pathlib import Path

import pytest

from tests.deploy import confine
from tests.deploy.harness import (
    CONTACTS,
    DEPLOY,
    addresses,
    browser,
    configures_mesure,
    listening,
    render,
    start,
    stop,
    traced,
    wait_until,
)
from tests.support import ROOT, free_port, mesure_command

UNIT = DEPLOY / "systemd" / "mesure.service"
EXEC_START = "/opt/mesure/venv/bin/mesure serve --data /var/lib/mesure --host 127.0.0.1 --port 8000"
#: Written to by the unit's service: its data directory, and the private /tmp and /var/tmp of
#: PrivateTmp= (SQLite puts its temporary files in /var/tmp).
WRITABLE = ("/tmp/", "/var/tmp/", "/dev/null")
_CALL = re.compile(r"^(\d+) +(?:<\.\.\. )?([a-z0-9_]+)[( ]")
_WRITE_FLAGS = re.compile(r"O_WRONLY|O_RDWR|O_CREAT")


def _service(text: str) -> dict[str, list[str]]:
    """The [Service] settings, each key with its values in order (a key may repeat)."""
    settings: dict[str, list[str]] = {}
    section = ""
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            section = line
        elif section == "[Service]":
            key, _, value = line.partition("=")
            settings.setdefault(key, []).append(value)
    return settings


SERVICE = _service(UNIT.read_text(encoding="utf-8"))


def _rendered(directory: Path) -> Path:
    """The unit with ExecStart naming this machine's ``mesure`` (verify checks it exists)."""
    mesure = Path(sys.executable).parent / "mesure"
    assert mesure.is_file(), f"{mesure}: install Mesure in this environment (tests/setup.sh)"
    path = directory / "mesure.service"
    text = render(UNIT, [("ExecStart=/opt/mesure/venv/bin/mesure ", f"ExecStart={mesure} ")])
    path.write_text(text, encoding="utf-8")
    return path


def _analyze(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["systemd-analyze", *args], capture_output=True, text=True, timeout=60, check=False
    )


def test_systemd_accepts_the_unit_without_a_warning(tmp_path: Path) -> None:
    checked = _analyze("verify", str(_rendered(tmp_path)))
    assert (checked.returncode, checked.stdout + checked.stderr) == (0, "")


def test_the_unit_confines_the_collector_as_the_deployment_needs(tmp_path: Path) -> None:
    assert SERVICE["ExecStart"] == [EXEC_START]
    assert (SERVICE["User"], SERVICE["Group"]) == (["mesure"], ["mesure"])
    assert SERVICE["StateDirectory"] == ["mesure"]
    assert SERVICE["ReadWritePaths"] == ["/var/lib/mesure"]
    expected = {
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "NoNewPrivileges": "yes",
        "RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6",
        "CapabilityBoundingSet": "",
        "UMask": "0077",
        "Restart": "on-failure",
    }
    assert {key: SERVICE.get(key) for key in expected} == {k: [v] for k, v in expected.items()}
    # systemd's own review, offline (it reads the unit file): exposure 1.0 at most, "SAFE".
    review = _analyze("security", "--offline=true", "--threshold=10", str(_rendered(tmp_path)))
    assert review.returncode == 0, review.stdout + review.stderr
    assert re.search(r"Overall exposure level for mesure\.service: 0\.\d SAFE", review.stdout)


def _syscall_sets() -> dict[str, set[str]]:
    """systemd's named system call sets (``@system-service`` …), each expanded."""
    listing = _analyze("syscall-filter").stdout
    members: dict[str, list[str]] = {}
    current: list[str] = []
    for line in listing.splitlines():
        if line.startswith("@"):
            current = members.setdefault(line.strip(), [])
        elif line.startswith("    ") and not line.strip().startswith("#"):
            current.append(line.strip())

    def expand(name: str) -> set[str]:
        found: set[str] = set()
        for member in members[name]:
            found |= expand(member) if member.startswith("@") else {member}
        return found

    return {name: expand(name) for name in members}


def _allowed_syscalls() -> set[str]:
    """What the unit's SystemCallFilter= lines allow: an allow list, then denials."""
    sets = _syscall_sets()
    allowed: set[str] = set()
    for line in SERVICE["SystemCallFilter"]:
        deny = line.startswith("~")
        names: set[str] = set()
        for item in line.removeprefix("~").split():
            names |= sets[item] if item.startswith("@") else {item}
        allowed = allowed - names if deny else allowed | names
    return allowed


def test_the_collector_works_within_the_units_confinement(tmp_path: Path) -> None:
    if shutil.which("strace") is None:
        pytest.fail("strace is missing: it records what the collector does")
    flags = ["--umask", SERVICE["UMask"][0]]
    flags += ["--no-new-privileges"] * (SERVICE["NoNewPrivileges"] == ["yes"])
    flags += ["--memory-deny-write-execute"] * (SERVICE["MemoryDenyWriteExecute"] == ["yes"])
    probe = subprocess.run(
        [sys.executable, "-m", "tests.deploy.confine", *flags, "--", "true"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if probe.returncode == confine.UNSUPPORTED:
        pytest.skip(f"this kernel cannot deny writable executable memory: {probe.stderr}")
    assert probe.returncode == 0, probe.stderr

    data, port = tmp_path / "data", free_port()
    serve = mesure_command("serve", "--data", str(data), "--port", str(port), "--workers", "2")
    command = [sys.executable, "-m", "tests.deploy.confine", *flags, "--", *serve]
    trace, output = tmp_path / "serve.strace", tmp_path / "serve.log"
    # The unit's installed Mesure has its bytecode compiled at install; here Python would write it.
    environment = {k: v for k, v in os.environ.items() if not configures_mesure(k)}
    environment["PYTHONDONTWRITEBYTECODE"] = "1"
    process = start(traced(command, trace, "all"), output, cwd=ROOT, env=environment)
    try:
        wait_until(partial(listening, port), "mesure serve", process)
        _exercise(f"http://127.0.0.1:{port}", output)
        # SIGTERM to the supervisor alone, as KillMode=mixed does; strace ends with it. The
        # trace's first line is the supervisor's (the process strace started).
        supervisor = int(trace.read_text().split(" ", 1)[0])
        os.kill(supervisor, signal.SIGTERM)
        assert process.wait(timeout=30) == 0, output.read_text()
    finally:
        stop(process)
    records = trace.read_text(errors="replace").splitlines()
    pids = {line.split(" ", 1)[0] for line in records}

    used = {match.group(2) for line in records if (match := _CALL.match(line))}
    strays = used - _allowed_syscalls()
    # SQLite gives a new journal the database's owner when it runs as root, as this test may;
    # the unit runs it as the mesure user, where it does not.
    if os.geteuid() == 0:
        strays.discard("fchown")
    assert strays == set()

    families = set(re.findall(r"\bsocket\((AF_[A-Z0-9]+)", "\n".join(records)))
    assert families <= set(SERVICE["RestrictAddressFamilies"][0].split())
    # IPAddressAllow=localhost: the collector opens no connection of its own, even to loopback,
    # and listens on 127.0.0.1 alone.
    assert addresses(trace, CONTACTS) == ([], [])
    listened, exposed = addresses(trace, ["bind"])
    assert (set(listened), exposed) == ({"127.0.0.1"}, [])

    written = []
    for line in records:
        call = _CALL.match(line)
        if call is None or '"' not in line:
            continue
        name, path = call.group(2), line.split('"')[1]
        writes = name in ("open", "openat") and _WRITE_FLAGS.search(line)
        if writes or name.startswith(("mkdir", "unlink", "rename", "link", "symlink")):
            written.append(path)
    assert f"{data}/mesure.db" in written  # the trace saw the collector's own writes
    outside = [p for p in written if p != str(data) and not p.startswith((f"{data}/", *WRITABLE))]
    assert outside == []

    seen = set(re.findall(r'"/proc/([^/"]+)', "\n".join(records)))
    assert seen <= {"self", "thread-self", *pids}  # ProcSubset=pid, ProtectProc=invisible

    loose = [p for p in data.rglob("*") if p.stat().st_mode & 0o077]
    assert loose == []  # UMask=0077


def _exercise(url: str, output: Path) -> None:
    """A start-up's worth of work: hits of each kind, the tracker, the opt-out page, a login,
    the dashboard and a report."""
    page = {"site": "localhost", "url": "http://localhost/deploy", "mode": "exempt"}
    with browser(url) as client:
        assert client.get("/healthz").status_code == 200
        assert client.post("/api/hit", json=page).status_code == 202
        assert client.post("/api/batch", json=[page, page]).status_code == 202
        assert client.get("/p.gif", params={"site": "localhost", "url": page["url"]}).is_success
        for path in ("/m.js", "/optout?site=localhost", "/optout.js", "/login"):
            assert client.get(path).status_code == 200, path
        password = output.read_text().split("owner@localhost, password ")[1].split()[0]
        login = client.post("/login", json={"email": "owner@localhost", "password": password})
        assert login.status_code == 200, login.text
        assert client.get("/").status_code == 200
        report = client.get("/api/v1/aggregate", params={"site": "localhost", "period": "today"})
        assert report.status_code == 200, report.text
