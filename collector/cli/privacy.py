"""The privacy officer's commands: ``export``, ``dsar`` and ``retention`` here; ``keys``,
``audit`` and ``register`` in :mod:`collector.cli.keys`, which shares this module's options and
helpers. Each takes ``--data DIR`` like ``mesure serve``; :data:`COMMANDS` is what the ``mesure``
group registers. Errors exit with code 1 and a message; a failed verification too.
"""

from __future__ import annotations

import getpass
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
import msgspec

from collector.audit import AuditLog
from collector.cli.common import ConfigProblem, data_option, load, report_verification
from collector.config import Config
from collector.errors import KeyFileError, MesureError
from collector.privacy import dsar, keyring
from collector.privacy.export import export_events
from collector.privacy.instance import Instance
from collector.privacy.manifest import FORMATS, Format
from collector.privacy.retention import run_retention
from collector.privacy.verify import verify_export
from collector.storage import privacy_for
from collector.storage.ports import PrivacyStore

by_option = click.option(
    "--by", "actor", default=None, help="Who runs this, for the audit log (default: OS user)."
)
format_option = click.option(
    "--format", "fmt", type=click.Choice(FORMATS), default="ndjson", show_default=True
)


def utc_now() -> datetime:
    return datetime.now(UTC)


def actor_of(actor: str | None) -> str:
    return actor or f"{getpass.getuser()} (cli)"


def config_of(data_dir: Path) -> Config:
    return load(data_dir)


@contextmanager
def opened(data_dir: Path) -> Iterator[tuple[Instance, PrivacyStore]]:
    """The instance and a database connection; any :class:`MesureError` becomes a clean exit."""
    try:
        inst = Instance.open(config_of(data_dir), utc_now)
    except KeyFileError as exc:  # unsafe or unreadable keys: a setup problem, as for `serve`
        raise ConfigProblem(str(exc)) from None
    try:
        with privacy_for(inst.config) as db:
            yield inst, db
    except MesureError as exc:
        raise click.ClickException(str(exc)) from None


def echo_json(value: Any) -> None:
    click.echo(msgspec.json.format(msgspec.json.encode(value), indent=2).decode())


# ---------------------------------------------------------------- export


@click.group(invoke_without_command=True)
@data_option
@click.option("--site", "sites", multiple=True, help="Site id (repeatable; default: all).")
@click.option("--from", "first_day", type=click.DateTime(["%Y-%m-%d"]), help="First UTC day.")
@click.option("--to", "last_day", type=click.DateTime(["%Y-%m-%d"]), help="Last UTC day.")
@format_option
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), help="New directory.")
@by_option
@click.pass_context
def export(
    ctx: click.Context,
    data_dir: Path,
    sites: tuple[str, ...],
    first_day: datetime | None,
    last_day: datetime | None,
    fmt: Format,
    out: Path | None,
    actor: str | None,
) -> None:
    """Export stored events, one file per site and month, with a signed manifest."""
    if ctx.invoked_subcommand is not None:
        return
    if first_day is None or last_day is None or out is None:
        raise click.UsageError("export needs --from, --to and --out")
    with opened(data_dir) as (inst, db):
        manifest = export_events(
            inst,
            db,
            sites=list(sites) or [site.id for site in inst.config.sites],
            first_day=first_day.date(),
            last_day=last_day.date(),
            fmt=fmt,
            out=out,
            actor=actor_of(actor),
        )
    for file in manifest.files:
        click.echo(f"{file.path}: {file.rows} rows, sha256 {file.sha256}")
    click.echo(
        f"{manifest.total_rows} rows; manifest signed with Ed25519 key {manifest.public_key}"
    )
    _say_where_kept(inst.config, out)


def _say_where_kept(config: Config, out: Path) -> None:
    """Exports inside the data directory are Mesure's to expire and to erase from; the others
    are the caller's."""
    if out.resolve().is_relative_to(config.data_dir.resolve()):
        days = config.server.exports_keep_days
        click.echo(
            f"kept on the server: deleted after {days} day(s) (exports-keep-days) or by an "
            "erasure or retention run that deletes any of its rows"
        )
    else:
        click.echo(
            f"note: {out} is outside the data directory: Mesure will neither expire it nor "
            "delete it when an erasure or retention run deletes its rows; delete it when done"
        )


@export.command("verify")
@click.argument("folder", type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.option("--public-key", default=None, help="64 hex digits (default: this instance's key).")
@data_option
def export_verify(folder: Path, public_key: str | None, data_dir: Path) -> None:
    """Check an export's signature, every file's SHA-256, and that nothing was added."""
    try:
        if public_key is None:
            config = config_of(data_dir)
            key_path = config.keys_dir / keyring.EXPORT_KEY_FILE
            if not key_path.exists():
                raise click.ClickException(f"no export key in {config.keys_dir}: give --public-key")
            private = keyring.export_key(config.keys_dir, AuditLog(config.audit_path, utc_now))
            public_key = keyring.public_key_hex(private)
        result = verify_export(folder, keyring.load_public_key(public_key))
    except MesureError as exc:
        raise click.ClickException(str(exc)) from None
    report_verification(result, "export")


# ---------------------------------------------------------------- dsar


def _subject(site: str, user_id: str | None, client_id: str | None) -> dsar.Subject:
    if (user_id is None) == (client_id is None):
        raise click.UsageError("give exactly one of --user-id and --client-id")
    if user_id is not None:
        return dsar.Subject(site=site, identifier="user-id", value=user_id)
    assert client_id is not None
    return dsar.Subject(site=site, identifier="client-id", value=client_id)


subject_options = [
    click.option("--site", required=True, help="Site id."),
    click.option("--user-id", default=None, help="The site's own user id."),
    click.option("--client-id", default=None, help="Client id shown on the opt-out page."),
]


def _with_subject(function: Any) -> Any:
    for option in reversed(subject_options):
        function = option(function)
    return function


@click.group("dsar")
def dsar_group() -> None:
    """Access and erasure requests (GDPR articles 15 and 17) by user id or client id."""


@dsar_group.command("access")
@data_option
@_with_subject
@format_option
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True)
@by_option
def dsar_access(
    data_dir: Path,
    site: str,
    user_id: str | None,
    client_id: str | None,
    fmt: Format,
    out: Path,
    actor: str | None,
) -> None:
    """Write everything stored about a person to a signed export."""
    subject = _subject(site, user_id, client_id)
    with opened(data_dir) as (inst, db):
        report, manifest = dsar.access(
            inst,
            db,
            subject,
            out=out,
            fmt=fmt,
            actor=actor_of(actor),
        )
    click.echo(
        f"{report.events_found} event(s) in {report.visits_found} visit(s) found under "
        f"{subject.identifier} epochs {report.epochs_searched}; written to {out} "
        f"({len(manifest.files)} file(s), signed)"
    )
    click.echo(report.cookieless_notice)
    _say_where_kept(inst.config, out)


@dsar_group.command("erase")
@data_option
@_with_subject
@by_option
def dsar_erase(
    data_dir: Path, site: str, user_id: str | None, client_id: str | None, actor: str | None
) -> None:
    """Delete a person's events and visits, then search again to prove it."""
    subject = _subject(site, user_id, client_id)
    with opened(data_dir) as (inst, db):
        report = dsar.erase(inst, db, subject, actor=actor_of(actor))
    assert report.deleted is not None
    click.echo(
        f"found {report.events_found} event(s) in {report.visits_found} visit(s) under "
        f"{subject.identifier} epochs {report.epochs_searched}"
    )
    click.echo(
        f"deleted {report.deleted.subject_events} event(s), {report.deleted.visit_events} "
        f"other event(s) of the same visits, {report.deleted.visits} visit(s)"
    )
    click.echo(f"searched again: {report.events_after} event(s) left")
    if report.reclaimed:
        click.echo(f"copies on disk: {report.reclaimed}")
    if report.exports_deleted:
        click.echo(
            f"{len(report.exports_deleted)} export(s) holding the subject's rows deleted: "
            + ", ".join(report.exports_deleted)
        )
    click.echo(report.cookieless_notice)
    if report.events_after:
        raise SystemExit(1)


# ---------------------------------------------------------------- retention


@click.group("retention")
def retention_group() -> None:
    """Delete data older than each site's retention."""


@retention_group.command("run")
@data_option
@click.option("--dry-run", is_flag=True, help="Count what would be deleted; delete nothing.")
@click.option(
    "--as-of",
    type=click.DateTime(["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S"]),
    default=None,
    help="Apply the limits as of this UTC time (default: now), e.g. to preview a date.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@by_option
def retention_run(
    data_dir: Path, dry_run: bool, as_of: datetime | None, as_json: bool, actor: str | None
) -> None:
    """Delete exempt/denied and granted data past their limits, per site; reclaim space."""
    now = utc_now() if as_of is None else as_of.replace(tzinfo=UTC)
    with opened(data_dir) as (inst, db):
        report = run_retention(inst, db, now=now, dry_run=dry_run, actor=actor_of(actor))
    if as_json:
        echo_json(report)
        return
    verb = "would delete" if dry_run else "deleted"
    for cutoff, count in zip(report.cutoffs, report.deleted, strict=True):
        click.echo(
            f"{cutoff.site:<20} {cutoff.mode:<8} {cutoff.retention_days:>6} days  before "
            f"{cutoff.before}  {verb} {count.events}"
        )
    if report.reclaimed:
        click.echo(f"space reclaimed ({report.reclaimed})")
    if report.exports_deleted:
        click.echo(
            f"exports {verb}: {', '.join(report.exports_deleted)} (older than exports-keep-days, "
            "or holding rows past their retention)"
        )


COMMANDS: list[click.Command] = [export, dsar_group, retention_group]
