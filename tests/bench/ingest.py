"""Ingest benchmark: ``mesure serve`` against the ceiling of its own server stack, side by side.

    PYTHONPATH=$PWD python tests/bench/ingest.py            # about 5 minutes on 2 cores
    PYTHONPATH=$PWD python tests/bench/ingest.py --duration 30 --shape 1 --workers 1

One run, on 127.0.0.1, with ``wrk`` (installed with apt-get when missing) as the load generator:

1. For each traffic shape (``--shape``): about 3 hits per visitor (a visitor's hits one after the
   other on one connection, milliseconds apart, as a visit), and 1 hit per visitor (every hit a
   new visitor: a new client id and a new address). ``mesure init`` + ``mesure serve`` (the
   production settings: as many workers as it starts by default, one per core; a fresh data
   directory per shape) under a realistic mix of hits: ~60 % exempt, ~30 % granted (a third of
   them with a TCF v2.2 string), ~10 % denied or opted out; varied paths, referrers, browsers,
   UTM tags and properties, and a few crawlers. A warm-up, a wait until the rollups are current,
   then ``--duration`` seconds of load, then the time until the rollups are current again
   (polled on a read-only connection: every stored event counted in the whole site's day
   rows and no day queued for a rebuild; at most ``--catch-up-limit`` seconds). It prints the
   burst rate (acknowledged hits per second of load), the sustained rate (acknowledged hits /
   (load + catch-up)), the lag of the rollups sampled once a second (events not yet in them,
   days queued) and the latency of the hits (wrk's p50/p99/max). After the first
   shape, the batch endpoint with 1,000-event batches.
2. The same hit load against a bare Starlette endpoint served by uvicorn with the same settings,
   which only decodes the body with msgspec and answers 202: the ceiling of the stack here, on
   one worker (the reference of issue 7) and on as many workers as the collector had. The load
   generator builds every request in Lua there too, so the ceiling also shows it is not the
   bottleneck (its CPU time per request is printed).
3. The collector's peak memory (summed RSS and PSS over its processes), and durability by
   identity: every hit and batch event carries a unique id in its page path (the one field every
   mode that stores events keeps), and wrk's response hook logs the id of every 2xx answer (one
   connection per wrk thread, so each answer is matched to its request). After the run every
   acknowledged id is looked up in the stored events: an id that should be stored (not a
   crawler, not opted out: those are counted in ``dropped_hits`` by reason) and is missing or
   stored twice fails the bench, with the list.

Every page path is therefore distinct: the collector's URL cache never hits, and every page is a
new value in the page rollups (figures before this change cycled 16,384 URLs).

It prints figures; it asserts nothing about speed (benchmarks are run by hand, never in the suite).
The exit status is 1 only when durability fails: an acknowledged id missing or stored twice, a
filtered hit stored, a stored id nobody sent, or ``PRAGMA integrity_check`` not ok.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import resource
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from collector.storage.sqlite import rollups as rollups_sqlite  # noqa: E402
from collector.web.workers import default_count as default_workers  # noqa: E402
from tests.consent.tc_encoder import encode as encode_tc  # noqa: E402

SITE = "example.com"
#: Requests cycled by wrk: more than the collector's URL and user-agent caches hold.
DISTINCT_HITS = 16_384
TARGETS = (
    "targets (storage v2): sustained >= 5,000 hits/s with the rollups <= 5 s behind, at about 3 "
    "and at 1 hit per visitor; zero acknowledged hits lost; p99 < 20 ms\n"
    "earlier targets (issue 7): >= 5,000 durable hits/s, >= 30 % of ceiling, p99 < 50 ms, "
    "RSS < 150 MB"
)

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


def hit_class(body: dict[str, Any], headers: dict[str, str]) -> str:
    """What the collector should do with a hit, as the last letter of its id: ``s`` stored,
    ``b`` counted as a crawler, ``o`` counted as an opt-out (``dropped_hits`` reasons ``bot``
    and ``optout``; the crawler check runs first)."""
    if headers.get("User-Agent") in CRAWLERS:
        return "b"
    if body.get("mode") == "optout" or "Sec-GPC" in headers:
        return "o"
    return "s"


def with_id(url: str, cls: str) -> str:
    """``url`` with the id placeholder as a last path segment (the query, if any, after it)."""
    page, sep, query = url.partition("?")
    return f"{page}/@I{cls}{sep}{query}"


def mixed_visit(rng: random.Random, tc_granted: str) -> list[tuple[dict[str, Any], dict[str, str]]]:
    """Three hits of one visitor: the first as :func:`mixed_hit` draws it (landing page,
    referrer, campaign), then two internal pages in the same mode, browser and identifiers.
    The visitor's client id and address are placeholders (``@V``, ``@A``), which the load
    generator fills according to the traffic shape."""
    first, headers = mixed_hit(rng, tc_granted)
    headers = {**headers, "X-Forwarded-For": "@A"}
    if "cid" in first:
        first["cid"] = first["cid"][0] + "@V"
    hits = [(first, headers)]
    for _ in range(2):
        body = {k: first[k] for k in ("site", "mode", "cid", "tcf", "uid", "screen") if k in first}
        body["url"] = f"https://{SITE}/{rng.choice(SECTIONS)}/{rng.randrange(400)}"
        body["referrer"] = f"https://{SITE}/"
        if body.get("mode") == "exempt" and rng.random() < 0.1:
            body["name"] = "engagement"
            body["engaged_ms"] = rng.randrange(1, 600_000)
        elif body.get("mode") == "granted" and rng.random() < 0.1:
            body["name"] = "signup"
            body["props"] = {"plan": rng.choice(["free", "pro", "team"]), "step": 3}
        hits.append((body, headers))
    for body, hit_headers in hits:
        body["url"] = with_id(body["url"], hit_class(body, hit_headers))
    return hits


def batch_body(rng: random.Random, size: int, now_ms: int) -> list[dict[str, Any]]:
    """A server-side client's batch: events with their own time, address and user agent, each
    with an id placeholder in its path."""
    events = []
    for _ in range(size):
        body, headers = mixed_hit(rng, "")
        body.pop("tcf", None)
        body["ts"] = now_ms - rng.randrange(3_600_000)
        body["ip"] = headers["X-Forwarded-For"]
        body["ua"] = rng.choice(BROWSERS)
        if "Sec-GPC" in headers:
            body["mode"] = "optout"
        body["url"] = with_id(body["url"], "o" if body["mode"] == "optout" else "s")
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


def request_template(path: str, body: bytes, headers: dict[str, str]) -> tuple[str, str]:
    """A request as the Lua script fills it: the head up to its ``Content-Length`` (computed per
    request, since the ids change the body's length), and the body."""
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", "Content-Type: text/plain"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    head = "\r\n".join(lines) + "\r\n"
    text = body.decode("utf-8")
    # "@" only where a placeholder is: nothing else in the generated requests may be replaced.
    assert len(re.findall("@", head + text)) == len(re.findall("@[IVA]", head + text)), text
    return head, text


# One connection per wrk thread: wrk's response hook does not say which connection answered,
# but a thread with one connection has one request in flight, so the answer is that request's.
LUA_RUNTIME = """
local T = #requests
local threads = {}
setup = function(thread)
  table.insert(threads, thread)
  thread:set("tid", #threads)
end

init = function(args)
  log = assert(io.open(args[1] .. "/ack-" .. args[2] .. "-" .. tid .. ".txt", "w"))
  prefix = args[2] .. "t" .. tid .. "n"
  per_visitor = tonumber(args[3])
  -- Threads start at different visits of the cycle (a multiple of 3: a visit's first hit).
  offset = (tid * 3 * 977) % T
  sent, acked, ids = 0, 0, 0
  pending = {}
end

local function fill(kind, cls)
  if kind == "I" then
    ids = ids + 1
    local id = string.format("%s%dx%03d%s", prefix, math.floor(ids / 1000), ids % 1000, cls)
    pending[#pending + 1] = id
    return id
  end
  return visitor .. cls
end

request = function()
  local template = requests[(offset + sent) % T + 1]
  local v = math.floor(sent / per_visitor)
  -- Visitors of the warm-up and of the load differ: the run's tag starts their client ids.
  visitor = string.format("%st%dv%d", string.sub(prefix, 1, 1), tid, v)
  -- One /64 per visitor: a rate limit or a visitor hash that looks at the network sees new ones.
  local address = string.format(
    "fd%02x:%x:%x:%x::1", tid, string.byte(prefix), math.floor(v / 65536), v % 65536)
  pending = {}
  sent = sent + 1
  local body = template[2]:gsub("@(%u)(%l?)", fill)
  local head = template[1]:gsub("@A", address)
  return head .. "Content-Length: " .. #body .. "\\r\\n\\r\\n" .. body
end

response = function(status, headers, body)
  if status >= 200 and status < 300 then
    for _, id in ipairs(pending) do
      log:write(id, "\\n")
    end
    acked = acked + #pending
  end
  pending = {}
end

done = function(summary, latency, requests)
  local total_sent, total_acked = 0, 0
  for _, thread in ipairs(threads) do
    total_sent = total_sent + thread:get("sent")
    total_acked = total_acked + thread:get("acked")
  end
  io.write(string.format(
    'BENCH-JSON {"requests": %d, "duration_us": %d, "non2xx": %d, "connect": %d, ' ..
    '"read": %d, "write": %d, "timeout": %d, "sent": %d, "acked_ids": %d, ' ..
    '"p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d}\\n',
    summary.requests, summary.duration, summary.errors.status, summary.errors.connect,
    summary.errors.read, summary.errors.write, summary.errors.timeout, total_sent, total_acked,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
"""


def write_lua(path: Path, requests: list[tuple[str, str]]) -> None:
    with path.open("w", encoding="ascii") as out:
        out.write("requests = {\n")
        for head, body in requests:
            out.write(f"  {{{lua_string(head)}, {lua_string(body)}}},\n")
        out.write("}\n")
        out.write(LUA_RUNTIME)


@dataclass
class WrkResult:
    requests: int
    seconds: float
    non2xx: int
    socket_errors: int
    sent: int
    acked_ids: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    #: wrk's own CPU time (user + system), in seconds.
    cpu: float

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


@dataclass
class Load:
    """What a wrk script sends: its file, the ack log directory, and the visitor shape."""

    script: Path
    logs: Path
    per_visitor: int = 1


def run_wrk(
    wrk: str, url: str, load: Load, tag: str, *, seconds: int, connections: int
) -> WrkResult:
    """``load`` against ``url``; the ids of its 2xx answers go to ``ack-TAG-*.txt``. ``tag`` is
    the start of every id the run sends: unique per run and data directory."""
    command = [
        wrk,
        f"-t{connections}",
        f"-c{connections}",
        f"-d{seconds}s",
        "--timeout",
        "10s",
        "-s",
        str(load.script),
        url,
        "--",
        str(load.logs),
        tag,
        str(load.per_visitor),
    ]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
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
        acked_ids=data["acked_ids"],
        p50_ms=data["p50_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        max_ms=data["max_us"] / 1000,
        cpu=(after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
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
    wrk: str, load: Load, workers: int, args: argparse.Namespace, env: dict[str, str]
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
        run_wrk(wrk, url, load, f"cw{workers}", seconds=2, connections=args.connections)
        cpu_before = cpu_seconds(ceiling.pid)
        result = run_wrk(
            wrk, url, load, f"c{workers}", seconds=args.duration, connections=args.connections
        )
        return result, (cpu_seconds(ceiling.pid) - cpu_before) / result.sent
    finally:
        stop(ceiling)


@dataclass
class Lag:
    """How far the rollups are behind the events at one moment."""

    #: Events stored but not in the rollups: the events table's count less the hits of the
    #: whole site's day rows, read in one snapshot.
    pending_visits: int
    #: Days queued for a rebuild (read from the events meanwhile).
    pending_hours: int
    #: ``None`` when nothing is behind; otherwise the seconds since the newest rolled-up event
    #: (a lower bound of the lag).
    oldest_s: float | None
    #: What reading this cost, in seconds (the sampler competes with the collector for CPU).
    read_s: float

    @property
    def current(self) -> bool:
        return self.pending_visits == 0 and self.pending_hours == 0


class RollupWatch:
    """Reads on a read-only connection how far the rollups are behind: the events not counted
    in the whole site's day rows (with the changes waiting in ``rollup_log``), and the days
    queued for a rebuild."""

    def __init__(self, database: Path) -> None:
        # Read by the sampler's thread during the load, then by the main thread: one at a time.
        self._conn = sqlite3.connect(
            f"file:{database}?mode=ro", uri=True, timeout=10, check_same_thread=False
        )

    def read(self) -> Lag:
        start = time.perf_counter()
        # One snapshot for the reads.
        self._conn.execute("BEGIN")
        try:
            events = self._conn.execute("SELECT count(*) FROM events").fetchone()[0]
            rolled = self._conn.execute(
                "SELECT coalesce(SUM(hits), 0) FROM day_rollups WHERE dim = 0"
            ).fetchone()[0]
            # With the changes still waiting in the log, as the reports add them in.
            logged = rollups_sqlite.read_log(self._conn).rows.items()
            rolled += sum(d.sums[rollups_sqlite.HITS] for k, d in logged if k[1] == 0)
            days = self._conn.execute("SELECT count(*) FROM rollup_pending_days").fetchone()[0]
            newest = self._conn.execute("SELECT max(ts) FROM events").fetchone()[0]
        finally:
            self._conn.execute("COMMIT")
        behind = int(events) - int(rolled)
        age = None if behind == 0 or newest is None else time.time() - newest / 1000
        return Lag(behind, int(days), age, time.perf_counter() - start)

    def close(self) -> None:
        self._conn.close()


class LagSampler(threading.Thread):
    """:meth:`RollupWatch.read` once a second until stopped."""

    def __init__(self, watch: RollupWatch) -> None:
        super().__init__(daemon=True)
        self.watch, self.samples = watch, list[Lag]()
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.wait(1.0):
            self.samples.append(self.watch.read())

    def stop(self) -> list[Lag]:
        self._done.set()
        self.join()
        return self.samples


def wait_current(watch: RollupWatch, limit: float) -> tuple[float | None, list[Lag]]:
    """Seconds until the rollups are current (``None``: not within ``limit``), polled every
    0.2 s, and what was read on the way."""
    start = time.monotonic()
    seen = []
    while True:
        lag = watch.read()
        seen.append(lag)
        elapsed = time.monotonic() - start
        if lag.current:
            return elapsed, seen
        if elapsed > limit:
            return None, seen
        time.sleep(0.2)


@dataclass
class ShapeRun:
    """One traffic shape against one collector: the load, the catch-up, the memory."""

    per_visitor: int
    load: WrkResult
    cpu_per_hit: float
    during: list[Lag]
    catch_up_s: float | None
    after: list[Lag]
    warm_up: WrkResult
    warm_up_catch_up_s: float | None
    rss: float = 0.0
    pss: float = 0.0
    batch: WrkResult | None = None
    identity: Identity | None = None

    @property
    def sustained(self) -> float | None:
        if self.catch_up_s is None:
            return None
        return self.load.acknowledged / (self.load.seconds + self.catch_up_s)

    @property
    def sent_unanswered(self) -> int:
        """Hits sent but not answered when wrk stopped: the collector may have stored them."""
        batch = self.batch.in_flight * 1000 if self.batch else 0
        return self.warm_up.in_flight + self.load.in_flight + batch


ID_SEGMENT = re.compile(r"/([wlb]t\d+n\d+x\d{3}[sbo])$")


@dataclass
class Identity:
    """Every acknowledged id against the stored events."""

    acknowledged: int
    stored: int
    missing: list[str]
    duplicated: list[str]
    filtered_stored: list[str]
    stored_unacknowledged: int
    without_id: int
    dropped: dict[str, int]
    acknowledged_filtered: dict[str, int]
    integrity: str
    sent_unanswered: int

    @property
    def dropped_short(self) -> list[str]:
        """Reasons with fewer hits counted in ``dropped_hits`` than acknowledged filtered ids."""
        return [
            reason
            for reason, count in self.acknowledged_filtered.items()
            if self.dropped.get(reason, 0) < count
        ]

    @property
    def ok(self) -> bool:
        return (
            not self.missing
            and not self.duplicated
            and not self.filtered_stored
            and self.stored_unacknowledged <= self.sent_unanswered
            and self.without_id == 0
            and not self.dropped_short
            and self.integrity == "ok"
        )


def read_acknowledged(logs: Path) -> list[str]:
    ids = []
    for log in sorted(logs.glob("ack-[wlb]-*.txt")):
        ids += log.read_text().split()
    return ids


def check_identity(database: Path, acknowledged: list[str], sent_unanswered: int) -> Identity:
    """Every acknowledged id that should be stored is stored exactly once; the filtered ones
    (``b``, ``o``) are not stored and are counted in ``dropped_hits``."""
    conn = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        stored: Counter[str] = Counter()
        without_id = 0
        for (path,) in conn.execute("SELECT path FROM events"):
            match = ID_SEGMENT.search(path)
            if match is None:
                without_id += 1
            else:
                stored[match.group(1)] += 1
        dropped = {
            str(reason): int(hits)
            for reason, hits in conn.execute(
                "SELECT reason, sum(hits) FROM dropped_hits GROUP BY reason"
            )
        }
        integrity = str(conn.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        conn.close()
    acked = set(acknowledged)
    assert len(acked) == len(acknowledged), "the load generator logged an id twice"
    reasons = {"b": "bot", "o": "optout"}
    filtered = Counter(reasons[i[-1]] for i in acknowledged if i[-1] in reasons)
    return Identity(
        acknowledged=len(acknowledged),
        stored=sum(stored.values()),
        missing=sorted(i for i in acknowledged if i.endswith("s") and stored[i] == 0),
        duplicated=sorted(i for i, count in stored.items() if count > 1),
        filtered_stored=sorted(i for i in stored if not i.endswith("s")),
        stored_unacknowledged=sum(1 for i in stored if i not in acked),
        without_id=without_id,
        dropped=dropped,
        acknowledged_filtered=dict(filtered),
        integrity=integrity,
        sent_unanswered=sent_unanswered,
    )


def corrupted_copy(database: Path, acknowledged: list[str], work: Path) -> Path:
    """For ``--self-check``: a copy of the database with the event of one acknowledged id
    deleted and the event of another stored twice, which the identity check must catch."""
    copy = work / "self-check.db"
    source, target = sqlite3.connect(database), sqlite3.connect(copy)
    with target:
        source.backup(target)
    source.close()
    kept = [i for i in acknowledged if i.endswith("s")]
    gone, twice = kept[0], kept[len(kept) // 2]
    # The rows of the compact layout (``events`` is the view decoding them).
    columns = [row[1] for row in target.execute("PRAGMA table_info(event_rows)") if row[1] != "id"]
    ids = "id IN (SELECT id FROM events WHERE path LIKE ?)"
    with target:
        target.execute(f"DELETE FROM event_rows WHERE {ids}", (f"%/{gone}",))
        target.execute(
            f"INSERT INTO event_rows ({', '.join(columns)}) SELECT {', '.join(columns)} "
            f"FROM event_rows WHERE {ids}",
            (f"%/{twice}",),
        )
    target.close()
    print(f"  self-check: in a copy, deleted the event of {gone} and stored {twice} twice")
    return copy


def print_identity(label: str, result: Identity) -> None:
    verdict = "ok" if result.ok else "FAILED"
    print(
        f"Durability by identity, {label}: {verdict}. {result.acknowledged:,} ids acknowledged "
        f"(2xx), {result.stored:,} stored events carry an id, {result.without_id} carry none; "
        f"PRAGMA integrity_check: {result.integrity}"
    )
    filtered = ", ".join(
        f"{reason} {count:,} acknowledged / {result.dropped.get(reason, 0):,} counted"
        for reason, count in sorted(result.acknowledged_filtered.items())
    )
    others = {k: v for k, v in result.dropped.items() if k not in result.acknowledged_filtered}
    print(
        f"  filtered (not stored, counted in dropped_hits): {filtered or 'none'}"
        + (f"; other reasons counted: {others}" if others else "")
    )
    print(
        f"  stored without a 2xx read back: {result.stored_unacknowledged:,} (sent but unanswered "
        f"when wrk stopped: {result.sent_unanswered:,}; stored or not, both fine)"
    )
    for name, ids in (
        ("acknowledged, not stored", result.missing),
        ("stored more than once", result.duplicated),
        ("filtered, yet stored", result.filtered_stored),
    ):
        if ids:
            shown = ", ".join(ids[:20]) + (f" … ({len(ids):,} in all)" if len(ids) > 20 else "")
            print(f"  {name}: {shown}")
    if result.dropped_short:
        print(f"  fewer hits counted in dropped_hits than acknowledged: {result.dropped_short}")


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

    data = next(work.glob("data-*"))
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


def init_data(data: Path, env: dict[str, str]) -> str:
    """``mesure init`` of a fresh data directory: the site's ingest token."""
    init = subprocess.run(
        [sys.executable, "-m", "collector", "init", "--data", str(data), "--site", SITE],
        check=True,
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
    )
    token = re.search(r"ingest token of \S+ \(.*\): (\S+)", init.stdout)
    assert token is not None, init.stdout
    return token.group(1)


def batch_load(token: str, work: Path, logs: Path) -> Load:
    rng = random.Random(11)
    now_ms = int(time.time() * 1000)
    headers = {"Authorization": f"Bearer {token}", "User-Agent": "shop-backend/2.1"}
    batches = [
        request_template("/api/batch", json.dumps(batch_body(rng, 1000, now_ms)).encode(), headers)
        for _ in range(8)
    ]
    script = work / "batch.lua"
    write_lua(script, batches)
    return Load(script, logs)


def run_shape(
    per_visitor: int,
    script: Path,
    args: argparse.Namespace,
    wrk: str,
    env: dict[str, str],
    work: Path,
    *,
    first: bool,
) -> ShapeRun:
    """One traffic shape on a fresh collector: warm-up, wait until current, load, catch-up,
    then (``first``) the batch run; memory; durability by identity."""
    data = work / f"data-{per_visitor}"
    logs = work / f"acks-{per_visitor}"
    logs.mkdir()
    token = init_data(data, env)
    load = Load(script, logs, per_visitor)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "collector", "serve", "--data", str(data)]
    command += ["--port", str(port), "--workers", str(args.workers)]
    server = subprocess.Popen(
        command,
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=(work / f"serve-{per_visitor}.log").open("wb"),
    )
    pss = PssSampler(server.pid)
    profiler = None
    watch = None
    try:
        wait_ready(url + "/healthz", server)
        watch = RollupWatch(data / "mesure.db")
        pss.start()
        warm_up = run_wrk(wrk, url, load, "w", seconds=2, connections=args.connections)
        warm_up_catch_up, _ = wait_current(watch, args.catch_up_limit)
        if args.profile and first:
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
        sampler = LagSampler(watch)
        sampler.start()
        cpu_before = cpu_seconds(server.pid)
        result = run_wrk(wrk, url, load, "l", seconds=args.duration, connections=args.connections)
        cpu = (cpu_seconds(server.pid) - cpu_before) / result.sent
        during = sampler.stop()
        catch_up, after = wait_current(watch, args.catch_up_limit)
        if profiler is not None:
            profiler.wait(timeout=60)
        run = ShapeRun(per_visitor, result, cpu, during, catch_up, after, warm_up, warm_up_catch_up)
        if first:
            batches = batch_load(token, work, logs)
            run.batch = run_wrk(wrk, url, batches, "b", seconds=args.batch_duration, connections=4)
        run.rss = peak_rss_mb(server.pid)
    finally:
        peak_pss = pss.stop() if pss.is_alive() else 0.0
        if watch is not None:
            watch.close()
        stop(server)
    run.pss = peak_pss
    acknowledged = read_acknowledged(logs)
    logged = sum(r.acked_ids for r in (run.warm_up, run.load, run.batch) if r is not None)
    assert len(acknowledged) == logged, f"{len(acknowledged)} ids in the logs, wrk said {logged}"
    database = data / "mesure.db"
    if args.self_check:
        database = corrupted_copy(database, acknowledged, work)
    run.identity = check_identity(database, acknowledged, run.sent_unanswered)
    return run


def seconds_or(value: float | None, limit: float) -> str:
    return f"{value:.1f} s" if value is not None else f"not current after {limit:.0f} s"


def print_shapes(runs: list[ShapeRun], limit: float) -> None:
    """The shapes side by side, with the issue's targets."""
    heads = [f"{r.per_visitor} hit{'s' if r.per_visitor > 1 else ''}/visitor" for r in runs]
    heads = [("about " if r.per_visitor > 1 else "") + h for r, h in zip(runs, heads, strict=True)]
    width = 26
    print(f"{'':44}" + "".join(f"{h:>{width}}" for h in heads) + "   target")

    def row(label: str, cells: list[str], target: str = "") -> None:
        print(f"{label:44}" + "".join(f"{c:>{width}}" for c in cells) + f"   {target}")

    row("burst: acknowledged hits/s during the load", [f"{r.load.per_second:,.0f}" for r in runs])
    row("hits acknowledged in the load", [f"{r.load.acknowledged:,}" for r in runs])
    row(
        "rollups current after the load",
        [seconds_or(r.catch_up_s, limit) for r in runs],
    )
    row(
        "sustained: hits / (load + catch-up)",
        [
            f"{r.sustained:,.0f}"
            if r.sustained is not None
            else f"< {r.load.acknowledged / (r.load.seconds + limit):,.0f}"
            for r in runs
        ],
        ">= 5,000 hits/s",
    )

    def worst(samples: list[Lag]) -> str:
        ages = [s.oldest_s for s in samples if s.oldest_s is not None]
        return f"{max(ages):.1f} s" if ages else "none pending"

    row("largest lag during the load (1/s samples)", [worst(r.during) for r in runs], "<= 5 s")
    row("largest lag until current", [worst(r.during + r.after) for r in runs], "<= 5 s")
    row(
        "behind at the end of the load (events/days)",
        [
            f"{r.after[0].pending_visits:,} / {r.after[0].pending_hours}" if r.after else "-"
            for r in runs
        ],
    )
    row(
        "hit latency p50 / p99 / max, ms",
        [f"{r.load.p50_ms:.1f} / {r.load.p99_ms:.1f} / {r.load.max_ms:.0f}" for r in runs],
        "p99 < 20 ms",
    )
    row(
        "non-2xx answers + socket errors",
        [f"{r.load.non2xx} + {r.load.socket_errors}" for r in runs],
    )
    row("collector CPU µs per hit (load only)", [f"{r.cpu_per_hit * 1e6:.0f}" for r in runs])
    row("wrk CPU µs per request", [f"{r.load.cpu / r.load.sent * 1e6:.0f}" for r in runs])
    row(
        "collector peak memory: PSS / summed RSS, MB",
        [f"{r.pss:.0f} / {r.rss:.0f}" for r in runs],
    )
    row(
        "warm-up (2 s): rollups current after",
        [seconds_or(r.warm_up_catch_up_s, limit) for r in runs],
    )
    reads = [s.read_s for r in runs for s in r.during + r.after]
    print(
        "  lag: events stored but not in the rollups (count of events less the hits of the "
        "site's day rows, one snapshot) and days queued for a rebuild;"
    )
    print(
        f"  reading it took {1000 * max(reads, default=0):.1f} ms at most (a read-only "
        "connection on the data directory; current = nothing behind and nothing queued, "
        "polled every 0.2 s after the load)"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=20, help="seconds of each hit load")
    parser.add_argument("--batch-duration", type=int, default=10, help="seconds of batch load")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument(
        "--threads",
        type=int,
        help="ignored, kept for old command lines: the hit loads run one wrk thread per "
        "connection, so that each answer is matched to its request",
    )
    parser.add_argument(
        "--shape",
        choices=["3", "1", "both"],
        default="both",
        help="hits per visitor: about 3, 1, or both (default), each on a fresh collector",
    )
    parser.add_argument(
        "--catch-up-limit",
        type=float,
        default=600,
        help="seconds to wait for the rollups to be current after a load (default 600)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=default_workers(clickhouse=False),
        help="worker processes of the collector (default: mesure serve's, one per core, at most "
        "4); the ceiling runs on one worker and on as many",
    )
    parser.add_argument("--profile", action="store_true", help="py-spy the first shape's load")
    parser.add_argument("--keep", action="store_true", help="keep the data directories")
    parser.add_argument(
        "--breakdown", action="store_true", help="also time each ingest step in-process"
    )
    parser.add_argument("--no-ceiling", action="store_true", help="skip the bare reference")
    parser.add_argument("--serve-ceiling", type=int, help=argparse.SUPPRESS)
    # Runs the identity check on a copy of the database with one acknowledged event deleted
    # and one duplicated: the check must then fail (and the bench exit 1).
    parser.add_argument("--self-check", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_ceiling is not None:
        serve_ceiling(args.serve_ceiling, args.workers)
        return 0

    wrk = ensure_wrk()
    if args.profile and shutil.which("py-spy") is None:
        raise SystemExit("--profile needs py-spy: pip install py-spy (not a project dependency)")
    work = Path(tempfile.mkdtemp(prefix="mesure-bench-"))
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
        # A production deployment behind a reverse proxy; the generated hits come from a new
        # address per visitor. One site takes all the load, above the default per-site limit of
        # 60,000 hits a minute, which would otherwise answer most of them 429.
        "MESURE_CLIENT_IP_HEADER": "x-forwarded-for",
        "MESURE_SITE_RATE_PER_MINUTE": "100000000",
    }

    rng = random.Random(7)
    tc_granted = encode_tc(
        purposes_consent={1, 8, 9}, created=datetime.now(UTC) - timedelta(days=30)
    )
    hits = []
    modes: dict[str, int] = {}
    for _ in range(DISTINCT_HITS // 3):
        for body, headers in mixed_visit(rng, tc_granted):
            key = "gpc" if "Sec-GPC" in headers else str(body.get("mode"))
            key = "crawler" if headers["User-Agent"] in CRAWLERS else key
            modes[key] = modes.get(key, 0) + 1
            hits.append(request_template("/api/hit", json.dumps(body).encode(), headers))
    hit_script = work / "hits.lua"
    write_lua(hit_script, hits)
    mix = ", ".join(f"{k} {100 * v / len(hits):.0f} %" for k, v in sorted(modes.items()))
    shapes = [3, 1] if args.shape == "both" else [int(args.shape)]

    print(f"Ingest benchmark, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores")
    print(
        f"mesure serve --workers {args.workers}; wrk -t{args.connections} -c{args.connections} "
        f"-d{args.duration}s (one connection per wrk thread), {len(hits):,} hits in visits of 3 "
        f"cycled ({mix}), each sent with a unique id in its path"
    )
    print(TARGETS)
    print(
        f"load average before the run: {os.getloadavg()[0]:.1f} (every other process competes "
        "for the same cores: compare figures within one run, not across runs)"
    )
    if args.threads is not None and args.threads != args.connections:
        print(f"(--threads {args.threads} ignored: one wrk thread per connection)")

    runs = [
        run_shape(shape, hit_script, args, wrk, env, work, first=index == 0)
        for index, shape in enumerate(shapes)
    ]

    # The ceiling, same stack, same settings, same load generator: on one worker (the issue's
    # reference) and on as many workers as the collector had.
    ceilings: list[tuple[int, WrkResult, float]] = []
    if not args.no_ceiling:
        ceiling_logs = work / "acks-ceiling"
        ceiling_logs.mkdir()
        for workers in sorted({1, args.workers}):
            result, cpu = measure_ceiling(
                wrk, Load(hit_script, ceiling_logs, 3), workers, args, env
            )
            ceilings.append((workers, result, cpu))
    load_after = os.getloadavg()[0]

    print()
    print_shapes(runs, args.catch_up_limit)
    print()
    print(
        f"{'':34}{'hits/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}{'non-2xx':>9}"
        f"{'CPU µs/hit':>12}{'wrk µs/req':>12}"
    )
    first = runs[0]
    rows = [
        (f"Mesure /api/hit, {args.workers} worker(s)", first.load, first.cpu_per_hit),
    ]
    rows += [(f"ceiling, {workers} worker(s)", run, cpu) for workers, run, cpu in ceilings]
    for label, result, cpu in rows:
        print(
            f"{label:34}{result.per_second:>10,.0f}{result.p50_ms:>9.1f}{result.p99_ms:>9.1f}"
            f"{result.max_ms:>9.1f}{result.non2xx + result.socket_errors:>9}{cpu * 1e6:>12.0f}"
            f"{result.cpu / result.sent * 1e6:>12.0f}"
        )
    print(
        f"  (Mesure: the {first.per_visitor}-hit shape's load. CPU µs/hit: the server's CPU "
        "time, all its processes and threads, per request sent; wrk µs/req: the load "
        "generator's, which builds every request and logs every acknowledged id)"
    )
    for workers, result, cpu in ceilings:
        print(
            f"Mesure ÷ ceiling on {workers} worker(s): "
            f"{100 * first.load.per_second / result.per_second:.0f} % of its requests/s, "
            f"{100 * cpu / first.cpu_per_hit:.0f} % of its CPU time per request"
        )
    if first.batch is not None:
        batch = first.batch
        print(
            f"Mesure /api/batch (1,000-event batches, 4 connections, after the "
            f"{first.per_visitor}-hit shape): {batch.per_second * 1000:,.0f} events/s, "
            f"p50 {batch.p50_ms:.0f} ms, p99 {batch.p99_ms:.0f} ms, "
            f"non-2xx {batch.non2xx + batch.socket_errors}"
        )
    print(f"load average after the run: {load_after:.1f}")
    failed = False
    for run in runs:
        assert run.identity is not None
        label = f"{run.per_visitor}-hit shape" + (" and the batch run" if run.batch else "")
        print_identity(label + (" (self-check copy)" if args.self_check else ""), run.identity)
        failed = failed or not run.identity.ok
    if args.breakdown:
        breakdown([mixed_hit(random.Random(n), tc_granted) for n in range(DISTINCT_HITS)], work)
    if args.profile:
        print(f"Profile (speedscope JSON): {work / 'profile.json'}")
    if args.keep or args.profile:
        print(f"Data directories kept: {work}")
    else:
        shutil.rmtree(work)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
