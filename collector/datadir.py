"""The data directory: its creation (``mesure init``, and ``mesure serve`` on a missing one) and
the documented ``mesure.toml`` it starts with.

Kept out of the command line so that examples and tests create a data directory exactly as the
commands do, without going through click.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from collector.audit import AuditLog
from collector.config import CONFIG_FILE, Config, load_config, token_sha256
from collector.keys import KeyStore
from collector.storage import prepare

#: The site a data directory created without ``--site`` measures (``mesure serve`` on a demo).
DEMO_SITE = "localhost"


def _now() -> datetime:
    return datetime.now(UTC)


def initialize(
    data_dir: Path, domains: list[str], *, echo: Callable[[str], object] | None = None
) -> Config:
    """Write a commented ``mesure.toml`` for ``domains``, then create the keys and database.

    Raises :class:`~collector.errors.ConfigError` (or ``KeyFileError``) as loading does.
    """
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    tokens = {domain.lower(): secrets.token_urlsafe(32) for domain in domains}
    path = data_dir / CONFIG_FILE
    path.write_text(config_template(tokens), encoding="utf-8")
    config = load_config(data_dir.resolve(), os.environ)
    audit = AuditLog(config.audit_path, _now)
    audit.append("init", data_dir=str(data_dir))
    KeyStore.open(config.keys_dir, audit, [site.id for site in config.sites])
    audit_config_change(audit, path)
    prepare(config)
    if echo is not None:
        echo(f"Created {data_dir} with mesure.toml, keys/ (0600), mesure.db, audit.log")
        for site_id, token in tokens.items():
            echo(f"Batch ingest token of {site_id} (shown once; only its hash is kept): {token}")
    return config


def audit_config_change(audit: AuditLog, path: Path) -> None:
    """Record ``path``'s hash in the audit log when it differs from the last one recorded."""
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    last = audit.last("config.change")
    if last is None or last.detail.get("sha256") != digest:
        audit.append("config.change", file=str(path), sha256=digest)


def config_template(tokens: dict[str, str]) -> str:
    """A documented ``mesure.toml`` with one ``[[sites]]`` entry per domain."""
    lines = [
        "# Mesure configuration. Every key is described in docs/configuration.md.",
        "",
        "[server]",
        "# Public origin of the collector, used in the printed embed tags.",
        'origin = "http://127.0.0.1:8000"',
        "# Hits waiting to be written; beyond that the collector answers 503 + Retry-After.",
        "queue-size = 10000",
        "# Hits per minute from one client (keyed by a keyed hash of its IP) and per site.",
        "client-rate-per-minute = 600",
        "site-rate-per-minute = 60000",
        "# Local MaxMind-format country database; Mesure never downloads anything.",
        '# geo-database = "/var/lib/mesure/GeoLite2-Country.mmdb"',
        "# Header with the client address when behind a reverse proxy.",
        '# client-ip-header = "x-forwarded-for"',
        "# Where the data is kept and where this host is, as you declare them: both are stated",
        "# in the register of processing (`mesure register`) and in every export manifest.",
        '# residency = "eu"',
        '# host-location = "Paris, France"',
        "# Days an export kept in the data directory (exports/) lives before retention deletes",
        "# it; an erasure deletes every kept export holding any of the erased rows at once.",
        "# exports-keep-days = 30",
    ]
    for domain, token in tokens.items():
        hostnames = [domain, "127.0.0.1"] if domain == DEMO_SITE else [domain, f"*.{domain}"]
        lines += [
            "",
            "[[sites]]",
            f"id = {json.dumps(domain)}",
            "# Hostnames allowed to send hits: exact names and *.example.com wildcards.",
            f"hostnames = {json.dumps(hostnames)}",
            'timezone = "UTC"',
            "# SHA-256 of the batch-API ingest token (the token is printed once by `mesure init`).",
            f'ingest-token-sha256 = "{token_sha256(token)}"',
            "",
            "[sites.consent]",
            "# Measure visitors without consent under the CNIL audience-measurement exemption.",
            "exemption = true",
            "# Sec-GPC: 1 makes a visitor opt out; DNT: 1 too when honour-dnt is true.",
            "honour-gpc = true",
            "honour-dnt = false",
            "# Mode of hits without any consent signal (noscript pixel, claim-less batch events).",
            'no-signal-mode = "exempt"',
            "# Properties an exempt hit may keep (each is flagged by `mesure check`).",
            "exempt-properties = []",
            "# Query parameters kept on stored URLs (campaign attribution, granted only).",
            'campaign-params = ["utm_source", "utm_medium", "utm_campaign", "utm_term", '
            '"utm_content"]',
            "# Lifetime of the client-side identifier in days (at most 395: 13 months).",
            "id-lifetime-days = 395",
            "# Retention in days of exempt/denied data (at most 760: 25 months) and granted data.",
            "retention-exempt-days = 760",
            "retention-granted-days = 760",
            '# Geolocation kept: "country" (from a local database) or "none".',
            'geo = "country"',
            '# privacy-policy-url = "https://example.com/privacy"',
        ]
    return "\n".join(lines) + "\n"
