"""``mesure.toml`` loading, ``MESURE_*`` overrides, and the ``init``/``snippet`` commands."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from collector.cli.main import main
from collector.config import load_config
from collector.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]

VALID = """
[server]
queue-size = 50

[[sites]]
id = "example"
hostnames = ["example.com", "*.example.com"]
timezone = "Europe/Paris"
ingest-token-sha256 = "{token}"

[sites.consent]
exemption = false
"""


def mesure(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "collector", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )


def _write(data_dir: Path, text: str) -> None:
    data_dir.mkdir(exist_ok=True)
    (data_dir / "mesure.toml").write_text(text)


def test_valid_config_loads_with_environment_overrides(tmp_path: Path) -> None:
    _write(tmp_path, VALID.format(token="ab" * 32))
    config = load_config(tmp_path, {"MESURE_CLIENT_RATE_PER_MINUTE": "7"})
    site = config.site("example")
    assert site is not None
    assert (config.server.queue_size, config.server.client_rate_per_minute) == (50, 7)
    assert (site.timezone, site.consent.exemption) == ("Europe/Paris", False)
    assert "ab" * 32 not in repr(config)


@pytest.mark.parametrize(
    ("replace", "by", "key"),
    [
        ("queue-size = 50", 'queue-size = "many"', "server.queue-size"),
        ("queue-size = 50", "queue-size = 0", "server.queue-size"),
        ('"*.example.com"', '"Bad Host"', "sites[0].hostnames[1]"),
        ("Europe/Paris", "Mars/Olympus", "sites[0]"),
        ("exemption = false", "exemption = 'no'", "sites[0].consent.exemption"),
        ("exemption = false", "exemptoin = false", "sites[0].consent"),
        ('id = "example"', 'id = "Ex ample"', "sites[0].id"),
        ("[server]", "[servr]", None),
    ],
    ids=[
        "wrong-type",
        "out-of-range",
        "bad-hostname",
        "bad-timezone",
        "bad-bool",
        "typo-key",
        "bad-site-id",
        "unknown-table",
    ],
)
def test_invalid_config_names_the_key_and_the_file(
    tmp_path: Path, replace: str, by: str, key: str | None
) -> None:
    text = VALID.format(token="ab" * 32)
    assert replace in text
    _write(tmp_path, text.replace(replace, by))
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path, {})
    assert str(tmp_path / "mesure.toml") in str(caught.value)
    assert caught.value.key == key
    if key is None:
        assert "servr" in str(caught.value)


def test_invalid_environment_override_names_the_variable(tmp_path: Path) -> None:
    _write(tmp_path, VALID.format(token="ab" * 32))
    with pytest.raises(ConfigError, match="MESURE_QUEUE_SIZE"):
        load_config(tmp_path, {"MESURE_QUEUE_SIZE": "lots"})


def test_duplicate_site_id_is_refused(tmp_path: Path) -> None:
    text = VALID.format(token="ab" * 32)
    _write(tmp_path, text + '\n[[sites]]\nid = "example"\nhostnames = ["other.org"]\n')
    with pytest.raises(ConfigError, match=r"sites\[1\]\.id: duplicate site id"):
        load_config(tmp_path, {})


def test_init_creates_a_working_data_directory(tmp_path: Path) -> None:
    data = tmp_path / "data"
    result = mesure("init", "--data", str(data), "--site", "example.com", "--site", "shop.org")
    assert result.returncode == 0, result.stderr
    config = load_config(data, {})
    assert [site.id for site in config.sites] == ["example.com", "shop.org"]
    assert config.sites[0].hostnames == ("example.com", "*.example.com")
    keys = sorted(p.name for p in (data / "keys").iterdir())
    assert keys == [
        "daily",
        "example.com.client.json",
        "example.com.user.json",
        "shop.org.client.json",
        "shop.org.user.json",
    ]
    assert all(p.stat().st_mode & 0o077 == 0 for p in (data / "keys").rglob("*"))
    assert (data / "mesure.db").exists()
    assert 'data-site="example.com"' in result.stdout
    assert 'data-site="shop.org"' in result.stdout
    token = result.stdout.split("Batch ingest token of example.com")[1].split(": ")[1].split()[0]
    assert config.sites[0].token_matches(token)
    assert token not in (data / "mesure.toml").read_text()

    again = mesure("init", "--data", str(data))
    assert again.returncode == 1
    assert "already exists" in again.stderr


def test_snippet_prints_the_tag_and_bad_config_exits_2(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert mesure("init", "--data", str(data), "--site", "example.com").returncode == 0
    tag = mesure(
        "snippet",
        "--data",
        str(data),
        "--site",
        "example.com",
        "--origin",
        "https://stats.example.eu",
    )
    assert tag.returncode == 0
    assert tag.stdout.startswith('<script defer src="https://stats.example.eu/m.js"')
    unknown = mesure("snippet", "--data", str(data), "--site", "nope")
    assert unknown.returncode == 1

    toml = data / "mesure.toml"
    toml.write_text(toml.read_text().replace("honour-gpc = true", "honour-gpc = 3"))
    broken = mesure("snippet", "--data", str(data), "--site", "example.com")
    assert broken.returncode == 2
    assert f"{toml}: sites[0].consent.honour-gpc" in broken.stderr


def test_check_prints_the_cnil_table_and_fails_on_a_failing_condition(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert mesure("init", "--data", str(data), "--site", "example.com").returncode == 0
    passing = mesure("check", "--data", str(data))
    assert passing.returncode == 0, passing.stdout
    assert "Site example.com" in passing.stdout
    assert "retention" in passing.stdout and "FAIL" not in passing.stdout

    toml = data / "mesure.toml"
    toml.write_text(
        toml.read_text().replace("retention-exempt-days = 760", "retention-exempt-days = 900")
    )
    failing = mesure("check", "--data", str(data))
    assert failing.returncode == 1
    assert any(
        line.startswith("FAIL") and "retention-exempt-days" in line
        for line in failing.stdout.splitlines()
    )


@pytest.mark.parametrize(
    "command",
    [
        ["serve"],
        ["check"],
        ["snippet", "--site", "example.com"],
        ["register"],
        ["export", "--from", "2026-01-01", "--to", "2026-01-31", "--out", "unused"],
        ["dsar", "erase", "--site", "example.com", "--client-id", "abc"],
        ["retention", "run", "--dry-run"],
        ["keys", "list"],
        ["audit", "verify"],
        ["audit", "show"],
        ["user", "list"],
        ["token", "list"],
    ],
    ids=lambda command: " ".join(command[:2]),
)
def test_every_command_exits_2_naming_the_file_and_key_of_a_bad_config(
    tmp_path: Path, command: list[str]
) -> None:
    data = tmp_path / "data"
    _write(data, VALID.format(token="ab" * 32).replace("exemption = false", "exemption = 3"))
    result = CliRunner().invoke(main, [*command, "--data", str(data)])
    assert result.exit_code == 2, result.output
    assert f"{data / 'mesure.toml'}: sites[0].consent.exemption: Expected `bool`" in result.output


def test_the_printed_tag_carries_the_sites_consent_policy_for_the_browser(tmp_path: Path) -> None:
    data = tmp_path / "data"
    runner = CliRunner()
    made = runner.invoke(main, ["init", "--data", str(data), "--site", "example.com"])
    assert made.exit_code == 0, made.output
    plain = runner.invoke(main, ["snippet", "--data", str(data), "--site", "example.com"])
    assert 'data-site="example.com" integrity=' in plain.output  # the defaults need nothing

    toml = data / "mesure.toml"
    text = toml.read_text().replace("exemption = true", "exemption = false")
    text = text.replace("honour-gpc = true", "honour-gpc = false\ntcf-vendor-id = 755")
    toml.write_text(text)
    strict = runner.invoke(main, ["snippet", "--data", str(data), "--site", "example.com"])
    assert strict.exit_code == 0, strict.output
    # No exemption: the browser must not store an id before consent (data-default-mode=denied).
    assert (
        'data-site="example.com" data-default-mode="denied" data-ignore-gpc data-tcf-vendor="755" '
        'integrity="sha384-'
    ) in strict.output
