"""The docs document every config key, every wire-format key and every CLI command, and the
README gives the two commands that CI runs."""

from __future__ import annotations

import re
from pathlib import Path

import click
import msgspec
import pytest

from collector.cli.main import main
from collector.config import ServerConfig, SiteConfig
from collector.ingest.wire import BatchEventIn
from consent.site_policy import SitePolicy

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
DOCS = ROOT / "docs"


def _page(name: str) -> str:
    return (DOCS / name).read_text(encoding="utf-8")


def _keys(struct: type[msgspec.Struct]) -> list[str]:
    return list(
        msgspec.structs.fields(struct)[i].encode_name for i in range(len(struct.__struct_fields__))
    )


@pytest.mark.parametrize("struct", [ServerConfig, SiteConfig, SitePolicy], ids=lambda s: s.__name__)
def test_every_config_key_is_in_the_reference(struct: type[msgspec.Struct]) -> None:
    section = _page("configuration.md")
    missing = [key for key in _keys(struct) if f"| `{key}` |" not in section and key != "consent"]
    assert missing == []


def test_every_wire_key_is_in_the_table() -> None:
    section = _page("ingest-api.md")
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
    section = _page("commands.md")
    for command in ("init", "serve", "check", "snippet"):
        assert command in main.commands
        assert f"`mesure {command}" in section
    text = "".join(page.read_text(encoding="utf-8") for page in sorted(DOCS.glob("*.md")))
    missing = [path for path in _command_paths(main) if f"`{path}" not in text]
    assert missing == []


def test_the_two_commands_at_the_top_and_ci() -> None:
    """README's first two commands: install and start; install the test needs and run the whole
    suite, which is exactly what ``.ci/run`` runs."""
    blocks = re.findall(r"```sh\n(.*?)\n```", README.read_text(encoding="utf-8"), re.S)
    assert blocks[:2] == [
        "python3 -m venv .venv && .venv/bin/pip install --require-hashes -r requirements/app.txt"
        " && .venv/bin/python -m collector serve",
        "bash tests/setup.sh && .venv/bin/python -m pytest",
    ]
    ci = (ROOT / ".ci" / "run").read_text().strip().splitlines()
    assert ci[-1] == blocks[1]
