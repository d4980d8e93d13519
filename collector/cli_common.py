"""What every ``mesure`` command shares: loading the configuration, with exit code 2 on error."""

from __future__ import annotations

import os
from pathlib import Path

import click

from collector.config import Config, load_config
from collector.errors import ConfigError

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
