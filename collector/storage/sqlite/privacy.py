"""The SQL of the privacy-officer tools: export rows, find and erase a data subject's rows,
purge data past its retention, reclaim space.

Rows come back as plain column → value dicts (``bytes`` for hashes), exactly as stored; the
callers in :mod:`collector.privacy` decide how to present them.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

import msgspec

from collector.storage.rows import (
    SUBJECT_EPOCH_COLUMN,
    SUBJECT_VISITOR_KIND,
    Deleted,
    ErasureScope,
    PurgeCount,
    SubjectColumn,
    SubjectHash,
)
from collector.storage.sqlite import layout as layout_sqlite
from collector.storage.sqlite import rollups as rollups_sqlite

#: How long :meth:`PrivacyDatabase.reclaim_space` keeps trying to empty the WAL: 10 s.
_CHECKPOINT_ATTEMPTS = 200
_CHECKPOINT_PAUSE_S = 0.05
# Spliced into the SQL: built from constants, never from a request.
_KIND_FILTER: dict[SubjectColumn, str] = {
    column: f" AND visitor_kind = '{kind}'" if kind else ""
    for column, kind in SUBJECT_VISITOR_KIND.items()
}


class PrivacyDatabase:
    """One connection on the (existing, migrated) database, for one command or request."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def _is(self, column: str) -> str:
        """``column = ?`` over ``events``; for a column of the compact layout's dictionary (the
        site, the mode), over its id, which the indexes hold and no row needs decoding for."""
        if column in layout_sqlite.ENCODED and layout_sqlite.is_compact(self._conn):
            return f"{column}_id = (SELECT id FROM strings WHERE value = ?)"
        return f"{column} = ?"

    def _rows(self, sql: str, params: Sequence[Any]) -> list[dict[str, Any]]:
        cursor = self._conn.execute(sql, params)
        names = [column[0] for column in cursor.description]
        return [dict(zip(names, values, strict=True)) for values in cursor.fetchall()]

    def event_columns(self) -> list[tuple[str, str]]:
        """``(name, declared SQL type)`` of every column of ``events``, in table order."""
        return list(layout_sqlite.EVENT_COLUMNS)

    def visit_columns(self) -> list[tuple[str, str]]:
        """``(name, declared SQL type)`` of every column of ``visits``, in table order."""
        rows = self._conn.execute("PRAGMA table_info(visits)").fetchall()
        return [(str(row[1]), str(row[2])) for row in rows]

    def export_rows(self, site: str, start_ms: int, end_ms: int) -> Iterator[dict[str, Any]]:
        """Events of ``site`` with ``start_ms <= ts < end_ms``, by time then id."""
        cursor = self._conn.execute(
            f"SELECT {layout_sqlite.SELECT_COLUMNS} FROM events WHERE {self._is('site')} "
            "AND ts >= ? AND ts < ? ORDER BY ts, id",
            (site, start_ms, end_ms),
        )
        names = [column[0] for column in cursor.description]
        for values in cursor:
            yield dict(zip(names, values, strict=True))

    def epochs_in_rows(self, site: str, start_ms: int, end_ms: int) -> dict[str, list[int]]:
        """Key epochs found in ``site``'s rows of the period: client, cookieless (days), user."""
        found: dict[str, list[int]] = {"client": [], "cookieless": [], "user": []}
        for kind in ("client", "cookieless"):
            rows = self._conn.execute(
                f"SELECT DISTINCT key_epoch FROM events WHERE {self._is('site')} AND ts >= ? "
                "AND ts < ? AND visitor_kind = ? AND key_epoch IS NOT NULL ORDER BY key_epoch",
                (site, start_ms, end_ms, kind),
            ).fetchall()
            found[kind] = [int(row[0]) for row in rows]
        rows = self._conn.execute(
            f"SELECT DISTINCT user_epoch FROM events WHERE {self._is('site')} AND ts >= ? "
            "AND ts < ? AND user_epoch IS NOT NULL ORDER BY user_epoch",
            (site, start_ms, end_ms),
        ).fetchall()
        found["user"] = [int(row[0]) for row in rows]
        return found

    def subject_rows(
        self, site: str, column: SubjectColumn, hashes: Sequence[SubjectHash]
    ) -> list[dict[str, Any]]:
        """Every event of ``site`` stored under one of ``hashes`` (each with its own epoch)."""
        rows: list[dict[str, Any]] = []
        for subject in hashes:
            rows += self._rows(
                f"SELECT {layout_sqlite.SELECT_COLUMNS} FROM events WHERE {self._is('site')} "
                f"AND {column} = ? AND {SUBJECT_EPOCH_COLUMN[column]} = ?{_KIND_FILTER[column]} "
                "ORDER BY ts, id",
                (site, subject.digest, subject.epoch),
            )
        return sorted(rows, key=lambda row: (row["ts"], row["id"]))

    def visits_by_id(self, ids: Sequence[int]) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        for visit_id in sorted(set(ids)):
            rows += self._rows("SELECT * FROM visits WHERE id = ?", (visit_id,))
        return rows

    def erasure_scope(
        self, site: str, column: SubjectColumn, hashes: Sequence[SubjectHash]
    ) -> ErasureScope:
        subject_ids: set[int] = set()
        visit_ids: set[int] = set()
        for row in self.subject_rows(site, column, hashes):
            subject_ids.add(int(row["id"]))
            if row["visit"] is not None:
                visit_ids.add(int(row["visit"]))
        if column == "visitor":
            # A visit is its visitor's: every visit under these hashes goes, even empty ones.
            for subject in hashes:
                for (visit_id,) in self._conn.execute(
                    "SELECT id FROM visits WHERE site = ? AND visitor = ?",
                    (site, subject.digest),
                ).fetchall():
                    visit_ids.add(int(visit_id))
        return ErasureScope(event_ids=frozenset(subject_ids), visit_ids=frozenset(visit_ids))

    def erase_subject(
        self, site: str, column: SubjectColumn, hashes: Sequence[SubjectHash]
    ) -> Deleted:
        """Delete the subject's events, the other events of their visits and those visits
        (:meth:`erasure_scope`), in one transaction."""
        with self._conn:
            self._conn.execute("BEGIN IMMEDIATE")
            scope = self.erasure_scope(site, column, hashes)
            subject_ids, visit_ids = scope.event_ids, scope.visit_ids
            # What the rows add to the rollups, taken out once they are deleted; and the
            # visitors whose ids may be left unused.
            erased = rollups_sqlite.erasure(self._conn, site, subject_ids, visit_ids)
            _, visitors = self._touched(subject_ids, visit_ids)
            ids = msgspec.json.encode(sorted(subject_ids)).decode()
            layout_sqlite.delete_rows(self._conn, "id IN (SELECT value FROM json_each(?))", (ids,))
            visit_events = 0
            visits = 0
            for visit_id in sorted(visit_ids):
                visit_events += layout_sqlite.delete_rows(self._conn, "visit = ?", (visit_id,))
                visits += self._conn.execute(
                    "DELETE FROM visits WHERE id = ?", (visit_id,)
                ).rowcount
            # The rollups follow in this transaction, and the ids of visitors with no visit
            # left are forgotten.
            rollups_sqlite.bump_generation(self._conn, site)
            if erased is not None:
                rollups_sqlite.apply_erasure(self._conn, erased)
            rollups_sqlite.drop_unused_visitors(self._conn, site, visitors)
        return Deleted(subject_events=len(subject_ids), visit_events=visit_events, visits=visits)

    def _touched(
        self, event_ids: Iterable[int], visit_ids: Iterable[int]
    ) -> tuple[set[int], set[bytes]]:
        """The times of the events ``event_ids``, of every event of ``visit_ids`` and of those
        visits' starts; and the visitor hashes of all of them."""
        times: set[int] = set()
        visitors: set[bytes] = set()
        for event_id in event_ids:
            for ts, visitor in self._conn.execute(
                "SELECT ts, visitor FROM events WHERE id = ?", (event_id,)
            ):
                times.add(int(ts))
                if visitor is not None:
                    visitors.add(bytes(visitor))
        for visit_id in visit_ids:
            for ts, visitor in self._conn.execute(
                "SELECT start_ts, visitor FROM visits WHERE id = ? UNION ALL "
                "SELECT ts, NULL FROM events WHERE visit = ?",
                (visit_id, visit_id),
            ):
                times.add(int(ts))
                if visitor is not None:
                    visitors.add(bytes(visitor))
        return times, visitors

    def _rebuild(self, site: str, times: Iterable[int], visitors: Iterable[bytes]) -> None:
        rollups_sqlite.bump_generation(self._conn, site)
        days = rollups_sqlite.days_of(self._conn, site, times)
        rollups_sqlite.rebuild_days(self._conn, site, days)
        rollups_sqlite.drop_unused_visitors(self._conn, site, visitors)

    def count_before(self, site: str, modes: Sequence[str], before_ms: int) -> list[PurgeCount]:
        return [
            PurgeCount(
                site=site,
                mode=mode,
                events=int(
                    self._conn.execute(
                        f"SELECT count(*) FROM events WHERE {self._is('site')} "
                        f"AND {self._is('mode')} AND ts < ?",
                        (site, mode, before_ms),
                    ).fetchone()[0]
                ),
            )
            for mode in modes
        ]

    def purge_before(self, site: str, modes: Sequence[str], before_ms: int) -> list[PurgeCount]:
        """Delete ``site``'s events of ``modes`` older than ``before_ms``, then the visits left
        without any event, in one transaction."""
        counts: list[PurgeCount] = []
        with self._conn:
            self._conn.execute("BEGIN IMMEDIATE")
            times: set[int] = set()
            visitors: set[bytes] = set()
            for mode in modes:
                where = f"{self._is('site')} AND {self._is('mode')} AND ts < ?"
                # The purged events' days (every day from the first to the last) are rebuilt;
                # the visits they belong to started on one of them.
                first, last = self._conn.execute(
                    f"SELECT min(ts), max(ts) FROM events WHERE {where}", (site, mode, before_ms)
                ).fetchone()
                if first is not None:
                    times.update(range(int(first), int(last), rollups_sqlite.DAY_MS // 2))
                    times.add(int(last))
                gone = layout_sqlite.delete_rows(self._conn, where, (site, mode, before_ms))
                counts.append(PurgeCount(site=site, mode=mode, events=gone))
            # Only visits that lost events can have become empty; skipping the scan otherwise
            # keeps the collector's start-up and daily runs cheap on a large database.
            if any(count.events for count in counts):
                empty = (
                    "site = ? AND last_ts < ? AND NOT EXISTS "
                    "(SELECT 1 FROM events WHERE events.visit = visits.id)"
                )
                visitors.update(
                    bytes(row[0])
                    for row in self._conn.execute(
                        f"SELECT visitor FROM visits WHERE {empty}", (site, before_ms)
                    )
                )
                self._conn.execute(f"DELETE FROM visits WHERE {empty}", (site, before_ms))
            # Rollups follow: the purged days are rebuilt from the events left.
            if times:
                rollups_sqlite.record_purge(self._conn, site, before_ms)
                self._rebuild(site, times, visitors)
        return counts

    def count_events(self, site: str | None = None) -> int:
        if site is None:
            return int(self._conn.execute("SELECT count(*) FROM events").fetchone()[0])
        return int(
            self._conn.execute(
                f"SELECT count(*) FROM events WHERE {self._is('site')}", (site,)
            ).fetchone()[0]
        )

    def reclaim_space(self, *, vacuum: bool = True) -> str:
        """Give freed pages back to the file system: incremental vacuum when the database was
        created for it, a full VACUUM otherwise (only the WAL checkpoint when not ``vacuum``).
        Returns which one ran."""
        auto_vacuum = int(self._conn.execute("PRAGMA auto_vacuum").fetchone()[0])
        if not vacuum:
            done = "wal_checkpoint"
        elif auto_vacuum == 2:
            self._conn.execute("PRAGMA incremental_vacuum")
            done = "incremental_vacuum"
        else:
            self._conn.execute("VACUUM")
            done = "vacuum"
        # Also empty the WAL, where deleted rows' old pages would otherwise linger. A reader of
        # a running collector (a report) may hold an older snapshot for a moment: the WAL can
        # only be emptied once it is done, so the checkpoint is tried again meanwhile.
        for _attempt in range(_CHECKPOINT_ATTEMPTS):
            busy = self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
            if not busy:
                return done
            time.sleep(_CHECKPOINT_PAUSE_S)
        return done + " (write-ahead log NOT emptied: a reader held it for 10 s; run again)"


@contextmanager
def privacy_database(path: Path, *, timeout_ms: int = 10_000) -> Iterator[PrivacyDatabase]:
    """A connection on the (existing, migrated) database at ``path`` for one call.

    Autocommit mode (``isolation_level=None``): writes open their own ``BEGIN IMMEDIATE``, and
    VACUUM, which cannot run inside a transaction, is possible.
    """
    conn = sqlite3.connect(path, timeout=timeout_ms / 1000, isolation_level=None)
    conn.execute("PRAGMA foreign_keys = ON")
    # Erased rows are overwritten with zeros, not merely unlinked into free pages.
    conn.execute("PRAGMA secure_delete = ON")
    with closing(conn):
        yield PrivacyDatabase(conn)
