"""Report benchmark: N synthetic events over 13 months for one site, then every report timed
cold and warm, every timed answer checked against the events, and the bytes stored per event.

    PYTHONPATH=$PWD python tests/bench/reports.py [--events 10000000] [--data DIR]
        [--backend sqlite|clickhouse|both] [--reuse] [--window-seed N]

The events go straight into the data directory through the storage module's domain API
(``Storage.import_events``, the bulk form of ``insert_hits``; ClickHouse's own ``insert_hits``
into chDB for ``--backend clickhouse``; ``both`` runs the two on the same events and prints them
side by side), and the reports are the same functions the JSON API and the dashboard call. A
script, never a timed test: it prints figures, with the load average beside them.

What it prints, per backend:

- **Bytes per event by table**: for SQLite, after ``PRAGMA wal_checkpoint(TRUNCATE)``, the
  database file and WAL sizes, and each table and index (``dbstat``) in bytes per stored
  event, with the total and the target beside it; for ClickHouse, each table's active parts on
  disk (``system.parts``) per event.
- **Timings**: every report, cold and warm, with the issue's budget beside it and ``OVER`` when
  the warm time is above it: the dashboard (aggregate, time series, six breakdowns) for 30
  days and for the year, the same 30-day dashboard filtered on ``page is /pricing`` and on
  ``source is Google``, the goal reports (the goals report, goal time series and breakdowns;
  the configuration holds a page goal and an event goal), funnel, retention, consent, RFM,
  experiment (property ``variant``), attribution and real time. "Cold" is a report's first run
  in this process on a new connection (SQLite's page cache is empty; the operating system's
  cache may hold the file, since it was just written); "warm" is the median of the next runs.
  Every report opens its own connection, as an API request does. The budgets are the targets
  for 10 M events on two cores; at another size they are only a guide.
- **Checks**: every timed answer, and every report on more periods, is compared with the same
  report computed from the events alone. The periods: the last 30 days (also the month to
  date: its first local midnight is 23:00 UTC), the year, October 2026 (a month that ended
  before the newest row, across the autumn time change), a week across the spring time change
  and a random 7-day window (``--window-seed`` replays one). The reference on SQLite is a
  connection that never reads the rollups (``reports_database(path, rollups=False)``, how
  every report reads a day queued for a rollup rebuild); ClickHouse, for ``--backend both``, is
  compared with that same SQLite reference (``--backend clickhouse`` alone has no reference
  and says so). Each difference prints the report, the period and the two values; the script
  exits with status 1 after the run if there is any.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import msgspec

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from collector.config import Config
from collector.reports import (
    Filter,
    Goal,
    ReportQuery,
    aggregate,
    attribution,
    breakdown,
    consent_report,
    experiment,
    funnel,
    goals_report,
    realtime,
    retention,
    rfm,
    timeseries,
)
from collector.reports.query import Interval
from collector.storage.rows import Event
from tests.support import build_config

SITE = "bench"
TIMEZONE = "Europe/Paris"
#: The benchmark's "now": the data covers the 13 months (395 days) before it, and its morning.
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
DAYS = 395
DAY_MS = 86_400_000
MAIN_BREAKDOWNS = ("page", "entry_page", "source", "country", "browser", "os")
WARM_RUNS = 3
#: The site's configured goals (``[[sites.goals]]``): a page goal and an event goal.
PRICING = Goal(name="Pricing", kind="page", match="/pricing")
SIGNUP = Goal(name="Signup", kind="event", match="signup")
#: The issue's targets at 10 M events, warm, in ms; bytes per stored event.
REPORT_BUDGET = 300.0
DASHBOARD_BUDGET = {"30 days": 150.0, "year": 600.0}
FILTERED_BUDGET = 500.0
BYTES_PER_EVENT_TARGET = 250.0


class Backend(Protocol):
    """What the benchmark needs from a storage backend: bulk import, report connections (the
    product's, and one from the events alone when the backend has it) and the bytes stored."""

    def import_events(self, events: Sequence[Event]) -> None: ...

    def reports(self) -> AbstractContextManager[Any]: ...

    def reference(self) -> AbstractContextManager[Any] | None: ...

    def print_bytes(self, stored: int) -> float: ...

    def count_events(self) -> int: ...

    def close(self) -> None: ...


class SqliteBackend:
    def __init__(self, config: Config) -> None:
        from collector.storage.sqlite.events import open_storage

        self._path = config.database_path
        zones = {site.id: site.timezone for site in config.sites}
        self._storage = open_storage(self._path, timezones=zones)

    def import_events(self, events: Sequence[Event]) -> None:
        self._storage.import_events(events)

    def reports(self) -> AbstractContextManager[Any]:
        from collector.storage.sqlite.reports import reports_database

        return reports_database(self._path)

    def reference(self) -> AbstractContextManager[Any] | None:
        from collector.storage.sqlite.reports import reports_database

        return reports_database(self._path, rollups=False)

    def print_bytes(self, stored: int) -> float:
        """Per table and index, in bytes per stored event; returns the whole database's."""
        self._storage.checkpoint()
        files = {
            p.name: p.stat().st_size
            for p in self._path.parent.glob(self._path.name + "*")
            if p.is_file()
        }
        conn = sqlite3.connect(f"file:{self._path}?mode=ro", uri=True)
        try:
            kinds = {
                name: kind if kind == "table" else f"index on {table}"
                for kind, name, table in conn.execute(
                    "SELECT type, name, tbl_name FROM sqlite_schema"
                )
            }
            pages = conn.execute(
                "SELECT name, SUM(pgsize) FROM dbstat GROUP BY name ORDER BY 2 DESC, 1"
            ).fetchall()
            pending = conn.execute("SELECT count(*) FROM rollup_pending_days").fetchone()[0]
            free = conn.execute("PRAGMA freelist_count").fetchone()[0]
            page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        finally:
            conn.close()
        total = sum(files.values())
        print(
            "files after PRAGMA wal_checkpoint(TRUNCATE): "
            + ", ".join(f"{name} {size:,} B" for name, size in sorted(files.items()))
        )
        state = "those days are read from the events" if pending else "rollups current"
        print(f"rollup days queued for a rebuild: {pending:,} ({state})")
        print(f"\n{'table or index (dbstat)':<38} {'':<26} {'MB':>9} {'B/event':>9}")
        small = [size for _, size in pages if size / stored < 0.5]
        for name, size in pages:
            if size / stored >= 0.5:
                kind = kinds.get(name, "")
                print(f"{name:<38} {kind:<26} {size / 1e6:>9.1f} {size / stored:>9.1f}")
        other = f"{len(small)} others, each < 0.5"
        print(f"{other:<38} {'':<26} {sum(small) / 1e6:>9.1f} {sum(small) / stored:>9.1f}")
        unused = free * page_size
        print(f"{'free pages':<38} {'':<26} {unused / 1e6:>9.1f} {unused / stored:>9.1f}")
        per_event = total / stored
        mark = "OVER" if per_event > BYTES_PER_EVENT_TARGET else "ok"
        print(
            f"{'total on disk (all files)':<38} {'':<26} {total / 1e6:>9.1f} {per_event:>9.1f}"
            f"   target <= {BYTES_PER_EVENT_TARGET:.0f} B/event: {mark}"
        )
        return per_event

    def count_events(self) -> int:
        return self._storage.count_events(SITE)

    def close(self) -> None:
        self._storage.close()


class ClickHouseBackend:
    """ClickHouse embedded in this process (chDB, ``DATA/chdb``): the same SQL engine and client
    API as a ClickHouse server. Events go through the backend's own ``insert_hits`` (visits
    assigned in memory, as the collector's writer does)."""

    def __init__(self, config: Config) -> None:
        from collector.storage import open_events
        from collector.storage.target import ClickHouseTarget

        target = ClickHouseTarget(
            embedded=True, path=str(config.data_dir / "chdb"), database="bench"
        )
        self._config = msgspec.structs.replace(config, clickhouse=target)
        self._target = target
        self._storage = open_events(self._config)

    def import_events(self, events: Sequence[Event]) -> None:
        self._storage.insert_hits(events)

    def reports(self) -> AbstractContextManager[Any]:
        from collector.storage import reports_for

        return reports_for(self._config)

    def reference(self) -> AbstractContextManager[Any] | None:
        return None

    def print_bytes(self, stored: int) -> float:
        """Active parts on disk per table, in bytes per stored event; returns the total's."""
        from collector.storage.clickhouse.client import client_for

        client = client_for(self._target)
        # Replaced versions of a visit row go only when parts merge, which a server does in
        # the background over time: merged first, so the figure is the settled one.
        client.command("OPTIMIZE TABLE {db}.visits FINAL")
        rows = client.rows(
            "SELECT table, sum(bytes_on_disk), sum(rows), count() FROM system.parts "
            "WHERE active AND database = {d:String} GROUP BY table ORDER BY 2 DESC, 1",
            {"d": self._target.database},
        )
        heading = f"{'table (system.parts, active)':<38} {'rows':>12} {'parts':>6}"
        print(f"\n{heading} {'MB':>9} {'B/event':>9}")
        total = 0
        for table, size, count, parts in rows:
            total += int(size)
            print(
                f"{table:<38} {int(count):>12,} {int(parts):>6} {int(size) / 1e6:>9.1f} "
                f"{int(size) / stored:>9.1f}"
            )
        per_event = total / stored
        mark = "OVER" if per_event > BYTES_PER_EVENT_TARGET else "ok"
        print(
            f"{'total':<38} {'':>12} {'':>6} {total / 1e6:>9.1f} {per_event:>9.1f}"
            f"   target <= {BYTES_PER_EVENT_TARGET:.0f} B/event: {mark}"
        )
        return per_event

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
    """Chunks of events, day by day over the 395 days before ``NOW`` and the morning of its day
    (cut at ``NOW``, so that real time has visitors); about ``total`` in all."""
    traffic = Traffic(total, seed)
    rng = traffic.rng
    first_day = (NOW - timedelta(days=DAYS)).date()
    weights = hour_weights()
    per_day = total / DAYS
    now_ms = int(NOW.timestamp() * 1000)
    made = 0
    chunk: list[Event] = []
    for offset in range(DAYS + 1):
        day = first_day + timedelta(days=offset)
        # Slow growth over the year and quieter weekends.
        target = per_day * (0.8 + 0.4 * offset / DAYS) * (0.75 if day.weekday() >= 5 else 1.08)
        hours = range(24)
        if offset == DAYS:  # the day of NOW: its hours before NOW only
            hours = range(NOW.hour)
            target *= sum(weights[: NOW.hour]) / sum(weights)
        base = int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() * 1000)
        made_today = 0
        while made_today < target and made < total:
            hour = rng.choices(hours, weights[: len(hours)])[0]
            start = base + hour * 3_600_000 + rng.randrange(3_600_000)
            events = [e for e in traffic.visit(start) if e.ts < now_ms]
            chunk += events
            made_today += len(events)
            made += len(events)
        if len(chunk) >= 200_000 or offset == DAYS:
            yield chunk
            chunk = []


# ---------------------------------------------------------------------------------------------
# The reports: each a call on a report connection and a query (period and filters).

Call = Callable[[Any, ReportQuery], Any]
SITES = [SITE]


def dashboard(config: Config, interval: Interval) -> list[tuple[str, Call]]:
    """What the dashboard's overview asks for: aggregate, time series, six breakdowns."""
    found: list[tuple[str, Call]] = [
        ("aggregate", lambda db, q: aggregate(db, config, q, sites=SITES, now=NOW)),
        (
            f"timeseries ({interval})",
            lambda db, q: timeseries(db, config, q, sites=SITES, now=NOW, interval=interval),
        ),
    ]
    for by in MAIN_BREAKDOWNS:
        found.append(
            (
                f"breakdown {by}",
                lambda db, q, by=by: breakdown(db, config, q, sites=SITES, now=NOW, by=by),
            )
        )
    return found


def goal_reports(config: Config, interval: Interval) -> list[tuple[str, Call]]:
    return [
        (
            "goals (both configured goals)",
            lambda db, q: goals_report(db, config, q, sites=SITES, now=NOW),
        ),
        (
            "aggregate, goal Signup",
            lambda db, q: aggregate(db, config, q, sites=SITES, now=NOW, goal=SIGNUP),
        ),
        (
            f"timeseries ({interval}), goal Signup",
            lambda db, q: timeseries(
                db, config, q, sites=SITES, now=NOW, interval=interval, goal=SIGNUP
            ),
        ),
        (
            "breakdown source, goal Signup",
            lambda db, q: breakdown(db, config, q, sites=SITES, now=NOW, by="source", goal=SIGNUP),
        ),
        (
            "breakdown page, goal Pricing",
            lambda db, q: breakdown(db, config, q, sites=SITES, now=NOW, by="page", goal=PRICING),
        ),
    ]


def other_reports(config: Config, interval: Interval) -> list[tuple[str, Call]]:
    steps = [Goal(name="home", kind="page", match="/"), PRICING, SIGNUP]
    return [
        (
            "funnel (3 steps, one visit)",
            lambda db, q: funnel(db, config, q, sites=SITES, now=NOW, steps=steps),
        ),
        (
            "retention (weekly cohorts)",
            lambda db, q: retention(db, config, q, sites=SITES, now=NOW, by="week"),
        ),
        ("consent", lambda db, q: consent_report(db, config, q, sites=SITES, now=NOW)),
        ("RFM", lambda db, q: rfm(db, config, q, sites=SITES, now=NOW)),
        (
            "experiment (variant, goal Signup)",
            lambda db, q: experiment(
                db, config, q, sites=SITES, now=NOW, prop="variant", goal=SIGNUP
            ),
        ),
        (
            "attribution (goal Signup)",
            lambda db, q: attribution(db, config, q, sites=SITES, now=NOW, goal=SIGNUP),
        ),
    ]


def realtime_report(config: Config, interval: Interval) -> list[tuple[str, Call]]:
    # The last 30 minutes before NOW, whatever the period.
    return [("realtime", lambda db, q: realtime(db, sites=SITES, now=NOW, filters=q.filters))]


PAGE_PRICING = Filter(dimension="page", op="is", value="/pricing")
SOURCE_GOOGLE = Filter(dimension="source", op="is", value="Google")


@dataclass(frozen=True)
class Group:
    """Reports timed together: their filters, their budget each and as a whole (ms, warm)."""

    label: str
    reports: Callable[[Config, Interval], list[tuple[str, Call]]]
    filters: tuple[Filter, ...] = ()
    each: float | None = REPORT_BUDGET
    total: float | None = None
    periods: tuple[str, ...] = ("30 days",)
    timed: tuple[str, ...] = ("30 days",)


GROUPS = [
    Group("dashboard", dashboard, total=DASHBOARD_BUDGET["30 days"], timed=("30 days", "year")),
    Group("dashboard, page is /pricing", dashboard, (PAGE_PRICING,), total=FILTERED_BUDGET),
    Group("dashboard, source is Google", dashboard, (SOURCE_GOOGLE,), total=FILTERED_BUDGET),
    Group("goal reports", goal_reports),
    Group("other reports", other_reports),
    Group("real time (last 30 minutes)", realtime_report, timed=("30 days",)),
]


def periods(window_seed: int) -> dict[str, tuple[ReportQuery, Interval]]:
    """The periods checked, with their time series interval; the first two are also timed."""
    today = NOW.astimezone(ZoneInfo(TIMEZONE)).date()
    first_data_day = (NOW - timedelta(days=DAYS)).date() + timedelta(days=1)
    start = first_data_day + timedelta(
        days=random.Random(window_seed).randrange((today - first_data_day).days - 6)
    )
    return {
        # Also the month to date (NOW is 30 November): 1 November 00:00 in Paris is 23:00 UTC
        # the day before, so the first hour is read apart from the whole UTC days.
        "30 days": (ReportQuery(period="30d"), "day"),
        "year": (
            ReportQuery(period="custom", date_from=today - timedelta(days=364), date_to=today),
            "month",
        ),
        # A month that ended before the newest row (visitors are then counted row by row),
        # from 22:00 UTC (summer time) to 23:00 UTC, with the autumn time change inside.
        "October 2026": (
            ReportQuery(period="custom", date_from=date(2026, 10, 1), date_to=date(2026, 10, 31)),
            "day",
        ),
        # The spring time change (29 March 2026): a 23-hour day inside the week.
        "week across the time change": (
            ReportQuery(period="custom", date_from=date(2026, 3, 26), date_to=date(2026, 4, 1)),
            "day",
        ),
        f"7 days from {start} (window seed {window_seed})": (
            ReportQuery(period="custom", date_from=start, date_to=start + timedelta(days=6)),
            "day",
        ),
    }


# ---------------------------------------------------------------------------------------------
# Timing and checking


def timed(run: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = run()
    return (time.perf_counter() - started) * 1000, result


def measure(backend: Backend, report: Call, query: ReportQuery) -> tuple[float, float, Any]:
    """Cold (first) and warm (median of the next runs) milliseconds of ``report``, and its
    answer (the last run's)."""
    runs = []
    for _ in range(1 + WARM_RUNS):
        with backend.reports() as db:
            runs.append(timed(lambda db=db: report(db, query)))
    return runs[0][0], statistics.median(ms for ms, _ in runs[1:]), runs[-1][1]


def budget_cell(warm: float, budget: float | None) -> str:
    if budget is None:
        return f"{'-':>8}"
    return f"{budget:>8.0f}" + (" OVER" if warm > budget else "")


def differences(got: Any, want: Any, path: str = "") -> Iterator[tuple[str, Any, Any]]:
    """``(where, got, want)`` for each leaf that differs between two answers as builtins."""
    if isinstance(got, dict) and isinstance(want, dict):
        for key in sorted(set(got) | set(want), key=str):
            yield from differences(got.get(key), want.get(key), f"{path}.{key}")
    elif isinstance(got, list) and isinstance(want, list) and len(got) == len(want):
        for index, (a, b) in enumerate(zip(got, want, strict=True)):
            yield from differences(a, b, f"{path}[{index}]")
    elif got != want:
        yield path or "(whole answer)", got, want


@dataclass
class Checks:
    """Answers of the run and their reference (the events path), keyed by report and period."""

    references: dict[tuple[str, str], Any] = field(default_factory=dict)
    compared: int = 0
    failures: list[str] = field(default_factory=list)

    def compare(self, backend: str, against: str, key: tuple[str, str], got: Any) -> None:
        want = self.references[key]
        self.compared += 1
        found = list(differences(msgspec.to_builtins(got), want))
        if not found:
            return
        report, period = key
        self.failures.append(f"{backend} {report} [{period}]")
        print(f"MISMATCH {backend} vs {against}: {report}, period {period}")
        for where, a, b in found[:8]:
            print(f"    {where}: {backend} {a!r}, {against} {b!r}")
        if len(found) > 8:
            print(f"    … and {len(found) - 8} more differences")


def reference_answer(backend: Backend, report: Call, query: ReportQuery) -> Any:
    """The report from the events alone, as builtins (the backend has such a path)."""
    opened = backend.reference()
    assert opened is not None
    with opened as db:
        return msgspec.to_builtins(report(db, query))


def load_average() -> str:
    return " ".join(f"{load:.2f}" for load in os.getloadavg())


def run(
    name: str, config: Config, events: int, reuse: bool, window_seed: int, checks: Checks
) -> dict[str, float]:
    """Store the events in backend ``name`` (unless ``reuse``), print the bytes per table, time
    and check every report; returns the figures for the side-by-side summary."""
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
            f"({importing:.1f} s in import_events, {stored / total:,.0f} events/s overall); "
            f"load average {load_average()}"
        )
        figures["load s"] = importing
    else:
        stored = backend.count_events()
    print(f"backend {name}, data {config.data_dir}, {stored:,} events")
    figures["bytes per event"] = backend.print_bytes(stored)
    print(f"\nnow = {NOW.isoformat()}, site time zone {TIMEZONE}; load average {load_average()}")
    sample = periods(window_seed)
    answers: dict[tuple[str, str], Any] = {}
    heading = f"report (warm: median of {WARM_RUNS} runs)"
    print(f"\n{heading:<46} {'cold ms':>9} {'warm ms':>9} {'budget':>8}")
    for group in GROUPS:
        for period in group.timed:
            query, interval = sample[period]
            query = msgspec.structs.replace(query, filters=group.filters)
            label = group.label if group.reports is realtime_report else f"{group.label}, {period}"
            print(f"-- {label}")
            cold_total = warm_total = 0.0
            for report_name, report in group.reports(config, interval):
                cold, warm, answer = measure(backend, report, query)
                answers[(f"{group.label}: {report_name}", period)] = answer
                cold_total += cold
                warm_total += warm
                each = group.each if period == "30 days" else None
                print(f"{report_name:<46} {cold:>9.1f} {warm:>9.1f} {budget_cell(warm, each)}")
                figures[f"{label}: {report_name}, warm ms"] = warm
            if group.total is not None or group.reports is dashboard:
                total_budget = group.total if period == "30 days" else DASHBOARD_BUDGET.get(period)
                print(
                    f"{'whole ' + group.label + ' (' + period + ')':<46} {cold_total:>9.1f} "
                    f"{warm_total:>9.1f} {budget_cell(warm_total, total_budget)}"
                )
                figures[f"whole {label}, warm ms"] = warm_total
    print(f"load average {load_average()}")
    check(name, config, backend, sample, answers, checks)
    backend.close()
    return figures


def check(
    name: str,
    config: Config,
    backend: Backend,
    sample: dict[str, tuple[ReportQuery, Interval]],
    answers: dict[tuple[str, str], Any],
    checks: Checks,
) -> None:
    """Every report on every sampled period (the timed answers as they were timed) against
    the reference: this backend's events path when it has one, else the one already taken."""
    has_reference = backend.reference() is not None
    against = f"{name} events path" if has_reference else "sqlite events path"
    if not has_reference and not checks.references:
        print(f"\n{name}: NOT CHECKED: no events-only path of its own; --backend both checks it")
        print("against SQLite's events path.")
        return
    started = time.perf_counter()
    before = len(checks.failures)
    compared = checks.compared
    print(f"\nchecking the answers against the {against}…")
    for group in GROUPS:
        for period, (query, interval) in sample.items():
            if group.reports is realtime_report and period != "30 days":
                continue  # real time has no period
            query = msgspec.structs.replace(query, filters=group.filters)
            for report_name, report in group.reports(config, interval):
                key = (f"{group.label}: {report_name}", period)
                if key not in answers:
                    with backend.reports() as db:
                        answers[key] = report(db, query)
                if has_reference:
                    checks.references[key] = reference_answer(backend, report, query)
                checks.compare(name, against, key, answers[key])
    failed = len(checks.failures) - before
    print(
        f"{checks.compared - compared} answers compared with the {against} "
        f"({len(sample)} periods) in {time.perf_counter() - started:.1f} s: "
        + (f"{failed} DIFFER" if failed else "all equal")
        + f"; load average {load_average()}"
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--backend", choices=[*sorted(BACKENDS), "both"], default="sqlite")
    parser.add_argument(
        "--reuse", action="store_true", help="time the reports on an existing --data directory"
    )
    parser.add_argument(
        "--window-seed",
        type=int,
        default=None,
        help="the random 7-day window checked (printed with each run; default: a new one)",
    )
    args = parser.parse_args(argv)
    window_seed = args.window_seed if args.window_seed is not None else random.randrange(10**6)
    data = args.data or Path(tempfile.mkdtemp(prefix="mesure-bench-reports-"))
    data.mkdir(parents=True, exist_ok=True)
    goals = [{"name": g.name, "kind": g.kind, "match": g.match} for g in (PRICING, SIGNUP)]
    config = build_config(
        data,
        {SITE: ["www.example.com"]},
        site_options={SITE: {"timezone": TIMEZONE, "goals": goals}},
    )
    print(f"load average at start {load_average()} ({os.cpu_count()} cores)")
    names = ["sqlite", "clickhouse"] if args.backend == "both" else [args.backend]
    results = {}
    checks = Checks()
    for name in names:
        print(f"==== {name}")
        results[name] = run(name, config, args.events, args.reuse, window_seed, checks)
    if len(names) > 1:
        print(f"\n==== side by side ({args.events:,} events)")
        print(f"{'':<70}" + "".join(f"{n:>12}" for n in names))
        for key in results[names[0]]:
            row = "".join(f"{results[n].get(key, float('nan')):>12.1f}" for n in names)
            print(f"{key:<70}{row}")
    print(f"\nload average at the end {load_average()}")
    if checks.failures:
        print(f"{len(checks.failures)} answers DIFFER from the events path:")
        for failure in checks.failures:
            print(f"    {failure}")
        sys.exit(1)
    print(f"{checks.compared} answers checked, all equal to the events path")


if __name__ == "__main__":
    main()
