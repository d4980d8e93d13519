"""What every privacy tool works on: the configuration, the audit log, the key store, a clock.

Built once per CLI command or per request; nothing here reads the environment or the clock by
itself.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import msgspec

from collector.audit import AuditLog
from collector.config import Config
from collector.errors import PrivacyToolError
from collector.keys import KeyStore
from collector.storage import prepare

_PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


class Residency(msgspec.Struct, frozen=True, kw_only=True):
    """Where the data lives, as configured: shown in the register and every export manifest."""

    #: The jurisdiction the owner commits to keep the data in, e.g. ``eu``.
    residency: str | None
    #: The host's declared location, e.g. ``Paris, France (OVH, GRA7)``.
    host_location: str | None
    #: Mesure's own part, true by construction: it opens no outbound connection.
    outbound_connections: str = "none: Mesure opens no outbound network connection"


@dataclass(frozen=True)
class Instance:
    config: Config
    audit: AuditLog
    keys: KeyStore
    clock: Callable[[], datetime]

    @classmethod
    def open(cls, config: Config, clock: Callable[[], datetime]) -> Instance:
        """Open the audit log and key store (refusing key files others can read) and make sure
        the database exists and is migrated."""
        config.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        audit = AuditLog(config.audit_path, clock)
        keys = KeyStore.open(config.keys_dir, audit, [site.id for site in config.sites])
        prepare(config)
        return cls(config=config, audit=audit, keys=keys, clock=clock)

    def require_site(self, site: str) -> None:
        if self.config.site(site) is None:
            known = ", ".join(s.id for s in self.config.sites) or "none"
            raise PrivacyToolError(f"unknown site {site!r} (configured: {known})")


def residency(config: Config) -> Residency:
    """The ``residency`` and ``host-location`` keys of ``[server]`` (``None`` when not set), and
    the one outbound connection a networked ClickHouse storage means."""
    residency, location = config.server.residency, config.server.host_location
    target = config.clickhouse
    if target is not None and not target.embedded:
        # Events live on the owner's ClickHouse hosts: the one connection Mesure opens.
        stored = config.storage_location or "location not declared"
        return Residency(
            residency=residency,
            host_location=location,
            outbound_connections=f"only to the owner's ClickHouse storage at {target.host}:"
            f"{target.port} ({stored}); none elsewhere",
        )
    return Residency(residency=residency, host_location=location)


def mesure_version() -> str:
    try:
        return importlib.metadata.version("mesure")
    except importlib.metadata.PackageNotFoundError:
        # Running from a work tree: the version is the one being developed.
        try:
            project = msgspec.toml.decode(_PYPROJECT.read_bytes())
            return str(project["project"]["version"])
        except (OSError, KeyError, msgspec.DecodeError):
            return "unknown"
