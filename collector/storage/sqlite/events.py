"""The SQLite backend: WAL, one connection per process, group commits under a lock file and
``BEGIN IMMEDIATE``."""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import msgspec
from sqlite_utils import Database

from collector.storage.rows import VISIT_GAP_MS, DropCount, Event
from collector.storage.sqlite import layout as layout_sqlite
from collector.storage.sqlite import rollups as rollups_sqlite
from collector.storage.sqlite.schema import migrations

# Every Event field is a column, except the previous-key candidate used only to find the visit.
_EVENT_COLUMNS = [
    "id",
    *(name for name in Event.__struct_fields__ if not name.startswith("previous_")),
    "visit",
]
# Where each of the compact table's columns is in a row of ``_EVENT_COLUMNS``.
_TO_COMPACT = [_EVENT_COLUMNS.index(name) for name in layout_sqlite.COLUMN_NAMES]
#: Events per multi-row ``INSERT`` (times the columns: well under SQLite's 32,766 parameters).
_EVENTS_PER_INSERT = 200
#: Groups of up to this many events are inserted in one statement of their exact size; larger
#: ones in statements of this size or of _EVENTS_PER_INSERT. Each size is a prepared statement
#: the connection caches (128 of them, about 3 KB per row): with every size up to 200, the 200
#: statements take 56 MB, and 1,000-event batches filled the cache with large ones.
_SMALL_INSERT = 32
_EVENT_ROW = f"({', '.join('?' * len(_EVENT_COLUMNS))})"
# Positions in ``msgspec.structs.astuple(event)``: a tuple per event instead of a dict of its 35
# fields (less of the writer's time under the write lock, less memory for 1,000-event batches).
_STORED_FIELDS = [
    index for index, name in enumerate(Event.__struct_fields__) if not name.startswith("previous_")
]
_PROPS_FIELD = Event.__struct_fields__.index("props")
_VISITOR_FIELD = Event.__struct_fields__.index("visitor")
_KEY_EPOCH_FIELD = Event.__struct_fields__.index("key_epoch")
# Without INDEXED BY, SQLite 3.40 picks ``visits_by_start`` (every visit of the site that started
# before the hit: a scan growing with the table, measured at 70 % of the writer's time in the
# ingest benchmark) instead of the visitor's own few rows.
# The lookup and the update are one statement (``RETURNING`` says which visit, if any): every
# statement gives up the GIL while SQLite runs and must take it back from the busy event loop,
# which made such hand-offs most of a group commit's time in the ingest benchmark.
_EXTEND_VISIT = (
    "UPDATE visits SET start_ts = min(start_ts, :ts), last_ts = max(last_ts, :ts), "
    "entry_path = CASE WHEN :pv AND (entry_path IS NULL OR :ts < start_ts) "
    "THEN :path ELSE entry_path END, "
    "exit_path = CASE WHEN :pv AND :ts >= last_ts THEN :path ELSE exit_path END, "
    "pageviews = pageviews + :pv, events = events + (1 - :pv) "
    "WHERE id = (SELECT id FROM visits INDEXED BY visits_by_visitor "
    "WHERE site = :site AND visitor IN (:visitor, :previous) AND last_ts > :after "
    "AND start_ts < :before ORDER BY last_ts DESC LIMIT 1) "
    "RETURNING id, visitor, start_ts, last_ts, entry_path, pageviews, events"
)
# The visits a group may extend, as they were before it: what the rollups hold for them.
_PREFETCH = (
    "WITH q(s, h, a) AS (VALUES {rows}) SELECT v.id, v.visitor, v.start_ts, v.last_ts, "
    "v.entry_path, v.pageviews, v.events FROM q JOIN visits v INDEXED BY visits_by_visitor "
    "ON v.site = q.s AND v.visitor = q.h AND v.last_ts > q.a"
)
# The rollups' record of the sites, read in the same statement (one statement fewer per
# commit): rows with a negative id.
_SITES = " UNION ALL SELECT -code, site, timezone, generation, NULL, NULL, NULL FROM rollup_sites"
#: Visitor ids kept per process, at most this many (checked against the site's generation).
_CACHED_IDS = 100_000
#: Visit states kept per process (the rollups' view of each recent visit), at most this many.
_CACHED_VISITS = 10_000
_EVENT_TUPLE = [
    Event.__struct_fields__.index(name.strip()) for name in rollups_sqlite.EVENT_COLUMNS.split(",")
]


class Storage:
    """One process's handle on the database; safe to share between threads."""

    def __init__(
        self, conn: sqlite3.Connection, path: Path, timezones: Mapping[str, str] | None = None
    ) -> None:
        self._conn = conn
        #: Each site's configured time zone (the rollups' local days); others are UTC.
        self._timezones = dict(timezones or {})
        #: What this process last added to the rollups for each visit, checked against the
        #: stored visit (another worker may have extended it since) before it is used.
        self._visit_states: dict[int, rollups_sqlite.VisitState] = {}
        #: ``(site code, visitor hash) → (id, site generation)`` this process has used.
        self._visitor_ids: dict[tuple[int, bytes], tuple[int, int]] = {}
        self._db = Database(conn, execute_plugins=False)
        self._lock = threading.RLock()
        self._turns = 0
        self.path = path
        # SQLite's own lock makes a waiting process poll (sleeps of 1, 2, 5, 10 ms…): with two
        # workers, hits waited for a lock that was already free (p99 723 ms in the ingest
        # benchmark). The kernel wakes a process waiting on this lock file as soon as it is free.
        self._writer_lock = os.open(f"{path}-writer", os.O_RDWR | os.O_CREAT, 0o600)
        self._strings = layout_sqlite.Strings()

    def close(self) -> None:
        with self._lock:
            self._conn.close()
            os.close(self._writer_lock)

    @contextmanager
    def write_turn(self) -> Iterator[None]:
        """This process's turn to write: the lock file every writer process of this database
        takes (``mesure serve`` workers, CLI commands), held until the block ends, across any
        writes made in it. The writer waits for its turn before it gathers a group, so the hits
        that arrived while another worker was committing join the same commit."""
        with self._lock:
            if self._turns == 0:
                fcntl.flock(self._writer_lock, fcntl.LOCK_EX)
            self._turns += 1
            try:
                yield
            finally:
                self._turns -= 1
                if self._turns == 0:
                    fcntl.flock(self._writer_lock, fcntl.LOCK_UN)

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, in this process's :meth:`write_turn`, then ``BEGIN
        IMMEDIATE`` for any other program writing to the file. A write waits for another
        process's to end; hits arriving meanwhile wait in the writer's bounded queue (503 once
        it is full)."""
        with self.write_turn():
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
                self._conn.execute("COMMIT")
            except BaseException:
                self._strings.rolled_back()
                if self._conn.in_transaction:  # a failed COMMIT (disk full) leaves it open
                    self._conn.execute("ROLLBACK")
                raise
            self._strings.committed()

    def migrate(self) -> None:
        with self._write():
            migrations.apply(self._db)
            if self._timezones:
                rollups_sqlite.set_timezones(self._conn, self._timezones)

    def insert_hits(self, events: Sequence[Event], drops: Sequence[DropCount] = ()) -> None:
        """Store ``events`` (assigning each to a visit) and add ``drops`` to the daily counters,
        all in one transaction: either everything is committed or nothing is."""
        prepared = []  # before the lock, which other worker processes may be waiting for
        for event in events:
            values = list(msgspec.structs.astuple(event))
            props = event.props
            values[_PROPS_FIELD] = None if props is None else msgspec.json.encode(props).decode()
            prepared.append(values)
        # Visits are assigned in time order: in the order given, a visitor's events from before
        # a visit already assigned in the group could start a second visit where the definition
        # (no gap of 30 minutes) has one (a batch of backdated events, a bulk load).
        order = sorted(range(len(events)), key=lambda index: events[index].ts)
        with self._write() as conn:
            before, known = _prefetch_visits(conn, events)
            self._add_sites(conn, known, events)
            visits: list[int | None] = [None] * len(events)
            after: dict[int, tuple[Any, ...]] = {}
            for index in order:
                event, values = events[index], prepared[index]
                visit, began_as, row = _assign_visit(conn, event)
                visits[index] = visit
                if visit is not None and row is not None:
                    after[visit] = row
                if began_as is not None:
                    # The visit began under yesterday's daily key: keep its identifier.
                    values[_VISITOR_FIELD] = began_as
                    values[_KEY_EPOCH_FIELD] = event.previous_key_epoch
            # What the rollups hold for the visits extended (read before the new events).
            states = self._old_states(conn, known, events, visits, before, after)
            layout, epoch = layout_sqlite.layout_of(conn)
            first_id = _next_id(conn, layout)
            rows = [
                (first_id + number, *[values[index] for index in _STORED_FIELDS], visit)
                for number, (values, visit) in enumerate(zip(prepared, visits, strict=True))
            ]
            self._store_rows(conn, layout, epoch, rows)
            self._roll_up(conn, known, events, prepared, visits, before, after, states)
            for drop in drops:
                conn.execute(
                    "INSERT INTO dropped_hits (site, day, reason, hits) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT (site, day, reason) DO UPDATE SET hits = hits + excluded.hits",
                    (drop.site, drop.day, drop.reason, drop.hits),
                )

    def _store_rows(
        self, conn: sqlite3.Connection, layout: str, epoch: int, rows: Sequence[Sequence[Any]]
    ) -> None:
        """Insert event ``rows`` (``_EVENT_COLUMNS`` order) into the table(s) of ``layout``."""
        if layout != layout_sqlite.COMPACT:
            # Multi-row INSERTs: one statement (one GIL hand-off) for many events, not one each.
            start = 0
            for size in _insert_sizes(len(rows)):
                chunk = rows[start : start + size]
                start += size
                conn.execute(
                    f"INSERT INTO events ({', '.join(_EVENT_COLUMNS)}) VALUES "
                    + ", ".join([_EVENT_ROW] * size),
                    [value for row in chunk for value in row],
                )
        if layout != layout_sqlite.FIRST:
            compact = [[row[index] for index in _TO_COMPACT] for row in rows]
            layout_sqlite.insert_rows(conn, self._strings, epoch, compact)

    def _add_sites(
        self,
        conn: sqlite3.Connection,
        known: dict[str, rollups_sqlite.Site],
        events: Sequence[Event],
    ) -> None:
        """Add the sites of ``events`` the rollups have no record of yet to them and ``known``."""
        for site in sorted({event.site for event in events} - set(known)):
            known[site] = rollups_sqlite.add_site(conn, site, self._timezones.get(site, "UTC"))

    def _ids(
        self,
        conn: sqlite3.Connection,
        site: rollups_sqlite.Site,
        visitors: dict[bytes, str | None],
    ) -> dict[bytes, int]:
        """Each visitor's id: remembered from an earlier commit of this process while the
        site's generation is the same (ids are forgotten only by erasure and retention, which
        change it), else read or added."""
        found: dict[bytes, int] = {}
        unknown: dict[bytes, str | None] = {}
        for visitor, kind in visitors.items():
            cached = self._visitor_ids.get((site.code, visitor))
            cls = rollups_sqlite.kind_class(kind)
            if (
                cached is not None
                and cached[1] == site.generation
                and rollups_sqlite.ID_BASES[cls] <= cached[0] <= rollups_sqlite.ID_LIMITS[cls]
            ):
                found[visitor] = cached[0]
            else:
                unknown[visitor] = kind
        if unknown:
            for visitor, ident in rollups_sqlite.visitor_ids(conn, site, unknown).items():
                found[visitor] = ident
                self._visitor_ids[(site.code, visitor)] = (ident, site.generation)
            while len(self._visitor_ids) > _CACHED_IDS:
                del self._visitor_ids[next(iter(self._visitor_ids))]
        return found

    def _old_states(
        self,
        conn: sqlite3.Connection,
        known: dict[str, rollups_sqlite.Site],
        events: Sequence[Event],
        visits: Sequence[int | None],
        before: dict[int, tuple[Any, ...]],
        after: dict[int, tuple[Any, ...]],
    ) -> dict[int, tuple[rollups_sqlite.VisitState, list[Any]]]:
        """For each stored visit the group extends: its state before the group (cached when the
        stored row still matches, else read from its events) and, when its entry page changes,
        its earlier events."""
        sites_of = {visit: events[i].site for i, visit in enumerate(visits) if visit is not None}
        found: dict[int, tuple[rollups_sqlite.VisitState, list[Any]]] = {}
        read: list[int] = []
        for visit in after:
            old = before.get(visit)
            if old is None:
                continue
            site = known[sites_of[visit]]
            cached = self._visit_states.get(visit)
            moved = old[3] != after[visit][3]
            if (
                cached is not None
                and cached.generation == site.generation
                and cached.same_row(old)
                and not moved
            ):
                found[visit] = (cached, [])
            else:
                read.append(visit)
        if read:
            earlier: dict[int, list[Any]] = {visit: [] for visit in read}
            for row in conn.execute(
                f"SELECT visit, {rollups_sqlite.EVENT_COLUMNS} FROM events "
                "WHERE visit IN (SELECT value FROM json_each(?))",
                (msgspec.json.encode(read).decode(),),
            ):
                earlier[int(row[0])].append(row[1:])
            for visit in read:
                site = known[sites_of[visit]]
                state = rollups_sqlite.visit_state(before[visit], site.generation)
                for row in earlier[visit]:
                    state.add(row)
                found[visit] = (state, earlier[visit])
        return found

    def _roll_up(
        self,
        conn: sqlite3.Connection,
        known: dict[str, rollups_sqlite.Site],
        events: Sequence[Event],
        prepared: list[list[Any]],
        visits: Sequence[int | None],
        before: dict[int, tuple[Any, ...]],
        after: dict[int, tuple[Any, ...]],
        states: dict[int, tuple[rollups_sqlite.VisitState, list[Any]]],
    ) -> None:
        """Add what the group changed to the daily rollups, in its transaction: each event's
        sums and visitor, and for each visit it touched, its new figures in place of its old."""
        changes = rollups_sqlite.Changes()
        kinds: dict[str, dict[bytes, str | None]] = {}
        for event, values in zip(events, prepared, strict=True):
            visitor = values[_VISITOR_FIELD]
            if visitor is not None:
                kinds.setdefault(event.site, {})[visitor] = event.visitor_kind
        ids = {site: self._ids(conn, known[site], found) for site, found in kinds.items()}
        grown: dict[int, list[Any]] = {}
        for event, values, visit in zip(events, prepared, visits, strict=True):
            visitor = values[_VISITOR_FIELD]
            ident = None if visitor is None else ids[event.site][visitor]
            row = [values[index] for index in _EVENT_TUPLE]
            entry = None if visit is None else after[visit][3]
            changes.add_event(known[event.site], row, ident, entry, visit=visit)
            if visit is not None:
                grown.setdefault(visit, []).append(row)
        site_of = {visit: events[i].site for i, visit in enumerate(visits) if visit is not None}
        for visit, rows in grown.items():
            site = known[site_of[visit]]
            new = after[visit]
            old = states.get(visit)
            if old is not None:
                state, earlier = old
                changes.add_visit(site, state, -1)
                if before[visit][3] != new[3]:
                    ident = ids[site.name][bytes(new[0])]
                    for row in earlier:
                        day = changes.move_entry(site, row, ident, before[visit][3], new[3])
                        if before[visit][3] is not None and not rollups_sqlite.still_entered(
                            conn, site, bytes(new[0]), before[visit][3], day
                        ):
                            key = (site.code, rollups_sqlite.ENTRY, day, before[visit][3])
                            changes.row(key).removed.add(ident)
            else:
                state = rollups_sqlite.visit_state(new, site.generation)
            state.visitor, state.start, state.last = bytes(new[0]), int(new[1]), int(new[2])
            state.entry, state.pageviews, state.events = new[3], int(new[4]), int(new[5])
            state.generation = site.generation
            for row in sorted(rows, key=lambda item: item[rollups_sqlite.TS]):
                state.add(row)
            changes.add_visit(site, state)
            self._visit_states.pop(visit, None)
            self._visit_states[visit] = state
        while len(self._visit_states) > _CACHED_VISITS:
            del self._visit_states[next(iter(self._visit_states))]
        rollups_sqlite.log(conn, changes)

    def refresh_rollups(self, limit: int = 1) -> bool:
        """Rebuild up to ``limit`` queued days of the rollups from the events (an erasure's,
        a retention purge's, a time zone change's, the upgrade's), in one transaction;
        ``True`` while more are queued."""
        with self._write() as conn:
            return rollups_sqlite.rebuild_pending(conn, limit)

    def layout_progress(self) -> layout_sqlite.Progress:
        """Where the events' layout upgrade stands (:mod:`collector.storage.sqlite.layout`)."""
        with self._lock:
            return layout_sqlite.progress(self._conn)

    def notices(self) -> list[str]:
        """What the owner should know at start-up: an upgrade of the events' layout to run."""
        state = self.layout_progress()
        if state.layout == layout_sqlite.FIRST:
            return [
                f"The {state.total:,} stored events are in the layout of an earlier Mesure. "
                "`mesure upgrade --out DIR --recipient age1…` backs the data directory up, then "
                "rewrites them into the compact layout (40 % fewer bytes) while the "
                "collector runs."
            ]
        if state.layout == layout_sqlite.COPYING:
            return [
                f"The upgrade of the events' layout stopped after {state.copied:,} of "
                f"{state.total:,} events (backup: {state.backup}): run `mesure upgrade` again "
                "to carry on. Until it ends, every new event is written in both layouts."
            ]
        notices = []
        with self._lock:
            old_rollups = bool(rollups_sqlite.old_tables(self._conn))
            queued = rollups_sqlite.queued_days(self._conn)
        if old_rollups or state.old_table:
            notices.append(
                "Tables of an earlier Mesure are still stored, unread: `mesure upgrade` removes "
                "them in short transactions while the collector runs."
            )
        if queued:
            notices.append(
                f"{queued:,} days of rollups are queued for a rebuild: reports read them from "
                "the events (exact, slower) until the collector, when idle, or `mesure "
                "upgrade` rebuilds them."
            )
        if self.indexes_left():
            notices.append(
                "RFM, experiments and funnels read more events than they need until `mesure "
                "upgrade` builds their indexes (a few seconds per 10 M events; hits wait "
                "meanwhile)."
            )
        return notices

    def begin_upgrade(self, backup: str, now_ms: int) -> None:
        """Start copying the events into the compact layout (``backup``: where the backup
        taken just before is)."""
        with self._write() as conn:
            layout_sqlite.begin_copy(conn, backup, now_ms)

    def upgrade_step(self, rows: int = 5_000) -> tuple[str, int]:
        """One short transaction of the upgrade: ``("copied", n)`` events, ``("switched", 0)``
        once ``events`` reads the compact table, ``("dropped", 0)`` an index, rows or the table of
        the first layout, ``("dropped rollups", n)`` rows of the old rollups, ``("rebuilt", 1)``
        a queued day, ``("indexed", 1)`` a partial index built (a second or so at 10 M events),
        ``("done", 0)`` when nothing is left to do."""
        with self._write() as conn:
            layout, _ = layout_sqlite.layout_of(conn)
            if layout == layout_sqlite.COPYING:
                copied = layout_sqlite.copy_chunk(conn, rows)
                if copied:
                    return "copied", copied
                if layout_sqlite.switch(conn):
                    return "switched", 0
                return "copied", 0
            if layout != layout_sqlite.COMPACT:
                return "done", 0
            if layout_sqlite.drop_old_step(conn, rows * 4):
                return "dropped", 0
            deleted = rollups_sqlite.drop_old_step(conn, rows)
            if deleted is not None:
                return "dropped rollups", deleted
            if rollups_sqlite.queued_days(conn):
                rollups_sqlite.rebuild_pending(conn, 1)
                return "rebuilt", 1
            if layout_sqlite.index_step(conn) is not None:
                return "indexed", 1
            return "done", 0

    def rollups_left(self) -> tuple[int, int]:
        """About how many rows the rollups of before storage v2 still hold (1 at least while
        any of their tables is there), and how many days are queued for a rebuild."""
        with self._lock:
            old = rollups_sqlite.old_tables(self._conn)
            rows = max(1, rollups_sqlite.old_rows(self._conn)) if old else 0
            return rows, rollups_sqlite.queued_days(self._conn)

    def indexes_left(self) -> list[str]:
        """The partial indexes of the events that ``mesure upgrade`` still has to build."""
        with self._lock:
            return layout_sqlite.missing_indexes(self._conn)

    def record_backup(self, backup: str) -> None:
        """Record where the backup taken before the upgrade's first rewrite is."""
        with self._write() as conn:
            conn.execute("UPDATE event_layout SET backup = ?", (backup,))

    def import_events(self, events: Sequence[Event]) -> None:
        """Store a large batch of ``events`` (an import, a benchmark data set) in one
        transaction, faster than :meth:`insert_hits` and with the same visit assignment.

        The batch is taken in time order. Visits are followed in memory while the batch is
        stored, so the database is asked only once per visitor for an earlier visit; the result
        equals :meth:`insert_hits` of the same events when none is older than what is stored.
        """
        ordered = sorted(events, key=lambda item: item.ts)
        with self._write() as conn:
            open_visits: dict[tuple[str, bytes], list[Any] | None] = {}
            rows: list[dict[str, Any]] = []
            next_id = int(conn.execute("SELECT coalesce(max(id), 0) FROM visits").fetchone()[0])
            changed: dict[int, list[Any]] = {}
            created: set[int] = set()
            for event in ordered:
                row = msgspec.structs.asdict(event)
                row["props"] = (
                    None if event.props is None else msgspec.json.encode(event.props).decode()
                )
                row["visit"] = None
                if event.visitor is not None:
                    visit = _batch_visit(conn, open_visits, event, row)
                    if visit is None:
                        next_id += 1
                        visit = [next_id, event.ts, event.ts, None, None, 0, 0, event.site, row]
                        created.add(next_id)
                        open_visits[(event.site, row["visitor"])] = visit
                    _extend_visit(visit, event)
                    changed[visit[0]] = visit
                    row["visit"] = visit[0]
                rows.append(row)
            conn.executemany(
                "INSERT INTO visits (id, site, visitor, start_ts, last_ts, entry_path, "
                "exit_path, pageviews, events) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (v[0], v[7], v[8]["visitor"], v[1], v[2], v[3], v[4], v[5], v[6])
                    for v in changed.values()
                    if v[0] in created
                ],
            )
            conn.executemany(
                "UPDATE visits SET start_ts = ?, last_ts = ?, entry_path = ?, exit_path = ?, "
                "pageviews = ?, events = ? WHERE id = ?",
                [
                    (v[1], v[2], v[3], v[4], v[5], v[6], v[0])
                    for v in changed.values()
                    if v[0] not in created
                ],
            )
            layout, epoch = layout_sqlite.layout_of(conn)
            first_id = _next_id(conn, layout)
            self._store_rows(
                conn,
                layout,
                epoch,
                [
                    [first_id + number if name == "id" else row[name] for name in _EVENT_COLUMNS]
                    for number, row in enumerate(rows)
                ],
            )
            self._add_sites(conn, rollups_sqlite.sites(conn), ordered)
            # The rollups of every day the batch touched are rebuilt from the events: the
            # days of its events, and every day of each visit it created or extended.
            days: dict[str, set[int]] = {}
            for event in ordered:
                days.setdefault(event.site, set()).add(event.ts)
            for visit in changed.values():
                days.setdefault(visit[7], set()).update(
                    range(visit[1], visit[2] + 1, rollups_sqlite.DAY_MS // 2)
                )
                days[visit[7]].add(visit[2])
            for site, times in days.items():
                rebuild = rollups_sqlite.days_of(conn, site, times)
                rollups_sqlite.rebuild_days(conn, site, rebuild)
            self._visit_states.clear()

    def events(self, site: str | None = None) -> list[dict[str, Any]]:
        """Every stored event (of ``site``), ordered by id; ``props`` decoded."""
        rows = self._select(
            f"SELECT {layout_sqlite.SELECT_COLUMNS} FROM events"
            + (f" WHERE {self._site_is()}" if site else "")
            + " ORDER BY id",
            (site,) if site else (),
        )
        for row in rows:
            if row["props"] is not None:
                row["props"] = msgspec.json.decode(row["props"])
        return rows

    def _site_is(self) -> str:
        """``site = ?`` over ``events``: over the site's id in the compact layout (indexed)."""
        with self._lock:
            compact = layout_sqlite.is_compact(self._conn)
        return "site_id = (SELECT id FROM strings WHERE value = ?)" if compact else "site = ?"

    def visits(self, site: str | None = None) -> list[dict[str, Any]]:
        return self._select(
            "SELECT * FROM visits" + (" WHERE site = ?" if site else "") + " ORDER BY id",
            (site,) if site else (),
        )

    def dropped_hits(self, site: str) -> dict[tuple[str, str], int]:
        """``{(day, reason): hits}`` of ``site``; opt-outs are the reason ``optout``."""
        rows = self._select("SELECT day, reason, hits FROM dropped_hits WHERE site = ?", (site,))
        return {(row["day"], row["reason"]): row["hits"] for row in rows}

    def count_optout(self, site: str, day: str) -> int:
        """Opt-out hits of ``site`` on local ``day`` (``YYYY-MM-DD``)."""
        return self.dropped_hits(site).get((day, "optout"), 0)

    def count_events(self, site: str | None = None) -> int:
        rows = self._select(
            "SELECT count(*) AS n FROM events" + (f" WHERE {self._site_is()}" if site else ""),
            (site,) if site else (),
        )
        return int(rows[0]["n"])

    def checkpoint(self) -> None:
        """Copy the write-ahead log into the database file and empty it (file sizes are then
        the database's own)."""
        with self._lock:
            self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def integrity_check(self) -> str:
        return str(self._select("PRAGMA integrity_check", ())[0]["integrity_check"])

    def _select(self, sql: str, params: Sequence[Any]) -> list[dict[str, Any]]:
        with self._lock:
            cursor = self._conn.execute(sql, params)
            names = [column[0] for column in cursor.description]
            return [dict(zip(names, values, strict=True)) for values in cursor.fetchall()]


def _next_id(conn: sqlite3.Connection, layout: str) -> int:
    """The id of the next event: above every stored one (in the first table while it is
    written, whose ids the compact table copies)."""
    table = "event_rows" if layout == layout_sqlite.COMPACT else "events"
    return int(conn.execute(f"SELECT coalesce(max(id), 0) + 1 FROM {table}").fetchone()[0])


def _insert_sizes(count: int) -> Iterator[int]:
    """The row counts of the ``INSERT`` statements for ``count`` events: at most
    ``_SMALL_INSERT + 1`` different ones, whatever the groups."""
    while count >= _EVENTS_PER_INSERT:
        yield _EVENTS_PER_INSERT
        count -= _EVENTS_PER_INSERT
    while count > _SMALL_INSERT:
        yield _SMALL_INSERT
        count -= _SMALL_INSERT
    if count:
        yield count


def _assign_visit(
    conn: sqlite3.Connection, event: Event
) -> tuple[int | None, bytes | None, tuple[Any, ...] | None]:
    """The visit of ``event``: its visitor's visit still active at ``event.ts`` or a new one;
    the visit's visitor identifier when it began under yesterday's daily key (``None``
    otherwise), which the event keeps; and the visit as stored after the event
    ``(visitor, start, last, entry page, pageviews, events)``.

    Runs inside the write transaction, so concurrent worker processes agree on visits.
    """
    if event.visitor is None:
        return None, None, None
    previous = event.previous_visitor or event.visitor
    is_pageview = event.name == "pageview"
    found = conn.execute(
        _EXTEND_VISIT,
        {
            "ts": event.ts,
            "pv": int(is_pageview),
            "path": event.path,
            "site": event.site,
            "visitor": event.visitor,
            "previous": previous,
            "after": event.ts - VISIT_GAP_MS,
            "before": event.ts + VISIT_GAP_MS,
        },
    ).fetchone()
    if found is None:
        cursor = conn.execute(
            "INSERT INTO visits (site, visitor, start_ts, last_ts, entry_path, exit_path, "
            "pageviews, events) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                event.site,
                event.visitor,
                event.ts,
                event.ts,
                event.path if is_pageview else None,
                event.path if is_pageview else None,
                int(is_pageview),
                int(not is_pageview),
            ),
        )
        path = event.path if is_pageview else None
        row = (event.visitor, event.ts, event.ts, path, int(is_pageview), int(not is_pageview))
        return cursor.lastrowid, None, row
    visit_id, visitor = found[0], found[1]
    began_as = None if visitor == event.visitor else bytes(visitor)
    return int(visit_id), began_as, (bytes(visitor), *found[2:])


def _prefetch_visits(
    conn: sqlite3.Connection, events: Sequence[Event]
) -> tuple[dict[int, tuple[Any, ...]], dict[str, rollups_sqlite.Site]]:
    """``{id: (visitor, start, last, entry page, pageviews, events)}`` of every stored visit
    the group's events could extend, as it is before them; and the rollups' record of each
    site (code, time zone, generation), read in the same statement."""
    after: dict[tuple[str, bytes], int] = {}
    for event in events:
        if event.visitor is None:
            continue
        for visitor in {event.visitor, event.previous_visitor or event.visitor}:
            key = (event.site, visitor)
            after[key] = min(after.get(key, event.ts), event.ts)
    found: dict[int, tuple[Any, ...]] = {}
    known: dict[str, rollups_sqlite.Site] = {}
    pairs = [(site, visitor, ts - VISIT_GAP_MS) for (site, visitor), ts in after.items()]
    start = 0
    for size in _insert_sizes(len(pairs)):
        chunk = pairs[start : start + size]
        sql = _PREFETCH.format(rows=", ".join(["(?, ?, ?)"] * size))
        if start == 0:
            sql += _SITES
        start += size
        for row in conn.execute(sql, [value for pair in chunk for value in pair]):
            if row[0] < 0:
                known[str(row[1])] = rollups_sqlite.Site(
                    str(row[1]), -int(row[0]), rollups_sqlite.zone(str(row[2])), int(row[3])
                )
            else:
                found[int(row[0])] = (bytes(row[1]), *row[2:])
    if not pairs:
        known = rollups_sqlite.sites(conn)
    return found, known


def _batch_visit(
    conn: sqlite3.Connection,
    open_visits: dict[tuple[str, bytes], list[Any] | None],
    event: Event,
    row: dict[str, Any],
) -> list[Any] | None:
    """The visit ``event`` continues during :meth:`Storage.import_events`, or ``None``.

    A visit is ``[id, start, last, entry, exit, pageviews, events, site, first row]``.
    """
    assert event.visitor is not None
    candidates: list[list[Any]] = []
    for visitor in dict.fromkeys((event.visitor, event.previous_visitor or event.visitor)):
        key = (event.site, visitor)
        if key not in open_visits:
            found = conn.execute(
                "SELECT id, start_ts, last_ts, entry_path, exit_path, pageviews, events "
                "FROM visits WHERE site = ? AND visitor = ? AND last_ts > ? AND start_ts < ? "
                "ORDER BY last_ts DESC LIMIT 1",
                (event.site, visitor, event.ts - VISIT_GAP_MS, event.ts + VISIT_GAP_MS),
            ).fetchone()
            open_visits[key] = None if found is None else [*found, event.site, {"visitor": visitor}]
        visit = open_visits[key]
        if (
            visit is not None
            and visit[2] > event.ts - VISIT_GAP_MS
            and visit[1] < event.ts + VISIT_GAP_MS
        ):
            candidates.append(visit)
    if not candidates:
        return None
    chosen = max(candidates, key=lambda visit: visit[2])
    visitor = chosen[8]["visitor"]
    if visitor != event.visitor:
        # The visit began under yesterday's daily key: keep its identifier.
        row["visitor"] = visitor
        row["key_epoch"] = event.previous_key_epoch
    return chosen


def _extend_visit(visit: list[Any], event: Event) -> None:
    """Apply ``event`` to an in-memory visit as :func:`_assign_visit` does in SQL."""
    is_pageview = event.name == "pageview"
    ts = event.ts
    if is_pageview and (visit[3] is None or ts < visit[1]):
        visit[3] = event.path
    if is_pageview and ts >= visit[2]:
        visit[4] = event.path
    visit[1] = min(visit[1], ts)
    visit[2] = max(visit[2], ts)
    visit[5] += int(is_pageview)
    visit[6] += int(not is_pageview)


def open_storage(
    path: Path,
    *,
    migrate: bool = True,
    lock_timeout_ms: int = 10_000,
    timezones: Mapping[str, str] | None = None,
) -> Storage:
    """Open (creating if needed) the database at ``path`` in WAL mode and run migrations.

    A write waits up to ``lock_timeout_ms`` for another process's write to finish.
    ``timezones``: each site's configured time zone, the local days of its rollups (a site
    whose rollups were built in another is rebuilt; sites not named keep theirs, or UTC).
    """
    conn = sqlite3.connect(path, check_same_thread=False, timeout=lock_timeout_ms / 1000)
    conn.execute("PRAGMA journal_mode = WAL")
    # FULL: a 202 means the hit survives a power cut too, not only a killed process.
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("PRAGMA foreign_keys = ON")
    # Bytes this connection frees (a visit's older exit page, rollup rows rebuilt) are zeroed,
    # not left in free space where an erasure could not reach them. Some builds of SQLite have
    # it on by default; others do not.
    conn.execute("PRAGMA secure_delete = ON")
    storage = Storage(conn, path, timezones)
    if migrate:
        storage.migrate()
    return storage
