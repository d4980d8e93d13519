"""Country of an IP address, from a local MaxMind-format database the owner provides.

Nothing is downloaded: the owner points ``geo-database`` at a file such as DB-IP's free
"IP to Country Lite" or MaxMind's GeoLite2 Country. Only the ISO 3166-1 alpha-2 country code is
read, even from a city database, and nothing is cached: an IP address must not outlive the
request that carried it (docs/design.md §4), and a lookup costs microseconds anyway.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from types import TracebackType
from typing import Any

import maxminddb


class GeoLookup:
    """Looks up countries; built by :meth:`open`, thread-safe, closed by :meth:`close`."""

    def __init__(self, reader: Any | None) -> None:
        self._reader = reader

    @classmethod
    def open(cls, path: Path | None) -> GeoLookup:
        """Open the database at ``path``; ``None`` gives a lookup that always answers ``None``.

        Raises ``ValueError`` naming the file when it is missing or not a MaxMind DB.
        """
        if path is None:
            return cls(None)
        try:
            return cls(maxminddb.open_database(str(path)))
        except (OSError, maxminddb.InvalidDatabaseError, ValueError) as error:
            raise ValueError(f"cannot open geo database {path}: {error}") from None

    def country(self, ip: str) -> str | None:
        """ISO 3166-1 alpha-2 code of ``ip``; ``None`` if unknown, malformed or no database."""
        if self._reader is None:
            return None
        try:
            address = ipaddress.ip_address(ip.strip())
        except (ValueError, AttributeError):
            return None
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        try:
            record = self._reader.get(address)
        except (ValueError, maxminddb.InvalidDatabaseError):
            # An IPv6 address against an IPv4-only database, or a corrupt record.
            return None
        return _iso_code(record)

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None

    def __enter__(self) -> GeoLookup:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def _iso_code(record: object) -> str | None:
    if not isinstance(record, dict):
        return None
    # GeoLite2 and DB-IP put the visitor's country in "country"; anycast and satellite ranges
    # may only have the "registered_country" of the network's owner.
    for key in ("country", "registered_country"):
        section = record.get(key)
        if isinstance(section, dict):
            code = section.get("iso_code")
            if isinstance(code, str) and len(code) == 2 and code.isascii() and code.isalpha():
                return code.upper()
    return None
