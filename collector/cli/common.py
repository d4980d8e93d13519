"""What every ``mesure`` command shares: loading the configuration, with exit code 2 on error."""

from __future__ import annotations

import os
from pathlib import Path

import click

from collector.config import Config, load_config
from collector.errors import ConfigError
from collector.privacy.verify import Verification

#: The ``--data`` option of every command (``MESURE_DATA``).
data_option = click.option(
    "--data",
    "data_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default="mesure-data",
    show_default=True,
    envvar="MESURE_DATA",
    help="Data directory: mesure.toml, keys, database, audit log.",
)


class ConfigProblem(click.ClickException):
    """An invalid ``mesure.toml`` (or ``MESURE_*`` variable): the message names file and key."""

    exit_code = 2


def load(data_dir: Path) -> Config:
    """The configuration of ``data_dir``; a :class:`ConfigError` exits with code 2."""
    try:
        return load_config(data_dir.resolve(), os.environ)
    except ConfigError as exc:
        raise ConfigProblem(str(exc)) from exc


def report_verification(result: Verification, what: str) -> None:
    """Print each check and the verdict; exit status 1 when ``what`` did not verify."""
    for line in result.checked:
        click.echo(f"ok       {line}")
    for line in result.problems:
        click.echo(f"FAILED   {line}")
    click.echo(f"{what} verified" if result.ok else f"{what} NOT verified")
    if not result.ok:
        raise SystemExit(1)
