"""The ``mesure`` command: ``init``, ``serve``, ``check`` and ``snippet`` here; the accounts
(``user``, ``token``: :mod:`collector.cli.accounts`), the privacy officer's tools (``export``,
``dsar``, ``retention``: :mod:`collector.cli.privacy`; ``keys``, ``audit``, ``register``:
:mod:`collector.cli.keys`) and ``backup``, ``restore`` (:mod:`collector.cli.backup`) are
registered at the end of this module.

Options also read ``MESURE_*`` environment variables (``MESURE_DATA``, ``MESURE_PORT``, …).
Configuration errors exit with code 2, naming the key and the file.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click

import consent.cnil as cnil
from collector.audit import AuditLog
from collector.cli import accounts as cli_admin
from collector.cli import backup as cli_backup
from collector.cli import keys as cli_keys
from collector.cli import privacy as cli_privacy
from collector.cli.common import ConfigProblem, data_option, load
from collector.config import (
    CONFIG_FILE,
    DEFAULT_ORIGIN,
    Config,
    SiteConfig,
    load_config,
    token_sha256,
)
from collector.errors import ConfigError, KeyFileError
from collector.keys import KeyStore
from collector.storage import prepare
from collector.web.server import UVICORN_SETTINGS, run_server

if TYPE_CHECKING:
    from starlette.types import ASGIApp

    from collector.ingest.ratelimit import SharedCounters

DEMO_SITE = "localhost"


def _now() -> datetime:
    return datetime.now(UTC)


@click.group()
def main() -> None:
    """Mesure: privacy-first, self-hosted web analytics."""


@main.command()
@data_option
@click.option("--site", "domains", multiple=True, help="A site's domain (repeatable).")
def init(data_dir: Path, domains: tuple[str, ...]) -> None:
    """Create a data directory: documented mesure.toml, keys (0600), database."""
    if (data_dir / CONFIG_FILE).exists():
        raise click.ClickException(f"{data_dir / CONFIG_FILE} already exists")
    config = initialize(data_dir, list(domains) or [DEMO_SITE], echo=click.echo)
    _print_embed_tags(config)


@main.command()
@data_option
@click.option("--host", default="127.0.0.1", show_default=True, envvar="MESURE_HOST")
@click.option("--port", default=8000, show_default=True, type=int, envvar="MESURE_PORT")
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    envvar="MESURE_WORKERS",
    help="Worker processes [default: one per core this process may use, at most 4; "
    "1 with ClickHouse, and off Linux]",
)
def serve(data_dir: Path, host: str, port: int, workers: int | None) -> None:
    """Run the collector (a missing data directory is initialized with a demo site)."""
    import uvicorn

    from collector.web.workers import WorkersFailed
    from collector.web.workers import default_count as default_workers
    from collector.web.workers import serve as run_workers

    data_dir = data_dir.resolve()
    if not (data_dir / CONFIG_FILE).exists():
        click.echo(f"No {CONFIG_FILE} in {data_dir}: initializing it with a demo site.")
        demo = initialize(data_dir, [DEMO_SITE], echo=click.echo)
        password = cli_admin.add_demo_owner(demo)
        click.echo(
            f"Dashboard account {cli_admin.DEMO_OWNER}, password {password} "
            "(shown once; change it under Account)"
        )
    config = _load(data_dir)
    if workers is None:
        workers = default_workers(clickhouse=config.clickhouse is not None)
    if config.clickhouse is not None and workers != 1:
        # The writer keeps the open visits in memory (and chDB allows one process per path).
        raise ConfigProblem("ClickHouse storage runs with one worker process (--workers 1)")
    audit = AuditLog(config.audit_path, _now)
    try:
        KeyStore.open(config.keys_dir, audit, [site.id for site in config.sites]).daily_keys(_now())
    except KeyFileError as exc:
        raise ConfigProblem(str(exc)) from exc
    _audit_config_change(audit, data_dir / CONFIG_FILE)
    try:
        prepare(config)
    except ConfigError as exc:
        raise ConfigProblem(str(exc)) from exc
    listening = f"http://{host}:{port}"
    click.echo(f"Mesure listening on {listening} ({workers} worker(s))")
    click.echo(f"Data directory: {data_dir}")
    click.echo(
        f"Dashboard: {listening}/ (accounts: mesure user add EMAIL --role owner --data {data_dir})"
    )
    # An origin left at its default means "where this server listens".
    origin = listening if config.server.origin == DEFAULT_ORIGIN else config.server.origin
    for site in config.sites:
        click.echo(f"\nEmbed in every page of {site.id}:\n")
        click.echo(_embed_tag(site, origin))
    os.environ["MESURE_DATA"] = str(data_dir)
    if workers == 1:
        run_server(
            uvicorn.Config(
                "collector.web.app:app_from_env",
                factory=True,
                host=host,
                port=port,
                **UVICORN_SETTINGS,
            )
        )
        return

    # Imported, and ua-parser's matchers built, before the workers are forked: they share these
    # pages instead of each holding a copy (ingest benchmark, two workers: PSS 172 → 142 MB).
    from collector.ingest.parsers import agents
    from collector.web.app import create_app

    agents.parse("Mozilla/5.0 (X11; Linux x86_64; rv:127.0) Gecko/20100101 Firefox/127.0")

    def make_app(counters: SharedCounters, index: int) -> ASGIApp:
        config = load_config(data_dir, os.environ)
        # One worker runs the start-up and daily retention, not each of them.
        return create_app(config, counters=counters, runs_retention=index == 0)

    try:
        run_workers(make_app, host=host, port=port, workers=workers, settings=UVICORN_SETTINGS)
    except WorkersFailed as exc:
        raise click.ClickException(str(exc)) from None


@main.command()
@data_option
def check(data_dir: Path) -> None:
    """Check each site's consent configuration against the CNIL exemption conditions."""
    config = _load(data_dir)
    failed = False
    for site in config.sites:
        findings = cnil.check(site.consent)
        click.echo(f"Site {site.id}")
        click.echo(cnil.format_table(findings))
        failed = failed or any(finding.status == "fail" for finding in findings)
    if failed:
        raise SystemExit(1)


@main.command()
@data_option
@click.option("--site", "site_id", required=True, help="Site id.")
@click.option("--origin", default=None, help="Where the collector is reachable (default: config).")
def snippet(data_dir: Path, site_id: str, origin: str | None) -> None:
    """Print the tag to embed in every page of a site."""
    config = _load(data_dir)
    site = config.site(site_id)
    if site is None:
        raise click.ClickException(f"no site {site_id!r} in {data_dir / CONFIG_FILE}")
    click.echo(_embed_tag(site, origin or config.server.origin))


def initialize(
    data_dir: Path, domains: list[str], *, echo: Callable[[str], object] | None = None
) -> Config:
    """Write a commented ``mesure.toml`` for ``domains``, then create the keys and database."""
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    tokens = {domain.lower(): secrets.token_urlsafe(32) for domain in domains}
    path = data_dir / CONFIG_FILE
    path.write_text(config_template(tokens), encoding="utf-8")
    config = _load(data_dir)
    audit = AuditLog(config.audit_path, _now)
    audit.append("init", data_dir=str(data_dir))
    KeyStore.open(config.keys_dir, audit, [site.id for site in config.sites])
    _audit_config_change(audit, path)
    prepare(config)
    if echo is not None:
        echo(f"Created {data_dir} with mesure.toml, keys/ (0600), mesure.db, audit.log")
        for site_id, token in tokens.items():
            echo(f"Batch ingest token of {site_id} (shown once; only its hash is kept): {token}")
    return config


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


def _load(data_dir: Path) -> Config:
    return load(data_dir)


def _audit_config_change(audit: AuditLog, path: Path) -> None:
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    last = audit.last("config.change")
    if last is None or last.detail.get("sha256") != digest:
        audit.append("config.change", file=str(path), sha256=digest)


def snippet_attributes(site: SiteConfig) -> dict[str, str]:
    """The ``data-*`` attributes that make the snippet apply ``site``'s consent policy in the
    browser too: without them it would, say, store an id before consent on a site that does not
    use the exemption, which the collector cannot undo."""
    policy = site.consent
    attributes: dict[str, str] = {}
    if not policy.exemption:
        attributes["default-mode"] = "denied"
    if not policy.honour_gpc:
        attributes["ignore-gpc"] = ""
    if policy.tcf_vendor_id is not None:
        attributes["tcf-vendor"] = str(policy.tcf_vendor_id)
    return attributes


def _embed_tag(site: SiteConfig, origin: str) -> str:
    import sdk_snippet

    try:
        return sdk_snippet.embed_tag(site.id, origin, snippet_attributes(site))
    except FileNotFoundError as exc:
        raise click.ClickException(
            "the snippet is not built (sdk_snippet/dist/m.js is missing): "
            "run `npm ci && node build.mjs` in sdk_snippet/"
        ) from exc


def _print_embed_tags(config: Config) -> None:
    for site in config.sites:
        click.echo(f"\nEmbed in every page of {site.id}:\n")
        click.echo(_embed_tag(site, config.server.origin))


for _command in [
    *cli_admin.COMMANDS,
    *cli_privacy.COMMANDS,
    *cli_keys.COMMANDS,
    *cli_backup.COMMANDS,
]:
    main.add_command(_command)


def _register_storage_commands() -> None:
    # Imported here: the module builds on this one's options.
    from collector.cli.clickhouse import COMMANDS

    for command in COMMANDS:
        main.add_command(command)


_register_storage_commands()
