"""``mesure user …`` and ``mesure token …``: prompted passwords, grants, tokens shown once and
stored only as SHA-256 digests, revocation."""

from __future__ import annotations

import hashlib
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from collector import auth
from collector.cli.accounts import COMMANDS
from collector.storage.sqlite.accounts import auth_database

CONFIG = """
[[sites]]
id = "example"
hostnames = ["example.com"]

[[sites]]
id = "other"
hostnames = ["other.example"]
"""
PASSWORD = "a long enough password"


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    (tmp_path / "mesure.toml").write_text(CONFIG)
    return tmp_path


def run(data_dir: Path, *args: str, stdin: str | None = None) -> tuple[int, str]:
    group = click.Group("mesure", commands=COMMANDS)
    result = CliRunner().invoke(group, [*args, "--data", str(data_dir)], input=stdin)
    return result.exit_code, result.output


def test_user_add_prompts_for_the_password_and_lists(data_dir: Path) -> None:
    code, output = run(
        data_dir,
        "user",
        "add",
        "Ana@Example.test",
        "--role",
        "analyst",
        "--site",
        "example",
        stdin=f"{PASSWORD}\n{PASSWORD}\n",
    )
    assert code == 0, output
    assert "added ana@example.test (analyst; example)" in output
    assert PASSWORD not in output.split("\n")[-2]
    code, output = run(
        data_dir,
        "user",
        "add",
        "o@example.test",
        "--role",
        "owner",
        stdin=f"{PASSWORD}\n{PASSWORD}\n",
    )
    assert code == 0, output
    code, output = run(data_dir, "user", "list")
    assert output.splitlines() == [
        "ana@example.test\tanalyst\texample",
        "o@example.test\towner\tall sites",
    ]
    with auth_database(data_dir / "mesure.db") as db:
        assert auth.login(db, "ana@example.test", PASSWORD, 0) is not None


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (("--role", "analyst", "--site", "nowhere"), f"{PASSWORD}\n{PASSWORD}\n", "unknown site"),
        (("--role", "root"), f"{PASSWORD}\n{PASSWORD}\n", "'root' is not one of"),
        (("--role", "dpo"), "short\nshort\n", "at least 10 characters"),
    ],
    ids=["unknown-site", "unknown-role", "short-password"],
)
def test_user_add_refuses(data_dir: Path, args: tuple[str, ...], stdin: str, message: str) -> None:
    code, output = run(data_dir, "user", "add", "x@example.test", *args, stdin=stdin)
    assert code != 0
    assert message in output


def test_duplicate_user_and_password_change(data_dir: Path) -> None:
    answer = f"{PASSWORD}\n{PASSWORD}\n"
    assert run(data_dir, "user", "add", "d@example.test", "--role", "dpo", stdin=answer)[0] == 0
    code, output = run(data_dir, "user", "add", "d@example.test", "--role", "dpo", stdin=answer)
    assert (code, "already exists" in output) == (1, True)
    new = "another long password"
    code, output = run(data_dir, "user", "passwd", "d@example.test", stdin=f"{new}\n{new}\n")
    assert code == 0, output
    with auth_database(data_dir / "mesure.db") as db:
        assert auth.login(db, "d@example.test", PASSWORD, 0) is None
        assert auth.login(db, "d@example.test", new, 0) is not None
    code, output = run(data_dir, "user", "passwd", "nobody@example.test", stdin=f"{new}\n{new}\n")
    assert (code, "no account" in output) == (1, True)


def test_token_shown_once_stored_hashed_and_revocable(data_dir: Path) -> None:
    code, output = run(
        data_dir, "token", "create", "--role", "analyst", "--site", "other", "--name", "grafana"
    )
    assert code == 0, output
    header, secret = output.strip().splitlines()
    assert header == "token 1 (grafana; analyst; other):"
    assert secret.startswith(auth.TOKEN_PREFIX)
    stored = (data_dir / "mesure.db").read_bytes()
    wal = data_dir / "mesure.db-wal"
    stored += wal.read_bytes() if wal.exists() else b""
    assert secret.encode() not in stored
    assert hashlib.sha256(secret.encode()).hexdigest().encode() in stored
    code, listing = run(data_dir, "token", "list")
    assert listing.splitlines() == ["1\tgrafana\tanalyst\tother\tactive"]
    with auth_database(data_dir / "mesure.db") as db:
        found = auth.authenticate(db, bearer=secret, session=None, now_ms=0)
        assert found is not None and (found.role, found.sites) == ("analyst", ("other",))
    assert run(data_dir, "token", "revoke", "1")[0] == 0
    assert run(data_dir, "token", "revoke", "1")[0] == 1
    assert run(data_dir, "token", "list")[1].splitlines() == ["1\tgrafana\tanalyst\tother\trevoked"]
    with auth_database(data_dir / "mesure.db") as db:
        assert auth.authenticate(db, bearer=secret, session=None, now_ms=0) is None
