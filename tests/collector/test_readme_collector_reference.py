"""The README documents every config key, every wire-format key and every CLI command."""

from __future__ import annotations

import re
from pathlib import Path

import click
import msgspec
import pytest

from collector.cli import main
from collector.config import ServerConfig, SiteConfig
from collector.wire import BatchEventIn
from consent.site_policy import SitePolicy

README = Path(__file__).resolve().parents[2] / "README.md"


def _section() -> str:
    text = README.read_text()
    match = re.search(r"<!-- section:collector -->(.*)<!-- /section:collector -->", text, re.S)
    assert match is not None
    return match.group(1)


def _keys(struct: type[msgspec.Struct]) -> list[str]:
    return list(
        msgspec.structs.fields(struct)[i].encode_name for i in range(len(struct.__struct_fields__))
    )


@pytest.mark.parametrize("struct", [ServerConfig, SiteConfig, SitePolicy], ids=lambda s: s.__name__)
def test_every_config_key_is_in_the_reference(struct: type[msgspec.Struct]) -> None:
    section = _section()
    missing = [key for key in _keys(struct) if f"| `{key}` |" not in section and key != "consent"]
    assert missing == []


def test_every_wire_key_is_in_the_table() -> None:
    section = _section()
    documented = set(re.findall(r"^\| `([a-z_]+)`(?:, `([a-z_]+)`)? \|", section, re.M))
    names = {name for pair in documented for name in pair if name}
    assert set(BatchEventIn.__struct_fields__) <= names


def _command_paths(group: click.Group, prefix: str = "mesure") -> list[str]:
    paths = []
    for name, command in sorted(group.commands.items()):
        paths.append(f"{prefix} {name}")
        if isinstance(command, click.Group):
            paths += _command_paths(command, f"{prefix} {name}")
    return paths


def test_every_cli_command_is_documented() -> None:
    section = _section()
    for command in ("init", "serve", "check", "snippet"):
        assert command in main.commands
        assert f"`mesure {command}" in section
    text = README.read_text()
    missing = [path for path in _command_paths(main) if f"`{path}" not in text]
    assert missing == []


def test_the_two_commands_at_the_top_and_ci() -> None:
    """README's first two commands: install and start; install the test needs and run the whole
    suite, which is exactly what ``.ci/run`` runs."""
    top = README.read_text().split("<!-- section:", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)\n```", top, re.S)
    assert blocks == [
        "python3 -m venv .venv && .venv/bin/pip install --require-hashes -r requirements/app.txt"
        " && .venv/bin/python -m collector serve",
        "bash tests/setup.sh && .venv/bin/python -m pytest",
    ]
    ci = (README.parent / ".ci" / "run").read_text().strip().splitlines()
    assert ci[-1] == blocks[1]
