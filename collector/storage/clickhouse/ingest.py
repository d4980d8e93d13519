"""The ClickHouse ingest backend: the same ``insert_hits`` contract as the SQLite ``Storage``.

Visits are assigned exactly as SQLite assigns them (same rule, same ids), but from memory: the
one writer process keeps every visit that a new event could still join (last event within 24 h
30 min of the newest event seen: batch events may be backdated by 24 h), seeded from ClickHouse
at start-up, so ingest never reads ClickHouse per hit. Each batch inserts the new state of the
visits it touched (``visits`` is a ``ReplacingMergeTree``: the highest ``version`` wins), then
its events, then its drop counters; memory is updated only after ClickHouse acknowledged all
three, so a failed batch leaves nothing behind that a retry would count twice. Each batch also
inserts into ``first_visits`` the start of each followed visit it touched, when that start is new
(:mod:`collector.storage.clickhouse.first_visits`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, replace
from typing import Any

import msgspec

from collector.errors import ConfigError
from collector.storage.clickhouse import first_visits
from collector.storage.clickhouse import schema as ch_schema
from collector.storage.clickhouse.client import Client
from collector.storage.rows import VISIT_GAP_MS, DropCount, Event

#: How long a visit stays in memory after its last event: the batch API backdates up to 24 h.
HORIZON_MS = 24 * 3600 * 1000 + VISIT_GAP_MS
DEFAULT_RETENTION_DAYS = 760
EVENT_NAMES = [name for name, _, _ in ch_schema.EVENT_COLUMNS]
VISIT_NAMES = [name for name, _ in ch_schema.VISIT_COLUMNS]
_EVENT_FIELDS = [name for name in EVENT_NAMES if name not in ("id", "visit")]


@dataclass
class OpenVisit:
    id: int
    site: str
    visitor: bytes
    start_ts: int
    last_ts: int
    entry_path: str | None
    exit_path: str | None
    pageviews: int
    events: int
    created_ts: int
    retention_days: int
    #: One of its events has a client-stored identifier: the visit belongs in ``first_visits``.
    followed: bool = False
    #: The start last written to ``first_visits`` for this visit: a batch writes it again only
    #: when the start moved earlier, so the table gets about one row per followed visit.
    listed_ts: int | None = None


class Retention:
    """Retention days of a row by site and consent mode (the table's TTL)."""

    def __init__(self, days: Mapping[str, Mapping[str, int]]) -> None:
        self._days = days

    def of(self, site: str, mode: str) -> int:
        return self._days.get(site, {}).get(mode, DEFAULT_RETENTION_DAYS)

    def of_visit(self, site: str) -> int:
        return max(self._days.get(site, {}).values(), default=DEFAULT_RETENTION_DAYS)


def sqlite_text(value: Any) -> str:
    """``value`` as SQLite's ``CAST(json_extract(props, …) AS TEXT)`` renders it."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        text = f"{value:.15g}"
        if "e" in text:
            mantissa, _, exponent = text.partition("e")
            if "." not in mantissa:
                mantissa += ".0"
            return f"{mantissa}e{exponent[0]}{exponent[1:].lstrip('0').zfill(2)}"
        return text if "." in text or "n" in text else text + ".0"
    return str(value)


class ClickHouseStorage:
    """The writer's handle: inserts batches and keeps the open visits; one per process."""

    def __init__(self, client: Client, retention: Retention) -> None:
        self._client = client
        self._retention = retention
        self._lock = threading.Lock()
        self._visits: dict[int, OpenVisit] = {}
        self._by_key: dict[tuple[str, bytes], list[int]] = {}
        self._next_event = 1
        self._next_visit = 1
        self._version = 0
        self._newest_ts = 0
        self._evicted_at = 0
        self._erasure_seq = 0
        self.path = client.target.display()

    def close(self) -> None:
        """The client is the process's, shared with reports: nothing to close here."""

    def migrate(self) -> None:
        target = self._client.target
        self._replace_old_erasures()
        if self._client.target.cluster and not self._has_table("first_visits"):
            raise ConfigError(
                "the first_visits table is missing: apply `mesure clickhouse schema --cluster` "
                "again (the collector then fills it from the visits at start-up)",
                path="mesure.toml",
                key="storage",
            )
        for statement in ch_schema.single_node(self._client.database, embedded=target.embedded):
            self._client.command(statement)
        if target.embedded:
            # Tables created before these settings get them too (a cleanup already scheduled
            # keeps its old delay once).
            for (name,) in self._client.rows(
                "SELECT name FROM system.tables WHERE database = {database:String} "
                "AND engine LIKE '%MergeTree' AND engine_full NOT LIKE {wanted:String}",
                {"database": self._client.database, "wanted": f"%{ch_schema.embedded_settings()}%"},
            ):
                self._client.command(
                    f"ALTER TABLE {{db}}.`{name}` MODIFY SETTING {ch_schema.embedded_settings()}"
                )
        if first_visits.needs_rebuild(self._client):
            first_visits.rebuild(self._client)

    def _has_table(self, name: str) -> bool:
        return bool(
            self._client.rows(
                "SELECT count() FROM system.tables WHERE database = {database:String} "
                "AND name = {name:String}",
                {"database": self._client.database, "name": name},
            )[0][0]
        )

    def _replace_old_erasures(self) -> None:
        """Earlier versions kept each erased visitor's hash in ``erasures``, where it outlived
        the erased rows: such a table is dropped (its rows only ever mattered to a writer
        running at the time of the erasure) and made again, with visit ids."""
        old = self._client.rows(
            "SELECT count() FROM system.columns WHERE database = {database:String} "
            "AND table = 'erasures' AND name = 'visitor'",
            {"database": self._client.database},
        )[0][0]
        if not old:
            return
        if self._client.target.cluster:
            raise ConfigError(
                "the erasures table has the old layout (visitor hashes): drop erasures and "
                "erasures_local ON CLUSTER, then apply `mesure clickhouse schema --cluster` again",
                path="mesure.toml",
                key="storage",
            )
        self._client.command("DROP TABLE {db}.erasures SYNC")

    def load_state(self) -> None:
        """Next ids and every visit a new event could still join, read once at start-up."""
        with self._lock:
            (last_event,) = self._client.rows("SELECT max(id) FROM {db}.events")[0]
            (last_visit,) = self._client.rows("SELECT max(id) FROM {db}.visits")[0]
            (seq,) = self._client.rows("SELECT max(seq) FROM {db}.erasures")[0]
            self._next_event = int(last_event or 0) + 1
            self._next_visit = int(last_visit or 0) + 1
            self._erasure_seq = int(seq or 0)
            rows = self._client.rows(
                "SELECT id, site, visitor, toUnixTimestamp64Milli(start_ts), "
                "toUnixTimestamp64Milli(last_ts), entry_path, exit_path, pageviews, events, "
                "toUnixTimestamp64Milli(created_ts), retention_days, id IN (SELECT visit "
                "FROM {db}.events WHERE visitor_kind = 'client' AND visit IS NOT NULL) "
                "FROM {db}.visits FINAL WHERE last_ts >= (SELECT max(last_ts) FROM {db}.visits) "
                "- toIntervalMillisecond({horizon:Int64})",
                {"horizon": HORIZON_MS},
            )
            for row in rows:
                visit = OpenVisit(*row[:-1])
                visit.followed = bool(row[-1])
                visit.listed_ts = visit.start_ts if visit.followed else None
                self._visits[visit.id] = visit
                self._by_key.setdefault((visit.site, visit.visitor), []).append(visit.id)
                self._newest_ts = max(self._newest_ts, visit.last_ts)

    def refresh_rollups(self) -> bool:
        """ClickHouse answers reports from the events themselves: there is nothing to refresh."""
        return False

    def write_turn(self) -> AbstractContextManager[None]:
        """One process writes to ClickHouse (``--workers 1``): its turn is always now."""
        return nullcontext()

    def insert_hits(self, events: Sequence[Event], drops: Sequence[DropCount] = ()) -> None:
        """Store ``events`` (assigning visits) and ``drops``; raises if ClickHouse did not
        acknowledge them, in which case nothing of the batch is remembered."""
        with self._lock:
            self._forget_erased()
            batch = _Batch(self, self._next_event, self._next_visit)
            rows = batch.rows(events)
            version = max(self._version + 1, time.time_ns())
            self._client.insert(
                "visits",
                [_visit_row(visit, version) for visit in batch.touched.values()],
                VISIT_NAMES,
            )
            self._client.insert("events", rows, [*EVENT_NAMES, "props_text", "retention_days"])
            listed = [
                visit
                for visit in batch.touched.values()
                if visit.followed and (visit.listed_ts is None or visit.start_ts < visit.listed_ts)
            ]
            self._client.insert(
                "first_visits",
                [(v.site, v.visitor, v.start_ts, v.retention_days) for v in listed],
                first_visits.NAMES,
            )
            self._client.insert(
                "dropped_hits",
                [(drop.site, drop.day, drop.reason, drop.hits) for drop in drops],
                ["site", "day", "reason", "hits"],
            )
            # Acknowledged: only now does memory move on.
            for visit in listed:
                visit.listed_ts = visit.start_ts
            self._version = version
            self._next_event = batch.next_event
            self._next_visit = batch.next_visit
            for visit in batch.touched.values():
                if visit.id not in self._visits:
                    self._by_key.setdefault((visit.site, visit.visitor), []).append(visit.id)
                self._visits[visit.id] = visit
                self._newest_ts = max(self._newest_ts, visit.last_ts)
            self._evict()
            # An erasure that began while this batch was being written (after the check above)
            # has already deleted its rows: this batch's rows of those visits go too, so an
            # erased visit is never brought back.
            late = self._forget_erased()
            raced = sorted(visit_id for visit_id in batch.touched if visit_id in late)
            if raced:
                sites = sorted({batch.touched[i].site for i in raced})
                # Their visitors' first_visits rows go while the visits still name them.
                forgotten = {
                    site: first_visits.forget_visitors_of(
                        self._client, site, [i for i in raced if batch.touched[i].site == site]
                    )
                    for site in sites
                }
                for table, column in (("events", "visit"), ("visits", "id")):
                    self._client.command(
                        f"ALTER TABLE {self._client.mutable(table)} DELETE "
                        f"WHERE {column} IN {{ids:Array(UInt64)}}",
                        {"ids": raced},
                        mutations_sync=2,
                    )
                for site, visitors in forgotten.items():
                    first_visits.reseed(self._client, site, visitors)

    def candidates(self, site: str, visitor: bytes) -> list[OpenVisit]:
        return [self._visits[i] for i in self._by_key.get((site, visitor), [])]

    def _evict(self) -> None:
        # A sweep per minute of event time keeps memory bounded by a day of visits.
        if self._newest_ts - self._evicted_at < 60_000:
            return
        self._evicted_at = self._newest_ts
        oldest = self._newest_ts - HORIZON_MS
        for visit_id in [i for i, v in self._visits.items() if v.last_ts < oldest]:
            self._drop(visit_id)

    def _drop(self, visit_id: int) -> None:
        visit = self._visits.pop(visit_id)
        key = (visit.site, visit.visitor)
        ids = [i for i in self._by_key.get(key, []) if i != visit_id]
        if ids:
            self._by_key[key] = ids
        else:
            self._by_key.pop(key, None)

    def _forget_erased(self) -> set[int]:
        """Drop the open visits erased since the last look (one small read); return their ids."""
        rows = self._client.rows(
            "SELECT seq, visit FROM {db}.erasures WHERE seq > {seq:UInt64}",
            {"seq": self._erasure_seq},
        )
        for seq, visit_id in rows:
            self._erasure_seq = max(self._erasure_seq, int(seq))
            if int(visit_id) in self._visits:
                self._drop(int(visit_id))
        return {int(visit_id) for _, visit_id in rows}

    # ------------------------------------------------------------------ read helpers (tests)

    def events(self, site: str | None = None) -> list[dict[str, Any]]:
        """Every stored event (of ``site``), ordered by id; ``props`` decoded."""
        rows = self._client.dicts(
            f"SELECT {event_select('')} FROM {{db}}.events"
            + (" WHERE site = {site:String}" if site else "")
            + " ORDER BY id",
            {"site": site} if site else {},
        )
        for row in rows:
            if row["props"] is not None:
                row["props"] = msgspec.json.decode(row["props"])
        return rows

    def visits(self, site: str | None = None) -> list[dict[str, Any]]:
        return self._client.dicts(
            f"SELECT {visit_select('')} FROM {{db}}.visits FINAL"
            + (" WHERE site = {site:String}" if site else "")
            + " ORDER BY id",
            {"site": site} if site else {},
        )

    def dropped_hits(self, site: str) -> dict[tuple[str, str], int]:
        rows = self._client.rows(
            "SELECT day, reason, sum(hits) FROM {db}.dropped_hits WHERE site = {site:String} "
            "GROUP BY day, reason",
            {"site": site},
        )
        return {(day, reason): int(hits) for day, reason, hits in rows}

    def count_optout(self, site: str, day: str) -> int:
        return self.dropped_hits(site).get((day, "optout"), 0)

    def integrity_check(self) -> str:
        return "ok" if self._client.rows("SELECT 1")[0][0] == 1 else "unreachable"


class _Batch:
    """The visit assignment of one batch, on copies of the open visits."""

    def __init__(self, storage: ClickHouseStorage, next_event: int, next_visit: int) -> None:
        self._storage = storage
        self.next_event = next_event
        self.next_visit = next_visit
        self.touched: dict[int, OpenVisit] = {}
        self._new_keys: dict[tuple[str, bytes], list[int]] = {}

    def _candidates(self, site: str, visitor: bytes) -> list[OpenVisit]:
        found = {v.id: v for v in self._storage.candidates(site, visitor)}
        for visit_id in self._new_keys.get((site, visitor), []):
            found[visit_id] = self.touched[visit_id]
        return [self.touched.get(i, v) for i, v in found.items()]

    def rows(self, events: Sequence[Event]) -> list[list[Any]]:
        """The ``events`` rows, ids in the batch's order, visits assigned in time order (as
        ``collector.storage.sqlite.events.Storage.insert_hits`` does)."""
        found = [{name: getattr(event, name) for name in _EVENT_FIELDS} for event in events]
        for index in _time_order(events):
            found[index]["visit"] = self._assign(events[index], found[index])
        rows = []
        for event, values in zip(events, found, strict=True):
            values["id"] = self.next_event
            self.next_event += 1
            values["props"] = (
                None if event.props is None else msgspec.json.encode(event.props).decode()
            )
            props_text = (
                {} if event.props is None else {k: sqlite_text(v) for k, v in event.props.items()}
            )
            retention = self._storage._retention.of(event.site, event.mode)
            rows.append([*(values[name] for name in EVENT_NAMES), props_text, retention])
        return rows

    def _assign(self, event: Event, values: dict[str, Any]) -> int | None:
        """SQLite's rule (``collector.storage.sqlite.events._assign_visit``), over the visits
        in memory."""
        if event.visitor is None:
            return None
        previous = event.previous_visitor or event.visitor
        keys = {event.visitor, previous}
        best: OpenVisit | None = None
        for who in keys:
            for visit in self._candidates(event.site, who):
                active = (
                    visit.last_ts > event.ts - VISIT_GAP_MS
                    and visit.start_ts < event.ts + VISIT_GAP_MS
                )
                if active and (best is None or (visit.last_ts, visit.id) > (best.last_ts, best.id)):
                    best = visit
        is_pageview = event.name == "pageview"
        if best is None:
            visit = OpenVisit(
                id=self.next_visit,
                site=event.site,
                visitor=event.visitor,
                start_ts=event.ts,
                last_ts=event.ts,
                entry_path=event.path if is_pageview else None,
                exit_path=event.path if is_pageview else None,
                pageviews=int(is_pageview),
                events=int(not is_pageview),
                created_ts=event.ts,
                retention_days=self._storage._retention.of_visit(event.site),
                followed=event.visitor_kind == "client",
            )
            self.next_visit += 1
            self.touched[visit.id] = visit
            self._new_keys.setdefault((visit.site, visit.visitor), []).append(visit.id)
            return visit.id
        if best.visitor != event.visitor:
            # The visit began under yesterday's daily key: keep its identifier.
            values["visitor"] = best.visitor
            values["key_epoch"] = event.previous_key_epoch
        visit = replace(best)
        if is_pageview and (visit.entry_path is None or event.ts < visit.start_ts):
            visit.entry_path = event.path
        if is_pageview and event.ts >= visit.last_ts:
            visit.exit_path = event.path
        visit.start_ts = min(visit.start_ts, event.ts)
        visit.last_ts = max(visit.last_ts, event.ts)
        visit.pageviews += int(is_pageview)
        visit.events += int(not is_pageview)
        visit.followed = visit.followed or event.visitor_kind == "client"
        self.touched[visit.id] = visit
        return visit.id


def _time_order(events: Sequence[Event]) -> list[int]:
    """Indexes of ``events`` by time (arrival order among equal times)."""
    return sorted(range(len(events)), key=lambda index: events[index].ts)


def _visit_row(visit: OpenVisit, version: int) -> list[Any]:
    return [
        visit.id,
        visit.site,
        visit.visitor,
        visit.start_ts,
        visit.last_ts,
        visit.entry_path,
        visit.exit_path,
        visit.pageviews,
        visit.events,
        visit.created_ts,
        visit.retention_days,
        version,
    ]


def event_select(alias: str) -> str:
    """The ``events`` columns as SQLite returns them (``ts`` in epoch milliseconds)."""
    prefix = f"{alias}." if alias else ""
    return ", ".join(
        f"toUnixTimestamp64Milli({prefix}ts) AS ts"
        if name == "ts"
        else f"{prefix}`{name}` AS `{name}`"
        for name in EVENT_NAMES
    )


def visit_select(alias: str) -> str:
    prefix = f"{alias}." if alias else ""
    names = [name for name, _ in ch_schema.VISIT_EXPORT_COLUMNS]
    return ", ".join(
        f"toUnixTimestamp64Milli({prefix}{name}) AS {name}"
        if name.endswith("_ts")
        else f"{prefix}`{name}` AS `{name}`"
        for name in names
    )
