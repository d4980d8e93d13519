"""The export manifest: what an export holds, under which terms, signed with Ed25519.

``manifest.json`` is written once; ``manifest.sig`` holds the hex Ed25519 signature of its exact
bytes. Column meanings live here, once, for the manifest and the docs alike.
"""

from __future__ import annotations

from typing import Literal

import msgspec

from collector.privacy.instance import Residency
from consent.site_policy import SitePolicy

MANIFEST_FILE = "manifest.json"
SIGNATURE_FILE = "manifest.sig"
#: 2: ``csv_formula_cells`` (CSV text cells that start like a formula are prefixed).
MANIFEST_VERSION = 2

Format = Literal["ndjson", "csv", "parquet"]
FORMATS: tuple[Format, ...] = ("ndjson", "csv", "parquet")
ExportKind = Literal["export", "access"]

COLUMN_MEANINGS: dict[str, str] = {
    "id": "row number in this Mesure database",
    "site": "site id from mesure.toml",
    "ts": "time of the hit, milliseconds since 1970-01-01 UTC",
    "name": "event name (pageview, or a custom event)",
    "mode": "consent mode the collector kept: denied, exempt or granted",
    "reasons": "space-separated reason codes of the consent decision",
    "visitor": "keyed hash (HMAC-SHA-256, 16 bytes, hex) of the visitor; empty when denied",
    "visitor_kind": "client (first-party id) or cookieless (daily key of site, IP, user agent)",
    "key_epoch": "epoch of the client key, or the UTC day YYYYMMDD of the cookieless key",
    "user": "keyed hash (16 bytes, hex) of the site's own user id; granted hits only",
    "user_epoch": "epoch of the user key that made the user hash",
    "visit": "visit (session) row number; 30 minutes of inactivity end a visit",
    "hostname": "hostname of the page",
    "path": "page path, personal data masked",
    "query": "kept campaign parameters of the page URL (granted only)",
    "referrer": "referring URL, cleaned",
    "referrer_domain": "referring domain",
    "source": "traffic source derived from the referrer or UTM",
    "utm_source": "utm_source campaign parameter",
    "utm_medium": "utm_medium campaign parameter",
    "utm_campaign": "utm_campaign campaign parameter",
    "utm_term": "utm_term campaign parameter",
    "utm_content": "utm_content campaign parameter",
    "browser": "browser family from the user agent",
    "browser_version": "browser major version",
    "os": "operating system family",
    "os_version": "operating system version",
    "device": "device class: desktop, mobile, tablet",
    "screen": "screen size class",
    "country": "ISO country code from the owner's local database, or empty",
    "props": "custom properties as stored (JSON text); allowlisted ones only when exempt",
    "revenue_amount": "revenue as a decimal string (granted only)",
    "revenue_currency": "ISO 4217 currency of the revenue",
    "engaged_ms": "engaged time on the page in milliseconds",
}


#: The ``visits`` table, written next to the events of an access request (the subject's visits).
VISIT_COLUMN_MEANINGS: dict[str, str] = {
    "id": "visit (session) row number, as in the events' visit column",
    "site": "site id from mesure.toml",
    "visitor": "keyed hash (16 bytes, hex) of the visitor, as in the events",
    "start_ts": "time of the visit's first hit, milliseconds since 1970-01-01 UTC",
    "last_ts": "time of the visit's last hit, milliseconds since 1970-01-01 UTC",
    "entry_path": "path of the visit's first pageview",
    "exit_path": "path of the visit's last pageview",
    "pageviews": "pageviews in the visit",
    "events": "events in the visit",
}


class Column(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    type: str
    meaning: str


class ExportFile(msgspec.Struct, frozen=True, kw_only=True):
    path: str
    site: str
    #: ``YYYY-MM`` for events; ``all`` for the visits of an access request.
    month: str
    rows: int
    bytes: int
    sha256: str
    #: Which table the rows come from.
    table: Literal["events", "visits"] = "events"


class KeyEpochs(msgspec.Struct, frozen=True, kw_only=True):
    """Ids of the key epochs the rows were hashed under; never key material."""

    client: list[int]
    cookieless_days: list[int]
    user: list[int]


class SiteTerms(msgspec.Struct, frozen=True, kw_only=True):
    """The consent policy, retention and key epochs in force for one exported site."""

    site: str
    consent: SitePolicy
    retention_days: dict[str, int]
    key_epochs: KeyEpochs


class Period(msgspec.Struct, frozen=True, kw_only=True):
    """Inclusive UTC days."""

    first_day: str
    last_day: str


class Request(msgspec.Struct, frozen=True, kw_only=True):
    """An access request: which identifier was searched, never its value."""

    identifier: Literal["user-id", "client-id"]
    epochs_searched: list[int]
    cookieless_notice: str


class CsvCells(msgspec.Struct, frozen=True, kw_only=True):
    """How a CSV export writes a text cell that a spreadsheet would run as a formula."""

    #: A text cell starting with one of these is written with ``prefix`` in front.
    starting_with: list[str]
    prefix: str
    #: How to get the stored value back.
    to_undo: str


class AuditHead(msgspec.Struct, frozen=True, kw_only=True):
    """The audit log's last entry when the export was signed (pins the log's length)."""

    seq: int
    sha256: str


class Manifest(msgspec.Struct, frozen=True, kw_only=True):
    manifest_version: int
    kind: ExportKind
    mesure_version: str
    exported_at: str
    exported_by: str
    sites: list[str]
    period: Period
    format: Format
    columns: list[Column]
    files: list[ExportFile]
    #: Event rows in all files (visit rows are counted in their own files).
    total_rows: int
    terms: list[SiteTerms]
    residency: Residency
    audit_head: AuditHead
    signature_algorithm: Literal["Ed25519"]
    public_key: str
    request: Request | None = None
    #: Columns of the visits file(s) of an access request.
    visit_columns: list[Column] | None = None
    #: CSV exports only: the one change made to the stored values (CSV injection).
    csv_formula_cells: CsvCells | None = None


LATER_COLUMN = "added by a later migration: see collector/storage/sqlite/schema.py"


def columns_of(
    declared: list[tuple[str, str]], meanings: dict[str, str] = COLUMN_MEANINGS
) -> list[Column]:
    return [
        Column(
            name=name,
            type=sql_type or "ANY",
            meaning=meanings.get(name, LATER_COLUMN),
        )
        for name, sql_type in declared
    ]


manifest_decoder = msgspec.json.Decoder(Manifest)
