"""The ``mesure`` command: the click group, and the commands of each family registered on it:
``init``, ``check``, ``snippet`` (:mod:`collector.cli.site`), ``serve``
(:mod:`collector.cli.serve`), the accounts (``user``, ``token``: :mod:`collector.cli.accounts`),
the privacy officer's tools (``export``, ``dsar``, ``retention``: :mod:`collector.cli.privacy`;
``keys``, ``audit``, ``register``: :mod:`collector.cli.keys`), ``backup`` and ``restore``
(:mod:`collector.cli.backup`), ``migrate`` and ``clickhouse`` (:mod:`collector.cli.clickhouse`).

The families never import this module: it imports them, so a command is registered once and
no import goes both ways.

Options also read ``MESURE_*`` environment variables (``MESURE_DATA``, ``MESURE_PORT``, …).
Configuration errors exit with code 2, naming the key and the file.
"""

from __future__ import annotations

import click

from collector.cli import accounts, backup, clickhouse, keys, privacy, serve, site, upgrade


@click.group()
def main() -> None:
    """Mesure: privacy-first, self-hosted web analytics."""


for _family in (site, serve, accounts, privacy, keys, backup, upgrade, clickhouse):
    for _command in _family.COMMANDS:
        main.add_command(_command)
