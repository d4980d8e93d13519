"""Ingest benchmark: ``mesure serve`` against the ceiling of its own server stack, side by side.

    PYTHONPATH=$PWD python tests/bench/ingest.py            # about 100 s
    PYTHONPATH=$PWD python tests/bench/ingest.py --duration 30 --connections 64 --workers 1

One run, on 127.0.0.1, with ``wrk`` (installed with apt-get when missing) as the load generator:

1. ``mesure init`` + ``mesure serve`` (the production settings: as many workers as it starts by
   default, one per core; a fresh data directory) under a realistic mix of hits: ~60 % exempt,
   ~30 % granted (a third of them with a TCF v2.2 string), ~10 % denied or opted out; varied
   paths, referrers, browsers, UTM tags and properties, and a few crawlers. Then the batch
   endpoint with 1,000-event batches.
2. The same hit load against a bare Starlette endpoint served by uvicorn with the same settings,
   which only decodes the body with msgspec and answers 202: the ceiling of the stack here, on
   one worker (the reference of issue 7) and on as many workers as the collector had.
3. The collector's peak memory (summed RSS and PSS over its processes), and the check that
   nothing acknowledged was lost: every 2xx answer is a stored event or a filtered hit counted
   in ``dropped_hits`` (bots, opt-outs).

It prints figures; it asserts nothing about speed (benchmarks are run by hand, never in the suite).
The exit status is 1 only when acknowledged hits are missing from the database.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from collector.web.workers import default_count as default_workers  # noqa: E402
from tests.consent.tc_encoder import encode as encode_tc  # noqa: E402

SITE = "example.com"
#: Requests cycled by wrk: more than the collector's URL and user-agent caches hold.
DISTINCT_HITS = 16_384
TARGETS = "targets: >= 5,000 durable hits/s, >= 30 % of ceiling, p99 < 50 ms, RSS < 150 MB"

BROWSERS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.5 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:127.0) Gecko/20100101 Firefox/127.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/125.0.0.0 Safari/537.36 Edg/125.0.0.0",
    "Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/16.6 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:126.0) Gecko/20100101 Firefox/126.0",
]
CRAWLERS = [
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
]
REFERRERS = [
    None,
    None,
    "https://www.google.com/",
    "https://duckduckgo.com/",
    "https://news.ycombinator.com/item?id=4242",
    "https://t.co/abc123",
    "https://www.linkedin.com/feed/",
    "https://example.com/blog/",
    "https://lobste.rs/s/xyz",
]
SECTIONS = ["blog", "docs", "pricing", "products", "about", "careers", "changelog"]
UTM = [
    "",
    "",
    "",
    "?utm_source=newsletter&utm_medium=email&utm_campaign=autumn",
    "?utm_source=twitter&utm_medium=social",
    "?utm_source=google&utm_medium=cpc&utm_campaign=brand&utm_term=analytics",
]


def mixed_hit(rng: random.Random, tc_granted: str) -> tuple[dict[str, Any], dict[str, str]]:
    """One realistic hit body and its headers."""
    path = f"/{rng.choice(SECTIONS)}/{rng.randrange(400)}" + rng.choice(UTM)
    if rng.random() < 0.25:  # ad click ids: a URL never seen before, whatever is cached
        path += ("&" if "?" in path else "?") + f"gclid={rng.getrandbits(64):x}"
    body: dict[str, Any] = {"site": SITE, "url": f"https://{SITE}{path}"}
    referrer = rng.choice(REFERRERS)
    if referrer:
        body["referrer"] = referrer
    body["screen"] = rng.choice([390, 768, 1280, 1440, 1920])
    crawler = rng.random() < 0.02
    headers = {
        "User-Agent": rng.choice(CRAWLERS if crawler else BROWSERS),
        "Origin": f"https://{SITE}",
        # Behind the reverse proxy of a production setup: one address per visitor.
        "X-Forwarded-For": f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}",
    }
    roll = rng.random()
    if roll < 0.60:  # exempt: half with a first-party id, half cookieless
        body["mode"] = "exempt"
        if rng.random() < 0.5:
            body["cid"] = f"c{rng.randrange(20_000)}"
        if rng.random() < 0.1:
            body["name"] = "outbound"
            body["props"] = {"url": "https://partner.example.org/"}
        elif rng.random() < 0.1:
            body["engaged_ms"] = rng.randrange(1, 600_000)
            body["name"] = "engagement"
    elif roll < 0.90:  # granted: explicit claim, or a TCF v2.2 string for a third of them
        body["mode"] = "granted"
        body["cid"] = f"g{rng.randrange(20_000)}"
        if rng.random() < 1 / 3:
            body["tcf"] = tc_granted
        if rng.random() < 0.3:
            body["uid"] = f"user-{rng.randrange(5_000)}"
        event = rng.random()
        if event < 0.15:
            body["name"] = "signup"
            body["props"] = {"plan": rng.choice(["free", "pro", "team"]), "step": 2}
        elif event < 0.22:
            body["name"] = "purchase"
            body["revenue"] = {"amount": f"{rng.randrange(5, 500)}.99", "currency": "EUR"}
            body["props"] = {"variant": rng.choice(["A", "B"])}
    elif roll < 0.96:
        body["mode"] = "denied"
    else:  # an opt-out: the claim, or the browser's Global Privacy Control
        if rng.random() < 0.5:
            body["mode"] = "optout"
        else:
            body["mode"] = "exempt"
            headers["Sec-GPC"] = "1"
    return body, headers


def batch_body(rng: random.Random, size: int, now_ms: int) -> list[dict[str, Any]]:
    """A server-side client's batch: events with their own time, address and user agent."""
    events = []
    for _ in range(size):
        body, headers = mixed_hit(rng, "")
        body.pop("tcf", None)
        body["ts"] = now_ms - rng.randrange(3_600_000)
        body["ip"] = headers["X-Forwarded-For"]
        body["ua"] = rng.choice(BROWSERS)
        if "Sec-GPC" in headers:
            body["mode"] = "optout"
        events.append(body)
    return events


def lua_string(text: str) -> str:
    """``text`` as a Lua string literal (bytes outside printable ASCII as decimal escapes)."""
    out = []
    for byte in text.encode("utf-8"):
        char = chr(byte)
        if char in '"\\':
            out.append("\\" + char)
        elif 32 <= byte < 127:
            out.append(char)
        else:
            out.append(f"\\{byte:03d}")
    return '"' + "".join(out) + '"'


def raw_request(path: str, body: bytes, headers: dict[str, str]) -> str:
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", "Content-Type: text/plain"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    lines.append(f"Content-Length: {len(body)}")
    return "\r\n".join(lines) + "\r\n\r\n" + body.decode("utf-8")


LUA_RUNTIME = """
local n = #requests
local i = math.random(n)
sent = 0
request = function()
  i = i + 1
  if i > n then i = 1 end
  sent = sent + 1
  return requests[i]
end

local threads = {}
setup = function(thread)
  table.insert(threads, thread)
end

done = function(summary, latency, requests)
  local total_sent = 0
  for _, thread in ipairs(threads) do
    total_sent = total_sent + thread:get("sent")
  end
  io.write(string.format(
    'BENCH-JSON {"requests": %d, "duration_us": %d, "non2xx": %d, "connect": %d, ' ..
    '"read": %d, "write": %d, "timeout": %d, "sent": %d, ' ..
    '"p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d}\\n',
    summary.requests, summary.duration, summary.errors.status, summary.errors.connect,
    summary.errors.read, summary.errors.write, summary.errors.timeout, total_sent,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
"""


def write_lua(path: Path, requests: list[str]) -> None:
    with path.open("w", encoding="ascii") as out:
        out.write("requests = {\n")
        for request in requests:
            out.write("  " + lua_string(request) + ",\n")
        out.write("}\n")
        out.write(LUA_RUNTIME)


@dataclass
class WrkResult:
    requests: int
    seconds: float
    non2xx: int
    socket_errors: int
    sent: int
    p50_ms: float
    p99_ms: float
    max_ms: float

    @property
    def acknowledged(self) -> int:
        return self.requests - self.non2xx

    @property
    def per_second(self) -> float:
        return self.acknowledged / self.seconds

    @property
    def in_flight(self) -> int:
        """Requests sent but unanswered when wrk stopped (the server may have done them)."""
        return self.sent - self.requests


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    print("wrk not found: installing it with apt-get (Debian package 'wrk')", flush=True)
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run([*sudo, "apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run([*sudo, "apt-get", "install", "-y", "-qq", "wrk"], check=True, env=env)
    found = shutil.which("wrk")
    if not found:
        raise SystemExit("wrk is still missing after apt-get install")
    return found


def run_wrk(
    wrk: str, url: str, script: Path, *, seconds: int, connections: int, threads: int
) -> WrkResult:
    command = [
        wrk,
        f"-t{threads}",
        f"-c{connections}",
        f"-d{seconds}s",
        "--timeout",
        "10s",
        "-s",
        str(script),
        url,
    ]
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    match = re.search(r"^BENCH-JSON (.*)$", output, re.MULTILINE)
    if match is None:
        raise RuntimeError(f"wrk printed no summary:\n{output}")
    data = json.loads(match.group(1))
    return WrkResult(
        requests=data["requests"],
        seconds=data["duration_us"] / 1e6,
        non2xx=data["non2xx"],
        socket_errors=data["connect"] + data["read"] + data["write"] + data["timeout"],
        sent=data["sent"],
        p50_ms=data["p50_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        max_ms=data["max_us"] / 1000,
    )


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(url: str, process: subprocess.Popen[bytes]) -> None:
    with httpx.Client() as client:
        for _attempt in range(600):
            if process.poll() is not None:
                raise RuntimeError(f"server exited with {process.returncode}")
            try:
                client.get(url, timeout=1)
                return
            except httpx.TransportError:
                time.sleep(0.05)
    raise RuntimeError(f"{url} did not answer")


def _processes() -> dict[int, tuple[int, list[str]]]:
    """Every process: its parent's id and the fields of ``/proc/PID/stat`` after the name."""
    found = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        found[int(stat.parent.name)] = (int(fields[1]), fields)
    return found


def _tree(pid: int) -> list[int]:
    """``pid`` and all its descendants (with ``--workers``, the supervisor and its workers)."""
    processes = _processes()
    tree = [pid]
    for member in tree:
        tree += [child for child, (parent, _) in processes.items() if parent == member]
    return [member for member in tree if member in processes]


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) used so far by the process and its live descendants: a cost per
    hit that other processes on the machine barely change, unlike hits per second."""
    processes = _processes()
    total = 0
    for member in _tree(pid):
        fields = processes[member][1]
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def _summed_kb(pid: int, file: str, field: str) -> float:
    """The ``field`` (a "Name:  N kB" line of ``/proc/PID/file``) of the process and its
    descendants (with ``--workers``, the supervisor and each worker), summed, in MB."""
    total = 0.0
    for member in _tree(pid):
        try:
            text = Path(f"/proc/{member}/{file}").read_text()
        except OSError:
            continue
        line = next(line for line in text.splitlines() if line.startswith(f"{field}:"))
        total += int(line.split()[1]) / 1024
    return total


def peak_rss_mb(pid: int) -> float:
    """The high-water resident set (VmHWM) of the collector's processes, summed, in MB."""
    return _summed_kb(pid, "status", "VmHWM")


def pss_mb(pid: int) -> float:
    """The proportional set size of the collector's processes, in MB: a page shared by several
    of them (the forked workers share their supervisor's code and data until they write to it)
    counts once in all, not once in each as in the summed RSS."""
    return _summed_kb(pid, "smaps_rollup", "Pss")


class PssSampler(threading.Thread):
    """The highest :func:`pss_mb` seen, sampled every ``interval`` seconds until stopped."""

    def __init__(self, pid: int, interval: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.pid, self.interval, self.peak = pid, interval, 0.0
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.wait(self.interval):
            self.peak = max(self.peak, pss_mb(self.pid))

    def stop(self) -> float:
        self._done.set()
        self.join()
        return self.peak


def stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def ceiling_app() -> Any:
    """The ceiling: Starlette + msgspec decoding the same wire Struct, nothing else."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    from collector.ingest.wire import hit_decoder

    async def hit(request: Request) -> Response:
        hit_decoder.decode(await request.body())
        return Response(status_code=202)

    return Starlette(routes=[Route("/api/hit", hit, methods=["POST"])])


def serve_ceiling(port: int, workers: int) -> None:
    import uvicorn

    from collector.web.server import UVICORN_SETTINGS
    from collector.web.workers import serve

    # As ``mesure serve`` runs the collector: one process, or forked workers on one port.
    if workers == 1:
        uvicorn.run(
            "tests.bench.ingest:ceiling_app",
            factory=True,
            host="127.0.0.1",
            port=port,
            **UVICORN_SETTINGS,
        )
    else:
        serve(
            lambda _counters, _index: ceiling_app(),
            host="127.0.0.1",
            port=port,
            workers=workers,
            settings=UVICORN_SETTINGS,
        )


def measure_ceiling(
    wrk: str, hit_script: Path, workers: int, args: argparse.Namespace, env: dict[str, str]
) -> tuple[WrkResult, float]:
    """The bare endpoint on ``workers`` worker(s) under the hit load: its wrk result and its
    CPU time per request."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    ceiling = subprocess.Popen(
        [sys.executable, __file__, "--serve-ceiling", str(port), "--workers", str(workers)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_ready(url + "/", ceiling)
        run_wrk(wrk, url, hit_script, seconds=2, connections=args.connections, threads=1)
        return measured_hit_run(wrk, url, hit_script, args, ceiling.pid)
    finally:
        stop(ceiling)


def measured_hit_run(
    wrk: str, url: str, hit_script: Path, args: argparse.Namespace, server_pid: int
) -> tuple[WrkResult, float]:
    """The measured hit load against ``url``: wrk's result and the server's CPU time per
    request (all the processes of ``server_pid``)."""
    cpu_before = cpu_seconds(server_pid)
    result = run_wrk(
        wrk,
        url,
        hit_script,
        seconds=args.duration,
        connections=args.connections,
        threads=args.threads,
    )
    return result, (cpu_seconds(server_pid) - cpu_before) / result.sent


def stored_counts(database: Path) -> tuple[int, int, str]:
    conn = sqlite3.connect(database)
    try:
        events = conn.execute("SELECT count(*) FROM events").fetchone()[0]
        dropped = conn.execute("SELECT coalesce(sum(hits), 0) FROM dropped_hits").fetchone()[0]
        integrity = conn.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        conn.close()
    return int(events), int(dropped), str(integrity)


def breakdown(hits: list[tuple[dict[str, Any], dict[str, str]]], work: Path) -> None:
    """What a hit costs, step by step: the pipeline run in this process, then the storage."""
    from collector.audit import AuditLog
    from collector.config import load_config
    from collector.ingest.hit import Client, Dropped, receive
    from collector.ingest.parsers.geo import GeoLookup
    from collector.ingest.pipeline import Pipeline
    from collector.ingest.steps import pseudonymize
    from collector.ingest.wire import decode_hit
    from collector.keys import KeyStore
    from collector.storage.rows import Event
    from collector.storage.sqlite.events import open_storage
    from collector.web.routes.ingest import SIGNAL_HEADERS

    data = work / "data"
    config = load_config(data, {"MESURE_SITE_RATE_PER_MINUTE": "100000000"})
    clock = lambda: datetime.now(UTC)  # noqa: E731
    keys = KeyStore.open(config.keys_dir, AuditLog(config.audit_path, clock), [SITE])
    pipeline = Pipeline(config, keys, clock, GeoLookup.open(None))
    bodies = [(json.dumps(body).encode(), headers) for body, headers in hits]
    costs: dict[str, int] = {}
    events: list[Event] = []

    def timed(name: str, start: int) -> int:
        now = time.perf_counter_ns()
        costs[name] = costs.get(name, 0) + now - start
        return now

    for _round in range(2):  # the first round warms the caches, as a running collector's are
        costs.clear()
        events.clear()
        for body, raw_headers in bodies:
            headers = {name.lower(): value for name, value in raw_headers.items()}
            start = time.perf_counter_ns()
            wire = decode_hit(body)
            start = timed("decode (msgspec)", start)
            client = Client(
                ip=headers["x-forwarded-for"],
                user_agent=headers["user-agent"],
                origin=headers.get("origin"),
                headers={n: (headers[n],) for n in SIGNAL_HEADERS if n in headers},
            )
            hit = receive(config, wire, client, clock())
            start = timed("receive (site, URL cleaning)", start)
            outcome: Any = hit
            for name, step in pipeline.steps:
                outcome = step(outcome)
                start = timed(name, start)
                if isinstance(outcome, Dropped):
                    break
            if not isinstance(outcome, Dropped):
                events.append(pseudonymize(outcome, keys=keys))
                timed("pseudonymize (keyed hashes)", start)
    total = sum(costs.values())
    print(f"\nWhat a hit costs in the pipeline (µs per hit, mean of {len(bodies):,} hits):")
    for name, nanoseconds in costs.items():
        print(f"  {name:32}{nanoseconds / len(bodies) / 1000:>8.1f}")
    print(f"  {'total':32}{total / len(bodies) / 1000:>8.1f}")
    storage = open_storage(work / "breakdown.db")
    group = 32
    cpu, wall = time.thread_time(), time.perf_counter()
    for index in range(0, len(events), group):
        storage.insert_hits(events[index : index + group])
    cpu, wall = time.thread_time() - cpu, time.perf_counter() - wall
    commits = -(-len(events) // group)
    print(
        f"  storage, groups of {group}: {cpu / len(events) * 1e6:.1f} µs CPU per event, "
        f"{wall / commits * 1000:.1f} ms per group commit (synchronous=FULL: fsync)"
    )
    storage.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=20, help="seconds of each hit run")
    parser.add_argument("--batch-duration", type=int, default=10, help="seconds of batch load")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument(
        "--workers",
        type=int,
        default=default_workers(clickhouse=False),
        help="worker processes of the collector (default: mesure serve's, one per core, at most "
        "4); the ceiling runs on one worker and on as many",
    )
    parser.add_argument("--profile", action="store_true", help="py-spy the collector's hit run")
    parser.add_argument("--keep", action="store_true", help="keep the data directory")
    parser.add_argument(
        "--breakdown", action="store_true", help="also time each ingest step in-process"
    )
    parser.add_argument("--serve-ceiling", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_ceiling is not None:
        serve_ceiling(args.serve_ceiling, args.workers)
        return 0

    wrk = ensure_wrk()
    if args.profile and shutil.which("py-spy") is None:
        raise SystemExit("--profile needs py-spy: pip install py-spy (not a project dependency)")
    work = Path(tempfile.mkdtemp(prefix="mesure-bench-"))
    data = work / "data"
    python = [sys.executable]
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
        # A production deployment behind a reverse proxy; the generated hits come from ~16
        # million addresses. One site takes all the load, above the default per-site limit of
        # 60,000 hits a minute, which would otherwise answer most of them 429.
        "MESURE_CLIENT_IP_HEADER": "x-forwarded-for",
        "MESURE_SITE_RATE_PER_MINUTE": "100000000",
    }
    init = subprocess.run(
        [*python, "-m", "collector", "init", "--data", str(data), "--site", SITE],
        check=True,
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
    )
    token = re.search(r"ingest token of \S+ \(.*\): (\S+)", init.stdout)
    assert token is not None, init.stdout

    rng = random.Random(7)
    tc_granted = encode_tc(
        purposes_consent={1, 8, 9}, created=datetime.now(UTC) - timedelta(days=30)
    )
    hits = []
    modes: dict[str, int] = {}
    for _ in range(DISTINCT_HITS):
        body, headers = mixed_hit(rng, tc_granted)
        key = "gpc" if "Sec-GPC" in headers else str(body.get("mode"))
        modes[key] = modes.get(key, 0) + 1
        hits.append(raw_request("/api/hit", json.dumps(body).encode(), headers))
    hit_script = work / "hits.lua"
    write_lua(hit_script, hits)
    now_ms = int(time.time() * 1000)
    batches = [
        raw_request(
            "/api/batch",
            json.dumps(batch_body(rng, 1000, now_ms)).encode(),
            {"Authorization": f"Bearer {token.group(1)}", "User-Agent": "shop-backend/2.1"},
        )
        for _ in range(8)
    ]
    batch_script = work / "batch.lua"
    write_lua(batch_script, batches)
    mix = ", ".join(f"{k} {100 * v / len(hits):.0f} %" for k, v in sorted(modes.items()))

    print(f"Ingest benchmark, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores")
    print(
        f"mesure serve --workers {args.workers}; "
        f"wrk -t{args.threads} -c{args.connections} -d{args.duration}s, "
        f"{len(hits)} distinct hits cycled ({mix})"
    )
    print(TARGETS)
    print(
        f"load average before the run: {os.getloadavg()[0]:.1f} (every other process competes "
        "for the same cores: compare figures within one run, not across runs)"
    )

    # 1. The collector.
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [
            *python,
            "-m",
            "collector",
            "serve",
            "--data",
            str(data),
            "--port",
            str(port),
            "--workers",
            str(args.workers),
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=(work / "serve.log").open("wb"),
    )
    profiler = None
    results: dict[str, WrkResult] = {}
    cpu_per_hit: dict[str, float] = {}
    pss = PssSampler(server.pid)
    try:
        wait_ready(url + "/healthz", server)
        pss.start()
        results["warm-up"] = run_wrk(
            wrk, url, hit_script, seconds=2, connections=args.connections, threads=1
        )
        if args.profile:
            profiler = subprocess.Popen(
                [
                    "py-spy",
                    "record",
                    "--pid",
                    str(server.pid),
                    "--duration",
                    str(args.duration),
                    "--format",
                    "speedscope",
                    "--output",
                    str(work / "profile.json"),
                    "--nonblocking",
                    "--subprocesses",  # the workers, with --workers
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            sampler = threading.Thread(target=profiler.wait)
            sampler.start()
        results["mesure"], cpu_per_hit["mesure"] = measured_hit_run(
            wrk, url, hit_script, args, server.pid
        )
        if profiler is not None:
            sampler.join()
        results["batch"] = run_wrk(
            wrk, url, batch_script, seconds=args.batch_duration, connections=4, threads=1
        )
        rss = peak_rss_mb(server.pid)
    finally:
        peak_pss = pss.stop() if pss.is_alive() else 0.0
        stop(server)

    # Every 2xx is a stored event or a counted filtered hit (bots, opt-outs, exempt-disallowed
    # events); a request wrk had sent but not read back when it stopped may be stored too.
    events, dropped, integrity = stored_counts(data / "mesure.db")
    batch = results["batch"]
    hit_run = results["mesure"]
    acknowledged = sum(results[run].acknowledged for run in ("warm-up", "mesure"))
    acknowledged += batch.acknowledged * 1000  # a 202 covers every event of its batch
    in_flight = sum(results[run].in_flight for run in ("warm-up", "mesure"))
    in_flight += batch.in_flight * 1000
    lost = max(0, acknowledged - (events + dropped))
    unexplained = max(0, events + dropped - acknowledged - in_flight)

    # 2. The ceiling, same stack, same settings: on one worker (the reference) and on
    # as many workers as the collector had.
    ceilings: list[tuple[int, WrkResult, float]] = []
    for workers in sorted({1, args.workers}):
        ceiling_run, ceiling_cpu = measure_ceiling(wrk, hit_script, workers, args, env)
        ceilings.append((workers, ceiling_run, ceiling_cpu))

    print()
    print(
        f"{'':34}{'hits/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}{'non-2xx':>9}"
        f"{'CPU µs/hit':>12}"
    )
    rows = [(f"Mesure /api/hit, {args.workers} worker(s)", hit_run, cpu_per_hit["mesure"])]
    rows += [(f"ceiling, {workers} worker(s)", run, cpu) for workers, run, cpu in ceilings]
    for label, result, cpu in rows:
        print(
            f"{label:34}{result.per_second:>10,.0f}{result.p50_ms:>9.1f}{result.p99_ms:>9.1f}"
            f"{result.max_ms:>9.1f}{result.non2xx + result.socket_errors:>9}{cpu * 1e6:>12.0f}"
        )
    print("  (CPU µs/hit: the server's CPU time, all its processes and threads, per request sent)")
    for workers, run, cpu in ceilings:
        print(
            f"Mesure ÷ ceiling on {workers} worker(s): "
            f"{100 * hit_run.per_second / run.per_second:.0f} % of its requests/s, "
            f"{100 * cpu / cpu_per_hit['mesure']:.0f} % of its CPU time per request"
        )
    print(
        f"Mesure /api/batch (1,000-event batches, 4 connections): "
        f"{batch.per_second * 1000:,.0f} events/s, p50 {batch.p50_ms:.0f} ms, "
        f"p99 {batch.p99_ms:.0f} ms, non-2xx {batch.non2xx + batch.socket_errors}"
    )
    print(
        f"Collector peak memory: RSS {rss:.0f} MB summed over its processes, "
        f"PSS {peak_pss:.0f} MB (pages shared by processes counted once); "
        f"load average after the run: {os.getloadavg()[0]:.1f}"
    )
    print(
        f"Durability: {acknowledged:,} hits acknowledged (2xx); stored {events:,} events + "
        f"{dropped:,} filtered (bots, opt-outs) = {events + dropped:,}; "
        f"{in_flight:,} sent but unread when wrk stopped (stored or not: both fine)"
    )
    print(
        f"  lost acknowledged hits: {lost}; stored beyond what was sent: {unexplained}; "
        f"PRAGMA integrity_check: {integrity}"
    )
    if args.breakdown:
        breakdown([mixed_hit(random.Random(n), tc_granted) for n in range(DISTINCT_HITS)], work)
    if profiler is not None:
        print(f"Profile (speedscope JSON): {work / 'profile.json'}")
    if args.keep or profiler is not None:
        print(f"Data directory kept: {work}")
    else:
        shutil.rmtree(work)
    return 0 if integrity == "ok" and lost == 0 and unexplained == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
