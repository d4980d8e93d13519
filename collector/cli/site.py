"""``mesure init``, ``check`` and ``snippet``: a data directory and its sites' embed tags."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import click

import consent.cnil as cnil
import sdk_snippet
from collector.cli.common import ConfigProblem, data_option, load
from collector.config import CONFIG_FILE, Config, SiteConfig
from collector.datadir import DEMO_SITE, initialize
from collector.errors import ConfigError


@click.command()
@data_option
@click.option("--site", "domains", multiple=True, help="A site's domain (repeatable).")
def init(data_dir: Path, domains: tuple[str, ...]) -> None:
    """Create a data directory: documented mesure.toml, keys (0600), database."""
    if (data_dir / CONFIG_FILE).exists():
        raise click.ClickException(f"{data_dir / CONFIG_FILE} already exists")
    config = create_data_directory(data_dir, list(domains) or [DEMO_SITE])
    for site in config.sites:
        click.echo(f"\nEmbed in every page of {site.id}:\n")
        click.echo(embed_tag(site, config.server.origin))


@click.command()
@data_option
def check(data_dir: Path) -> None:
    """Check each site's consent configuration against the CNIL exemption conditions."""
    config = load(data_dir)
    failed = False
    for site in config.sites:
        findings = cnil.check(site.consent)
        click.echo(f"Site {site.id}")
        click.echo(cnil.format_table(findings))
        failed = failed or any(finding.status == "fail" for finding in findings)
    if failed:
        raise SystemExit(1)


@click.command()
@data_option
@click.option("--site", "site_id", required=True, help="Site id.")
@click.option("--origin", default=None, help="Where the collector is reachable (default: config).")
def snippet(data_dir: Path, site_id: str, origin: str | None) -> None:
    """Print the tag to embed in every page of a site."""
    config = load(data_dir)
    site = config.site(site_id)
    if site is None:
        raise click.ClickException(f"no site {site_id!r} in {data_dir / CONFIG_FILE}")
    click.echo(embed_tag(site, origin or config.server.origin))


def create_data_directory(data_dir: Path, domains: list[str]) -> Config:
    """:func:`~collector.datadir.initialize`, printing what it made; exit code 2 on a bad key."""
    try:
        return initialize(data_dir, domains, echo=click.echo)
    except ConfigError as exc:
        raise ConfigProblem(str(exc)) from exc


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


def embed_tag(site: SiteConfig, origin: str) -> str:
    """The ``<script>`` tag of ``site``; a clear stop when the snippet was never built."""
    try:
        return sdk_snippet.embed_tag(site.id, origin, snippet_attributes(site))
    except FileNotFoundError as exc:
        raise click.ClickException(
            "the snippet is not built (sdk_snippet/dist/m.js is missing): "
            "run `npm ci && node build.mjs` in sdk_snippet/"
        ) from exc


COMMANDS: Sequence[click.Command] = [init, check, snippet]
