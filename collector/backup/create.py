"""``mesure backup``: a consistent, signed and (normally) encrypted copy of a data directory,
taken while the collector runs.

The database is copied with SQLite's online backup API in one step, that is inside one read
transaction begun after the command started: the copy holds every transaction committed before
(every hit acknowledged with a 202, which the collector sends only after the commit) and none
half. Writers are not held up (WAL): hits keep being committed during the copy and may or may
not be in it. The copy is read-only on the live file. Then the keys, ``mesure.toml`` and the
audit log are read; after the database, so that a key rotated during the copy is in the backup
with every row hashed under it.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import sqlite3
import stat
from collections.abc import Callable
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path

import msgspec
from pyrage import x25519

from collector.audit import AuditEntry, AuditLog
from collector.backup import staging
from collector.backup.archive import Member, write_archive
from collector.backup.manifest import (
    ENCRYPTED_ARCHIVE,
    MANIFEST_FILE,
    MANIFEST_VERSION,
    PLAIN_ARCHIVE,
    SIGNATURE_FILE,
    AuditHead,
    BackupManifest,
    ClickHouseBackup,
    encode_manifest,
)
from collector.config import AUDIT_FILE, CONFIG_FILE, DATABASE_FILE, KEYS_DIR, Config
from collector.errors import BackupError
from collector.privacy import keyring
from collector.privacy.instance import mesure_version
from collector.serving_lock import LOCK_FILE
from collector.storage.sqlite.schema import migrations
from collector.storage.target import ClickHouseTarget

#: Files of a data directory that are not data: SQLite's and the collector's while they run.
RUNTIME_FILES = frozenset(
    {
        f"{DATABASE_FILE}-wal",
        f"{DATABASE_FILE}-shm",
        f"{DATABASE_FILE}-journal",
        f"{DATABASE_FILE}-writer",
        LOCK_FILE,
    }
)
_BACKED_UP = frozenset({CONFIG_FILE, DATABASE_FILE, AUDIT_FILE, KEYS_DIR})


class BackupResult(msgspec.Struct, frozen=True, kw_only=True):
    out: str
    manifest: BackupManifest
    manifest_sha256: str
    #: Entries of the data directory not in the backup (not Mesure's).
    left_out: list[str]


class _Snapshot(msgspec.Struct, frozen=True, kw_only=True):
    migrations: list[str]
    rows: dict[str, int]


def create_backup(
    config: Config,
    out: Path,
    *,
    recipients: list[x25519.Recipient] | None,
    clock: Callable[[], datetime],
    actor: str,
    echo: Callable[[str], object],
) -> BackupResult:
    """Back up ``config``'s data directory to the new directory ``out``: encrypted to
    ``recipients``, or in the clear when ``None``."""
    out = out.absolute()
    staging.refuse_existing(out, "a backup")
    data_dir = config.data_dir
    live_database = config.database_path
    if not live_database.is_file():
        raise BackupError(f"no database at {live_database}: nothing to back up")
    if recipients is not None and not recipients:
        raise BackupError("no recipient to encrypt to")
    out.parent.mkdir(parents=True, exist_ok=True)
    staging.remove_abandoned(out.parent, echo)
    audit = AuditLog(config.audit_path, clock)
    # Before the keys are read: a key created now is in the backup it signs.
    signing_key = keyring.export_key(config.keys_dir, audit)
    started = clock()
    with staging.partial_directory(out) as partial:
        copy = partial / f"{DATABASE_FILE}.copy"
        snapshot = _copy_database(live_database, copy)
        # Unlinked once open: the plaintext copy lives on only as this descriptor.
        with copy.open("rb") as database:
            copy.unlink()
            owner = live_database.stat()
            members = [
                _file_member(data_dir, data_dir / CONFIG_FILE),
                *_keys_members(data_dir, config.keys_dir),
                Member(
                    path=DATABASE_FILE,
                    mode=stat.S_IMODE(owner.st_mode),
                    mtime=started.timestamp(),
                    uid=owner.st_uid,
                    gid=owner.st_gid,
                    source=database,
                    size=os.fstat(database.fileno()).st_size,
                ),
            ]
            audit_member = _audit_member(data_dir, config.audit_path)
            if audit_member is not None:
                members.insert(1, audit_member)
            name = PLAIN_ARCHIVE if recipients is None else ENCRYPTED_ARCHIVE
            archive, files, directories = write_archive(partial / name, members, recipients)
        manifest = BackupManifest(
            manifest_version=MANIFEST_VERSION,
            kind="mesure-backup",
            mesure_version=mesure_version(),
            schema_version=len(snapshot.migrations),
            schema_migrations=snapshot.migrations,
            created_at=started.astimezone(UTC).isoformat(timespec="seconds"),
            created_by=actor,
            source_data_dir=str(data_dir),
            storage="sqlite" if config.clickhouse is None else "clickhouse",
            clickhouse=None
            if config.clickhouse is None
            else clickhouse_statements(config.clickhouse, started),
            encryption="none" if recipients is None else "age",
            recipients=[] if recipients is None else [str(r) for r in recipients],
            archive=archive,
            directories=directories,
            files=files,
            database_rows=snapshot.rows,
            audit_head=_audit_head(audit_member.data if audit_member is not None else b""),
            signature_algorithm="Ed25519",
            public_key=keyring.public_key_hex(signing_key),
        )
        body = encode_manifest(manifest)
        _write_new(partial / MANIFEST_FILE, body)
        _write_new(partial / SIGNATURE_FILE, signing_key.sign(body).hex().encode() + b"\n")
        staging.move_into_place(partial, out)
    manifest_sha256 = hashlib.sha256(body).hexdigest()
    audit.append(
        "backup",
        by=actor,
        out=str(out),
        archive=archive.path,
        sha256=archive.sha256,
        manifest_sha256=manifest_sha256,
        encryption="none" if recipients is None else f"age, {len(recipients)} recipient(s)",
        files=str(len(files)),
        storage=manifest.storage,
    )
    left_out = sorted(
        entry.name
        for entry in data_dir.iterdir()
        if entry.name not in _BACKED_UP and entry.name not in RUNTIME_FILES
    )
    return BackupResult(
        out=str(out), manifest=manifest, manifest_sha256=manifest_sha256, left_out=left_out
    )


def clickhouse_statements(target: ClickHouseTarget, at: datetime) -> ClickHouseBackup:
    """What the ClickHouse administrator runs: Mesure never holds the rights to, and with
    chDB cannot share the engine of a running collector."""
    name = f"mesure-{target.database}-{at.astimezone(UTC):%Y%m%dT%H%M%SZ}.zip"
    cluster = f" ON CLUSTER {target.cluster}" if target.cluster else ""
    # The database name is a plain identifier (checked when the DSN was parsed).
    return ClickHouseBackup(
        target=target.display(),
        backup_statement=f"BACKUP DATABASE {target.database}{cluster} TO Disk('backups', '{name}')",
        restore_statement=(
            f"RESTORE DATABASE {target.database}{cluster} FROM Disk('backups', '{name}')"
        ),
    )


def _copy_database(live: Path, copy: Path) -> _Snapshot:
    source = sqlite3.connect(f"{live.resolve().as_uri()}?mode=ro", uri=True, timeout=30)
    with closing(source), closing(sqlite3.connect(copy)) as target:
        # A scratch file, synced later as part of the archive: no journal, no syncs.
        target.execute("PRAGMA journal_mode = OFF")
        target.execute("PRAGMA synchronous = OFF")
        # One step (pages=-1): one read transaction over the whole copy. Copied in several
        # steps, every commit of the collector in between would restart the copy.
        source.backup(target, pages=-1)
        (check,) = target.execute("PRAGMA quick_check").fetchone()
        if check != "ok":
            raise BackupError(f"the copy of {live} fails SQLite's quick_check: {check}")
        tables = {row[0] for row in target.execute("SELECT name FROM sqlite_master")}
        applied = (
            [
                str(row[0])
                for row in target.execute(
                    "SELECT name FROM _sqlite_migrations WHERE migration_set = ? ORDER BY rowid",
                    (migrations.name,),
                )
            ]
            if "_sqlite_migrations" in tables
            else []
        )
        rows = {
            table: int(target.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
            for table in ("events", "visits")
            if table in tables
        }
    return _Snapshot(migrations=applied, rows=rows)


def _file_member(data_dir: Path, path: Path) -> Member:
    try:
        with path.open("rb") as file:
            info = os.fstat(file.fileno())
            data = file.read()
    except OSError as exc:
        raise BackupError(f"{path}: cannot be read: {exc.strerror}") from None
    return _member(data_dir, path, info, data)


def _member(data_dir: Path, path: Path, info: os.stat_result, data: bytes = b"") -> Member:
    return Member(
        path=path.relative_to(data_dir).as_posix(),
        mode=stat.S_IMODE(info.st_mode),
        mtime=info.st_mtime,
        uid=info.st_uid,
        gid=info.st_gid,
        directory=stat.S_ISDIR(info.st_mode),
        data=data,
    )


def _keys_members(data_dir: Path, keys_dir: Path) -> list[Member]:
    found = []
    for folder, dirs, files in os.walk(keys_dir):
        # Dot files are key files being written (renamed into place when complete).
        dirs[:] = sorted(name for name in dirs if not name.startswith("."))
        here = Path(folder)
        found.append(_member(data_dir, here, here.stat()))
        for name in sorted(files):
            if name.startswith("."):
                continue
            path = here / name
            try:
                found.append(_file_member(data_dir, path))
            except BackupError:
                if path.exists():
                    raise
                # Destroyed meanwhile (a daily key past its 48 hours): rightly not backed up.
    return found


def _audit_member(data_dir: Path, path: Path) -> Member | None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    with os.fdopen(fd, "rb") as file:
        # Shared lock: an entry being appended (under the exclusive lock) is in whole or not.
        fcntl.flock(file, fcntl.LOCK_SH)
        info = os.fstat(file.fileno())
        data = file.read()
    return _member(data_dir, path, info, data)


def _audit_head(log: bytes) -> AuditHead:
    lines = log.splitlines()
    if not lines:
        return AuditHead(seq=0, sha256="0" * 64)
    try:
        last = msgspec.json.decode(lines[-1], type=AuditEntry)
    except (msgspec.DecodeError, msgspec.ValidationError):
        raise BackupError(
            "the audit log's last line is not an entry: run `mesure audit verify`"
        ) from None
    return AuditHead(seq=last.seq, sha256=hashlib.sha256(lines[-1]).hexdigest())


def _write_new(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as file:
        file.write(data)
        file.flush()
        os.fsync(file.fileno())
