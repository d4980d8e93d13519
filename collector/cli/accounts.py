"""``mesure user …`` and ``mesure token …``: accounts and API tokens for the reports API.

Passwords are prompted for (never taken from the command line); an API token is printed once
and stored only as its SHA-256 digest. Every change is appended to the audit log, with the sites
it concerns (the account's grants before and after; none: every site), so that the privacy API
shows it only to those who see them. Disabling an account, changing its grants and removing it
end its sessions at once.
"""

from __future__ import annotations

import getpass
import secrets
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import click

from collector import auth
from collector.audit import AuditLog
from collector.cli.common import data_option, load
from collector.config import Config
from collector.errors import DuplicateUserError
from collector.storage import accounts_for
from collector.storage.ports import AccountStore
from collector.storage.rows import AccountRow

role_option = click.option(
    "--role", type=click.Choice(auth.ROLES), required=True, help="owner, analyst or dpo."
)
site_option = click.option(
    "--site", "sites", multiple=True, help="Grant one site (repeatable); none grants all sites."
)


def _now_ms() -> int:
    return int(datetime.now(UTC).timestamp() * 1000)


def _audit(config: Config, action: str, *grants: Sequence[str], **detail: str) -> None:
    """Record an account or token change (who ran the command: the OS user). ``grants``: the
    site grants involved (before and after a change); an empty one means every site."""
    concerns = None if not grants or not all(grants) else sorted({s for g in grants for s in g})
    log = AuditLog(config.audit_path, lambda: datetime.now(UTC))
    log.append(action, concerns=concerns, by=f"{getpass.getuser()} (cli)", **detail)


def _config(data_dir: Path) -> Config:
    return load(data_dir)


@contextmanager
def _opened(config: Config) -> Iterator[AccountStore]:
    """The accounts of ``config``, their database created and migrated if needed, for one
    command."""
    config.data_dir.mkdir(parents=True, exist_ok=True)
    with accounts_for(config, migrate=True) as db:
        yield db


def _sites(config: Config, sites: tuple[str, ...]) -> list[str]:
    try:
        return auth.check_sites(config, sites)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--site") from None


def _grants(sites: tuple[str, ...]) -> str:
    return ", ".join(sites) if sites else "all sites"


def _prompt_password() -> str:
    """Asked twice, never echoed; there is no ``--password`` option, so a password never lands
    in the shell history or the process list (pipe it on stdin for scripted setups)."""
    return str(
        click.prompt(
            f"Password (at least {auth.MIN_PASSWORD_LENGTH} characters)",
            hide_input=True,
            confirmation_prompt=True,
        )
    )


DEMO_OWNER = "owner@localhost"


def add_demo_owner(config: Config) -> str:
    """The owner account of a demo data directory made by ``mesure serve``, with a random
    password, returned to be shown once, so that the one quickstart command gives a dashboard
    one can log in to."""
    password = secrets.token_urlsafe(12)
    with _opened(config) as db:
        auth.add_user(db, DEMO_OWNER, password, "owner", [], _now_ms())
    _audit(config, "user.add", (), user=DEMO_OWNER, role="owner", sites=_grants(()))
    return password


@click.group()
def user() -> None:
    """Dashboard and API accounts."""


@user.command("add")
@data_option
@click.argument("email")
@role_option
@site_option
def user_add(data_dir: Path, email: str, role: str, sites: tuple[str, ...]) -> None:
    """Create the account EMAIL with a role and optional site grants (prompts for the password)."""
    config = _config(data_dir)
    granted = _sites(config, sites)
    password = _prompt_password()
    with _opened(config) as db:
        try:
            auth.add_user(db, email, password, role, granted, _now_ms())
        except DuplicateUserError:
            raise click.ClickException(f"{email} already exists") from None
        except ValueError as exc:
            raise click.ClickException(str(exc)) from None
    name = auth.normalize_email(email)
    _audit(config, "user.add", granted, user=name, role=role, sites=_grants(tuple(granted)))
    click.echo(f"added {name} ({role}; {_grants(tuple(granted))})")


@user.command("list")
@data_option
def user_list(data_dir: Path) -> None:
    """Every account with its role and site grants."""
    with _opened(_config(data_dir)) as db:
        for row in db.users():
            state = "" if row.disabled_ts is None else "\tdisabled"
            click.echo(f"{row.name}\t{row.role}\t{_grants(row.sites)}{state}")


@user.command("passwd")
@data_option
@click.argument("email")
def user_passwd(data_dir: Path, email: str) -> None:
    """Set a new password for EMAIL (prompted); every session of the account ends."""
    password = _prompt_password()
    config = _config(data_dir)
    with _opened(config) as db:
        found = _account(db, email)
        try:
            db.set_password(found.name, auth.hash_password(password))
        except ValueError as exc:
            raise click.ClickException(str(exc)) from None
    _audit(config, "user.passwd", found.sites, user=found.name)
    click.echo(f"password changed for {found.name}")


def _account(db: AccountStore, email: str) -> AccountRow:
    try:
        found = db.user_by_email(auth.normalize_email(email))
    except ValueError:
        found = None
    if found is None:
        raise click.ClickException(f"no account {email}")
    return found


@user.command("disable")
@data_option
@click.argument("email")
def user_disable(data_dir: Path, email: str) -> None:
    """Disable EMAIL: its sessions end now and it cannot log in until enabled again."""
    config = _config(data_dir)
    with _opened(config) as db:
        found = _account(db, email)
        db.set_disabled(found.name, _now_ms())
    _audit(config, "user.disable", found.sites, user=found.name)
    click.echo(f"disabled {found.name}; its sessions have ended")


@user.command("enable")
@data_option
@click.argument("email")
def user_enable(data_dir: Path, email: str) -> None:
    """Let a disabled EMAIL log in again (with its role, grants and password unchanged)."""
    config = _config(data_dir)
    with _opened(config) as db:
        found = _account(db, email)
        db.set_disabled(found.name, None)
    _audit(config, "user.enable", found.sites, user=found.name)
    click.echo(f"enabled {found.name}")


@user.command("grant")
@data_option
@click.argument("email")
@role_option
@site_option
def user_grant(data_dir: Path, email: str, role: str, sites: tuple[str, ...]) -> None:
    """Replace the role and site grants of EMAIL; its sessions end (they held the old ones)."""
    config = _config(data_dir)
    granted = _sites(config, sites)
    with _opened(config) as db:
        found = _account(db, email)
        db.set_grants(found.name, role, granted)
    now = _grants(tuple(granted))
    _audit(config, "user.grant", found.sites, granted, user=found.name, role=role, sites=now)
    click.echo(f"{found.name} ({role}; {now}); its sessions have ended")


@user.command("remove")
@data_option
@click.argument("email")
def user_remove(data_dir: Path, email: str) -> None:
    """Delete EMAIL with its grants; its sessions end now."""
    config = _config(data_dir)
    with _opened(config) as db:
        found = _account(db, email)
        db.remove_user(found.name)
    _audit(config, "user.remove", found.sites, user=found.name)
    click.echo(f"removed {found.name}")


@click.group()
def token() -> None:
    """API tokens for the JSON reports API (``Authorization: Bearer …``)."""


@token.command("create")
@data_option
@role_option
@site_option
@click.option("--name", default="api", show_default=True, help="What the token is for.")
def token_create(data_dir: Path, role: str, sites: tuple[str, ...], name: str) -> None:
    """Create a token and print it once: it cannot be shown again."""
    config = _config(data_dir)
    granted = _sites(config, sites)
    with _opened(config) as db:
        token_id, secret = auth.create_token(db, name, role, granted, _now_ms())
    _audit(
        config,
        "token.create",
        granted,
        token=str(token_id),
        name=name,
        role=role,
        sites=_grants(tuple(granted)),
    )
    click.echo(f"token {token_id} ({name}; {role}; {_grants(tuple(granted))}):")
    click.echo(secret)


@token.command("list")
@data_option
def token_list(data_dir: Path) -> None:
    """Every token: id, name, role, grants and whether it is revoked (never the secret)."""
    with _opened(_config(data_dir)) as db:
        for row in db.tokens():
            state = "revoked" if row.revoked_ts is not None else "active"
            click.echo(f"{row.id}\t{row.name}\t{row.role}\t{_grants(row.sites)}\t{state}")


@token.command("revoke")
@data_option
@click.argument("token_id", type=int)
def token_revoke(data_dir: Path, token_id: int) -> None:
    """Revoke token TOKEN_ID (see ``mesure token list``)."""
    config = _config(data_dir)
    with _opened(config) as db:
        found = [row for row in db.tokens() if row.id == token_id]
        if not db.revoke_token(token_id, _now_ms()):
            raise click.ClickException(f"no active token {token_id}")
    _audit(config, "token.revoke", found[0].sites, token=str(token_id))
    click.echo(f"token {token_id} revoked")


#: Registered by the lead on the main ``mesure`` group.
COMMANDS: list[click.Command] = [user, token]
