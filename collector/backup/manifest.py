"""The backup manifest: what a backup holds and how to get it back, signed with Ed25519.

``manifest.json`` is written after the archive and ``manifest.sig`` last; the signature covers
the manifest's exact bytes, and the manifest pins the archive's SHA-256, so a changed byte
anywhere is found without the age identity.
"""

from __future__ import annotations

import re
from typing import Literal

import msgspec

from collector.privacy.manifest import MANIFEST_FILE, SIGNATURE_FILE, AuditHead

__all__ = [
    "MANIFEST_FILE",
    "SIGNATURE_FILE",
    "Archive",
    "AuditHead",
    "BackupFile",
    "BackupManifest",
    "ClickHouseBackup",
]

MANIFEST_VERSION = 1
ENCRYPTED_ARCHIVE = "data.tar.age"
PLAIN_ARCHIVE = "data.tar"

Storage = Literal["sqlite", "clickhouse"]
Encryption = Literal["age", "none"]

#: What a backup may hold, relative to the data directory. Anything else named by a manifest
#: (``../x``, ``/etc/x``, a dot file) is refused before a byte is written: the manifest may come
#: from anyone holding a recipient's public key and a signing key of their own.
_FILE = re.compile(r"^(mesure\.toml|mesure\.db|audit\.log|keys(/[A-Za-z0-9_][A-Za-z0-9._-]*)+)$")
_DIRECTORY = re.compile(r"^keys(/[A-Za-z0-9_][A-Za-z0-9._-]*)*$")


class BackupFile(msgspec.Struct, frozen=True, kw_only=True):
    """One file of the data directory, as it is inside the archive."""

    #: Relative to the data directory, ``/``-separated, e.g. ``keys/shop.client.json``.
    path: str
    bytes: int
    sha256: str
    #: Permission bits, octal, e.g. ``0600``.
    mode: str


class Archive(msgspec.Struct, frozen=True, kw_only=True):
    """The one file holding every backed-up file: a tar archive, age-encrypted unless not."""

    path: str
    #: Size and SHA-256 of the file as stored (encrypted): checkable without the identity.
    bytes: int
    sha256: str
    #: Size and SHA-256 of the tar archive inside (the same as above when unencrypted).
    tar_bytes: int
    tar_sha256: str


class ClickHouseBackup(msgspec.Struct, frozen=True, kw_only=True):
    """The events and visits stay in ClickHouse: the statements its administrator runs."""

    #: The storage address, password never included.
    target: str
    backup_statement: str
    restore_statement: str


class BackupManifest(msgspec.Struct, frozen=True, kw_only=True):
    manifest_version: int
    kind: Literal["mesure-backup"]
    mesure_version: str
    #: Migrations applied to the SQLite database, in order; the version is their number.
    schema_version: int
    schema_migrations: list[str]
    created_at: str
    created_by: str
    source_data_dir: str
    storage: Storage
    clickhouse: ClickHouseBackup | None
    encryption: Encryption
    #: The age public keys (``age1…``) any one of whose identities decrypts the archive.
    recipients: list[str]
    archive: Archive
    directories: list[str]
    files: list[BackupFile]
    #: Rows in the database copy (events and visits live in ClickHouse with that storage).
    database_rows: dict[str, int]
    #: The audit log's last entry in the copy: pins the log's length.
    audit_head: AuditHead
    signature_algorithm: Literal["Ed25519"]
    public_key: str


manifest_decoder = msgspec.json.Decoder(BackupManifest)


def encode_manifest(manifest: BackupManifest) -> bytes:
    return msgspec.json.format(msgspec.json.encode(manifest), indent=2) + b"\n"


def is_backed_up_file(path: str) -> bool:
    return bool(_FILE.match(path))


def is_backed_up_directory(path: str) -> bool:
    return bool(_DIRECTORY.match(path))


def is_key_file(path: str) -> bool:
    return path.startswith("keys/")
