"""Saved goals and funnels: the ``goals`` and ``funnels`` tables, read and written for the goals
and funnels APIs, the dashboard and the reports that name them."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager
from pathlib import Path

import msgspec

from collector.storage.rows import Goal, SavedFunnel

_steps_decoder = msgspec.json.Decoder(list[str])


class SavedDatabase:
    """Saved goals and funnels on one connection (:class:`~collector.storage.ports.SavedStore`)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def stored_goals(self, sites: Sequence[str]) -> list[tuple[str, str, str, str]]:
        """``(site, name, kind, match)`` of goals saved through the API."""
        rows = self._conn.execute(
            "SELECT site, name, kind, match FROM goals "
            "WHERE site IN (SELECT value FROM json_each(?)) ORDER BY site, name",
            (msgspec.json.encode(list(sites)).decode(),),
        ).fetchall()
        return [(r[0], r[1], r[2], r[3]) for r in rows]

    def save_goal(self, site: str, goal: Goal, created_ms: int) -> None:
        """Insert or replace the goal ``goal.name`` of ``site``."""
        with self._conn:
            self._conn.execute(
                "INSERT INTO goals (site, name, kind, match, created_ts) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (site, name) DO UPDATE SET kind = excluded.kind, "
                "match = excluded.match",
                (site, goal.name, goal.kind, goal.match, created_ms),
            )

    def delete_goal(self, site: str, name: str) -> bool:
        with self._conn:
            cursor = self._conn.execute(
                "DELETE FROM goals WHERE site = ? AND name = ?", (site, name)
            )
        return cursor.rowcount > 0

    def stored_funnels(self, sites: Sequence[str]) -> list[SavedFunnel]:
        rows = self._conn.execute(
            "SELECT site, name, steps, within FROM funnels "
            "WHERE site IN (SELECT value FROM json_each(?)) ORDER BY site, name",
            (msgspec.json.encode(list(sites)).decode(),),
        ).fetchall()
        return [
            SavedFunnel(site=site, name=name, steps=_steps_decoder.decode(steps), within=within)
            for site, name, steps, within in rows
        ]

    def save_funnel(self, funnel: SavedFunnel, created_ms: int) -> None:
        """Insert or replace the funnel ``funnel.name`` of ``funnel.site``."""
        with self._conn:
            self._conn.execute(
                "INSERT INTO funnels (site, name, steps, within, created_ts) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (site, name) DO UPDATE SET "
                "steps = excluded.steps, within = excluded.within",
                (
                    funnel.site,
                    funnel.name,
                    msgspec.json.encode(funnel.steps).decode(),
                    funnel.within,
                    created_ms,
                ),
            )

    def delete_funnel(self, site: str, name: str) -> bool:
        with self._conn:
            cursor = self._conn.execute(
                "DELETE FROM funnels WHERE site = ? AND name = ?", (site, name)
            )
        return cursor.rowcount > 0


@contextmanager
def saved_database(path: Path, *, timeout_ms: int = 10_000) -> Iterator[SavedDatabase]:
    """A connection on the (existing, migrated) database at ``path`` for one call."""
    conn = sqlite3.connect(path, timeout=timeout_ms / 1000)
    with closing(conn):
        yield SavedDatabase(conn)
