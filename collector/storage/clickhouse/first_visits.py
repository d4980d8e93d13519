"""``first_visits``: when each visitor was first followed (a visit with a client-stored
identifier), per site, for the retention report.

The table answers "whose first followed visit starts in the period" without reading each
visitor's history. It is kept exact by the paths that change visits:

- ingest inserts the start of each followed visit a batch touched, when the writer has not
  written that start yet (the engine keeps the minimum, so inserts need not read anything);
- an erasure or a retention purge deletes the rows of the visitors whose visits it deletes
  (:func:`forget_visitors_of`, :func:`forget_before`) and inserts them again from the visits that
  remain (:func:`reseed`);
- a schema migration, a copy from SQLite, or an empty table beside stored visits fills it from
  the visits (:func:`rebuild`).

A visit is followed when one of its events has ``visitor_kind = 'client'``, as in the SQLite
report query (``ReportsDatabase.client_visit_starts``).

No deletion here names a visitor: ClickHouse writes each mutation's statement, parameters
substituted, to a ``mutation_N.txt`` file that it keeps long after the mutation is done (the last
100 by default), so a statement holding an erased subject's hash would keep that hash on disk.
Rows are chosen by visit ids (through the ``visits`` table, before those visits go) or by time;
the visitors' hashes appear only in reads and inserts, which ClickHouse does not keep as files.
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


def forget_visitors_of(client: Client, site: str, visits: Sequence[int]) -> list[bytes]:
    """Delete the rows of the visitors of ``visits`` and return those visitors: called before the
    visits are deleted (the mutation finds the visitors through them), then :func:`reseed`."""
    unique = sorted(set(visits))
    visitors: set[bytes] = set()
    for start in range(0, len(unique), RESEED_CHUNK):
        params = {"site": site, "visits": unique[start : start + RESEED_CHUNK]}
        visitors.update(
            row[0]
            for row in client.rows(
                "SELECT DISTINCT visitor FROM {db}.visits "
                "WHERE site = {site:String} AND id IN {visits:Array(UInt64)}",
                params,
            )
        )
        client.command(
            f"ALTER TABLE {client.mutable('first_visits')} DELETE WHERE site = {{site:String}} "
            "AND visitor IN (SELECT visitor FROM {db}.visits "
            "WHERE site = {site:String} AND id IN {visits:Array(UInt64)})",
            params,
            mutations_sync=2,
            allow_nondeterministic_mutations=1,
        )
    return sorted(visitors)


def forget_before(client: Client, site: str, before_ms: int) -> list[bytes]:
    """Delete the rows of ``site`` whose first visit starts before ``before_ms`` and return their
    visitors: called after a purge of the rows older than that (only those first visits can be
    gone), then :func:`reseed` gives back the rows of the visitors who still have a visit."""
    params = {"site": site, "before": before_ms}
    since = "fromUnixTimestamp64Milli({before:Int64}, 'UTC')"
    visitors = [
        row[0]
        for row in client.rows(
            "SELECT DISTINCT visitor FROM {db}.first_visits "
            f"WHERE site = {{site:String}} AND first_ts < {since}",
            params,
        )
    ]
    if visitors:
        client.command(
            f"ALTER TABLE {client.mutable('first_visits')} DELETE WHERE site = {{site:String}} "
            f"AND first_ts < {since}",
            params,
            mutations_sync=2,
        )
    return visitors


def reseed(client: Client, site: str, visitors: Sequence[bytes]) -> None:
    """Insert the rows of ``visitors`` from what the stored visits say now: called after their
    rows were deleted (:func:`forget_visitors_of`, :func:`forget_before`) and their visits
    deleted. A visitor left without a followed visit gets no row."""
    unique = sorted(set(visitors))
    for start in range(0, len(unique), RESEED_CHUNK):
        params = {"site": site, "visitors": unique[start : start + RESEED_CHUNK]}
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
