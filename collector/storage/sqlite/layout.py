"""How the events are laid out on disk: the compact table ``event_rows``, its string dictionary,
and the upgrade of a database whose events are still in the first layout.

``event_rows`` stores each repeated text value (consent mode and reasons, hostname, path,
referrer, sources and campaign values, browser, system, device, screen, country, currency) as the
integer id of a row of ``strings``, where the text is kept once. The view ``events`` decodes them:
every reader (reports, rollups, privacy tools, exports) reads the same columns as before. The site,
event name and time stay inline: the indexes that find a period's events and a goal's events are
built on them. ``query`` stays inline too: query strings rarely repeat.

``strings.uses`` counts the references from ``event_rows``; a value nobody references any more
(after an erasure or a retention purge) is deleted with the rows, so that an erased subject's
path or campaign does not outlive their events.

A database of the first layout (``events`` a table with every value inline) is upgraded while the
collector runs (``mesure upgrade``): after a backup, the layout becomes ``copying``: every write
goes to both tables (same ids) and the rows stored before are copied in short transactions, in id
order, from where the last one stopped (a crash loses nothing: the next run carries on). Readers
keep reading the first table, which holds everything, until the last row is copied; then, in one
transaction, ``events`` becomes the view. The old table is then dropped in short transactions (an
index, then its rows 20,000 at a time), its pages overwritten with zeros (``secure_delete``).
"""

from __future__ import annotations

import operator
import sqlite3
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

import msgspec

#: Every column of the events, with its declared type, in table order: what ``events`` shows in
#: either layout (the privacy export's manifest names these types).
EVENT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("id", "INTEGER"),
    ("site", "TEXT"),
    ("ts", "INTEGER"),
    ("name", "TEXT"),
    ("mode", "TEXT"),
    ("reasons", "TEXT"),
    ("visitor", "BLOB"),
    ("visitor_kind", "TEXT"),
    ("key_epoch", "INTEGER"),
    ("user", "BLOB"),
    ("user_epoch", "INTEGER"),
    ("visit", "INTEGER"),
    ("hostname", "TEXT"),
    ("path", "TEXT"),
    ("query", "TEXT"),
    ("referrer", "TEXT"),
    ("referrer_domain", "TEXT"),
    ("source", "TEXT"),
    ("utm_source", "TEXT"),
    ("utm_medium", "TEXT"),
    ("utm_campaign", "TEXT"),
    ("utm_term", "TEXT"),
    ("utm_content", "TEXT"),
    ("browser", "TEXT"),
    ("browser_version", "TEXT"),
    ("os", "TEXT"),
    ("os_version", "TEXT"),
    ("device", "TEXT"),
    ("screen", "TEXT"),
    ("country", "TEXT"),
    ("props", "TEXT"),
    ("revenue_amount", "TEXT"),
    ("revenue_currency", "TEXT"),
    ("engaged_ms", "INTEGER"),
)
COLUMN_NAMES = tuple(name for name, _ in EVENT_COLUMNS)
#: Columns stored as ids of ``strings``.
ENCODED = (
    "site",
    "mode",
    "reasons",
    "visitor_kind",
    "hostname",
    "path",
    "referrer",
    "referrer_domain",
    "source",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "utm_term",
    "utm_content",
    "browser",
    "browser_version",
    "os",
    "os_version",
    "device",
    "screen",
    "country",
    "revenue_currency",
)
_ENCODED = frozenset(ENCODED)
#: Positions of the encoded columns in :data:`COLUMN_NAMES`.
ENCODED_POSITIONS = tuple(COLUMN_NAMES.index(name) for name in ENCODED)
_NOT_NULL = frozenset({"site", "ts", "name", "mode", "reasons", "hostname", "path"})

#: The first layout: ``events`` is the table. ``copying``: both tables are written, the old one
#: is read. ``compact``: ``events`` is the view over ``event_rows``.
FIRST, COPYING, COMPACT = "first", "copying", "compact"
#: The first layout's table once ``events`` is the view, until it is dropped.
OLD_TABLE = "events_first"
_OLD_INDEXES = (
    "events_by_time",
    "events_by_name",
    "events_by_visit",
    "events_by_user",
    "events_unidentified",
    "events_revenue",
    "events_props",
    "events_pages",
)


def _column_ddl(name: str, sql_type: str) -> str:
    if name == "id":
        return "id INTEGER PRIMARY KEY"
    declared = "INTEGER" if name in _ENCODED else sql_type
    return f"{name} {declared}" + (" NOT NULL" if name in _NOT_NULL else "")


#: The event names that are not custom events (spliced into the index and the queries using it).
BUILT_IN_NAMES = ("pageview", "engagement")
_BUILT_IN = ", ".join(f"'{name}'" for name in BUILT_IN_NAMES)
#: The term a query repeats so that SQLite may use ``event_rows_custom`` (a partial index is
#: used only when the query's WHERE has its WHERE as a term).
CUSTOM_TERM = f"e.name NOT IN ({_BUILT_IN})"
_ROWS_DDL = ",\n    ".join(_column_ddl(name, sql_type) for name, sql_type in EVENT_COLUMNS)
SCHEMA = f"""
CREATE TABLE strings (
    id INTEGER PRIMARY KEY,
    value TEXT NOT NULL UNIQUE,
    uses INTEGER NOT NULL
);
CREATE TABLE event_rows (
    {_ROWS_DDL}
);
CREATE INDEX event_rows_by_time ON event_rows (site, ts);
-- Custom events only: pageviews and engagement pings are 95 % of the rows, read through the time
-- index anyway, and indexing them by name cost 33 bytes per event.
CREATE INDEX event_rows_custom ON event_rows (site, name, ts) WHERE name NOT IN ({_BUILT_IN});
CREATE INDEX event_rows_by_visit ON event_rows (visit);
CREATE INDEX event_rows_by_user ON event_rows (site, user) WHERE user IS NOT NULL;
CREATE TABLE event_layout (
    only INTEGER PRIMARY KEY CHECK (only = 1),
    layout TEXT NOT NULL CHECK (layout IN ('first', 'copying', 'compact')),
    -- The highest id stored before the copy began: rows above it are written to both tables.
    boundary INTEGER,
    -- Every row up to this id is copied.
    copied INTEGER NOT NULL DEFAULT 0,
    -- Rises whenever unused strings are deleted: writers then forget the ids they cached.
    strings_epoch INTEGER NOT NULL DEFAULT 0,
    backup TEXT,
    started_ts INTEGER
);
"""

#: The columns in :data:`COLUMN_NAMES` order, decoded, then each encoded column's id as
#: ``<column>_id`` (filters compare ids rather than decode every row).
_DECODED = ", ".join(
    [
        f"(SELECT value FROM strings WHERE id = r.{name}) AS {name}"
        if name in _ENCODED
        else f"r.{name} AS {name}"
        for name in COLUMN_NAMES
    ]
    + [f"r.{name} AS {name}_id" for name in ENCODED]
)
#: Every column of ``events`` in either layout, for the readers of whole rows.
SELECT_COLUMNS = ", ".join(COLUMN_NAMES)
VIEW = f"CREATE VIEW events AS SELECT {_DECODED} FROM event_rows r"
_ENCODE_FROM_OLD = ", ".join(
    f"(SELECT id FROM strings WHERE value = o.{name})" if name in _ENCODED else f"o.{name}"
    for name in COLUMN_NAMES
)
_ROW = f"({', '.join('?' * len(COLUMN_NAMES))})"
_PLAIN_POSITIONS = tuple(i for i, name in enumerate(COLUMN_NAMES) if name not in _ENCODED)
_plain_of = operator.itemgetter(*_PLAIN_POSITIONS)
_encoded_of = operator.itemgetter(*ENCODED_POSITIONS)
#: The columns of a row as :func:`insert_rows` builds it: the inline ones, then the encoded.
_STORED_ORDER = ", ".join([COLUMN_NAMES[i] for i in _PLAIN_POSITIONS] + list(ENCODED))
#: Rows per multi-row ``INSERT``: one statement steps once for them all, where ``executemany``
#: steps once per row, giving up the GIL each time to a busy event loop. Statements have this
#: size or a group's remainder below it: at most 64 statements for SQLite to cache.
_ROWS_PER_INSERT = 64


def _values_of(source: str) -> str:
    """Every encoded column's non-null value of the rows ``source`` selects, one per line."""
    return " UNION ALL ".join(f"SELECT {name} AS v FROM {source}" for name in ENCODED)


def layout_of(conn: sqlite3.Connection) -> tuple[str, int]:
    """The current layout and strings epoch (read inside the caller's transaction). A database
    whose migrations stop before this layout's (a test's copy of an older Mesure's) is in the
    first one."""
    try:
        row = conn.execute("SELECT layout, strings_epoch FROM event_layout").fetchone()
    except sqlite3.OperationalError:
        return FIRST, 0
    return str(row[0]), int(row[1])


def is_compact(conn: sqlite3.Connection) -> bool:
    return layout_of(conn)[0] == COMPACT


def create(conn: sqlite3.Connection) -> None:
    """The migration's part: the compact table and its dictionary; a database without events
    goes straight to the compact layout, one with events stays in the first until upgraded."""
    # Statement by statement: ``executescript`` would commit the migration's transaction.
    for statement in SCHEMA.split(";"):
        if statement.strip():
            conn.execute(statement)
    empty = conn.execute("SELECT NOT EXISTS (SELECT 1 FROM events)").fetchone()[0]
    conn.execute(
        "INSERT INTO event_layout (only, layout) VALUES (1, ?)", (COMPACT if empty else FIRST,)
    )
    if empty:
        conn.execute("DROP TABLE events")
        conn.execute(VIEW)


class Strings:
    """One process's cache of ``strings`` ids. Ids are remembered only once the transaction
    that found or made them has committed, and forgotten when another process deleted unused
    strings (``strings_epoch``)."""

    def __init__(self) -> None:
        self._ids: dict[str, int] = {}
        self._pending: dict[str, int] = {}
        self._epoch = -1

    def ids(self, conn: sqlite3.Connection, values: Iterable[str], epoch: int) -> dict[str, int]:
        if epoch != self._epoch:
            self._ids.clear()
            self._epoch = epoch
        found: dict[str, int] = {}
        missing: list[str] = []
        for value in set(values):
            known = self._ids.get(value)
            if known is None:
                missing.append(value)
            else:
                found[value] = known
        if missing:
            encoded = msgspec.json.encode(missing).decode()
            conn.execute(
                "INSERT INTO strings (value, uses) SELECT value, 0 FROM json_each(?) WHERE true "
                "ON CONFLICT (value) DO NOTHING",
                (encoded,),
            )
            for string_id, value in conn.execute(
                "SELECT id, value FROM strings WHERE value IN (SELECT value FROM json_each(?))",
                (encoded,),
            ):
                found[value] = string_id
                self._pending[value] = string_id
        return found

    def committed(self) -> None:
        if len(self._ids) > 200_000:  # paths and referrers of a large site: bounded memory
            self._ids.clear()
        self._ids.update(self._pending)
        self._pending.clear()

    def rolled_back(self) -> None:
        self._pending.clear()


def insert_rows(
    conn: sqlite3.Connection, strings: Strings, epoch: int, rows: Sequence[Sequence[Any]]
) -> None:
    """Insert ``rows`` (values in :data:`COLUMN_NAMES` order, ids included) into
    ``event_rows``, their text values as ``strings`` ids, and count the new references."""
    # Column by column through C-level getters and ``map``: a loop over each row's 22 texts
    # in Python was half of this function's time (the writer holds the write turn meanwhile).
    texts = [text for row in rows for text in _encoded_of(row)]
    ids = strings.ids(conn, {text for text in texts if text is not None}, epoch)
    mapped: list[int | None] = list(map(ids.get, texts))  # ``None`` stays ``None``
    uses = Counter(mapped)
    uses.pop(None, None)
    width = len(ENCODED)
    stored = [
        (*_plain_of(row), *mapped[number * width : (number + 1) * width])
        for number, row in enumerate(rows)
    ]
    start = 0
    while start < len(stored):
        chunk = stored[start : start + _ROWS_PER_INSERT]
        start += len(chunk)
        conn.execute(
            f"INSERT INTO event_rows ({_STORED_ORDER}) VALUES " + ", ".join([_ROW] * len(chunk)),
            [value for row in chunk for value in row],
        )
    _add_uses(conn, uses)


def _add_uses(conn: sqlite3.Connection, uses: Counter[int | None]) -> None:
    if uses:
        conn.execute(
            "UPDATE strings SET uses = uses + c.n FROM (SELECT json_extract(value, '$[0]') AS id, "
            "json_extract(value, '$[1]') AS n FROM json_each(?)) AS c WHERE strings.id = c.id",
            (msgspec.json.encode(sorted(uses.items())).decode(),),
        )


def delete_rows(conn: sqlite3.Connection, where: str, params: Sequence[Any]) -> int:
    """Delete the events matching ``where`` (over the columns of ``events``, decoded) from the
    tables that hold them in the current layout, and the strings no longer referenced.
    Returns how many events went."""
    layout, _ = layout_of(conn)
    if layout == FIRST:
        return int(conn.execute(f"DELETE FROM events WHERE {where}", params).rowcount)
    # The ids first, read through ``events`` (the first table while copying, else the view).
    conn.execute("CREATE TEMP TABLE IF NOT EXISTS gone_rows (id INTEGER PRIMARY KEY)")
    conn.execute(f"INSERT INTO temp.gone_rows SELECT id FROM events WHERE {where}", params)
    in_gone = "id IN (SELECT id FROM temp.gone_rows)"
    deleted = 0
    if layout == COPYING:
        deleted = conn.execute(f"DELETE FROM events WHERE {in_gone}").rowcount
    gone = f"(SELECT * FROM event_rows WHERE {in_gone})"
    conn.execute("CREATE TEMP TABLE IF NOT EXISTS gone_strings (id INTEGER PRIMARY KEY, n INTEGER)")
    conn.execute(
        f"INSERT INTO temp.gone_strings SELECT v, count(*) FROM ({_values_of(gone)}) "
        "WHERE v IS NOT NULL GROUP BY v"
    )
    count = conn.execute(f"DELETE FROM event_rows WHERE {in_gone}").rowcount
    if layout == COMPACT:
        deleted = count
    conn.execute(
        "UPDATE strings SET uses = uses - g.n FROM temp.gone_strings g WHERE strings.id = g.id"
    )
    unused = conn.execute(
        "DELETE FROM strings WHERE id IN (SELECT id FROM temp.gone_strings) AND uses <= 0"
    ).rowcount
    if unused:
        conn.execute("UPDATE event_layout SET strings_epoch = strings_epoch + 1")
    conn.execute("DELETE FROM temp.gone_rows")
    conn.execute("DELETE FROM temp.gone_strings")
    return int(deleted)


def site_is(conn: sqlite3.Connection, alias: str = "e") -> str:
    """``<alias>.site = ?`` over ``events``; in the compact layout, over the site's id, which
    the index on (site, ts) holds and no row needs decoding for."""
    if is_compact(conn):
        return f"{alias}.site_id = (SELECT id FROM strings WHERE value = ?)"
    return f"{alias}.site = ?"


def time_span(conn: sqlite3.Connection, site: str) -> tuple[int, int] | None:
    """The times of ``site``'s first and last events, each read off the index on (site, ts)
    (one query for both would scan the site's events)."""
    if is_compact(conn):
        table, where = "event_rows", "site = (SELECT id FROM strings WHERE value = ?)"
    else:
        table, where = "events", "site = ?"
    found = [
        conn.execute(
            f"SELECT ts FROM {table} WHERE {where} ORDER BY ts {order} LIMIT 1", (site,)
        ).fetchone()
        for order in ("ASC", "DESC")
    ]
    if found[0] is None or found[1] is None:
        return None
    return int(found[0][0]), int(found[1][0])


def stored_sites(conn: sqlite3.Connection) -> list[str]:
    """The sites with stored events, each read off the index on (site, ts)."""
    compact = is_compact(conn)
    table = "event_rows" if compact else "events"
    sites: list[Any] = []
    found = conn.execute(f"SELECT min(site) FROM {table}").fetchone()[0]
    while found is not None:
        sites.append(found)
        found = conn.execute(f"SELECT min(site) FROM {table} WHERE site > ?", (found,)).fetchone()[
            0
        ]
    if not compact:
        return [str(site) for site in sites]
    names = texts(conn, sites)
    return sorted(names[site] for site in sites)


def texts(conn: sqlite3.Connection, ids: Iterable[int]) -> dict[int, str]:
    """The text of each of ``ids`` in ``strings``, read in one statement."""
    found = conn.execute(
        "SELECT id, value FROM strings WHERE id IN (SELECT value FROM json_each(?))",
        (msgspec.json.encode(sorted(set(ids))).decode(),),
    )
    return {int(key): str(value) for key, value in found}


class Progress(msgspec.Struct, frozen=True):
    """Where an upgrade stands: ``layout``, rows ``copied`` of ``total``, and whether the old
    table is still there."""

    layout: str
    copied: int
    total: int
    old_table: bool
    backup: str | None


def progress(conn: sqlite3.Connection) -> Progress:
    layout, _ = layout_of(conn)
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    backup = conn.execute("SELECT backup FROM event_layout").fetchone()[0]
    if layout == COMPACT:
        return Progress(layout, 0, 0, OLD_TABLE in tables, backup)
    boundary, copied = conn.execute("SELECT boundary, copied FROM event_layout").fetchone()
    if layout == FIRST:
        boundary = conn.execute("SELECT coalesce(max(id), 0) FROM events").fetchone()[0]
        copied = 0
    total = conn.execute("SELECT count(*) FROM events WHERE id <= ?", (boundary,)).fetchone()[0]
    done = conn.execute("SELECT count(*) FROM events WHERE id <= ?", (copied,)).fetchone()[0]
    return Progress(layout, int(done), int(total), False, backup)


def begin_copy(conn: sqlite3.Connection, backup: str, now_ms: int) -> None:
    """Enter the ``copying`` layout: from this transaction on every write goes to both tables."""
    boundary = conn.execute("SELECT coalesce(max(id), 0) FROM events").fetchone()[0]
    conn.execute(
        "UPDATE event_layout SET layout = ?, boundary = ?, copied = 0, backup = ?, "
        "started_ts = ? WHERE layout = ?",
        (COPYING, boundary, backup, now_ms, FIRST),
    )


def copy_chunk(conn: sqlite3.Connection, rows: int) -> int:
    """Copy the next ``rows`` ids of the first table (at most) into ``event_rows``; returns how
    many events were copied (0 once everything up to the boundary is)."""
    boundary, copied = conn.execute("SELECT boundary, copied FROM event_layout").fetchone()
    if copied >= boundary:
        return 0
    last = conn.execute(
        "SELECT max(id) FROM (SELECT id FROM events WHERE id > ? AND id <= ? ORDER BY id LIMIT ?)",
        (copied, boundary, rows),
    ).fetchone()[0]
    if last is None:
        conn.execute("UPDATE event_layout SET copied = boundary")
        return 0
    chunk = f"(SELECT {SELECT_COLUMNS} FROM events WHERE id > :lo AND id <= :hi)"
    span = {"lo": copied, "hi": last}
    conn.execute(
        f"INSERT INTO strings (value, uses) SELECT DISTINCT v, 0 FROM ({_values_of(chunk)}) "
        "WHERE v IS NOT NULL ON CONFLICT (value) DO NOTHING",
        span,
    )
    count = conn.execute(
        f"INSERT INTO event_rows ({', '.join(COLUMN_NAMES)}) SELECT {_ENCODE_FROM_OLD} "
        "FROM events o WHERE o.id > :lo AND o.id <= :hi",
        span,
    ).rowcount
    copied_rows = "(SELECT * FROM event_rows WHERE id > :lo AND id <= :hi)"
    conn.execute(
        "UPDATE strings SET uses = uses + c.n FROM (SELECT v, count(*) AS n "
        f"FROM ({_values_of(copied_rows)}) WHERE v IS NOT NULL GROUP BY v) AS c "
        "WHERE strings.id = c.v",
        span,
    )
    conn.execute("UPDATE event_layout SET copied = ?", (last,))
    return int(count)


def switch(conn: sqlite3.Connection) -> bool:
    """Make ``events`` the view once every row is copied (checked by count); ``False`` if
    rows are still to copy."""
    boundary, copied = conn.execute("SELECT boundary, copied FROM event_layout").fetchone()
    if copied < boundary:
        return False
    old = conn.execute("SELECT count(*) FROM events").fetchone()[0]
    new = conn.execute("SELECT count(*) FROM event_rows").fetchone()[0]
    if old != new:
        raise sqlite3.IntegrityError(
            f"the copy holds {new} events where the first layout holds {old}: not switching"
        )
    conn.execute(f"ALTER TABLE events RENAME TO {OLD_TABLE}")
    conn.execute(VIEW)
    conn.execute("UPDATE event_layout SET layout = ?", (COMPACT,))
    return True


def drop_old_step(conn: sqlite3.Connection, rows: int) -> bool:
    """Drop one index of the first layout's table, or delete ``rows`` of its rows, or drop it
    once empty: short transactions, each freed page overwritten with zeros while hits wait (a
    10 M-event table dropped at once would hold them for many seconds). ``False`` when nothing
    is left."""
    names = {
        row[0]: row[1]
        for row in conn.execute(
            "SELECT name, type FROM sqlite_master WHERE tbl_name = ?", (OLD_TABLE,)
        )
    }
    for index in _OLD_INDEXES:
        if names.get(index) == "index":
            conn.execute(f"DROP INDEX {index}")
            return True
    if OLD_TABLE not in names:
        return False
    delete_or_drop(conn, OLD_TABLE, rows)
    return True


def delete_or_drop(conn: sqlite3.Connection, table: str, rows: int, *, rowid: bool = True) -> int:
    """Delete the first ``rows`` rows of ``table`` in rowid order, or drop it once it is empty
    (a table ``WITHOUT ROWID``, not ``rowid``, at once): a step of removing a large table in
    short transactions. Returns the rows deleted."""
    deleted = 0
    if rowid:
        deleted = conn.execute(
            f"DELETE FROM {table} WHERE rowid IN (SELECT rowid FROM {table} ORDER BY rowid "
            "LIMIT ?)",
            (rows,),
        ).rowcount
    if not deleted:
        conn.execute(f"DROP TABLE {table}")
    return int(deleted)


# ---------------------------------------------------------------------------------------------
# Partial indexes: the few events some reports look for

#: ``(name, columns, which events)``: RFM reads the revenue events of all time, an experiment
#: the events that carry its property, a funnel the identified pageviews of its pages (the
#: pages index holds what the funnel reads, so that it never reads the rows themselves). Each
#: index is a fraction of the table, but building it reads every event.
PARTIAL_INDEXES = (
    ("revenue", "site, ts", "revenue_amount IS NOT NULL"),
    ("props", "site, ts", "props IS NOT NULL"),
    ("pages", "site, path, ts, visit, visitor", "name = 'pageview' AND visitor IS NOT NULL"),
)
#: Up to this many events the migrations build a partial index at once; beyond, ``mesure
#: upgrade`` does (a second or so per 10 M events, hits waiting), so that the collector still
#: answers within seconds of its start. The reports work without it, reading more events.
INDEX_AT_ONCE_ROWS = 1_000_000


def _event_tables(conn: sqlite3.Connection) -> list[str]:
    """The tables holding events: ``event_rows``, and the first layout's ``events`` while it
    is a table (a view over ``event_rows`` in the compact layout)."""
    names = {
        str(row[0])
        for row in conn.execute(
            "SELECT name FROM sqlite_schema WHERE type = 'table' "
            "AND name IN ('event_rows', 'events')"
        )
    }
    return [table for table in ("event_rows", "events") if table in names]


def index_if_small(conn: sqlite3.Connection, name: str) -> None:
    """The migration's part: partial index ``name`` on every table of events, unless they
    hold more than :data:`INDEX_AT_ONCE_ROWS` (their highest row ids tell, without a scan)."""
    tables = _event_tables(conn)
    rows = sum(
        int(conn.execute(f"SELECT coalesce(max(rowid), 0) FROM {table}").fetchone()[0])
        for table in tables
    )
    if rows > INDEX_AT_ONCE_ROWS:
        return
    for table in tables:
        _create_index(conn, table, name)


def _create_index(conn: sqlite3.Connection, table: str, name: str) -> None:
    columns, where = {entry[0]: entry[1:] for entry in PARTIAL_INDEXES}[name]
    conn.execute(f"CREATE INDEX {table}_{name} ON {table} ({columns}) WHERE {where}")


def missing_indexes(conn: sqlite3.Connection) -> list[str]:
    """The partial indexes the compact table still lacks (none before the compact layout:
    ``mesure upgrade`` copies the events first)."""
    if layout_of(conn)[0] != COMPACT:
        return []
    present = {
        str(row[0])
        for row in conn.execute(
            "SELECT name FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'event_rows'"
        )
    }
    return [
        f"event_rows_{name}" for name, *_ in PARTIAL_INDEXES if f"event_rows_{name}" not in present
    ]


def index_step(conn: sqlite3.Connection) -> str | None:
    """Build one missing partial index of the compact table; its name, or ``None``."""
    missing = missing_indexes(conn)
    if not missing:
        return None
    _create_index(conn, "event_rows", missing[0].removeprefix("event_rows_"))
    return missing[0]
