"""``mesure serve``: the collector under uvicorn, in one process or several workers."""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import click
import uvicorn
from starlette.types import ASGIApp

from collector.audit import AuditLog
from collector.cli import accounts
from collector.cli.common import ConfigProblem, data_option, load
from collector.cli.site import create_data_directory, embed_tag
from collector.config import CONFIG_FILE, DEFAULT_ORIGIN, load_config
from collector.datadir import DEMO_SITE, audit_config_change
from collector.errors import ConfigError, KeyFileError, WorkersFailedError
from collector.ingest.parsers import agents
from collector.ingest.ratelimit import SharedCounters
from collector.keys import KeyStore
from collector.storage import prepare
from collector.web.app import create_app
from collector.web.server import UVICORN_SETTINGS, run_server
from collector.web.workers import default_count as default_workers
from collector.web.workers import serve as run_workers


def _now() -> datetime:
    return datetime.now(UTC)


@click.command()
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
    data_dir = data_dir.resolve()
    if not (data_dir / CONFIG_FILE).exists():
        click.echo(f"No {CONFIG_FILE} in {data_dir}: initializing it with a demo site.")
        demo = create_data_directory(data_dir, [DEMO_SITE])
        password = accounts.add_demo_owner(demo)
        click.echo(
            f"Dashboard account {accounts.DEMO_OWNER}, password {password} "
            "(shown once; change it under Account)"
        )
    config = load(data_dir)
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
    audit_config_change(audit, data_dir / CONFIG_FILE)
    try:
        notices = prepare(config)
    except ConfigError as exc:
        raise ConfigProblem(str(exc)) from exc
    for notice in notices:
        click.echo(notice)
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
        click.echo(embed_tag(site, origin))
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

    # ua-parser's matchers built before the workers are forked: they share these pages instead
    # of each holding a copy (ingest benchmark, two workers: PSS 172 → 142 MB).
    agents.parse("Mozilla/5.0 (X11; Linux x86_64; rv:127.0) Gecko/20100101 Firefox/127.0")

    def make_app(counters: SharedCounters, index: int) -> ASGIApp:
        config = load_config(data_dir, os.environ)
        # One worker runs the start-up and daily retention, not each of them.
        return create_app(config, counters=counters, runs_retention=index == 0)

    try:
        run_workers(make_app, host=host, port=port, workers=workers, settings=UVICORN_SETTINGS)
    except WorkersFailedError as exc:
        raise click.ClickException(str(exc)) from None


COMMANDS: Sequence[click.Command] = [serve]
