"""Report benchmark: N million synthetic events over 13 months for one site, then every
dashboard report timed cold and warm.

    PYTHONPATH=$PWD python tests/bench/reports.py [--events 10000000] [--data DIR]
        [--backend sqlite|clickhouse|both] [--reuse]

The events go straight into the data directory through the storage module's domain API
(``Storage.import_events``, the bulk form of ``insert_hits``; ClickHouse's own ``insert_hits``
into chDB for ``--backend clickhouse``; ``both`` runs the two on the same events and prints them
side by side), and the reports are the same
functions the JSON API and the dashboard call. A script, never a timed test: it prints figures.

"Cold" is a report's first run in this process on a new connection (SQLite's page cache is
empty; the operating system's cache may hold the file, since it was just written); "warm" is
the median of the next runs. Every report opens its own connection, as an API request does.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from collector.config import Config
from collector.reports import (
    ReportQuery,
    aggregate,
    breakdown,
    consent_report,
    funnel,
    realtime,
    retention,
    timeseries,
)
from collector.storage.rows import Event, Goal
from tests.support import build_config

SITE = "bench"
TIMEZONE = "Europe/Paris"
#: The benchmark's "now": the data covers the 13 months (395 days) before it.
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
DAYS = 395
DAY_MS = 86_400_000
MAIN_BREAKDOWNS = ("page", "entry_page", "source", "country", "browser", "os")
WARM_RUNS = 3


class Backend(Protocol):
    """What the benchmark needs from a storage backend: bulk import, a report connection
    and the size of what is stored."""

    def import_events(self, events: Sequence[Event]) -> None: ...

    def reports(self) -> AbstractContextManager[Any]: ...

    def stored_bytes(self) -> int: ...

    def count_events(self) -> int: ...

    def close(self) -> None: ...


class SqliteBackend:
    def __init__(self, config: Config) -> None:
        from collector.storage.sqlite.events import open_storage

        self._path = config.database_path
        self._storage = open_storage(self._path)

    def import_events(self, events: Sequence[Event]) -> None:
        self._storage.import_events(events)

    def reports(self) -> AbstractContextManager[Any]:
        from collector.storage.sqlite.reports import reports_database

        return reports_database(self._path)

    def stored_bytes(self) -> int:
        self._storage.checkpoint()
        return sum(
            p.stat().st_size for p in self._path.parent.glob(self._path.name + "*") if p.is_file()
        )

    def count_events(self) -> int:
        return self._storage.count_events(SITE)

    def close(self) -> None:
        self._storage.close()


class ClickHouseBackend:
    """ClickHouse embedded in this process (chDB, ``DATA/chdb``): the same SQL engine and client
    API as a ClickHouse server. Events go through the backend's own ``insert_hits`` (visits
    assigned in memory, as the collector's writer does)."""

    def __init__(self, config: Config) -> None:
        import msgspec

        from collector.storage import open_events
        from collector.storage.target import ClickHouseTarget

        target = ClickHouseTarget(
            embedded=True, path=str(config.data_dir / "chdb"), database="bench"
        )
        self._config = msgspec.structs.replace(config, clickhouse=target)
        self._storage = open_events(self._config)

    def import_events(self, events: Sequence[Event]) -> None:
        self._storage.insert_hits(events)

    def reports(self) -> AbstractContextManager[Any]:
        from collector.storage import reports_for

        return reports_for(self._config)

    def stored_bytes(self) -> int:
        from tests.bench.clickhouse_load import bytes_on_disk

        return bytes_on_disk(self._config)

    def count_events(self) -> int:
        from collector.storage import privacy_for

        with privacy_for(self._config) as db:
            return db.count_events(SITE)

    def close(self) -> None:
        self._storage.close()


BACKENDS: dict[str, Callable[[Config], Backend]] = {
    "sqlite": SqliteBackend,
    "clickhouse": ClickHouseBackend,
}

# ---------------------------------------------------------------------------------------------
# Synthetic traffic: weighted choices that look like a mid-sized content + shop site.

PATHS = (
    ["/", "/pricing", "/blog", "/docs", "/about", "/contact", "/signup", "/login", "/cart"]
    + [f"/blog/post-{i}" for i in range(300)]
    + [f"/docs/{section}/{i}" for section in ("guide", "api", "faq") for i in range(60)]
    + [f"/shop/item-{i}" for i in range(120)]
)
PATH_WEIGHTS = [1 / (rank + 1) ** 0.9 for rank in range(len(PATHS))]
SOURCES = [
    (None, None, 40),
    ("https://www.google.com/", "Google", 28),
    ("https://www.bing.com/", "Bing", 4),
    ("https://duckduckgo.com/", "DuckDuckGo", 3),
    ("https://www.facebook.com/", "Facebook", 5),
    ("https://t.co/x", "Twitter", 3),
    ("https://www.linkedin.com/", "LinkedIn", 3),
    ("https://news.ycombinator.com/", "Hacker News", 2),
    ("https://github.com/org/repo", "GitHub", 3),
    ("https://blog.example.org/post", "blog.example.org", 4),
    ("https://forum.example.net/t/1", "forum.example.net", 5),
]
UTMS = [
    ("newsletter", "email", "weekly"),
    ("google", "cpc", "brand"),
    ("facebook", "social", "spring-sale"),
    ("partner", "referral", "launch"),
]
AGENTS = [
    (("Chrome", "130"), ("Windows", "10"), "desktop", 26),
    (("Chrome", "131"), ("Android", "14"), "mobile", 22),
    (("Safari", "18"), ("iOS", "18"), "mobile", 18),
    (("Firefox", "132"), ("Windows", "10"), "desktop", 7),
    (("Safari", "17"), ("Mac OS", "14"), "desktop", 8),
    (("Edge", "130"), ("Windows", "11"), "desktop", 8),
    (("Chrome", "130"), ("Mac OS", "14"), "desktop", 5),
    (("Samsung Internet", "26"), ("Android", "13"), "mobile", 3),
    (("Safari", "18"), ("iOS", "18"), "tablet", 3),
]
COUNTRIES = [
    ("FR", 30),
    ("DE", 12),
    ("US", 15),
    ("GB", 8),
    ("ES", 5),
    ("IT", 5),
    ("BE", 4),
    ("CH", 3),
    ("NL", 4),
    ("CA", 3),
    ("JP", 2),
    ("BR", 2),
    (None, 7),
]
SCREENS = {"desktop": "desktop", "mobile": "mobile", "tablet": "tablet"}
EVENTS = [("outbound", 40), ("download", 25), ("signup", 20), ("purchase", 15)]


@dataclass
class Visitor:
    ident: int
    agent: tuple[Any, ...]
    country: str | None
    mode: str  # granted, exempt (client storage), cookieless, denied
    user: bytes | None


class Traffic:
    """Visits of a fixed visitor population: returning visitors follow a long tail."""

    def __init__(self, events: int, seed: int = 7) -> None:
        self.rng = random.Random(seed)
        # About 4 events a visit and 1.6 visits per returning visitor and month.
        self.population = max(1000, events // 25)
        self._agent_weights = [a[3] for a in AGENTS]
        self._country_weights = [c[1] for c in COUNTRIES]
        self._source_weights = [s[2] for s in SOURCES]
        self._event_weights = [e[1] for e in EVENTS]

    def visitor(self) -> Visitor:
        rng = self.rng
        # A long tail of returning visitors: low idents come back often.
        ident = int(self.population * rng.random() ** 2.2)
        local = random.Random(ident)
        draw = local.random()
        mode = (
            "granted"
            if draw < 0.30
            else "exempt"
            if draw < 0.62
            else "cookieless"
            if draw < 0.90
            else "denied"
        )
        user = None
        if mode == "granted" and local.random() < 0.3:
            user = hashlib.blake2b(b"user%d" % ident, digest_size=16).digest()
        return Visitor(
            ident=ident,
            agent=local.choices(AGENTS, self._agent_weights)[0],
            country=local.choices(COUNTRIES, self._country_weights)[0][0],
            mode=mode,
            user=user,
        )

    def visit(self, start_ms: int) -> list[Event]:
        rng = self.rng
        who = self.visitor()
        mode = "exempt" if who.mode == "cookieless" else who.mode
        day = start_ms // DAY_MS
        visitor_hash: bytes | None = None
        kind: str | None = None
        epoch: int | None = None
        if who.mode in ("granted", "exempt"):
            visitor_hash = hashlib.blake2b(b"v%d" % who.ident, digest_size=16).digest()
            kind, epoch = "client", 1
        elif who.mode == "cookieless":
            visitor_hash = hashlib.blake2b(b"c%d-%d" % (who.ident, day), digest_size=16).digest()
            kind, epoch = "cookieless", day
        referrer, source, _ = rng.choices(SOURCES, self._source_weights)[0]
        utm = rng.choice(UTMS) if rng.random() < 0.12 else (None, None, None)
        (browser, browser_version), (os_name, os_version), device, _ = who.agent
        pageviews = 1 if rng.random() < 0.42 else 2 + int(rng.expovariate(1 / 3))
        ts = start_ms
        path = rng.choices(PATHS, PATH_WEIGHTS)[0]
        found: list[Event] = []
        identified = who.mode != "denied"
        for index in range(pageviews):
            first = index == 0
            common: dict[str, Any] = {
                "site": SITE,
                "mode": mode,
                "reasons": "explicit" if mode == "granted" else "default",
                "hostname": "www.example.com",
                "country": who.country,
            }
            if identified:
                common.update(
                    visitor=visitor_hash,
                    visitor_kind=kind,
                    key_epoch=epoch,
                    browser=browser,
                    browser_version=browser_version,
                    os=os_name,
                    os_version=os_version,
                    device=device,
                    screen=SCREENS[device],
                )
                if first:
                    common.update(
                        referrer=referrer and referrer.split("?")[0],
                        referrer_domain=referrer and referrer.split("/")[2],
                        source=source,
                        utm_source=utm[0],
                        utm_medium=utm[1],
                        utm_campaign=utm[2],
                    )
                if who.mode == "granted":
                    common["user"] = who.user
                    common["user_epoch"] = 1 if who.user else None
                    if rng.random() < 0.2:
                        common["props"] = {"variant": rng.choice(("a", "b")), "plan": "pro"}
            found.append(Event(ts=ts, name="pageview", path=path, **common))
            if identified and rng.random() < 0.12:
                found.append(
                    Event(ts=ts + 5000, name="engagement", path=path, engaged_ms=5000, **common)
                )
            if identified and rng.random() < 0.06:
                name = rng.choices(EVENTS, self._event_weights)[0][0]
                extra: dict[str, Any] = {}
                if name == "purchase" and who.mode == "granted" and who.user:
                    extra = {
                        "revenue_amount": f"{rng.randint(10, 300)}.00",
                        "revenue_currency": "EUR",
                    }
                elif name == "purchase" and mode != "granted":
                    name = "download"
                found.append(Event(ts=ts + 8000, name=name, path=path, **common, **extra))
            ts += rng.randint(10_000, 240_000)
            path = rng.choices(PATHS, PATH_WEIGHTS)[0]
        return found


def hour_weights() -> list[float]:
    """Traffic by local hour: quiet nights, busy working hours."""
    night = [0.2, 0.1, 0.1, 0.1, 0.2, 0.4, 0.8, 1.2]
    day = [1.6, 1.8, 1.9, 1.9, 1.8, 1.9, 2.0, 2.0]
    evening = [1.9, 1.7, 1.5, 1.4, 1.2, 0.9, 0.6, 0.4]
    return [*night, *day, *evening]


def generate(total: int, seed: int = 7) -> Iterator[list[Event]]:
    """Chunks of events, day by day over the 395 days before ``NOW``; about ``total`` in all."""
    traffic = Traffic(total, seed)
    rng = traffic.rng
    first_day = (NOW - timedelta(days=DAYS)).date()
    weights = hour_weights()
    per_day = total / DAYS
    made = 0
    chunk: list[Event] = []
    for offset in range(DAYS):
        day = first_day + timedelta(days=offset)
        # Slow growth over the year and quieter weekends.
        target = per_day * (0.8 + 0.4 * offset / DAYS) * (0.75 if day.weekday() >= 5 else 1.08)
        base = int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() * 1000)
        made_today = 0
        while made_today < target and made < total:
            hour = rng.choices(range(24), weights)[0]
            start = base + hour * 3_600_000 + rng.randrange(3_600_000)
            events = traffic.visit(start)
            chunk += events
            made_today += len(events)
            made += len(events)
        if len(chunk) >= 200_000 or offset == DAYS - 1:
            yield chunk
            chunk = []


# ---------------------------------------------------------------------------------------------
# Timing


def timed(run: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = run()
    return (time.perf_counter() - started) * 1000, result


def measure(backend: Backend, name: str, report: Callable[[Any], Any]) -> tuple[float, float]:
    """Cold (first) and warm (median of the next runs) milliseconds of ``report``."""
    runs = []
    for _ in range(1 + WARM_RUNS):
        with backend.reports() as db:
            runs.append(timed(lambda: report(db))[0])
    return runs[0], statistics.median(runs[1:])


def dashboard(config: Config, query: ReportQuery, interval: str) -> list[tuple[str, Any]]:
    sites = [SITE]
    found: list[tuple[str, Any]] = [
        ("aggregate", lambda db: aggregate(db, config, query, sites=sites, now=NOW)),
        (
            f"timeseries ({interval})",
            lambda db: timeseries(
                db,
                config,
                query,
                sites=sites,
                now=NOW,
                interval=interval,  # type: ignore[arg-type]
            ),
        ),
    ]
    for by in MAIN_BREAKDOWNS:
        found.append(
            (
                f"breakdown {by}",
                lambda db, by=by: breakdown(db, config, query, sites=sites, now=NOW, by=by),
            )
        )
    return found


def others(config: Config) -> list[tuple[str, Any]]:
    sites = [SITE]
    month = ReportQuery(period="30d")
    steps = [
        Goal(name="home", kind="page", match="/"),
        Goal(name="pricing", kind="page", match="/pricing"),
        Goal(name="signup", kind="event", match="signup"),
    ]
    return [
        (
            "funnel 30d (3 steps, one visit)",
            lambda db: funnel(db, config, month, sites=sites, now=NOW, steps=steps),
        ),
        (
            "retention 30d (weekly cohorts)",
            lambda db: retention(db, config, month, sites=sites, now=NOW, by="week"),
        ),
        ("consent 30d", lambda db: consent_report(db, config, month, sites=sites, now=NOW)),
        ("realtime", lambda db: realtime(db, sites=sites, now=NOW)),
    ]


def run(name: str, config: Config, events: int, reuse: bool) -> dict[str, float]:
    """Store the events in backend ``name`` (unless ``reuse``), time every report, print them;
    returns the figures for the side-by-side summary."""
    backend = BACKENDS[name](config)
    figures: dict[str, float] = {}
    stored = 0
    if not reuse:
        started = time.perf_counter()
        importing = 0.0
        for chunk in generate(events):
            stored += len(chunk)
            load_start = time.perf_counter()
            backend.import_events(chunk)
            importing += time.perf_counter() - load_start
            print(f"\r  {stored:>11,} events stored", end="", file=sys.stderr, flush=True)
        total = time.perf_counter() - started
        print(file=sys.stderr)
        print(
            f"generated and stored {stored:,} events in {total:.1f} s "
            f"({importing:.1f} s in import_events, {stored / total:,.0f} events/s overall)"
        )
        figures["load s"] = importing
    else:
        stored = backend.count_events()
    size = backend.stored_bytes()
    figures["MB per M events"] = size / 1e6 / (stored / 1e6)
    print(f"backend {name}, data {config.data_dir}")
    print(
        f"database: {size / 1e6:,.1f} MB for {stored:,} events = "
        f"{figures['MB per M events']:,.1f} MB per million events"
    )
    print(f"now = {NOW.isoformat()}, site time zone {TIMEZONE}")
    last_day = NOW.date()
    year = ReportQuery(period="custom", date_from=last_day - timedelta(days=364), date_to=last_day)
    periods = [
        ("30 days", ReportQuery(period="30d"), "day"),
        ("year (365 days)", year, "month"),
    ]
    print(f"\n{'report':<42} {'cold ms':>10} {'warm ms':>10}")
    for label, query, interval in periods:
        cold_total = warm_total = 0.0
        print(f"-- {label}")
        for report_name, report in dashboard(config, query, interval):
            cold, warm = measure(backend, report_name, report)
            cold_total += cold
            warm_total += warm
            print(f"{report_name:<42} {cold:>10.1f} {warm:>10.1f}")
        print(f"{'full dashboard (' + label + ')':<42} {cold_total:>10.1f} {warm_total:>10.1f}")
        figures[f"dashboard {label}, warm ms"] = warm_total
    print("-- other reports")
    for report_name, report in others(config):
        cold, warm = measure(backend, report_name, report)
        print(f"{report_name:<42} {cold:>10.1f} {warm:>10.1f}")
        figures[f"{report_name}, warm ms"] = warm
    backend.close()
    return figures


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--backend", choices=[*sorted(BACKENDS), "both"], default="sqlite")
    parser.add_argument(
        "--reuse", action="store_true", help="time the reports on an existing --data directory"
    )
    args = parser.parse_args(argv)
    data = args.data or Path(tempfile.mkdtemp(prefix="mesure-bench-reports-"))
    data.mkdir(parents=True, exist_ok=True)
    config = build_config(
        data, {SITE: ["www.example.com"]}, site_options={SITE: {"timezone": TIMEZONE}}
    )
    names = ["sqlite", "clickhouse"] if args.backend == "both" else [args.backend]
    results = {}
    for name in names:
        print(f"==== {name}")
        results[name] = run(name, config, args.events, args.reuse)
    if len(names) > 1:
        print(f"\n==== side by side ({args.events:,} events)")
        print(f"{'':<46}" + "".join(f"{n:>14}" for n in names))
        for key in results[names[0]]:
            row = "".join(f"{results[n].get(key, float('nan')):>14.1f}" for n in names)
            print(f"{key:<46}{row}")


if __name__ == "__main__":
    main()
