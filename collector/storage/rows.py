"""What the backends share: the rows passed to and from storage, and the rules both apply.

The ingest pipeline hands storage pseudonymized events and drop counts; the privacy tools hand
it subjects' hashes and get back what an erasure or a purge removed. These Structs carry no raw
identifier by construction: there is no field for an IP address, a client id or a user id, only
their keyed hashes. :data:`DIMENSION_TABLE` is the one list of report dimensions: the report API
accepts its names and each backend maps every one of them to its SQL.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Literal, NamedTuple

import msgspec

from collector.errors import ReportParameterError

#: A visit ends after 30 minutes without an event (docs/metrics.md).
VISIT_GAP_MS = 30 * 60 * 1000

VisitorKind = Literal["client", "cookieless"]
PropValue = str | int | float | bool


class Event(msgspec.Struct, kw_only=True):
    """One hit after consent, pseudonymization and enrichment; a row of the ``events`` table."""

    site: str
    ts: int  # epoch milliseconds, UTC
    name: str
    mode: str
    reasons: str  # space-separated reason codes of the consent resolution
    hostname: str
    path: str
    visitor: bytes | None = None
    visitor_kind: VisitorKind | None = None
    key_epoch: int | None = None
    #: Hash of the same cookieless visitor under the previous daily key: a visit still active
    #: under it keeps that identifier, so a visit crossing midnight is not split. Never stored.
    previous_visitor: bytes | None = None
    previous_key_epoch: int | None = None
    user: bytes | None = None
    user_epoch: int | None = None
    query: str | None = None
    referrer: str | None = None
    referrer_domain: str | None = None
    source: str | None = None
    utm_source: str | None = None
    utm_medium: str | None = None
    utm_campaign: str | None = None
    utm_term: str | None = None
    utm_content: str | None = None
    browser: str | None = None
    browser_version: str | None = None
    os: str | None = None
    os_version: str | None = None
    device: str | None = None
    screen: str | None = None
    country: str | None = None
    props: dict[str, PropValue] | None = None
    revenue_amount: str | None = None
    revenue_currency: str | None = None
    engaged_ms: int | None = None


class DropCount(msgspec.Struct, frozen=True):
    """Hits of ``site`` on local ``day`` (``YYYY-MM-DD``) not stored, for ``reason``."""

    site: str
    day: str
    reason: str
    hits: int = 1


SubjectColumn = Literal["visitor", "user"]
#: The epoch column that goes with each subject column; both names are column names.
SUBJECT_EPOCH_COLUMN: dict[SubjectColumn, str] = {"visitor": "key_epoch", "user": "user_epoch"}
#: A client visitor hash is only ever compared with client rows: a cookieless hash of the same
#: bytes (astronomically unlikely) must not be erased by a client-id request.
SUBJECT_VISITOR_KIND: dict[SubjectColumn, VisitorKind | None] = {
    "visitor": "client",
    "user": None,
}


class SubjectHash(msgspec.Struct, frozen=True):
    """A keyed hash of a data subject's identifier and the key epoch that produced it."""

    epoch: int
    digest: bytes


class Deleted(msgspec.Struct, frozen=True, kw_only=True):
    """What an erasure removed: the subject's own events, the other events of their visits
    (the same browser in the same visit), and the visits."""

    subject_events: int
    visit_events: int
    visits: int


class ErasureScope(msgspec.Struct, frozen=True, kw_only=True):
    """The rows an erasure removes: the subject's events, and the visits they belong to with
    every event of those visits (for a client id, every visit under its hashes)."""

    event_ids: frozenset[int]
    visit_ids: frozenset[int]


class PurgeCount(msgspec.Struct, frozen=True, kw_only=True):
    site: str
    mode: str
    events: int


class Dimension(NamedTuple):
    """A dimension a report filter or breakdown may name."""

    name: str
    #: ``visit``: the value is the visit's (entry and exit pages), read through the event's
    #: visit; events without a visit have none. ``event``: each event's own value.
    level: Literal["event", "visit"]
    #: Only pageviews count under it: a page is what a pageview shows, and other events (an
    #: engagement ping, a signup) would otherwise make up visits to it.
    pageviews_only: bool = False
    #: The SQLite rollups keep rows for it (the dashboard's default breakdowns): reports by
    #: any other dimension read the events. A row's dimension is stored as its position among
    #: the rolled-up ones: changing this needs a migration that empties the rollups and queues
    #: every day for a rebuild (``rollups_sqlite.queue_site_days``).
    rolled_up: bool = False


#: Every dimension, in the order the API documents them (docs/reports-api.md).
DIMENSION_TABLE: tuple[Dimension, ...] = (
    Dimension("page", "event", pageviews_only=True, rolled_up=True),
    Dimension("entry_page", "visit", rolled_up=True),
    Dimension("exit_page", "visit"),
    Dimension("hostname", "event"),
    Dimension("source", "event", rolled_up=True),
    Dimension("referrer", "event"),
    Dimension("utm_source", "event"),
    Dimension("utm_medium", "event"),
    Dimension("utm_campaign", "event"),
    Dimension("utm_term", "event"),
    Dimension("utm_content", "event"),
    Dimension("device", "event"),
    Dimension("browser", "event", rolled_up=True),
    Dimension("browser_version", "event"),
    Dimension("os", "event", rolled_up=True),
    Dimension("os_version", "event"),
    Dimension("country", "event", rolled_up=True),
    Dimension("screen", "event"),
    Dimension("event", "event"),
    Dimension("mode", "event", rolled_up=True),
)
DIMENSIONS = tuple(d.name for d in DIMENSION_TABLE)
VISIT_DIMENSIONS = frozenset(d.name for d in DIMENSION_TABLE if d.level == "visit")
PAGEVIEW_DIMENSIONS = frozenset(d.name for d in DIMENSION_TABLE if d.pageviews_only)
ROLLED_UP_DIMENSIONS = tuple(d.name for d in DIMENSION_TABLE if d.rolled_up)
#: A custom property as a dimension: ``prop:NAME``.
PROP_PREFIX = "prop:"


def dimension_map(backend: str, sql: Mapping[str, str]) -> dict[str, str]:
    """``sql`` (a backend's expression per dimension), checked to name every dimension of the
    table and nothing else: a backend that misses one fails when it is imported, not when a
    report asks for it."""
    missing = [name for name in DIMENSIONS if name not in sql]
    extra = sorted(set(sql) - set(DIMENSIONS))
    if missing or extra:
        raise LookupError(f"{backend} dimension SQL: missing {missing}, not in the table {extra}")
    return {name: sql[name] for name in DIMENSIONS}


class AccountRow(msgspec.Struct, frozen=True, kw_only=True):
    """A user or an API token as stored; ``sites`` empty means every site."""

    id: int
    name: str
    role: str
    sites: tuple[str, ...]
    created_ts: int
    revoked_ts: int | None = None
    #: Users only: when ``mesure user disable`` disabled the account.
    disabled_ts: int | None = None


# What the reports ask of storage and get back: goals, filters, periods, buckets and raw counts.

GoalKind = Literal["page", "event"]
GoalName = Annotated[str, msgspec.Meta(min_length=1, max_length=100, pattern=r"^[^\x00-\x1f]*$")]
GoalMatch = Annotated[str, msgspec.Meta(min_length=1, max_length=500, pattern=r"^[^\x00-\x1f]*$")]


class Goal(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A pageview path pattern (``*`` matches anything) or an event name."""

    name: GoalName
    kind: GoalKind
    match: GoalMatch

    @property
    def glob(self) -> str:
        """``match`` as an SQLite GLOB pattern where only ``*`` is special."""
        return self.match.replace("[", "[[]").replace("?", "[?]")


class Bucket(msgspec.Struct, frozen=True):
    """One time-series bucket of one site: ``[start_ms, end_ms)``."""

    index: int
    site: str
    start_ms: int
    end_ms: int


class MetricRow(msgspec.Struct, frozen=True, kw_only=True):
    """Raw counts for one group (a breakdown value, a bucket index, or the whole period)."""

    key: str | int | None
    visitors: int
    pageviews: int
    events: int
    visits: int
    bounces: int
    duration_ms: int
    visit_pageviews: int
    converted: int
    unidentified_pageviews: int


class StepEvent(msgspec.Struct, frozen=True, array_like=True):
    """An event relevant to a funnel or an experiment, in time order per visitor."""

    site: str
    visitor: bytes
    visit: int | None
    ts: int
    name: str
    path: str
    value: str | None = None


FunnelStepSpec = Annotated[
    str, msgspec.Meta(min_length=6, max_length=500, pattern=r"^(page|event):[^\x00-\x1f]+$")
]
FunnelWithin = Annotated[str, msgspec.Meta(pattern=r"^(visit|[0-9]{1,3}d)$")]


class SavedFunnel(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A funnel saved for a site (the body of ``POST /api/v1/funnels``): 2 to 10 steps,
    each ``page:PATTERN`` or ``event:NAME``, within one visit or ``N`` days (``7d``)."""

    site: str
    name: GoalName
    steps: Annotated[list[FunnelStepSpec], msgspec.Meta(min_length=2, max_length=10)]
    within: FunnelWithin = "visit"


Operator = Literal["is", "is_not", "contains"]
FilterValue = Annotated[str, msgspec.Meta(max_length=2048)]
PROP_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


def check_dimension(name: str, field: str = "by") -> str:
    """``name`` if a filter or a breakdown may name it: an entry of the storage's dimension
    table (each backend maps every entry to a fixed SQL expression) or ``prop:NAME``. ``field``
    is the parameter that named it, for the error: ``by`` for a breakdown, ``filter``."""
    if name in DIMENSIONS:
        return name
    if name.startswith(PROP_PREFIX) and PROP_NAME.match(name[len(PROP_PREFIX) :]):
        return name
    raise ReportParameterError(f"unknown dimension {name!r}", field=field)


class Filter(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """``dimension`` ``op`` ``value``; several filters are combined with AND."""

    dimension: str
    op: Operator
    value: FilterValue

    def __post_init__(self) -> None:
        check_dimension(self.dimension, field="filter")


class SiteRange(msgspec.Struct, frozen=True):
    """One site's part of a report: ``[start_ms, end_ms)`` in UTC epoch milliseconds."""

    site: str
    timezone: str
    start_ms: int
    end_ms: int
