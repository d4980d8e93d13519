"""Configuration: ``DATA/mesure.toml`` decoded into frozen Structs, with ``MESURE_*`` overrides.

Loaded once, by :func:`load_config`, from a data directory and an environ mapping; handlers
receive the resulting :class:`Config` and never read the environment themselves.
"""

from __future__ import annotations

import hashlib
import hmac
import zoneinfo
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec

from collector.errors import ConfigError
from collector.storage.target import ClickHouseTarget, parse_storage
from consent.site_policy import SitePolicy

CONFIG_FILE = "mesure.toml"
DATABASE_FILE = "mesure.db"
KEYS_DIR = "keys"
AUDIT_FILE = "audit.log"
ENV_PREFIX = "MESURE_"

SiteId = Annotated[
    str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_.-]*$")
]
Hostname = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        max_length=253,
        pattern=r"^(\*\.)?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$",
    ),
]
TokenHash = Annotated[str, msgspec.Meta(pattern=r"^[0-9a-f]{64}$")]
PerMinute = Annotated[int, msgspec.Meta(ge=1, le=100_000_000)]
#: One line of free text (no control characters).
Line = Annotated[str, msgspec.Meta(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]*$")]


class ConfigStruct(
    msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True, rename="kebab"
):
    """Shared options of every configuration table."""


#: ``mesure serve`` prints its own listening address in the embed tags while this is unchanged.
DEFAULT_ORIGIN = "http://127.0.0.1:8000"


class ServerConfig(ConfigStruct, frozen=True):
    """The ``[server]`` table; ``MESURE_<KEY>`` (snake, upper case) overrides each key."""

    #: Public origin of the collector, used in the printed embed tags.
    origin: str = DEFAULT_ORIGIN
    #: Hits waiting for the writer; beyond that the collector answers 503 with Retry-After.
    queue_size: Annotated[int, msgspec.Meta(ge=1, le=1_000_000)] = 10_000
    #: How long a group commit waits for the database lock before failing (503, nothing kept).
    write_timeout_ms: Annotated[int, msgspec.Meta(ge=1, le=600_000)] = 10_000
    #: How long a client may take to send a hit's or a batch's body (408 beyond: slow clients).
    body_timeout_ms: Annotated[int, msgspec.Meta(ge=100, le=600_000)] = 10_000
    #: Hits per minute accepted from one client (keyed by a keyed hash of its IP address).
    client_rate_per_minute: PerMinute = 600
    #: Hits per minute accepted for one site, all clients together.
    site_rate_per_minute: PerMinute = 60_000
    #: Local MaxMind-format country database (``.mmdb``); never downloaded by Mesure.
    geo_database: str | None = None
    #: Header carrying the client address behind a reverse proxy (e.g. ``x-forwarded-for``).
    client_ip_header: Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9-]+$")] | None = None
    #: Where the owner keeps the data (e.g. ``eu``); stated in the register and export manifests.
    residency: Line | None = None
    #: Where the host is, as the owner declares it (e.g. ``Paris, France``); stated likewise.
    host_location: Line | None = None
    #: Days an export kept under the data directory (``DATA/exports/``) lives: then retention
    #: deletes it, as it deletes the rows it copied.
    exports_keep_days: Annotated[int, msgspec.Meta(ge=1, le=36500)] = 30


class GoalConfig(ConfigStruct, frozen=True):
    """One ``[[sites.goals]]`` entry: a pageview path pattern (``*`` matches anything) or an
    event name. The reports treat it like a goal saved through ``POST /api/v1/goals``."""

    name: Annotated[str, msgspec.Meta(min_length=1, max_length=100, pattern=r"^[^\x00-\x1f]*$")]
    kind: Literal["page", "event"]
    match: Annotated[str, msgspec.Meta(min_length=1, max_length=500, pattern=r"^[^\x00-\x1f]*$")]


class SiteConfig(ConfigStruct, frozen=True):
    """One ``[[sites]]`` entry."""

    id: SiteId
    #: Hostnames allowed to send hits: exact names and ``*.example.com`` wildcards.
    hostnames: Annotated[tuple[Hostname, ...], msgspec.Meta(min_length=1)]
    #: IANA time zone of the site's reports and daily counters.
    timezone: str = "UTC"
    #: SHA-256 (hex) of the batch-API ingest token; the token itself is never stored.
    ingest_token_sha256: TokenHash | None = None
    consent: SitePolicy = SitePolicy()
    #: Goals of the site's reports, beside those defined through the API.
    goals: tuple[GoalConfig, ...] = ()

    def __post_init__(self) -> None:
        names = [goal.name for goal in self.goals]
        if len(set(names)) != len(names):
            raise ValueError("goals: two goals share a name")
        try:
            zoneinfo.ZoneInfo(self.timezone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"timezone: unknown IANA time zone {self.timezone!r}") from exc

    def __repr__(self) -> str:
        token = "<redacted>" if self.ingest_token_sha256 else None
        return (
            f"SiteConfig(id={self.id!r}, hostnames={self.hostnames!r}, timezone={self.timezone!r}, "
            f"ingest_token_sha256={token}, consent={self.consent!r})"
        )

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.timezone)

    def token_matches(self, token: str) -> bool:
        if self.ingest_token_sha256 is None:
            return False
        digest = hashlib.sha256(token.encode("utf-8")).hexdigest()
        return hmac.compare_digest(digest, self.ingest_token_sha256)


class ConfigFile(ConfigStruct, frozen=True):
    """The whole of ``mesure.toml``."""

    #: ``sqlite`` (default), ``clickhouse://user@host:8123/db`` or ``chdb:///path``.
    storage: str = "sqlite"
    #: Declared location of the ClickHouse hosts, shown in the register and export manifests.
    storage_location: str | None = None
    server: ServerConfig = ServerConfig()
    sites: tuple[SiteConfig, ...] = ()


class Config(msgspec.Struct, frozen=True, kw_only=True):
    """The running configuration: the file, the overrides and where the data lives."""

    data_dir: Path
    server: ServerConfig
    sites: tuple[SiteConfig, ...]
    #: ClickHouse holding events and visits; ``None``: everything in SQLite.
    clickhouse: ClickHouseTarget | None = None
    storage_location: str | None = None

    @property
    def database_path(self) -> Path:
        return self.data_dir / DATABASE_FILE

    @property
    def keys_dir(self) -> Path:
        return self.data_dir / KEYS_DIR

    @property
    def audit_path(self) -> Path:
        return self.data_dir / AUDIT_FILE

    def site(self, site_id: str) -> SiteConfig | None:
        for site in self.sites:
            if site.id == site_id:
                return site
        return None


def token_sha256(token: str) -> str:
    """The value of ``ingest-token-sha256`` for ``token``."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def load_config(data_dir: Path, environ: Mapping[str, str]) -> Config:
    """Read ``data_dir/mesure.toml`` and apply ``MESURE_*`` server overrides from ``environ``."""
    path = data_dir / CONFIG_FILE
    try:
        raw = path.read_bytes()
    except FileNotFoundError as exc:
        raise ConfigError("file not found (run `mesure init`)", path=path) from exc
    try:
        data = msgspec.toml.decode(raw)
    except msgspec.DecodeError as exc:
        raise ConfigError(f"not valid TOML: {exc}", path=path) from exc
    return config_from_mapping(data, data_dir=data_dir, environ=environ, source=path)


def config_from_mapping(
    data: Any, *, data_dir: Path, environ: Mapping[str, str], source: Path | str
) -> Config:
    """Validate an already parsed ``mesure.toml`` document (tests build configs this way too)."""
    try:
        parsed = msgspec.convert(data, ConfigFile)
    except msgspec.ValidationError as exc:
        message, key = _split_path(str(exc))
        raise ConfigError(message, path=source, key=key) from exc
    seen: set[str] = set()
    for index, site in enumerate(parsed.sites):
        if site.id in seen:
            raise ConfigError(
                f"duplicate site id {site.id!r}", path=source, key=f"sites[{index}].id"
            )
        seen.add(site.id)
    server = _apply_environ(parsed.server, environ)
    try:
        clickhouse = parse_storage(parsed.storage, environ)
    except ValueError as exc:
        raise ConfigError(str(exc), path=source, key="storage") from None
    return Config(
        data_dir=data_dir,
        server=server,
        sites=parsed.sites,
        clickhouse=clickhouse,
        storage_location=parsed.storage_location,
    )


def _apply_environ(server: ServerConfig, environ: Mapping[str, str]) -> ServerConfig:
    overrides: dict[str, str] = {}
    for field in server.__struct_fields__:
        name = ENV_PREFIX + field.upper()
        if name in environ:
            overrides[field.replace("_", "-")] = environ[name]
    if not overrides:
        return server
    merged = {**msgspec.to_builtins(server), **overrides}
    try:
        return msgspec.convert(merged, ServerConfig, strict=False)
    except msgspec.ValidationError as exc:
        message, key = _split_path(str(exc))
        env_key = ENV_PREFIX + (key or "").replace("-", "_").upper()
        raise ConfigError(message, path="environment", key=env_key) from exc


def _split_path(message: str) -> tuple[str, str | None]:
    """Split msgspec's ``"… - at `$.a.b`"`` into the message and the dotted key ``a.b``."""
    marker = " - at `$"
    if marker not in message:
        return message, None
    text, _, path = message.rpartition(marker)
    key = path.rstrip("`").lstrip(".")
    return text, key or None
