"""The ClickHouse tables: the same rows as SQLite's ``events``, ``visits`` and ``dropped_hits``.

Single node: ``MergeTree`` tables created at start-up. Cluster (``mesure clickhouse schema
--cluster NAME``): ``ReplicatedMergeTree`` tables named ``*_local`` on every node, and
``Distributed`` tables under the plain names, sharded by a hash of the site and the visitor so a
visitor's events and visits live on one shard (visit joins and visitor counts stay shard-local).

Columns keep SQLite's names; timestamps become ``DateTime64(3, 'UTC')``. Two columns exist only
here: ``props_text`` (each property as SQLite's ``CAST(json_extract(…) AS TEXT)`` would render it,
so property breakdowns are identical) and ``retention_days`` (the row's retention, set at
insert from the site's consent policy and enforced by the table's ``TTL``). ``first_visits``
has no SQLite twin: each visitor's first visit with a client-stored identifier, kept at ingest
for the retention report (:mod:`collector.storage.clickhouse.first_visits`).
"""

from __future__ import annotations

from dataclasses import dataclass

#: ``(name, ClickHouse type, SQLite declared type)`` of ``events``, in SQLite's column order.
EVENT_COLUMNS: list[tuple[str, str, str]] = [
    ("id", "UInt64", "INTEGER"),
    ("site", "LowCardinality(String)", "TEXT"),
    ("ts", "DateTime64(3, 'UTC')", "INTEGER"),
    ("name", "LowCardinality(String)", "TEXT"),
    ("mode", "LowCardinality(String)", "TEXT"),
    ("reasons", "LowCardinality(String)", "TEXT"),
    ("visitor", "Nullable(String)", "BLOB"),
    ("visitor_kind", "LowCardinality(Nullable(String))", "TEXT"),
    ("key_epoch", "Nullable(Int64)", "INTEGER"),
    ("user", "Nullable(String)", "BLOB"),
    ("user_epoch", "Nullable(Int64)", "INTEGER"),
    ("visit", "Nullable(UInt64)", "INTEGER"),
    ("hostname", "LowCardinality(String)", "TEXT"),
    ("path", "String", "TEXT"),
    ("query", "Nullable(String)", "TEXT"),
    ("referrer", "Nullable(String)", "TEXT"),
    ("referrer_domain", "LowCardinality(Nullable(String))", "TEXT"),
    ("source", "LowCardinality(Nullable(String))", "TEXT"),
    ("utm_source", "LowCardinality(Nullable(String))", "TEXT"),
    ("utm_medium", "LowCardinality(Nullable(String))", "TEXT"),
    ("utm_campaign", "LowCardinality(Nullable(String))", "TEXT"),
    ("utm_term", "Nullable(String)", "TEXT"),
    ("utm_content", "Nullable(String)", "TEXT"),
    ("browser", "LowCardinality(Nullable(String))", "TEXT"),
    ("browser_version", "LowCardinality(Nullable(String))", "TEXT"),
    ("os", "LowCardinality(Nullable(String))", "TEXT"),
    ("os_version", "LowCardinality(Nullable(String))", "TEXT"),
    ("device", "LowCardinality(Nullable(String))", "TEXT"),
    ("screen", "LowCardinality(Nullable(String))", "TEXT"),
    ("country", "LowCardinality(Nullable(String))", "TEXT"),
    ("props", "Nullable(String)", "TEXT"),
    ("revenue_amount", "Nullable(String)", "TEXT"),
    ("revenue_currency", "LowCardinality(Nullable(String))", "TEXT"),
    ("engaged_ms", "Nullable(Int64)", "INTEGER"),
]
EVENT_EXTRA_COLUMNS: list[tuple[str, str]] = [
    ("props_text", "Map(String, String)"),
    ("retention_days", "UInt16"),
]
VISIT_COLUMNS: list[tuple[str, str]] = [
    ("id", "UInt64"),
    ("site", "LowCardinality(String)"),
    ("visitor", "String"),
    ("start_ts", "DateTime64(3, 'UTC')"),
    ("last_ts", "DateTime64(3, 'UTC')"),
    ("entry_path", "Nullable(String)"),
    ("exit_path", "Nullable(String)"),
    ("pageviews", "UInt32"),
    ("events", "UInt32"),
    # The first event's time never changes, unlike start_ts (a late event may move it back):
    # partitioning on it keeps every version of a visit in one partition, where they collapse.
    ("created_ts", "DateTime64(3, 'UTC')"),
    ("retention_days", "UInt16"),
    ("version", "UInt64"),
]

#: ``visits`` read back as SQLite's rows (``ch_ingest.visit_select``), with SQLite's declared
#: types, so an access request's visits file is described alike on both backends.
VISIT_EXPORT_COLUMNS: list[tuple[str, str]] = [
    ("id", "INTEGER"),
    ("site", "TEXT"),
    ("visitor", "BLOB"),
    ("start_ts", "INTEGER"),
    ("last_ts", "INTEGER"),
    ("entry_path", "TEXT"),
    ("exit_path", "TEXT"),
    ("pageviews", "INTEGER"),
    ("events", "INTEGER"),
]


@dataclass(frozen=True)
class Table:
    name: str
    columns: list[tuple[str, str]]
    engine: str  # without parameters: MergeTree, ReplacingMergeTree, SummingMergeTree, …
    engine_args: str
    tail: str  # PARTITION BY / ORDER BY / TTL
    shard_key: str


TABLES = [
    Table(
        "events",
        [(name, kind) for name, kind, _ in EVENT_COLUMNS] + EVENT_EXTRA_COLUMNS,
        "MergeTree",
        "",
        # Every report reads one site over a range of days; within a day rows sit by visitor,
        # which is how visitors are counted, funnels walked and erasures found.
        "PARTITION BY toYYYYMM(ts)\n"
        "ORDER BY (site, toDate(ts), ifNull(visitor, ''), ts)\n"
        "TTL toDateTime(ts) + toIntervalDay(retention_days) DELETE",
        "cityHash64(site, ifNull(visitor, ''))",
    ),
    Table(
        "visits",
        VISIT_COLUMNS,
        "ReplacingMergeTree",
        "version",
        "PARTITION BY toYYYYMM(created_ts)\n"
        "ORDER BY (site, id)\n"
        "TTL toDateTime(last_ts) + toIntervalDay(retention_days) DELETE",
        "cityHash64(site, visitor)",
    ),
    Table(
        "dropped_hits",
        [
            ("site", "LowCardinality(String)"),
            ("day", "String"),
            ("reason", "LowCardinality(String)"),
            ("hits", "UInt64"),
        ],
        "SummingMergeTree",
        "hits",
        "ORDER BY (site, day, reason)",
        "cityHash64(site)",
    ),
    # Each visitor's first followed visit (one with a client-stored identifier), so retention
    # finds the period's new visitors without reading every visitor's history. The minimum is
    # kept by the engine: ingest inserts the start of each followed visit it touches (again
    # only if it moved earlier) and merges keep the earliest, whatever the order of the
    # inserts; readers take min().
    # ReplacingMergeTree would keep the latest version instead, so every insert would have to
    # read the stored row first. The row expires with the visitor's first visit (the visits'
    # retention, counted from its start).
    Table(
        "first_visits",
        [
            ("site", "LowCardinality(String)"),
            ("visitor", "String"),
            ("first_ts", "SimpleAggregateFunction(min, DateTime64(3, 'UTC'))"),
            ("retention_days", "SimpleAggregateFunction(max, UInt16)"),
        ],
        "AggregatingMergeTree",
        "",
        "ORDER BY (site, visitor)\nTTL toDateTime(first_ts) + toIntervalDay(retention_days) DELETE",
        "cityHash64(site, visitor)",
    ),
    # One row per erased visit: the writer drops those visits from its memory. Visit ids, not
    # the visitor's hash, which must leave the data with the erased rows.
    Table(
        "erasures",
        [("seq", "UInt64"), ("site", "LowCardinality(String)"), ("visit", "UInt64")],
        "MergeTree",
        "",
        "ORDER BY seq",
        "cityHash64(site, visit)",
    ),
]

#: chDB runs inside Mesure's process, so Mesure sets its housekeeping: the parts a mutation
#: (an erasure, a retention run) leaves behind are then removed within a second or two, instead
#: of whenever ClickHouse's cleanup schedule comes round (every 30 s to 5 min by default). chDB
#: keeps no old part for crash safety (its ``old_parts_lifetime`` is 0).
EMBEDDED_SETTINGS = {
    "cleanup_delay_period": 1,
    "max_cleanup_delay_period": 1,
    "cleanup_delay_period_random_add": 0,
}


def _columns(table: Table) -> str:
    return ",\n".join(f"    `{name}` {kind}" for name, kind in table.columns)


def single_node(database: str, *, embedded: bool = False) -> list[str]:
    """``CREATE`` statements for one server (also applied by Mesure at start-up); ``embedded``
    (chDB) adds :data:`EMBEDDED_SETTINGS`."""
    statements = [f"CREATE DATABASE IF NOT EXISTS {database}"]
    settings = f"\nSETTINGS {embedded_settings()}" if embedded else ""
    for table in TABLES:
        statements.append(
            f"CREATE TABLE IF NOT EXISTS {database}.{table.name}\n(\n{_columns(table)}\n)\n"
            f"ENGINE = {table.engine}({table.engine_args})\n{table.tail}{settings}"
        )
    return statements


def embedded_settings() -> str:
    return ", ".join(f"{name} = {value}" for name, value in EMBEDDED_SETTINGS.items())


def cluster(database: str, name: str) -> list[str]:
    """Replicated local tables on every node plus ``Distributed`` tables over them."""
    statements = [f"CREATE DATABASE IF NOT EXISTS {database} ON CLUSTER {name}"]
    for table in TABLES:
        args = f"'/clickhouse/tables/{{shard}}/{database}/{table.name}', '{{replica}}'"
        if table.engine_args:
            args += f", {table.engine_args}"
        statements.append(
            f"CREATE TABLE IF NOT EXISTS {database}.{table.name}_local ON CLUSTER {name}\n"
            f"(\n{_columns(table)}\n)\n"
            f"ENGINE = Replicated{table.engine}({args})\n{table.tail}"
        )
        statements.append(
            f"CREATE TABLE IF NOT EXISTS {database}.{table.name} ON CLUSTER {name}\n"
            f"AS {database}.{table.name}_local\n"
            f"ENGINE = Distributed({name}, {database}, {table.name}_local, {table.shard_key})"
        )
    return statements


def schema_text(database: str, cluster_name: str | None = None) -> str:
    """The DDL as ``mesure clickhouse schema`` prints it."""
    statements = single_node(database) if cluster_name is None else cluster(database, cluster_name)
    return "".join(statement + ";\n\n" for statement in statements)
