"""Helpers of the privacy tests: a data directory with a real ``mesure.toml``, a live collector
on it, hits sent over HTTP, the privacy CLI through click's runner, a raw-identifier scan."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result

from collector.cli.main import main as cli
from collector.config import Config, load_config
from collector.storage.sqlite.events import open_storage
from tests.support import ROOT, LiveServer, browser_client, mesure_command

SITE = "shop"
PAGE = "https://shop.example/account"


def write_data_dir(
    data_dir: Path,
    consent: Mapping[str, Any] | None = None,
    server: Mapping[str, Any] | None = None,
) -> Config:
    """``data_dir/mesure.toml`` with a ``[server]`` table, the site ``shop`` and its
    ``[sites.consent]`` table."""
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    lines = [
        "[server]",
        *(f"{key} = {json.dumps(value)}" for key, value in (server or {}).items()),
        "",
        "[[sites]]",
        f'id = "{SITE}"',
        'hostnames = ["shop.example", "127.0.0.1"]',
        "",
        "[sites.consent]",
        *(f"{key} = {json.dumps(value)}" for key, value in (consent or {}).items()),
    ]
    (data_dir / "mesure.toml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    config = load_config(data_dir, {})
    open_storage(config.database_path).close()
    return config


def send(server: LiveServer, *hits: Mapping[str, Any]) -> None:
    with browser_client(server.url) as client:
        for fields in hits:
            response = client.post("/api/hit", json={"site": SITE, "url": PAGE, **fields})
            assert response.status_code == 202, response.text


def run(data_dir: Path, *args: str, expect: int = 0) -> str:
    """Run ``mesure ARGS --data DATA`` (``--data`` goes to the innermost command)."""
    result: Result = CliRunner().invoke(cli, [*args, "--data", str(data_dir)])
    assert result.exit_code == expect, (result.output, result.exception)
    return result.output


def events(config: Config) -> list[dict[str, Any]]:
    storage = open_storage(config.database_path, migrate=False)
    try:
        return storage.events()
    finally:
        storage.close()


def scan(root: Path, needles: Mapping[str, str]) -> list[tuple[str, str]]:
    """``(file, needle name)`` for every raw identifier found in any file under ``root``."""
    found = []
    for path in root.rglob("*"):
        if path.is_file():
            content = path.read_bytes()
            for name, needle in needles.items():
                for encoded in (needle.encode(), needle.encode("utf-16-le")):
                    if encoded in content:
                        found.append((str(path.relative_to(root)), name))
    return found


def run_mesure(data: Path, *args: str, expect: int = 0) -> str:
    """``mesure ARGS --data DATA`` as its own process (the real command line); its output."""
    done = subprocess.run(
        mesure_command(*args, "--data", str(data)),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == expect, (args, done.stdout, done.stderr)
    return done.stdout
