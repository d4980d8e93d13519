"""The privacy-officer tools' SQL for ClickHouse: the same methods and rows as
:mod:`collector.storage.sqlite.privacy`.

Deletions are mutations run with ``mutations_sync = 2``: ``ALTER TABLE … DELETE`` rewrites the
parts holding the rows (on every replica) before the call returns, so an erasure or a purge is
complete when the command answers. The parts it replaced stay on disk until ClickHouse removes
them, which :meth:`ClickHousePrivacy.reclaim_space` waits for on chDB. Counts are taken just
before each deletion with the same condition. ``first_visits`` follows every deletion of visits
(:func:`collector.storage.clickhouse.first_visits.reseed`).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from typing import Any

from collector.storage.clickhouse import first_visits
from collector.storage.clickhouse.client import Client
from collector.storage.clickhouse.ingest import event_select, visit_select
from collector.storage.clickhouse.schema import EVENT_COLUMNS, VISIT_EXPORT_COLUMNS
from collector.storage.rows import (
    SUBJECT_EPOCH_COLUMN,
    SUBJECT_VISITOR_KIND,
    Deleted,
    ErasureScope,
    PurgeCount,
    SubjectColumn,
    SubjectHash,
)

# Spliced into the SQL: built from constants, never from a request.
_KIND_FILTER: dict[SubjectColumn, str] = {
    column: f" AND visitor_kind = '{kind}'" if kind else ""
    for column, kind in SUBJECT_VISITOR_KIND.items()
}
SYNC = {"mutations_sync": 2, "final": 1}
#: How long an erasure or retention run on chDB waits for the parts it replaced to be removed.
OUTDATED_PARTS_WAIT_S = 30
_TS = "fromUnixTimestamp64Milli({%s:Int64}, 'UTC')"


class ClickHousePrivacy:
    def __init__(self, client: Client) -> None:
        self._client = client
        self._events = client.mutable("events")
        self._visits = client.mutable("visits")

    def _dicts(self, sql: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        return self._client.dicts(sql, params)

    def _count(self, sql: str, params: dict[str, Any]) -> int:
        return int(self._client.rows(sql, params, final=1)[0][0])

    def event_columns(self) -> list[tuple[str, str]]:
        """SQLite's declared types, so export manifests are the same on both backends."""
        return [(name, declared) for name, _, declared in EVENT_COLUMNS]

    def visit_columns(self) -> list[tuple[str, str]]:
        """The columns of an access request's visits file, as SQLite declares them."""
        return list(VISIT_EXPORT_COLUMNS)

    def export_rows(self, site: str, start_ms: int, end_ms: int) -> Iterator[dict[str, Any]]:
        yield from self._dicts(
            f"SELECT {event_select('')} FROM {{db}}.events WHERE site = {{site:String}} "
            f"AND ts >= {_TS % 'start'} AND ts < {_TS % 'end'} ORDER BY ts, id",
            {"site": site, "start": start_ms, "end": end_ms},
        )

    def epochs_in_rows(self, site: str, start_ms: int, end_ms: int) -> dict[str, list[int]]:
        params = {"site": site, "start": start_ms, "end": end_ms}
        where = f"site = {{site:String}} AND ts >= {_TS % 'start'} AND ts < {_TS % 'end'}"
        found: dict[str, list[int]] = {}
        for kind in ("client", "cookieless"):
            rows = self._client.rows(
                f"SELECT DISTINCT key_epoch FROM {{db}}.events WHERE {where} "
                "AND visitor_kind = {kind:String} AND key_epoch IS NOT NULL ORDER BY key_epoch",
                {**params, "kind": kind},
            )
            found[kind] = [int(row[0]) for row in rows]
        rows = self._client.rows(
            f"SELECT DISTINCT user_epoch FROM {{db}}.events WHERE {where} "
            "AND user_epoch IS NOT NULL ORDER BY user_epoch",
            params,
        )
        found["user"] = [int(row[0]) for row in rows]
        return found

    def _subject_where(self, column: SubjectColumn, hashes: Sequence[SubjectHash]) -> str:
        pairs = " OR ".join(
            f"({column} = {{d{i}:String}} AND {SUBJECT_EPOCH_COLUMN[column]} = {{e{i}:Int64}})"
            for i in range(len(hashes))
        )
        return f"site = {{site:String}} AND ({pairs or '0'}){_KIND_FILTER[column]}"

    @staticmethod
    def _subject_params(site: str, hashes: Sequence[SubjectHash]) -> dict[str, Any]:
        params: dict[str, Any] = {"site": site}
        for i, subject in enumerate(hashes):
            params[f"d{i}"] = subject.digest
            params[f"e{i}"] = subject.epoch
        return params

    def subject_rows(
        self, site: str, column: SubjectColumn, hashes: Sequence[SubjectHash]
    ) -> list[dict[str, Any]]:
        return self._dicts(
            f"SELECT {event_select('')} FROM {{db}}.events "
            f"WHERE {self._subject_where(column, hashes)} ORDER BY ts, id",
            self._subject_params(site, hashes),
        )

    def visits_by_id(self, ids: Sequence[int]) -> list[dict[str, Any]]:
        if not ids:
            return []
        return self._client.dicts(
            f"SELECT {visit_select('')} FROM {{db}}.visits FINAL "
            "WHERE id IN {ids:Array(UInt64)} ORDER BY id",
            {"ids": sorted(set(ids))},
        )

    def erasure_scope(
        self, site: str, column: SubjectColumn, hashes: Sequence[SubjectHash]
    ) -> ErasureScope:
        rows = self.subject_rows(site, column, hashes)
        visit_ids = {int(row["visit"]) for row in rows if row["visit"] is not None}
        if column == "visitor":
            # A visit is its visitor's: every visit under these hashes goes, even empty ones.
            for (visit_id,) in self._client.rows(
                "SELECT id FROM {db}.visits WHERE site = {site:String} "
                "AND visitor IN {digests:Array(String)}",
                {"site": site, "digests": [h.digest for h in hashes]},
            ):
                visit_ids.add(int(visit_id))
        return ErasureScope(
            event_ids=frozenset(int(row["id"]) for row in rows), visit_ids=frozenset(visit_ids)
        )

    def erase_subject(
        self, site: str, column: SubjectColumn, hashes: Sequence[SubjectHash]
    ) -> Deleted:
        """Delete the subject's events, the other events of their visits and those visits
        (:meth:`erasure_scope`)."""
        scope = self.erasure_scope(site, column, hashes)
        subject_ids, visits = sorted(scope.event_ids), sorted(scope.visit_ids)
        # Tell the writer first: it must not extend a visit that is being erased.
        seq = time.time_ns()
        self._client.insert(
            "erasures",
            [(seq + i, site, visit_id) for i, visit_id in enumerate(visits)],
            ["seq", "site", "visit"],
        )
        # Whose first visit may go: their rows of ``first_visits`` go now, while the visits
        # still name them, and are made again from the visits left afterwards.
        visitors = first_visits.forget_visitors_of(self._client, site, visits)
        visit_events = self._count(
            "SELECT count() FROM {db}.events WHERE visit IN {visits:Array(UInt64)} "
            "AND id NOT IN {ids:Array(UInt64)}",
            {"visits": visits, "ids": subject_ids},
        )
        if subject_ids:
            self._client.command(
                f"ALTER TABLE {self._events} DELETE WHERE id IN {{ids:Array(UInt64)}}",
                {"ids": subject_ids},
                **SYNC,
            )
        if visits:
            self._client.command(
                f"ALTER TABLE {self._events} DELETE WHERE visit IN {{visits:Array(UInt64)}}",
                {"visits": visits},
                **SYNC,
            )
            self._client.command(
                f"ALTER TABLE {self._visits} DELETE WHERE id IN {{visits:Array(UInt64)}}",
                {"visits": visits},
                **SYNC,
            )
        first_visits.reseed(self._client, site, visitors)
        return Deleted(
            subject_events=len(subject_ids), visit_events=visit_events, visits=len(visits)
        )

    def count_before(self, site: str, modes: Sequence[str], before_ms: int) -> list[PurgeCount]:
        return [
            PurgeCount(
                site=site,
                mode=mode,
                events=self._count(
                    "SELECT count() FROM {db}.events WHERE site = {site:String} "
                    f"AND mode = {{mode:String}} AND ts < {_TS % 'before'}",
                    {"site": site, "mode": mode, "before": before_ms},
                ),
            )
            for mode in modes
        ]

    def purge_before(self, site: str, modes: Sequence[str], before_ms: int) -> list[PurgeCount]:
        """Delete ``site``'s events of ``modes`` older than ``before_ms``, then the visits left
        without any event; the visitors who lost their first visit get their ``first_visits``
        row from the visits that remain."""
        counts = self.count_before(site, modes, before_ms)
        for count in counts:
            if count.events:
                self._client.command(
                    f"ALTER TABLE {self._events} DELETE WHERE site = {{site:String}} "
                    f"AND mode = {{mode:String}} AND ts < {_TS % 'before'}",
                    {"site": site, "mode": count.mode, "before": before_ms},
                    **SYNC,
                )
        self._client.command(
            f"ALTER TABLE {self._visits} DELETE WHERE site = {{site:String}} "
            f"AND last_ts < {_TS % 'before'} AND id NOT IN (SELECT visit FROM {{db}}.events "
            "WHERE site = {site:String} AND visit IS NOT NULL)",
            {"site": site, "before": before_ms},
            **SYNC,
        )
        first_visits.reseed(
            self._client, site, first_visits.forget_before(self._client, site, before_ms)
        )
        return counts

    def count_events(self, site: str | None = None) -> int:
        if site is None:
            return self._count("SELECT count() FROM {db}.events", {})
        return self._count(
            "SELECT count() FROM {db}.events WHERE site = {site:String}", {"site": site}
        )

    def reclaim_space(self, *, vacuum: bool = True) -> str:
        """Merge each table's parts: deleted rows are already rewritten away by the mutations,
        this also applies expired TTLs and collapses old visit versions. Without ``vacuum`` (an
        erasure, or the server's own run) the synchronous mutations are all there is to do.

        Either way the parts a mutation or merge replaced stay on disk, outdated, until
        ClickHouse removes them: on chDB within a second or two (``ch_schema.
        EMBEDDED_SETTINGS``), which this waits for; on a server after its
        ``old_parts_lifetime`` (8 minutes by default), which is said, not waited for.
        """
        done = "mutations"
        if vacuum:
            for table in ("events", "visits", "first_visits", "dropped_hits"):
                self._client.command(f"OPTIMIZE TABLE {self._client.mutable(table)} FINAL")
            done = "optimize"
        outdated = self._outdated_parts()
        if not self._client.target.embedded:
            if outdated:
                done += f"; {len(outdated)} replaced part(s) left for ClickHouse to remove"
            return done
        deadline = time.monotonic() + OUTDATED_PARTS_WAIT_S
        while outdated and time.monotonic() < deadline:
            time.sleep(0.1)
            outdated &= self._outdated_parts()
        if outdated:
            done += (
                f"; {len(outdated)} replaced part(s) still on disk after {OUTDATED_PARTS_WAIT_S} s"
            )
        return done

    def _outdated_parts(self) -> set[tuple[str, str]]:
        """Parts of the tables holding visitors (events, visits, first visits) replaced by a
        mutation or a merge but still on disk (on the node answering, for a cluster)."""
        rows = self._client.rows(
            "SELECT table, name FROM system.parts WHERE database = {database:String} "
            "AND table IN ('events', 'visits', 'first_visits', 'events_local', 'visits_local', "
            "'first_visits_local') AND NOT active",
            {"database": self._client.database},
        )
        return {(str(table), str(name)) for table, name in rows}
