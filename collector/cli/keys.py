"""The privacy officer's commands on keys and records: ``keys`` (rotate, destroy, list, the
export public key), ``audit`` (verify, show) and ``register``. :data:`COMMANDS` is what the
``mesure`` group registers.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import click
import msgspec

from collector.cli.common import data_option
from collector.cli.privacy import (
    actor_of,
    by_option,
    config_of,
    echo_json,
    opened,
)
from collector.privacy import audit_check, keyring, register

# ---------------------------------------------------------------- keys


@click.group("keys")
def keys_group() -> None:
    """Key epochs: rotate, destroy (crypto-shred), list; the export public key."""


@keys_group.command("rotate")
@data_option
@click.option("--site", required=True, help="Site id.")
@click.option(
    "--kind", type=click.Choice(["client", "user"]), default=None, help="Default: both keys."
)
@by_option
def keys_rotate(data_dir: Path, site: str, kind: str | None, actor: str | None) -> None:
    """Start a new key epoch; the old one stays usable for erasure until destroyed.

    A running server keeps its keys in memory: restart it to hash with the new epoch.
    """
    with opened(data_dir) as (inst, _db):
        inst.require_site(site)
        for each in keyring.KINDS if kind is None else (kind,):
            new = keyring.rotate(inst.keys, site, each, by=actor_of(actor))  # type: ignore[arg-type]
            click.echo(f"{site} {each} key: now epoch {new.epoch}; epoch {new.epoch - 1} kept")


@keys_group.command("destroy")
@data_option
@click.option("--site", required=True, help="Site id.")
@click.option(
    "--kind",
    type=click.Choice(["client", "user"]),
    default=None,
    help="Default: each kind whose epoch E is retired and kept.",
)
@click.option("--epoch", type=int, required=True, help="A retired epoch (see `keys list`).")
@by_option
def keys_destroy(
    data_dir: Path, site: str, kind: str | None, epoch: int, actor: str | None
) -> None:
    """Destroy a retired key epoch: its hashes can never be produced again."""
    with opened(data_dir) as (inst, _db):
        inst.require_site(site)
        kinds = (
            [kind]
            if kind is not None
            else [
                each
                for each in keyring.KINDS
                if epoch in keyring.retired_epochs(inst.keys.keys_dir, site, each)
            ]
        )
        for each in kinds or ["client"]:  # nothing kept: let destroy_epoch say why
            keyring.destroy_epoch(
                inst.keys,
                inst.audit,
                site,
                each,  # type: ignore[arg-type]
                epoch,
                by=actor_of(actor),
            )
            click.echo(f"{site} {each} key epoch {epoch} destroyed")


@keys_group.command("list")
@data_option
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
def keys_list(data_dir: Path, as_json: bool) -> None:
    """Key epochs per site (ids only, never key material) and kept daily keys."""
    with opened(data_dir) as (inst, _db):
        found = keyring.inventory(inst.keys, [site.id for site in inst.config.sites])
    if as_json:
        echo_json(found)
        return
    for state in found.site_keys:
        click.echo(
            f"{state.site:<20} {state.kind:<7} current {state.current}  kept {state.kept or '-'}"
            f"  destroyed {state.destroyed or '-'}"
        )
    click.echo(f"daily cookieless keys kept: {', '.join(found.daily_key_days) or 'none'}")


@keys_group.command("public")
@data_option
def keys_public(data_dir: Path) -> None:
    """Print the export public key (hex) for auditors: `mesure export verify --public-key`."""
    with opened(data_dir) as (inst, _db):
        private = keyring.export_key(inst.keys.keys_dir, inst.audit)
    click.echo(keyring.public_key_hex(private))


# ---------------------------------------------------------------- audit


@click.group("audit")
def audit_group() -> None:
    """The hash-chained audit log."""


@audit_group.command("verify")
@data_option
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def audit_verify(data_dir: Path, as_json: bool) -> None:
    """Recompute the chain; report the first broken link (exit 1)."""
    path = config_of(data_dir).audit_path
    result = audit_check.check(path)
    if as_json:
        echo_json(result)
    elif result.broken is None:
        click.echo(
            f"audit log intact: {result.entries} entries, head seq {result.head_seq} "
            f"sha256 {result.head_sha256}"
        )
    else:
        click.echo(f"audit log BROKEN at line {result.broken.line} ({result.broken.problem}):")
        click.echo(result.broken.explanation)
    if result.broken is not None:
        raise SystemExit(1)


@audit_group.command("show")
@data_option
@click.option(
    "--since",
    type=click.DateTime(["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S"]),
    default=None,
    help="Only entries at or after this UTC time.",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON entry per line.")
def audit_show(data_dir: Path, since: datetime | None, as_json: bool) -> None:
    """Print the audit log's entries."""
    path = config_of(data_dir).audit_path
    entries = audit_check.entries_since(path, None if since is None else since.replace(tzinfo=UTC))
    for entry in entries:
        if as_json:
            click.echo(msgspec.json.encode(entry).decode())
        else:
            click.echo(audit_check.format_entry(entry))


# ---------------------------------------------------------------- register


@click.command("register")
@data_option
@click.option(
    "--format", "fmt", type=click.Choice(register.REGISTER_FORMATS), default="md", show_default=True
)
def register_command(data_dir: Path, fmt: str) -> None:
    """The record of processing (GDPR article 30), from the configuration."""
    record = register.build_register(config_of(data_dir))
    click.echo(register.render(record, fmt), nl=False)  # type: ignore[arg-type]


COMMANDS: list[click.Command] = [keys_group, audit_group, register_command]
