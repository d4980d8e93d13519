"""``mesure backup``, ``mesure backup verify`` and ``mesure restore`` (:mod:`collector.backup`).

Errors exit with code 2 and say why, and leave nothing written; a backup that does not verify
makes ``backup verify`` exit with code 1, as ``export verify`` does. :data:`COMMANDS` is what
the ``mesure`` group registers.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import click
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pyrage import x25519

from collector.backup.check import verify_backup
from collector.backup.create import BackupResult, create_backup
from collector.backup.recipients import parse_recipient, read_identities, read_recipients_file
from collector.backup.restore import restore_backup
from collector.cli.common import data_option, load, report_verification
from collector.cli.privacy import actor_of, by_option, utc_now
from collector.errors import MesureError
from collector.privacy import keyring

UNENCRYPTED_WARNING = (
    "WARNING: --unencrypted: this backup holds the keys (site keys, daily keys, the export "
    "signing key) in the clear next to the data they pseudonymize. Anyone who can read it can "
    "link the stored hashes to the identifiers they come from, and sign exports as this "
    "instance. Keep it on encrypted storage only you can read."
)


class BackupProblem(click.ClickException):
    """A backup or restore refused (bad input, nothing to do): exit code 2."""

    exit_code = 2


identity_option = click.option(
    "--identity",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="age identity file (AGE-SECRET-KEY-1…, as age-keygen writes).",
)
public_key_option = click.option(
    "--public-key",
    default=None,
    help="Require the manifest to be signed by this export key (64 hex digits, "
    "`mesure keys public`); default: the key the manifest names.",
)


def _identities(path: Path | None) -> list[x25519.Identity] | None:
    return None if path is None else read_identities(path)


def _public_key(text: str | None) -> Ed25519PublicKey | None:
    return None if text is None else keyring.load_public_key(text)


def backup_options(command: Callable[..., None]) -> Callable[..., None]:
    """``--out``, ``--recipient``, ``--recipients-file``, ``--unencrypted``: where a backup goes
    and whom it is encrypted to (``mesure backup`` and ``mesure upgrade``)."""
    for option in reversed(
        [
            click.option(
                "--out",
                type=click.Path(path_type=Path),
                default=None,
                help="The backup's new directory.",
            ),
            click.option(
                "--recipient",
                "recipients",
                multiple=True,
                metavar="AGE1…",
                help="age public key to encrypt to (repeatable; any one identity decrypts).",
            ),
            click.option(
                "--recipients-file",
                "recipients_files",
                multiple=True,
                type=click.Path(dir_okay=False, path_type=Path),
                help="File of age public keys, one a line (repeatable).",
            ),
            click.option(
                "--unencrypted", is_flag=True, help="Write the backup in the clear, keys included."
            ),
        ]
    ):
        command = option(command)
    return command


@click.group(invoke_without_command=True)
@data_option
@backup_options
@by_option
@click.pass_context
def backup(
    ctx: click.Context,
    data_dir: Path,
    out: Path | None,
    recipients: tuple[str, ...],
    recipients_files: tuple[Path, ...],
    unencrypted: bool,
    actor: str | None,
) -> None:
    """Back up the data directory, collector running or not, encrypted with age."""
    if ctx.invoked_subcommand is not None:
        return
    take_backup(data_dir, out, recipients, recipients_files, unencrypted=unencrypted, actor=actor)


def take_backup(
    data_dir: Path,
    out: Path | None,
    recipients: tuple[str, ...],
    recipients_files: tuple[Path, ...],
    *,
    unencrypted: bool,
    actor: str | None,
) -> BackupResult:
    """Check the backup options, write the backup and say what it holds."""
    if out is None:
        raise BackupProblem("backup needs --out DIR (a new directory)")
    try:
        keys = [parse_recipient(text) for text in recipients]
        for path in recipients_files:
            keys += read_recipients_file(path)
    except MesureError as exc:
        raise BackupProblem(str(exc)) from None
    if unencrypted and keys:
        raise BackupProblem("--unencrypted and --recipient/--recipients-file exclude each other")
    if not unencrypted and not keys:
        raise BackupProblem(
            "a backup holds the keys next to the data, so it is encrypted: give --recipient "
            "age1… (repeatable; `age-keygen -o KEYFILE` makes a key pair) or --recipients-file "
            "FILE, or --unencrypted to write it in the clear"
        )
    config = load(data_dir)
    if unencrypted:
        click.echo(UNENCRYPTED_WARNING, err=True)
    try:
        result = create_backup(
            config,
            out,
            recipients=None if unencrypted else keys,
            clock=utc_now,
            actor=actor_of(actor),
            echo=click.echo,
        )
    except MesureError as exc:
        raise BackupProblem(str(exc)) from None
    _report_backup(result)
    if unencrypted:
        click.echo(f"WARNING: {result.out} is NOT encrypted.", err=True)
    return result


def _report_backup(result: BackupResult) -> None:
    manifest = result.manifest
    archive = manifest.archive
    how = (
        "NOT encrypted"
        if manifest.encryption == "none"
        else f"encrypted with age to {len(manifest.recipients)} recipient(s)"
    )
    click.echo(f"backup written to {result.out} ({how})")
    click.echo(f"  {archive.path}: {archive.bytes} bytes, sha256 {archive.sha256}")
    rows = ", ".join(f"{count} {table}" for table, count in manifest.database_rows.items())
    click.echo(f"  {len(manifest.files)} file(s): {', '.join(f.path for f in manifest.files)}")
    click.echo(f"  database: {rows}; schema version {manifest.schema_version}")
    click.echo(f"  manifest sha256 {result.manifest_sha256}, signed with {manifest.public_key}")
    for name in result.left_out:
        click.echo(f"  not in the backup: {name} (not one of Mesure's files)")
    if manifest.clickhouse is not None:
        clickhouse = manifest.clickhouse
        click.echo(
            f"\nClickHouse storage: the events and visits are in {clickhouse.target}, "
            "NOT in this backup. Have its administrator back them up (with a disk named "
            "'backups' allowed in the server's <backups> configuration):\n"
        )
        click.echo(f"  {clickhouse.backup_statement};\n")
        click.echo(f"and restore them with:\n\n  {clickhouse.restore_statement};")
        if clickhouse.target.startswith("chdb://"):
            click.echo(
                "\nEmbedded chDB: run the statement in clickhouse-local on that path while the "
                "collector is stopped, or copy the path while it is stopped."
            )


@backup.command("verify")
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
@identity_option
@public_key_option
def backup_verify(folder: Path, identity: Path | None, public_key: str | None) -> None:
    """Check a backup: signature, archive SHA-256; with --identity, every file inside."""
    try:
        result = verify_backup(
            folder, public_key=_public_key(public_key), identities=_identities(identity)
        )
    except MesureError as exc:
        raise BackupProblem(str(exc)) from None
    report_verification(result, "backup")


@click.command("restore")
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--data",
    "target",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="The new data directory (absent or empty; never read from MESURE_DATA).",
)
@identity_option
@public_key_option
@by_option
def restore(
    folder: Path, target: Path, identity: Path | None, public_key: str | None, actor: str | None
) -> None:
    """Make a working data directory from a backup (checked before anything is written)."""
    try:
        result = restore_backup(
            folder,
            target,
            identities=_identities(identity),
            public_key=_public_key(public_key),
            clock=utc_now,
            actor=actor_of(actor),
            echo=click.echo,
        )
    except MesureError as exc:
        raise BackupProblem(str(exc)) from None
    manifest = result.manifest
    click.echo(
        f"restored {len(manifest.files)} file(s) to {result.target} from the backup of "
        f"{manifest.source_data_dir} taken {manifest.created_at} (Mesure "
        f"{manifest.mesure_version}, schema version {manifest.schema_version})"
    )
    click.echo("key files 0600, directories 0700; the restore is logged in its audit.log")
    if manifest.clickhouse is not None:
        click.echo(
            f"the events and visits are in ClickHouse ({manifest.clickhouse.target}, as "
            "mesure.toml says): have its administrator restore them first:\n\n  "
            f"{manifest.clickhouse.restore_statement};\n"
        )
    click.echo(f"start it with: mesure serve --data {result.target}")


COMMANDS: list[click.Command] = [backup, restore]
