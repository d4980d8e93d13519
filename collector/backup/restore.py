"""``mesure restore``: a working data directory from a backup.

Nothing is written before the manifest's signature and the archive's SHA-256 check out and the
identity is known to be a recipient. The archive is then decrypted and extracted into a hidden
sibling of the new directory, each file checked against the manifest as it is written (key files
0600, directories 0700), the restore is appended to the restored audit log, and the whole is
synced and renamed into place: a directory appears under the name asked for only complete.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import msgspec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pyrage import x25519

from collector import serving_lock
from collector.audit import AuditLog
from collector.backup import staging
from collector.backup.check import Checked, read_archive, read_manifest
from collector.backup.manifest import MANIFEST_FILE, BackupManifest
from collector.backup.recipients import public_keys
from collector.config import AUDIT_FILE
from collector.errors import BackupError
from collector.storage.sqlite.schema import migrations


class RestoreResult(msgspec.Struct, frozen=True, kw_only=True):
    target: str
    manifest: BackupManifest
    manifest_sha256: str


def refuse_target(target: Path) -> None:
    """Refuse to write into a directory a collector serves, or that holds anything."""
    if serving_lock.in_use(target):
        raise BackupError(
            f"a collector is using {target}: restore to a new directory (and stop that "
            "collector first if it is to be replaced)"
        )
    if target.is_symlink() or (target.exists() and not target.is_dir()):
        raise BackupError(f"{target} exists and is not a directory")
    if target.is_dir() and any(target.iterdir()):
        raise BackupError(f"{target} is not empty: restore to a new or empty directory")


def restore_backup(
    folder: Path,
    target: Path,
    *,
    identities: list[x25519.Identity] | None,
    public_key: Ed25519PublicKey | None,
    clock: Callable[[], datetime],
    actor: str,
    echo: Callable[[str], object],
) -> RestoreResult:
    folder, target = folder.absolute(), target.absolute()
    refuse_target(target)
    found = Checked()
    manifest = read_manifest(folder, public_key, found)
    if manifest is None or found.problems:
        raise BackupError(
            f"{folder} does not verify; nothing was restored:\n  " + "\n  ".join(found.problems)
        )
    _refuse_newer_schema(manifest)
    if manifest.encryption == "age":
        if identities is None:
            raise BackupError("the backup is encrypted: give --identity KEYFILE")
        if not set(public_keys(identities)) & set(manifest.recipients):
            raise BackupError(
                "none of the identities in --identity is a recipient of this backup (encrypted "
                f"to {', '.join(manifest.recipients)}); nothing was restored"
            )
    manifest_sha256 = hashlib.sha256((folder / MANIFEST_FILE).read_bytes()).hexdigest()
    target.parent.mkdir(parents=True, exist_ok=True)
    staging.remove_abandoned(target.parent, echo)
    with staging.partial_directory(target) as partial:
        read_archive(folder, manifest, identities, found, extract_to=partial)
        if found.problems:
            raise BackupError(
                f"{folder}: the archive does not match its manifest; nothing was restored:\n  "
                + "\n  ".join(found.problems)
            )
        AuditLog(partial / AUDIT_FILE, clock).append(
            "restore",
            by=actor,
            backup=str(folder),
            manifest_sha256=manifest_sha256,
            created_at=manifest.created_at,
            source_data_dir=manifest.source_data_dir,
        )
        # Again, just before the rename: a collector may have been started there meanwhile.
        refuse_target(target)
        staging.move_into_place(partial, target)
    return RestoreResult(target=str(target), manifest=manifest, manifest_sha256=manifest_sha256)


def _refuse_newer_schema(manifest: BackupManifest) -> None:
    # An older Mesure would serve a database it does not understand, and could damage it.
    # Imported here, after collector.storage.sqlite, which imports sqlite-utils without pandas.
    from sqlite_utils import Database

    known = {migration.name for migration in migrations.pending(Database(memory=True))}
    unknown = [name for name in manifest.schema_migrations if name not in known]
    if unknown:
        raise BackupError(
            f"the backup's database has migrations this Mesure does not know "
            f"({', '.join(unknown)}): it was made by Mesure {manifest.mesure_version}; restore "
            "it with that version or a later one; nothing was restored"
        )
