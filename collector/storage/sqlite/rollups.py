"""Daily rollups: per site, dimension, value and local day, kept up to date at ingest.

``day_rollups`` holds one row per (site, dimension, value, local day) for ``*`` (the whole site)
and each rolled-up dimension: additive sums by the day of the events (hits, pageviews, events,
engaged time, unidentified pageviews) and the visit figures (visits, bounces, duration, visit
pageviews) by the day the visit *started*. The distinct visitors of the day are a roaring bitmap
of integer visitor ids in ``day_visitors`` (``visitor_ids`` maps each site's visitor hash to
its id), so distinct visitors over any set of days are the size of a union: exact, never
estimated. ``month_rollups`` and ``month_visitors`` hold the same per local month, for long
periods. A visit that starts on one day and shows a value only on a later day is also kept in
``late_visits``, so that a period ending between the two takes it back out.

Days are the site's local days in the time zone recorded in ``rollup_sites`` (the configured
one: when it changes, every day of the site is rebuilt). Ingest adds each group's changes in
the same transaction as its events (the caller computes them with :class:`Changes` and
:class:`VisitState`; :func:`log` keeps them in ``rollup_log`` until :func:`merge_log` adds them
to the rows); an erasure takes its rows out (:func:`erasure`, :func:`apply_erasure`); retention,
a time zone change and the upgrade rebuild whole days from the events (:func:`rebuild_days`),
and the days queued in ``rollup_pending_days`` are read from the events until then.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
from pyroaring import BitMap

from collector.storage.rows import PAGEVIEW_DIMENSIONS, ROLLED_UP_DIMENSIONS, VISIT_DIMENSIONS
from collector.storage.sqlite import layout as layout_sqlite

#: Dimensions with rollup rows; ``*`` is the whole site (aggregate and time series). A row's
#: ``dim`` is the dimension's position here.
ROLLUP_DIMENSIONS = ("*", *ROLLED_UP_DIMENSIONS)
DIM_CODE = {name: code for code, name in enumerate(ROLLUP_DIMENSIONS)}
#: Rows of the consent report that no breakdown names, after the dimensions' codes. The
#: visits with an event of each effective mode that day: their ``ids`` are visit ids, not
#: visitor ids (a visit that crosses midnight counts on both days, as in the report).
MODE_VISITS = len(ROLLUP_DIMENSIONS)
#: The hits of each (effective mode, reason codes) pair: sums only, keyed ``mode\nreasons``.
MODE_REASONS = MODE_VISITS + 1
#: How many dimension codes rows may hold.
ROW_DIMS = MODE_REASONS + 1
#: Dimensions whose value is the visit's (entry page): no row for unidentified events.
VISIT_LEVEL = VISIT_DIMENSIONS.intersection(ROLLED_UP_DIMENSIONS)
#: The primary keys of WITHOUT ROWID tables cannot hold NULL: a NULL value is stored as this
#: empty BLOB (values are TEXT, so it never meets a real one).
NULL_KEY = b""
#: Visitor ids by kind: client ids from 1, cookieless ids from 2**31, any other kind above
#: 3 * 2**30, so a union's count by kind is a rank.
ID_BASES = (1, 1 << 31, 3 << 30)
ID_LIMITS = ((1 << 31) - 1, (3 << 30) - 1, (1 << 32) - 1)
#: Changes (one per row a commit touched) that wait in ``rollup_log`` before they are merged
#: into the rows: each commit then dirties a page or two of the log instead of every row it
#: touched (a busy value's row of the day is merged once for all the commits meanwhile), and a
#: report adds at most this many to what it reads.
LOG_LIMIT = 2000
#: Once ``LOG_LIMIT`` changes wait, each commit merges the oldest of them, this many at least
#: (twice its own at least, so the log shrinks back): a whole log merged at once held that
#: commit's hits for 40 to 90 ms, the hit latency's 99th percentile.
MERGE_SLICE = 250
NON_INTERACTIONS = ("pageview", "engagement")
DAY_MS = 86_400_000
_EPOCH = date(1970, 1, 1).toordinal()

_SCHEMA = """
CREATE TABLE rollup_sites (
    site TEXT PRIMARY KEY,
    code INTEGER NOT NULL UNIQUE,
    timezone TEXT NOT NULL,
    -- Bumped whenever events are deleted (erasure, retention): cached visit states are stale.
    generation INTEGER NOT NULL DEFAULT 0,
    -- A visitor hash stored under two kinds: visitor kinds are then counted from the events.
    mixed_kinds INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE visitor_ids (
    site INTEGER NOT NULL,
    hash BLOB NOT NULL,
    id INTEGER NOT NULL,
    PRIMARY KEY (site, hash)
) WITHOUT ROWID;
CREATE TABLE visitor_id_next (kind INTEGER PRIMARY KEY, next INTEGER NOT NULL);
INSERT INTO visitor_id_next (kind, next) VALUES (0, 1), (1, 2147483648), (2, 3221225472);
{day_tables}
-- Each ingest commit's changes, in one row per site, until they are merged into the rows
-- above (once LOG_LIMIT changes wait): a commit writes one row instead of one per value it
-- touched. Reports add them in. ``seq``: the changes logged since the log was last empty,
-- this row's included.
CREATE TABLE rollup_log (
    seq INTEGER PRIMARY KEY,
    site INTEGER NOT NULL,
    changes BLOB NOT NULL
);
-- The same per local month (``day``: the month's first day): a long period reads a value's
-- whole months here, a dozen rows a year instead of one per day. Kept with the days.
{month_tables}
CREATE TABLE late_visits (
    site INTEGER NOT NULL,
    dim INTEGER NOT NULL,
    day INTEGER NOT NULL,
    key_day INTEGER NOT NULL,
    key NOT NULL,
    visits INTEGER NOT NULL,
    bounces INTEGER NOT NULL,
    duration INTEGER NOT NULL,
    visit_pageviews INTEGER NOT NULL,
    PRIMARY KEY (site, dim, day, key_day, key)
) WITHOUT ROWID;
CREATE TABLE rollup_pending_days (
    site TEXT NOT NULL,
    day INTEGER NOT NULL,
    PRIMARY KEY (site, day)
) WITHOUT ROWID;
"""


def _grain_tables(grain: str) -> str:
    """``<grain>_rollups`` (one row per site, dimension, value and day or month: sums, visit
    figures, and the size of its set) and ``<grain>_visitors`` (the sets, keyed for reading a
    value's days together)."""
    return f"""CREATE TABLE {grain}_rollups (
    site INTEGER NOT NULL,
    dim INTEGER NOT NULL,
    day INTEGER NOT NULL,
    key NOT NULL,
    hits INTEGER NOT NULL,
    pageviews INTEGER NOT NULL,
    events INTEGER NOT NULL,
    engaged INTEGER NOT NULL,
    unidentified INTEGER NOT NULL,
    visits INTEGER NOT NULL,
    bounces INTEGER NOT NULL,
    duration INTEGER NOT NULL,
    visit_pageviews INTEGER NOT NULL,
    -- Distinct visitors in {grain}_visitors (without those still in rollup_log).
    nvisitors INTEGER NOT NULL,
    PRIMARY KEY (site, dim, day, key)
) WITHOUT ROWID;
CREATE TABLE {grain}_visitors (
    site INTEGER NOT NULL,
    dim INTEGER NOT NULL,
    key NOT NULL,
    day INTEGER NOT NULL,
    ids BLOB NOT NULL,
    PRIMARY KEY (site, dim, key, day)
) WITHOUT ROWID;"""


SCHEMA = _SCHEMA.format(day_tables=_grain_tables("day"), month_tables=_grain_tables("month"))
#: The tables of the rollups before storage v2, dropped by its migration.
OLD_TABLES = (
    "visit_keys",
    "key_hours",
    "key_days",
    "rollup_keys",
    "anon_hours",
    "anon_days",
    "visitor_links",
    "rollup_spans",
    "rollup_pending",
    "rollup_pending_hours",
)
#: Old rollups holding at most this many rows are dropped by the migration itself (well under a
#: second); larger ones by ``mesure upgrade``, a step per transaction (:func:`drop_old_step`):
#: with ``secure_delete`` every freed page is overwritten, gigabytes at 10 M events.
DROP_AT_ONCE_ROWS = 50_000


def old_tables(conn: sqlite3.Connection) -> dict[str, str]:
    """``{name: CREATE statement}`` of the rollup tables before storage v2 still there."""
    marks = ", ".join("?" * len(OLD_TABLES))
    return {
        str(name): str(sql)
        for name, sql in conn.execute(
            f"SELECT name, sql FROM sqlite_master WHERE type = 'table' AND name IN ({marks})",
            OLD_TABLES,
        )
    }


def drop_old_at_once(conn: sqlite3.Connection) -> bool:
    """Drop the old rollup tables if they are small (see :data:`DROP_AT_ONCE_ROWS`); ``False``
    when they are left to ``mesure upgrade``."""
    tables = old_tables(conn)
    rows = 0
    for name in tables:
        limit = DROP_AT_ONCE_ROWS + 1 - rows
        rows += int(
            conn.execute(
                f"SELECT count(*) FROM (SELECT 1 FROM {name} LIMIT ?)", (limit,)
            ).fetchone()[0]
        )
        if rows > DROP_AT_ONCE_ROWS:
            return False
    for name in tables:
        conn.execute(f"DROP TABLE {name}")
    return True


def drop_old_step(conn: sqlite3.Connection, rows: int) -> int | None:
    """One step of dropping the old rollup tables: an index, ``rows`` rows of a table or an
    emptied table. Returns the rows deleted, ``None`` when no table is left.

    Indexes first, each whole in one transaction (5.3 s for one of a 10 M-event directory's,
    which hits wait for), then the rows in rowid order: deleting rows while their indexes were
    there rewrote index pages at random, 14 minutes for that directory."""
    tables = old_tables(conn)
    if not tables:
        return None
    marks = ", ".join("?" * len(tables))
    index = conn.execute(
        f"SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name IN ({marks}) "
        "AND sql IS NOT NULL ORDER BY name LIMIT 1",
        list(tables),
    ).fetchone()
    if index is not None:
        conn.execute(f"DROP INDEX {index[0]}")
        return 0
    name, sql = sorted(tables.items())[0]
    return layout_sqlite.delete_or_drop(conn, name, rows, rowid="WITHOUT ROWID" not in sql.upper())


def old_rows(conn: sqlite3.Connection) -> int:
    """About how many rows the old rollup tables hold (from their rowids: no table scan)."""
    total = 0
    for name, sql in old_tables(conn).items():
        if "WITHOUT ROWID" not in sql.upper():
            low, high = conn.execute(f"SELECT min(rowid), max(rowid) FROM {name}").fetchone()
            total += 0 if low is None else int(high) - int(low) + 1
    return total


def queued_days(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT count(*) FROM rollup_pending_days").fetchone()[0])


#: Every table that holds rows derived from a site's events.
ROW_TABLES = (
    "day_rollups",
    "day_visitors",
    "month_rollups",
    "month_visitors",
    "late_visits",
    "rollup_log",
)

# Positions in a day row's sums.
HITS, PAGEVIEWS, EVENTS, ENGAGED, UNIDENTIFIED, VISITS, BOUNCES, DURATION, VISIT_PV = range(9)
SUMS = 9
# Positions in an event tuple (the columns of EVENT_COLUMNS).
TS, NAME, MODE, PATH, UTM_SOURCE, SOURCE, BROWSER, OS, COUNTRY, ENGAGED_MS, REASONS = range(11)
EVENT_COLUMNS = (
    "ts, name, mode, path, utm_source, source, browser, os, country, engaged_ms, reasons"
)
#: Where the rows read back for a rebuild or an erasure hold what follows ``EVENT_COLUMNS``:
#: the visitor, its kind, the visit's entry page and the visit.
VISITOR_AT, KIND_AT, ENTRY_AT, VISIT_AT = range(11, 15)
_SKIP = object()

EventRow = Sequence[Any]


def _source(event: EventRow) -> Any:
    if event[MODE] == "granted" and event[UTM_SOURCE] is not None:
        return event[UTM_SOURCE]
    return "Direct / None" if event[SOURCE] is None else event[SOURCE]


#: Each event-level rolled-up dimension's value for an event tuple, as
#: ``collector.storage.sqlite.sql.DIMENSION_SQL`` computes it (tests/reports checks both).
_EVENT_KEYS: dict[str, Callable[[EventRow], Any]] = {
    "page": lambda e: e[PATH],
    "source": _source,
    "browser": lambda e: e[BROWSER],
    "os": lambda e: e[OS],
    "country": lambda e: e[COUNTRY],
    "mode": lambda e: e[MODE],
}
_unknown = [d for d in ROLLED_UP_DIMENSIONS if d not in _EVENT_KEYS and d not in VISIT_LEVEL]
if _unknown or VISIT_LEVEL - {"entry_page"}:
    raise LookupError(f"rollups: no value for the rolled-up dimensions {_unknown}")
#: ``(dim code, key function, pageviews only)`` of the event-level dimensions.
EVENT_DIMS = tuple(
    (DIM_CODE[name], _EVENT_KEYS[name], name in PAGEVIEW_DIMENSIONS)
    for name in ROLLED_UP_DIMENSIONS
    if name not in VISIT_LEVEL
)
ENTRY = DIM_CODE.get("entry_page", -1)


def event_key(dimension: str, event: EventRow) -> Any:
    """The value of event-level ``dimension`` for an event tuple (``*``: ``None``)."""
    return None if dimension == "*" else _EVENT_KEYS[dimension](event)


def encode_key(key: Any) -> Any:
    return NULL_KEY if key is None else key


def decode_key(key: Any) -> Any:
    return None if key == NULL_KEY else key


def kind_class(kind: str | None) -> int:
    return 0 if kind == "client" else 1 if kind == "cookieless" else 2


# ---------------------------------------------------------------------------------------------
# Bitmaps as stored

#: Sets of at most this many ids are stored as a list of varint gaps (a leading 0 byte) rather
#: than in roaring's portable format (whose first byte is never 0): most rows of a value's day
#: hold one or two visitors, which roaring spends 18 bytes or more on.
SMALL_SET = 16


def serialize(bitmap: BitMap) -> bytes:
    """``bitmap`` in the smaller of the two forms (see :data:`SMALL_SET`)."""
    if len(bitmap) > SMALL_SET:
        bitmap.run_optimize()
        return bytes(bitmap.serialize())
    out = bytearray(b"\x00")
    previous = 0
    for ident in bitmap:
        gap = ident - previous
        previous = ident
        while gap >= 0x80:
            out.append((gap & 0x7F) | 0x80)
            gap >>= 7
        out.append(gap)
    return bytes(out)


def deserialize(blob: bytes) -> BitMap:
    """The set :func:`serialize` stored."""
    if blob[0] != 0:
        return BitMap.deserialize(blob)
    ids = []
    value = shift = previous = 0
    for byte in blob[1:]:
        value |= (byte & 0x7F) << shift
        if byte & 0x80:
            shift += 7
            continue
        previous += value
        ids.append(previous)
        value = shift = 0
    return BitMap(ids)


# ---------------------------------------------------------------------------------------------
# Local days


def midnight_ms(day: date, zone: ZoneInfo) -> int:
    """The first millisecond of local ``day`` (as the reports' ``local_midnight_ms``)."""
    return int(datetime.combine(day, time(0), tzinfo=zone).timestamp() * 1000)


class Zone:
    """A site's time zone: the local day of a time, and the bounds of a day."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.zone = ZoneInfo(name)
        #: ``(start, end, day)`` of the latest day asked for: one attribute, replaced whole,
        #: so threads sharing the zone never see half of an update.
        self._latest = (0, 0, 0)

    def bounds(self, day: int) -> tuple[int, int]:
        """``[start, end)`` in epoch milliseconds of local day number ``day``."""
        local = date.fromordinal(day + _EPOCH)
        return midnight_ms(local, self.zone), midnight_ms(local + timedelta(days=1), self.zone)

    def day_of(self, ts: int) -> int:
        """The local day number (days since 1970-01-01) of epoch milliseconds ``ts``."""
        latest_lo, latest_hi, latest_day = self._latest
        if latest_lo <= ts < latest_hi:
            return latest_day
        local = datetime.fromtimestamp(ts / 1000, self.zone).date()
        day = local.toordinal() - _EPOCH
        lo, hi = self.bounds(day)
        while ts < lo:
            day -= 1
            lo, hi = self.bounds(day)
        while ts >= hi:
            day += 1
            lo, hi = self.bounds(day)
        self._latest = (lo, hi, day)
        return day

    def whole_days(self, lo: int, hi: int) -> tuple[int, int] | None:
        """``(first day, day after the last)`` when ``[lo, hi)`` is whole local days."""
        first = self.day_of(lo)
        if self.bounds(first)[0] != lo:
            return None
        if hi == lo:
            return first, first
        end = self.day_of(hi)
        if self.bounds(end)[0] != hi:
            return None
        return first, end


def month_of(day: int) -> int:
    """The first day of ``day``'s local month (day numbers)."""
    local = date.fromordinal(day + _EPOCH)
    return day - local.day + 1


def next_month(month: int) -> int:
    """The first day of the month after the one starting on day ``month``."""
    local = date.fromordinal(month + _EPOCH)
    following = date(local.year + local.month // 12, local.month % 12 + 1, 1)
    return following.toordinal() - _EPOCH


@dataclass
class Site:
    name: str
    code: int
    zone: Zone
    generation: int


_ZONES: dict[str, Zone] = {}


def zone(name: str) -> Zone:
    """The :class:`Zone` of ``name``, one per process (it remembers its latest day)."""
    found = _ZONES.get(name)
    if found is None:
        found = _ZONES[name] = Zone(name)
    return found


def sites(conn: sqlite3.Connection) -> dict[str, Site]:
    return {
        str(name): Site(str(name), int(code), zone(str(tz)), int(generation))
        for name, code, tz, generation in conn.execute(
            "SELECT site, code, timezone, generation FROM rollup_sites"
        )
    }


def add_site(conn: sqlite3.Connection, name: str, timezone: str) -> Site:
    code = int(conn.execute("SELECT coalesce(max(code), 0) + 1 FROM rollup_sites").fetchone()[0])
    conn.execute(
        "INSERT INTO rollup_sites (site, code, timezone) VALUES (?, ?, ?)", (name, code, timezone)
    )
    return Site(name, code, zone(timezone), 0)


def queue_site_days(conn: sqlite3.Connection, site: str, zone: Zone) -> None:
    """Queue every local day from the site's first event to its last for a rebuild."""
    span = layout_sqlite.time_span(conn, site)
    if span is None:
        return
    days = range(zone.day_of(span[0]), zone.day_of(span[1]) + 1)
    conn.executemany(
        "INSERT OR IGNORE INTO rollup_pending_days (site, day) VALUES (?, ?)",
        [(site, day) for day in days],
    )


def set_timezones(conn: sqlite3.Connection, timezones: Mapping[str, str]) -> None:
    """Record each site's configured time zone; a site whose rows were built in another one
    loses them, and every day of it is queued for a rebuild (read from the events meanwhile)."""
    known = sites(conn)
    for name, timezone in sorted(timezones.items()):
        site = known.get(name)
        if site is None:
            has_events = conn.execute(
                f"SELECT 1 FROM events e WHERE {layout_sqlite.site_is(conn)} LIMIT 1", (name,)
            ).fetchone()
            added = add_site(conn, name, timezone)
            if has_events:
                queue_site_days(conn, name, added.zone)
            continue
        if site.zone.name == timezone:
            continue
        for table in ROW_TABLES:
            conn.execute(f"DELETE FROM {table} WHERE site = ?", (site.code,))
        conn.execute("DELETE FROM rollup_pending_days WHERE site = ?", (name,))
        conn.execute(
            "UPDATE rollup_sites SET timezone = ?, generation = generation + 1 WHERE site = ?",
            (timezone, name),
        )
        queue_site_days(conn, name, zone(timezone))


# ---------------------------------------------------------------------------------------------
# Visitor ids


#: Statement sizes (rows or parameters) used for lists of any length: few distinct statements
#: for the connection's cache of prepared statements.
_SIZES = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)


def _binary(count: int) -> Iterator[int]:
    """``count`` as a sum of :data:`_SIZES`, largest first."""
    for size in reversed(_SIZES):
        while count >= size:
            yield size
            count -= size


def visitor_ids(
    conn: sqlite3.Connection, site: Site, visitors: Mapping[bytes, str | None]
) -> dict[bytes, int]:
    """The id of each visitor hash of ``site`` (``visitors``: hash → kind), new ones added."""
    found: dict[bytes, int] = {}
    hashes = list(visitors)
    for start in range(0, len(hashes), _SIZES[-1]):
        chunk = hashes[start : start + _SIZES[-1]]
        size = next(size for size in _SIZES if size >= len(chunk))
        chunk += [chunk[0]] * (size - len(chunk))
        marks = ", ".join("?" * size)
        for digest, ident in conn.execute(
            f"SELECT hash, id FROM visitor_ids WHERE site = ? AND hash IN ({marks})",
            [site.code, *chunk],
        ):
            found[bytes(digest)] = int(ident)
    mixed = False
    for digest, ident in found.items():
        cls = kind_class(visitors[digest])
        mixed = mixed or not (ID_BASES[cls] <= ident <= ID_LIMITS[cls])
    if mixed:
        conn.execute("UPDATE rollup_sites SET mixed_kinds = 1 WHERE code = ?", (site.code,))
    missing = [digest for digest in hashes if digest not in found]
    if not missing:
        return found
    by_class: dict[int, list[bytes]] = {}
    for digest in missing:
        by_class.setdefault(kind_class(visitors[digest]), []).append(digest)
    rows: list[tuple[int, bytes, int]] = []
    for cls, digests in sorted(by_class.items()):
        (following,) = conn.execute(
            "UPDATE visitor_id_next SET next = next + ? WHERE kind = ? RETURNING next",
            (len(digests), cls),
        ).fetchone()
        first = int(following) - len(digests)
        for offset, digest in enumerate(digests):
            found[digest] = first + offset
            rows.append((site.code, digest, first + offset))
    start = 0
    for size in _binary(len(rows)):
        conn.execute(
            "INSERT INTO visitor_ids (site, hash, id) VALUES " + ", ".join(["(?, ?, ?)"] * size),
            [value for row in rows[start : start + size] for value in row],
        )
        start += size
    return found


def drop_unused_visitors(conn: sqlite3.Connection, site: str, hashes: Iterable[bytes]) -> None:
    """Forget the ids of ``hashes`` that no visit of ``site`` has any more."""
    conn.executemany(
        "DELETE FROM visitor_ids WHERE site = (SELECT code FROM rollup_sites WHERE site = ?) "
        "AND hash = ? AND NOT EXISTS (SELECT 1 FROM visits INDEXED BY visits_by_visitor "
        "WHERE visits.site = ? AND visits.visitor = ?)",
        [(site, digest, site, digest) for digest in set(hashes)],
    )


# ---------------------------------------------------------------------------------------------
# What events and visits add to the rows


@dataclass
class Delta:
    sums: list[int] = field(default_factory=lambda: [0] * SUMS)
    added: BitMap = field(default_factory=BitMap)
    removed: BitMap = field(default_factory=BitMap)


RowKey = tuple[int, int, int, Any]  # site code, dim, day, encoded key
LateKey = tuple[int, int, int, int, Any]  # site code, dim, start day, key day, encoded key


@dataclass
class Changes:
    """What a group of events (or a rebuild) adds to the rows."""

    rows: dict[RowKey, Delta] = field(default_factory=dict)
    late: dict[LateKey, list[int]] = field(default_factory=dict)

    def row(self, key: RowKey) -> Delta:
        found = self.rows.get(key)
        if found is None:
            found = self.rows[key] = Delta()
        return found

    def add_event(
        self,
        site: Site,
        event: EventRow,
        ident: int | None,
        entry: Any,
        sign: int = 1,
        visit: int | None = None,
    ) -> None:
        """An event's sums (``sign`` -1 takes them back) and its visitor (when ``sign`` is 1);
        with ``visit``, the visit in its mode's visits of the day."""
        day = site.zone.day_of(event[TS])
        name = event[NAME]
        pageview = name == "pageview"
        counted = name not in NON_INTERACTIONS
        engaged = event[ENGAGED_MS] or 0
        unidentified = pageview and ident is None
        keys: list[tuple[int, Any]] = [(0, NULL_KEY)]
        for dim, key_of, pageviews_only in EVENT_DIMS:
            if pageviews_only and not pageview:
                continue
            keys.append((dim, encode_key(key_of(event))))
        if entry is not None and ident is not None:
            keys.append((ENTRY, entry))
        for dim, key in keys:
            delta = self.row((site.code, dim, day, key))
            sums = delta.sums
            sums[HITS] += sign
            sums[PAGEVIEWS] += sign * pageview
            sums[EVENTS] += sign * counted
            sums[ENGAGED] += sign * engaged
            sums[UNIDENTIFIED] += sign * unidentified
            if ident is not None and sign > 0:
                delta.added.add(ident)
        mode = event[MODE]
        self.row((site.code, MODE_REASONS, day, f"{mode}\n{event[REASONS]}")).sums[HITS] += sign
        if visit is not None:
            delta = self.row((site.code, MODE_VISITS, day, mode))
            delta.sums[HITS] += sign
            if sign > 0:
                delta.added.add(visit)

    def move_entry(self, site: Site, event: EventRow, ident: int, old: Any, new: Any) -> int:
        """Move an event of a visit whose entry page changed from ``old`` to ``new`` (either may
        be ``None``); returns its day. The visitor leaves ``old``'s row only after a check
        (:func:`still_entered`)."""
        day = site.zone.day_of(event[TS])
        for entry, sign in ((old, -1), (new, 1)):
            if entry is None:
                continue
            delta = self.row((site.code, ENTRY, day, entry))
            sums = delta.sums
            sums[HITS] += sign
            sums[PAGEVIEWS] += sign * (event[NAME] == "pageview")
            sums[EVENTS] += sign * (event[NAME] not in NON_INTERACTIONS)
            sums[ENGAGED] += sign * (event[ENGAGED_MS] or 0)
            if sign > 0:
                delta.added.add(ident)
        return day

    def add_visit(self, site: Site, visit: VisitState, sign: int = 1) -> None:
        """A visit's figures at its start day, for every value it shows."""
        start_day = site.zone.day_of(visit.start)
        bounced = visit.pageviews == 1 and (visit.events == 0 or not visit.interaction)
        figures = (
            sign,
            sign * bounced,
            0 if bounced else sign * (visit.last - visit.start),
            sign * visit.pageviews,
        )
        keys: list[tuple[int, Any, int]] = [(0, NULL_KEY, visit.start)]
        if visit.entry is not None:
            keys.append((ENTRY, visit.entry, visit.start))
        keys.extend((dim, key, first) for (dim, key), first in visit.firsts.items())
        for dim, key, first in keys:
            sums = self.row((site.code, dim, start_day, key)).sums
            sums[VISITS] += figures[0]
            sums[BOUNCES] += figures[1]
            sums[DURATION] += figures[2]
            sums[VISIT_PV] += figures[3]
            key_day = start_day if first == visit.start else site.zone.day_of(first)
            if key_day != start_day:
                late = self.late.setdefault((site.code, dim, start_day, key_day, key), [0] * 4)
                for index in range(4):
                    late[index] += figures[index]


@dataclass
class VisitState:
    """What a visit contributes to the visit figures: its row, whether it has an interaction,
    and the first time of each ``(dimension, value)`` it shows (event-level dimensions)."""

    visitor: bytes
    start: int
    last: int
    entry: Any
    pageviews: int
    events: int
    interaction: bool = False
    firsts: dict[tuple[int, Any], int] = field(default_factory=dict)
    generation: int = 0

    def add(self, event: EventRow) -> None:
        """The values and interaction of one more event (the row comes from the visits table)."""
        name = event[NAME]
        if name not in NON_INTERACTIONS:
            self.interaction = True
        pageview = name == "pageview"
        ts = event[TS]
        for dim, key_of, pageviews_only in EVENT_DIMS:
            if pageviews_only and not pageview:
                continue
            at = (dim, encode_key(key_of(event)))
            first = self.firsts.get(at)
            if first is None or ts < first:
                self.firsts[at] = ts

    def same_row(self, row: Sequence[Any]) -> bool:
        """``row``: ``(visitor, start, last, entry, pageviews, events)`` as stored."""
        return (
            bytes(row[0]) == self.visitor
            and row[1] == self.start
            and row[2] == self.last
            and row[3] == self.entry
            and row[4] == self.pageviews
            and row[5] == self.events
        )


def visit_state(row: Sequence[Any], generation: int) -> VisitState:
    """A state with the figures of a visits row ``(visitor, start, last, entry, pv, events)``
    and no event yet."""
    return VisitState(
        visitor=bytes(row[0]),
        start=int(row[1]),
        last=int(row[2]),
        entry=None if row[3] is None else row[3],
        pageviews=int(row[4]),
        events=int(row[5]),
        generation=generation,
    )


# ---------------------------------------------------------------------------------------------
# Writing the changes


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    """``items`` in chunks of at most ``size`` whose lengths are powers of two: a multi-row
    statement has a few sizes only (each size is a statement the connection keeps prepared,
    and large ones take megabytes each)."""
    start = 0
    while start < len(items):
        length = min(size, len(items) - start)
        length = 1 << (length.bit_length() - 1)
        yield items[start : start + length]
        start += length


_ROW_COLUMNS = (
    "site, dim, day, key, hits, pageviews, events, engaged, unidentified, visits, bounces, "
    "duration, visit_pageviews, nvisitors"
)


def log(conn: sqlite3.Connection, changes: Changes) -> None:
    """Record a commit's ``changes`` in ``rollup_log`` (merged into the rows once
    ``LOG_LIMIT`` changes wait there). A change that takes a visitor out of a row (an entry
    page that moved) is applied to the rows at once, after the log."""
    if any(delta.removed for delta in changes.rows.values()):
        merge_log(conn)
        apply(conn, changes)
        return
    by_site: dict[int, tuple[list[Any], list[Any]]] = {}
    for key, delta in changes.rows.items():
        if _changes(delta):
            rows = by_site.setdefault(key[0], ([], []))[0]
            rows.append((key[1], key[2], key[3], delta.sums, delta.added.to_array().tolist()))
    for late_key, figures in changes.late.items():
        if any(figures):
            by_site.setdefault(late_key[0], ([], []))[1].append((*late_key[1:], figures))
    added = 0
    for site, (rows, late) in sorted(by_site.items()):
        added += len(rows) + len(late)
        (waiting,) = conn.execute(
            "INSERT INTO rollup_log (seq, site, changes) VALUES "
            "((SELECT coalesce(max(seq), 0) FROM rollup_log) + ?, ?, ?) "
            "RETURNING seq - coalesce((SELECT min(seq) FROM rollup_log), seq)",
            (len(rows) + len(late), site, msgspec.msgpack.encode((rows, late))),
        ).fetchone()
        if waiting >= LOG_LIMIT:
            merge_oldest(conn, max(MERGE_SLICE, 2 * added))


def read_log(conn: sqlite3.Connection, site: int | None = None) -> Changes:
    """The changes waiting in ``rollup_log`` (of one site), added up."""
    changes = Changes()
    where = "" if site is None else f" WHERE site = {int(site)}"
    for code, blob in conn.execute(f"SELECT site, changes FROM rollup_log{where} ORDER BY seq"):
        _add_logged(changes, code, blob)
    return changes


def _add_logged(changes: Changes, code: int, blob: bytes) -> int:
    """Add one ``rollup_log`` row's changes to ``changes``; returns how many there were."""
    rows, late = msgspec.msgpack.decode(blob)
    for dim, day, key, sums, ids in rows:
        delta = changes.row((code, dim, day, key))
        added = delta.sums
        for index in range(SUMS):
            added[index] += sums[index]
        if ids:
            delta.added.update(ids)
    for dim, day, key_day, key, figures in late:
        found = changes.late.setdefault((code, dim, day, key_day, key), [0] * 4)
        for index in range(4):
            found[index] += figures[index]
    return len(rows) + len(late)


def merge_oldest(conn: sqlite3.Connection, wanted: int) -> None:
    """Merge the oldest rows of ``rollup_log``, ``wanted`` changes or a few more, into the
    rows."""
    changes = Changes()
    taken = 0
    last = None
    for seq, code, blob in conn.execute("SELECT seq, site, changes FROM rollup_log ORDER BY seq"):
        taken += _add_logged(changes, int(code), blob)
        last = seq
        if taken >= wanted:
            break
    if last is None:
        return
    conn.execute("DELETE FROM rollup_log WHERE seq <= ?", (last,))
    apply(conn, changes)


def merge_log(conn: sqlite3.Connection) -> None:
    """Merge every change waiting in ``rollup_log`` into the rows."""
    changes = read_log(conn)
    conn.execute("DELETE FROM rollup_log")
    apply(conn, changes)


def apply(conn: sqlite3.Connection, changes: Changes) -> None:
    """Add ``changes`` to the day rows and to their months' rows."""
    _apply(conn, changes, "day")
    months = Changes()
    recount: set[RowKey] = set()
    for (code, dim, day, key), delta in changes.rows.items():
        month_key = (code, dim, month_of(day), key)
        if delta.removed:
            recount.add(month_key)  # the month may still have the visitor on another day
            continue
        total = months.row(month_key)
        for index in range(SUMS):
            total.sums[index] += delta.sums[index]
        total.added |= delta.added
    _apply(conn, months, "month")
    for code, dim, month, key in sorted(recount, key=repr):
        recount_month(conn, code, month, dim, key)


def _apply(conn: sqlite3.Connection, changes: Changes, grain: str) -> None:
    """Add ``changes`` to the rows of ``grain`` (``day`` or ``month``), a read and a write
    per 100 rows."""
    keys = [key for key, delta in changes.rows.items() if _changes(delta)]
    stored: dict[RowKey, list[Any]] = {}
    for chunk in _chunks(keys, 64):
        values = ", ".join(["(?, ?, ?, ?)"] * len(chunk))
        for row in conn.execute(
            f"WITH k(s, d, y, v) AS (VALUES {values}) SELECT {_ROW_COLUMNS} FROM k "
            f"JOIN {grain}_rollups r ON r.site = k.s AND r.dim = k.d AND r.day = k.y "
            "AND r.key = k.v",
            [value for key in chunk for value in key],
        ):
            stored[(row[0], row[1], row[2], row[3])] = list(row[4:])
    bitmaps = _bitmaps(
        conn,
        [key for key in keys if changes.rows[key].added or changes.rows[key].removed],
        grain,
    )
    writes: list[Any] = []
    deletes: list[RowKey] = []
    bitmap_writes: list[tuple[RowKey, BitMap]] = []
    for key in keys:
        delta = changes.rows[key]
        row = stored.get(key) or [0] * (SUMS + 1)
        for index in range(SUMS):
            row[index] += delta.sums[index]
        if delta.added or delta.removed:
            bitmap = bitmaps.get(key, BitMap())
            size = len(bitmap)
            bitmap |= delta.added
            bitmap -= delta.removed
            if delta.removed or len(bitmap) != size:
                bitmap_writes.append((key, bitmap))
            row[SUMS] = len(bitmap)
        if not any(row):
            deletes.append(key)
            bitmap_writes.append((key, BitMap()))
        else:
            writes.append((*key, *row))
    _write_rows(conn, writes, deletes, grain)
    _write_bitmaps(conn, bitmap_writes, grain)
    if grain == "day":
        _apply_late(conn, changes.late)


def recount_month(
    conn: sqlite3.Connection, code: int, month: int, dim: int | None = None, key: Any = None
) -> None:
    """Count a month's rows again from its days: every value of every dimension, or one."""
    end = next_month(month)
    dims = range(ROW_DIMS) if dim is None else [dim]
    only = "" if dim is None else " AND key = ?"
    chosen = [] if dim is None else [key]
    for current in dims:
        where = f"site = ? AND dim = ? AND day = ?{only}"
        params: list[Any] = [code, current, month, *chosen]
        conn.execute(
            "DELETE FROM month_visitors WHERE (site, dim, key, day) IN "
            f"(SELECT site, dim, key, day FROM month_rollups WHERE {where})",
            params,
        )
        conn.execute(f"DELETE FROM month_rollups WHERE {where}", params)
        conn.execute(
            f"INSERT INTO month_rollups ({_ROW_COLUMNS}) SELECT site, dim, ?, key, SUM(hits), "
            "SUM(pageviews), SUM(events), SUM(engaged), SUM(unidentified), SUM(visits), "
            "SUM(bounces), SUM(duration), SUM(visit_pageviews), 0 FROM day_rollups "
            f"WHERE site = ? AND dim = ? AND day >= ? AND day < ?{only} GROUP BY key",
            [month, code, current, month, end, *chosen],
        )
        found: dict[Any, list[BitMap]] = {}
        for value, ids in conn.execute(
            "SELECT key, ids FROM day_visitors WHERE site = ? AND dim = ? AND day >= ? "
            f"AND day < ?{only}",
            [code, current, month, end, *chosen],
        ):
            found.setdefault(value, []).append(deserialize(ids))
        bitmaps = [
            ((code, current, month, value), BitMap.union(*parts)) for value, parts in found.items()
        ]
        _write_bitmaps(conn, bitmaps, "month")
        conn.executemany(
            "UPDATE month_rollups SET nvisitors = ? WHERE site = ? AND dim = ? AND day = ? "
            "AND key = ?",
            [(len(bitmap), *row_key) for row_key, bitmap in bitmaps],
        )


def _changes(delta: Delta) -> bool:
    return bool(delta.added or delta.removed or any(delta.sums))


def _bitmaps(conn: sqlite3.Connection, keys: Sequence[RowKey], grain: str) -> dict[RowKey, BitMap]:
    found: dict[RowKey, BitMap] = {}
    for chunk in _chunks(keys, 64):
        values = ", ".join(["(?, ?, ?, ?)"] * len(chunk))
        for site, dim, day, value, ids in conn.execute(
            f"WITH k(s, d, y, v) AS (VALUES {values}) SELECT b.site, b.dim, b.day, b.key, b.ids "
            f"FROM k JOIN {grain}_visitors b ON b.site = k.s AND b.dim = k.d AND b.key = k.v "
            "AND b.day = k.y",
            [item for key in chunk for item in key],
        ):
            found[(site, dim, day, value)] = deserialize(ids)
    return found


def _write_rows(
    conn: sqlite3.Connection, writes: list[Any], deletes: list[RowKey], grain: str
) -> None:
    for chunk in _chunks(writes, 32):
        conn.execute(
            f"INSERT OR REPLACE INTO {grain}_rollups ({_ROW_COLUMNS}) VALUES "
            + ", ".join(["(" + ", ".join("?" * (SUMS + 5)) + ")"] * len(chunk)),
            [value for row in chunk for value in row],
        )
    if deletes:
        conn.executemany(
            f"DELETE FROM {grain}_rollups WHERE site = ? AND dim = ? AND day = ? AND key = ?",
            deletes,
        )


def _write_bitmaps(
    conn: sqlite3.Connection, writes: list[tuple[RowKey, BitMap]], grain: str
) -> None:
    rows = []
    deletes = []
    for key, bitmap in writes:
        if bitmap:
            rows.append((key[0], key[1], key[3], key[2], serialize(bitmap)))
        else:
            deletes.append((key[0], key[1], key[3], key[2]))
    for chunk in _chunks(rows, 32):
        conn.execute(
            f"INSERT OR REPLACE INTO {grain}_visitors (site, dim, key, day, ids) VALUES "
            + ", ".join(["(?, ?, ?, ?, ?)"] * len(chunk)),
            [value for row in chunk for value in row],
        )
    if deletes:
        conn.executemany(
            f"DELETE FROM {grain}_visitors WHERE site = ? AND dim = ? AND key = ? AND day = ?",
            deletes,
        )


def _apply_late(conn: sqlite3.Connection, late: dict[LateKey, list[int]]) -> None:
    rows = [(*key, *figures) for key, figures in late.items() if any(figures)]
    if not rows:
        return
    conn.executemany(
        "INSERT INTO late_visits (site, dim, day, key_day, key, visits, bounces, duration, "
        "visit_pageviews) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (site, dim, day, key_day, key) DO UPDATE SET "
        "visits = visits + excluded.visits, bounces = bounces + excluded.bounces, "
        "duration = duration + excluded.duration, "
        "visit_pageviews = visit_pageviews + excluded.visit_pageviews",
        rows,
    )
    conn.executemany(
        "DELETE FROM late_visits WHERE site = ? AND dim = ? AND day = ? AND key_day = ? "
        "AND key = ? AND visits = 0 AND bounces = 0 AND duration = 0 AND visit_pageviews = 0",
        [row[:5] for row in rows],
    )


# ---------------------------------------------------------------------------------------------
# Rebuilding days from the events

_DAY_EVENTS = (
    "SELECT "
    + ", ".join(f"e.{c.strip()}" for c in EVENT_COLUMNS.split(","))
    + ", e.visitor, e.visitor_kind, v.entry_path, e.visit FROM events e LEFT JOIN visits v "
    "ON v.id = e.visit WHERE {site} AND e.ts >= ? AND e.ts < ?"
)
_DAY_VISITS = (
    "SELECT v.id, v.visitor, v.start_ts, v.last_ts, v.entry_path, v.pageviews, v.events, "
    + ", ".join(f"e.{c.strip()}" for c in EVENT_COLUMNS.split(","))
    + " FROM visits v INDEXED BY visits_by_start JOIN events e ON e.visit = v.id "
    "WHERE v.site = ? AND v.start_ts >= ? AND v.start_ts < ?"
)


def rebuild_days(conn: sqlite3.Connection, site_name: str, days: Iterable[int]) -> None:
    """Rebuild every row of ``site_name``'s local ``days`` from the events (and take them off
    the queue): the events of each day, and the visits that started on it."""
    site = sites(conn).get(site_name)
    if site is None:
        return
    merge_log(conn)  # the log's changes are in the events the days are rebuilt from
    day_events = _DAY_EVENTS.format(site=layout_sqlite.site_is(conn))
    rebuilt = sorted(set(days))
    for day in rebuilt:
        lo, hi = site.zone.bounds(day)
        _delete_day(conn, site.code, day)
        changes = Changes()
        events = conn.execute(day_events, (site.name, lo, hi)).fetchall()
        kinds = {bytes(e[VISITOR_AT]): e[KIND_AT] for e in events if e[VISITOR_AT] is not None}
        ids = visitor_ids(conn, site, kinds)
        for event in events:
            ident = None if event[VISITOR_AT] is None else ids[bytes(event[VISITOR_AT])]
            changes.add_event(site, event, ident, event[ENTRY_AT], visit=event[VISIT_AT])
        visits: dict[int, VisitState] = {}
        for row in conn.execute(_DAY_VISITS, (site.name, lo, hi)):
            state = visits.get(row[0])
            if state is None:
                state = visits[row[0]] = visit_state(row[1:7], site.generation)
            state.add(row[7:])
        for state in visits.values():
            changes.add_visit(site, state)
        _write_fresh(conn, changes)
        conn.execute("DELETE FROM rollup_pending_days WHERE site = ? AND day = ?", (site.name, day))
    # The months of those days are counted again from their days, once none of their days is
    # queued any more (reports read no month that holds a queued day).
    for month in sorted({month_of(day) for day in rebuilt}):
        queued = conn.execute(
            "SELECT 1 FROM rollup_pending_days WHERE site = ? AND day >= ? AND day < ? LIMIT 1",
            (site.name, month, next_month(month)),
        ).fetchone()
        if queued is None:
            recount_month(conn, site.code, month)


def _delete_day(conn: sqlite3.Connection, code: int, day: int) -> None:
    """Delete every row of one day of a site (each seek on its primary key)."""
    for dim in range(ROW_DIMS):
        where = "site = ? AND dim = ? AND day = ?"
        conn.execute(
            "DELETE FROM day_visitors WHERE (site, dim, key, day) IN "
            f"(SELECT site, dim, key, day FROM day_rollups WHERE {where})",
            (code, dim, day),
        )
        conn.execute(f"DELETE FROM day_rollups WHERE {where}", (code, dim, day))
        conn.execute(f"DELETE FROM late_visits WHERE {where}", (code, dim, day))


def _write_fresh(conn: sqlite3.Connection, changes: Changes) -> None:
    """Write rebuilt rows (the day's old rows are gone): each day's ids all in the base."""
    writes = []
    bitmaps: list[tuple[RowKey, BitMap]] = []
    for key, delta in changes.rows.items():
        row = [*delta.sums, len(delta.added)]
        if not any(row):
            continue
        writes.append((*key, *row))
        if delta.added:
            bitmaps.append((key, delta.added))
    _write_rows(conn, writes, [], "day")
    _write_bitmaps(conn, bitmaps, "day")
    _apply_late(conn, changes.late)


def days_of(conn: sqlite3.Connection, site_name: str, times: Iterable[int]) -> set[int]:
    """The local days of ``site_name`` holding epoch milliseconds ``times``."""
    site = sites(conn).get(site_name)
    if site is None:
        return set()
    return {site.zone.day_of(int(ts)) for ts in times}


def rebuild_pending(conn: sqlite3.Connection, limit: int = 1) -> bool:
    """Rebuild up to ``limit`` queued days; ``True`` while more are queued."""
    queued = conn.execute(
        "SELECT site, day FROM rollup_pending_days LIMIT ?", (limit + 1,)
    ).fetchall()
    for site, day in queued[:limit]:
        rebuild_days(conn, str(site), [int(day)])
        conn.execute("DELETE FROM rollup_pending_days WHERE site = ? AND day = ?", (site, day))
    return len(queued) > limit


def still_entered(
    conn: sqlite3.Connection, site: Site, visitor: bytes, entry: Any, day: int
) -> bool:
    """Whether ``visitor`` has an event on ``day`` in a visit entered at ``entry``."""
    lo, hi = site.zone.bounds(day)
    found = conn.execute(
        "SELECT 1 FROM visits w INDEXED BY visits_by_visitor JOIN events e ON e.visit = w.id "
        "WHERE w.site = ? AND w.visitor = ? AND w.entry_path = ? AND e.ts >= ? AND e.ts < ? "
        "LIMIT 1",
        (site.name, visitor, entry, lo, hi),
    ).fetchone()
    return found is not None


@dataclass
class Erasure:
    """What an erasure takes out of the rollups, worked out before its rows go: the erased
    events' sums and visits' figures, and which rows each erased visitor's id leaves on each
    day (unless they have events left that day: that day is rebuilt instead)."""

    site: Site
    changes: Changes
    leaving: dict[tuple[bytes, int, int], set[RowKey]]


def erasure(
    conn: sqlite3.Connection, site_name: str, event_ids: Iterable[int], visit_ids: Iterable[int]
) -> Erasure | None:
    """The rollups' part of erasing ``event_ids`` and the visits ``visit_ids`` (with all their
    events), read before they are deleted."""
    site = sites(conn).get(site_name)
    if site is None:
        return None
    merge_log(conn)
    columns = ", ".join(f"e.{c.strip()}" for c in EVENT_COLUMNS.split(","))
    events: dict[int, Sequence[Any]] = {}
    for chunk in _chunks(sorted(set(event_ids)), 256):
        for row in conn.execute(
            f"SELECT e.id, {columns}, e.visitor, e.visitor_kind, v.entry_path, e.visit "
            "FROM events e LEFT JOIN visits v ON v.id = e.visit WHERE e.id IN "
            "(SELECT value FROM json_each(?))",
            (msgspec.json.encode(list(chunk)).decode(),),
        ):
            events[int(row[0])] = row[1:]
    visits: dict[int, VisitState] = {}
    for visit in sorted(set(visit_ids)):
        row = conn.execute(
            "SELECT visitor, start_ts, last_ts, entry_path, pageviews, events FROM visits "
            "WHERE id = ?",
            (visit,),
        ).fetchone()
        if row is None:
            continue
        state = visits[visit] = visit_state(row, site.generation)
        for event in conn.execute(
            f"SELECT e.id, {columns}, e.visitor, e.visitor_kind, v.entry_path, e.visit "
            "FROM events e JOIN visits v ON v.id = e.visit WHERE e.visit = ?",
            (visit,),
        ):
            events[int(event[0])] = event[1:]
            state.add(event[1:])
    kinds = {bytes(e[VISITOR_AT]): e[KIND_AT] for e in events.values() if e[VISITOR_AT] is not None}
    ids = visitor_ids(conn, site, kinds)
    changes = Changes()
    leaving: dict[tuple[bytes, int, int], set[RowKey]] = {}
    for event in events.values():
        ident = None if event[VISITOR_AT] is None else ids[bytes(event[VISITOR_AT])]
        visit = event[VISIT_AT]
        # A -1 takes no visitor out. Every event of an erased event's visit is erased with
        # it, so the visit leaves its mode's visits of the day.
        changes.add_event(site, event, ident, event[ENTRY_AT], -1, visit)
        if visit is not None:
            key = (site.code, MODE_VISITS, site.zone.day_of(event[TS]), event[MODE])
            changes.row(key).removed.add(visit)
        if ident is not None:
            visitor = bytes(event[VISITOR_AT])
            found = Changes()
            found.add_event(site, event, ident, event[ENTRY_AT])
            day = site.zone.day_of(event[TS])
            leaving.setdefault((visitor, ident, day), set()).update(
                key for key in found.rows if key[1] < MODE_VISITS
            )
    for state in visits.values():
        changes.add_visit(site, state, -1)
    return Erasure(site, changes, leaving)


def apply_erasure(conn: sqlite3.Connection, erased: Erasure) -> None:
    """Take an erasure out of the rollups once its rows are deleted: a visitor with no event
    left on a day leaves that day's rows; a day where they still have one is rebuilt."""
    site, changes = erased.site, erased.changes
    rebuild: set[int] = set()
    for (visitor, ident, day), keys in sorted(erased.leaving.items(), key=repr):
        lo, hi = site.zone.bounds(day)
        left = conn.execute(
            "SELECT 1 FROM visits w INDEXED BY visits_by_visitor JOIN events e "
            "ON e.visit = w.id WHERE w.site = ? AND w.visitor = ? AND e.ts >= ? AND e.ts < ? "
            "LIMIT 1",
            (site.name, visitor, lo, hi),
        ).fetchone()
        if left is not None:
            rebuild.add(day)
            continue
        for key in keys:
            changes.row(key).removed.add(ident)
    for row_key in [row_key for row_key in changes.rows if row_key[2] in rebuild]:
        del changes.rows[row_key]
    for late_key in [late_key for late_key in changes.late if late_key[2] in rebuild]:
        del changes.late[late_key]
    merge_log(conn)
    apply(conn, changes)
    if rebuild:
        rebuild_days(conn, site.name, rebuild)


def record_purge(conn: sqlite3.Connection, site: str, before_ms: int) -> None:
    """Retention deleted events of ``site`` before ``before_ms``: a visit may have lost its
    first events, and its start then precedes every event left."""
    conn.execute(
        "UPDATE rollup_sites SET purged_before = max(purged_before, ?) WHERE site = ?",
        (before_ms, site),
    )


def bump_generation(conn: sqlite3.Connection, site: str) -> None:
    """Events of ``site`` were deleted: every writer's cached visit states are stale."""
    conn.execute("UPDATE rollup_sites SET generation = generation + 1 WHERE site = ?", (site,))
