"""ClickHouse side of the reports benchmark: load the same events into SQLite and ClickHouse
(chDB), then print load time, bytes on disk per million events and warm report latencies side
by side. Run as a script, never as a test:

    python -m tests.bench.clickhouse_load --events 1000000 --dir /tmp/mesure-bench-ch

``tests/bench/reports.py --backend clickhouse`` can call :func:`load` and :func:`latencies`
with its own events (any iterable of ``collector.storage.rows.Event`` batches in time order).
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from collector import reports
from collector.config import Config
from collector.reports import ReportQuery
from collector.storage import open_events, prepare, reports_for
from collector.storage.clickhouse.client import client_for
from collector.storage.rows import Event
from collector.storage.target import ClickHouseTarget
from tests.reports.dataset import config_for

MINUTE = 60_000
SITES = {f"site{i}": "Europe/Paris" if i % 2 else "UTC" for i in range(5)}
PAGES = [f"/section{i % 12}/page{i}" for i in range(300)]
SOURCES = [None, "Google", "Bing", "news.example", "Newsletter", "Mastodon", "DuckDuckGo"]
BROWSERS = [("Firefox", "128"), ("Chrome", "126"), ("Safari", "17"), ("Edge", "126")]
COUNTRIES = ["FR", "DE", "NL", "BE", "ES", "IT", "PL", None]
MODES = ["exempt", "exempt", "granted", "denied"]


def generate(
    total: int, now: datetime, *, seed: int = 1, batch: int = 20_000
) -> Iterator[list[Event]]:
    """``total`` events over the 30 days before ``now``, in time order, in batches: about four
    events per visit, 1.6 visits per visitor, a quarter of them cookieless."""
    rng = random.Random(seed)
    end = int(now.timestamp() * 1000)
    start = end - 30 * 24 * 60 * MINUTE
    visits = total // 4
    starts = sorted(rng.randrange(start, end - 60 * MINUTE) for _ in range(visits))
    visitors = [rng.randbytes(16) for _ in range(max(1, int(visits / 1.6)))]
    pending: list[tuple[int, Event]] = []
    made = 0
    out: list[Event] = []
    for begin in starts:
        # Flush what can no longer be overtaken by a later visit's events.
        pending.sort(key=lambda item: item[0])
        while pending and pending[0][0] < begin:
            out.append(pending.pop(0)[1])
            if len(out) == batch:
                yield out
                out = []
        site = f"site{rng.randrange(len(SITES))}"
        mode = MODES[rng.randrange(len(MODES))]
        who = None if mode == "denied" else visitors[rng.randrange(len(visitors))]
        browser, version = BROWSERS[rng.randrange(len(BROWSERS))]
        source = SOURCES[rng.randrange(len(SOURCES))]
        ts = begin
        for step in range(rng.choice((1, 2, 3, 4, 5, 7))):
            if made >= total:
                break
            name = (
                "pageview"
                if step == 0 or rng.random() < 0.7
                else rng.choice(("engagement", "signup", "buy"))
            )
            pending.append(
                (
                    ts,
                    Event(
                        site=site,
                        ts=ts,
                        name=name,
                        mode=mode,
                        reasons="exemption" if mode == "exempt" else "explicit",
                        hostname=f"{site}.example",
                        path=PAGES[min(int(rng.expovariate(0.03)), len(PAGES) - 1)],
                        visitor=who,
                        visitor_kind=None
                        if who is None
                        else ("client" if rng.random() < 0.75 else "cookieless"),
                        key_epoch=None if who is None else 1,
                        source=source if step == 0 else None,
                        browser=browser,
                        browser_version=version,
                        os=rng.choice(("Linux", "Windows", "macOS", "iOS", "Android")),
                        device=rng.choice(("desktop", "mobile", "tablet")),
                        country=COUNTRIES[rng.randrange(len(COUNTRIES))],
                        screen=rng.choice(("1920x1080", "390x844", "1440x900"))
                        if mode == "granted"
                        else None,
                        props={"plan": rng.choice(("free", "pro"))} if name == "signup" else None,
                    ),
                )
            )
            made += 1
            ts += rng.randint(5_000, 8 * MINUTE)
    pending.sort(key=lambda item: item[0])
    out += [event for _, event in pending]
    for index in range(0, len(out), batch):
        yield out[index : index + batch]


def load(config: Config, batches: Iterable[list[Event]]) -> tuple[int, float]:
    """Insert through the backend's own ingest (visits assigned); ``(events, seconds)``."""
    prepare(config)
    storage = open_events(config)
    count = 0
    began = time.perf_counter()
    try:
        for events in batches:
            storage.insert_hits(events)
            count += len(events)
    finally:
        storage.close()
    return count, time.perf_counter() - began


def bytes_on_disk(config: Config) -> int:
    if config.clickhouse is None:
        return sum(p.stat().st_size for p in config.data_dir.glob("mesure.db*"))
    client = client_for(config.clickhouse)
    client.command("OPTIMIZE TABLE {db}.visits FINAL")
    (size,) = client.rows(
        "SELECT sum(bytes_on_disk) FROM system.parts WHERE active AND database = {d:String}",
        {"d": config.clickhouse.database},
    )[0]
    return int(size)


def dashboard(now: datetime) -> dict[str, Callable[[Any, Config], Any]]:
    query = ReportQuery(period="30d")
    sites = list(SITES)
    calls: dict[str, Callable[[Any, Config], Any]] = {
        "aggregate": lambda db, c: reports.aggregate(db, c, query, sites=sites, now=now),
        "timeseries": lambda db, c: reports.timeseries(db, c, query, sites=sites, now=now),
        "realtime": lambda db, c: reports.realtime(db, sites=sites, now=now),
    }
    for by in ("page", "entry_page", "source", "country", "browser", "device"):
        calls[f"breakdown {by}"] = lambda db, c, b=by: reports.breakdown(
            db, c, query, sites=sites, now=now, by=b, limit=10
        )
    return calls


def latencies(config: Config, now: datetime, repeat: int = 3) -> dict[str, float]:
    """Median warm latency (seconds) of each dashboard report, after one unmeasured run."""
    found = {}
    for name, call in dashboard(now).items():
        times = []
        for attempt in range(repeat + 1):
            began = time.perf_counter()
            with reports_for(config) as db:
                call(db, config)
            if attempt:
                times.append(time.perf_counter() - began)
        found[name] = statistics.median(times)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/mesure-bench-clickhouse"))
    parser.add_argument("--skip-sqlite", action="store_true")
    args = parser.parse_args()
    shutil.rmtree(args.dir, ignore_errors=True)
    now = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
    sqlite = config_for(args.dir / "sqlite", SITES)
    clickhouse = config_for(args.dir / "clickhouse", SITES)
    target = ClickHouseTarget(embedded=True, path=str(args.dir / "chdb"), database="bench")
    clickhouse = Config(
        data_dir=clickhouse.data_dir,
        server=clickhouse.server,
        sites=clickhouse.sites,
        clickhouse=target,
    )
    backends = [("clickhouse", clickhouse)] + ([] if args.skip_sqlite else [("sqlite", sqlite)])
    results: dict[str, dict[str, float]] = {}
    for name, config in backends:
        config.data_dir.mkdir(parents=True)
        count, seconds = load(config, generate(args.events, now))
        size = bytes_on_disk(config)
        results[name] = {
            "load s": seconds,
            "events/s": count / seconds,
            "MB per M events": size / 1e6 / (count / 1e6),
            **{k: v * 1000 for k, v in latencies(config, now).items()},
        }
    names = [name for name, _ in backends]
    print(f"{args.events:,} events; report latencies in ms (median of 3 warm runs)")
    print(f"{'':24}" + "".join(f"{n:>14}" for n in names))
    for key in results["clickhouse"]:
        print(f"{key:24}" + "".join(f"{results[n][key]:>14.1f}" for n in names))


if __name__ == "__main__":
    main()
