"""``first_visits``: when each visitor was first followed (a visit with a client-stored
identifier), per site, for the retention report.

The table answers "whose first followed visit starts in the period" without reading each
visitor's history. It is kept exact by the paths that change visits:

- ingest inserts the start of each followed visit a batch touched, when the writer has not
  written that start yet (the engine keeps the minimum, so inserts need not read anything);
- an erasure or a retention purge deletes the rows of the visitors whose visits it deleted and
  inserts them again from the visits that remain (:func:`reseed`);
- a schema migration, a copy from SQLite, or an empty table beside stored visits fills it from
  the visits (:func:`rebuild`).

A visit is followed when one of its events has ``visitor_kind = 'client'``, as in the SQLite
report query (``ReportsDatabase.client_visit_starts``).
"""

from __future__ import annotations

from collections.abc import Sequence

from collector.storage.clickhouse.client import Client

NAMES = ["site", "visitor", "first_ts", "retention_days"]
#: Visitors per reseed statement: each is a parameter of the mutation and of the insert.
RESEED_CHUNK = 5_000

_FOLLOWED = (
    "SELECT e.visit FROM {db}.events AS e WHERE e.site = {site:String} "
    "AND e.visitor_kind = 'client' AND e.visit IS NOT NULL"
)


def rebuild(client: Client) -> None:
    """Insert every site's and visitor's first followed visit, from the visits. Rows already
    there merge with these (the minimum is kept), so this is safe on a filled table too."""
    client.command(
        "INSERT INTO {db}.first_visits (site, visitor, first_ts, retention_days) "
        "SELECT v.site, v.visitor, min(v.start_ts), max(v.retention_days) "
        "FROM {db}.visits AS v FINAL WHERE v.id IN (SELECT e.visit FROM {db}.events AS e "
        "WHERE e.visitor_kind = 'client' AND e.visit IS NOT NULL) GROUP BY v.site, v.visitor"
    )


def needs_rebuild(client: Client) -> bool:
    """The table is empty but visits are stored: it was just created beside older data (on a
    cluster, by the administrator applying the schema), or emptied."""
    (rows,) = client.rows("SELECT count() FROM {db}.first_visits")[0]
    if int(rows):
        return False
    (visits,) = client.rows("SELECT count() FROM {db}.visits")[0]
    return bool(int(visits))


def reseed(client: Client, site: str, visitors: Sequence[bytes]) -> None:
    """Replace the rows of ``visitors`` by what the stored visits say now: called after their
    visits were deleted. A visitor left without a followed visit keeps no row."""
    unique = sorted(set(visitors))
    for start in range(0, len(unique), RESEED_CHUNK):
        chunk = unique[start : start + RESEED_CHUNK]
        params = {"site": site, "visitors": chunk}
        client.command(
            f"ALTER TABLE {client.mutable('first_visits')} DELETE WHERE site = {{site:String}} "
            "AND visitor IN {visitors:Array(String)}",
            params,
            mutations_sync=2,
        )
        # A batch written meanwhile inserts the start of a visit that is also in ``visits``
        # (visits are inserted first): the minimum is the same either way.
        client.command(
            "INSERT INTO {db}.first_visits (site, visitor, first_ts, retention_days) "
            "SELECT v.site, v.visitor, min(v.start_ts), max(v.retention_days) "
            "FROM {db}.visits AS v FINAL WHERE v.site = {site:String} "
            "AND v.visitor IN {visitors:Array(String)} "
            f"AND v.id IN ({_FOLLOWED} AND e.visitor IN {{visitors:Array(String)}}) "
            "GROUP BY v.site, v.visitor",
            params,
        )


def stale_visitors(client: Client, site: str, before_ms: int) -> list[bytes]:
    """After a purge of ``site``'s rows older than ``before_ms``: the visitors whose row names a
    first visit that is gone or no longer followed (only a visit starting before ``before_ms``
    can have lost events). Deleting visits never moves a remaining one, so the others' rows
    still hold the minimum."""
    rows = client.rows(
        "SELECT f.visitor FROM (SELECT visitor, min(first_ts) AS first FROM {db}.first_visits "
        "WHERE site = {site:String} GROUP BY visitor "
        "HAVING first < fromUnixTimestamp64Milli({before:Int64}, 'UTC')) AS f "
        "LEFT ANTI JOIN (SELECT v.visitor AS visitor, v.start_ts AS start_ts "
        "FROM {db}.visits AS v FINAL WHERE v.site = {site:String} "
        "AND v.start_ts < fromUnixTimestamp64Milli({before:Int64}, 'UTC') "
        f"AND v.id IN ({_FOLLOWED})) AS k ON k.visitor = f.visitor AND k.start_ts = f.first",
        {"site": site, "before": before_ms},
    )
    return [row[0] for row in rows]
