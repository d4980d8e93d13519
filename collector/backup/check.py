"""``mesure backup verify``: is a backup directory complete and unchanged?

Without the identity: the manifest's signature, the archive's size and SHA-256 (encrypted, as
stored), and that nothing else is in the directory. With it (or for an unencrypted backup), the
archive is also read through: every file's size and SHA-256, no file missing or added, and the
export key inside it is the one that signed the manifest. :func:`read_archive` is the same
reading, extracting into a directory for ``mesure restore``.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path, PurePosixPath
from typing import IO

import msgspec
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pyrage import x25519

from collector.backup import archive
from collector.backup.manifest import (
    MANIFEST_FILE,
    SIGNATURE_FILE,
    BackupFile,
    BackupManifest,
    is_backed_up_directory,
    is_backed_up_file,
    is_key_file,
    manifest_decoder,
)
from collector.backup.recipients import public_keys
from collector.errors import BackupError
from collector.privacy import keyring
from collector.privacy.verify import Verification

_EXPORT_KEY = f"keys/{keyring.EXPORT_KEY_FILE}"


class Checked(msgspec.Struct, kw_only=True):
    """Lines of checks passed and failed, in order."""

    checked: list[str] = msgspec.field(default_factory=list)
    problems: list[str] = msgspec.field(default_factory=list)

    def verification(self) -> Verification:
        return Verification(ok=not self.problems, checked=self.checked, problems=self.problems)


def read_manifest(
    folder: Path, public_key: Ed25519PublicKey | None, found: Checked
) -> BackupManifest | None:
    """The manifest, once its signature and the archive file check out; ``None`` (and the
    reasons in ``found``) otherwise."""
    if not folder.is_dir():
        found.problems.append(f"{folder}: not a directory")
        return None
    try:
        body = (folder / MANIFEST_FILE).read_bytes()
        signature = bytes.fromhex((folder / SIGNATURE_FILE).read_text(encoding="ascii").strip())
    except FileNotFoundError as exc:
        found.problems.append(
            f"{Path(exc.filename).name}: missing: not a complete backup (an interrupted backup "
            "leaves no directory under the name asked for)"
        )
        return None
    except (OSError, ValueError) as exc:
        found.problems.append(f"{SIGNATURE_FILE}: unreadable: {exc}")
        return None
    try:
        manifest = manifest_decoder.decode(body)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        found.problems.append(f"{MANIFEST_FILE}: not a Mesure backup manifest: {exc}")
        return None
    signer = manifest.public_key
    if public_key is None:
        try:
            key = keyring.load_public_key(signer)
        except ValueError as exc:
            found.problems.append(f"{MANIFEST_FILE}: bad public key: {exc}")
            return None
        whose = "the key the manifest names (give --public-key to require your instance's)"
    else:
        key = public_key
        whose = "the key given"
    key_hex = key.public_bytes_raw().hex()
    try:
        key.verify(signature, body)
    except InvalidSignature:
        found.problems.append(
            f"{MANIFEST_FILE}: signature INVALID for {whose}, {key_hex}: the manifest was "
            "changed, or it was signed by another key"
        )
        return None
    found.checked.append(f"{MANIFEST_FILE}: valid Ed25519 signature by {whose}, {key_hex}")
    _check_archive_file(folder, manifest, found)
    listed = {MANIFEST_FILE, SIGNATURE_FILE, manifest.archive.path}
    for path in sorted(folder.iterdir()):
        if path.name not in listed:
            found.problems.append(f"{path.name}: not listed in the manifest")
    for entry in manifest.files:
        if not is_backed_up_file(entry.path):
            found.problems.append(f"{entry.path}: not a file a backup may hold")
    for directory in manifest.directories:
        if not is_backed_up_directory(directory):
            found.problems.append(f"{directory}: not a directory a backup may hold")
    return manifest


def _check_archive_file(folder: Path, manifest: BackupManifest, found: Checked) -> None:
    entry = manifest.archive
    path = folder / entry.path
    if PurePosixPath(entry.path).name != entry.path or not path.is_file():
        found.problems.append(f"{entry.path}: missing")
        return
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as file:
        while chunk := file.read(archive.CHUNK):
            digest.update(chunk)
            size += len(chunk)
    if size != entry.bytes or digest.hexdigest() != entry.sha256:
        found.problems.append(
            f"{entry.path}: SHA-256 {digest.hexdigest()} ({size} bytes) does not match the "
            f"manifest's {entry.sha256} ({entry.bytes} bytes): changed or truncated"
        )
        return
    found.checked.append(f"{entry.path}: SHA-256 {entry.sha256}, {size} bytes")


def read_archive(
    folder: Path,
    manifest: BackupManifest,
    identities: list[x25519.Identity] | None,
    found: Checked,
    extract_to: Path | None = None,
) -> None:
    """Read the archive through, checking every member against the manifest; write the
    files under ``extract_to`` if given (stopping at the first problem)."""
    if manifest.encryption == "age":
        if identities is None:
            raise BackupError("the archive is encrypted: give --identity KEYFILE")
        given = public_keys(identities)
        if not set(given) & set(manifest.recipients):
            raise BackupError(
                "none of the identities given is a recipient of this backup: it was encrypted "
                f"to {', '.join(manifest.recipients)}; the identities given are for "
                f"{', '.join(given)}"
            )
    expected = {entry.path: entry for entry in manifest.files}
    directories = set(manifest.directories)
    seen: set[str] = set()
    signer_key: bytes | None = None
    with archive.plaintext(
        folder / manifest.archive.path, identities if manifest.encryption == "age" else None
    ) as source:
        for info, contents in archive.members(source):
            name = info.name
            try:
                if name in seen:
                    found.problems.append(f"{name}: twice in the archive")
                elif info.isdir() and name in directories:
                    seen.add(name)
                    if extract_to is not None:
                        (extract_to / name).mkdir(mode=0o700)
                        (extract_to / name).chmod(0o700)  # whatever the umask
                elif info.isreg() and contents is not None and name in expected:
                    seen.add(name)
                    entry = expected[name]
                    keep = name == _EXPORT_KEY
                    digest, size, kept = _copy_member(contents, entry, extract_to, keep)
                    if keep:
                        signer_key = kept
                    if size != entry.bytes or digest != entry.sha256:
                        found.problems.append(
                            f"{name}: SHA-256 {digest} ({size} bytes) does not match the "
                            f"manifest's {entry.sha256} ({entry.bytes} bytes)"
                        )
                else:
                    found.problems.append(f"{name}: in the archive but not in the manifest")
            except OSError as exc:
                found.problems.append(f"{name}: cannot be written: {exc.strerror}")
            if found.problems and extract_to is not None:
                return
        source.drain()
        if source.size != manifest.archive.tar_bytes or (
            source.digest.hexdigest() != manifest.archive.tar_sha256
        ):
            found.problems.append(
                f"{manifest.archive.path}: the tar archive inside does not match the manifest's "
                f"SHA-256 {manifest.archive.tar_sha256} ({manifest.archive.tar_bytes} bytes)"
            )
    missing = sorted((set(expected) | directories) - seen)
    for name in missing:
        found.problems.append(f"{name}: listed in the manifest but not in the archive")
    if signer_key is None:
        found.problems.append(f"{_EXPORT_KEY}: not in the backup")
    elif _public_hex(signer_key) != manifest.public_key:
        found.problems.append(
            f"{_EXPORT_KEY}: not the key that signed the manifest ({manifest.public_key})"
        )
    if not found.problems:
        found.checked.append(
            f"{len(expected)} file(s) in the archive: sizes and SHA-256 as in the manifest, "
            "nothing missing or added; the export key inside signed the manifest"
        )


def _copy_member(
    contents: IO[bytes], entry: BackupFile, extract_to: Path | None, keep: bool
) -> tuple[str, int, bytes | None]:
    digest = hashlib.sha256()
    size = 0
    kept = bytearray() if keep else None
    target = None
    if extract_to is not None:
        mode = 0o600 if is_key_file(entry.path) else int(entry.mode, 8) & 0o777
        # O_EXCL | O_NOFOLLOW: a name seen twice or a planted link cannot redirect a write.
        fd = os.open(
            extract_to / entry.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode
        )
        os.fchmod(fd, mode)  # whatever the umask
        target = os.fdopen(fd, "wb")
    try:
        while chunk := contents.read(archive.CHUNK):
            digest.update(chunk)
            size += len(chunk)
            if kept is not None:
                kept += chunk
            if target is not None:
                target.write(chunk)
    finally:
        if target is not None:
            target.close()
    return digest.hexdigest(), size, None if kept is None else bytes(kept)


def _public_hex(private_text: bytes) -> str:
    try:
        key = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(private_text.decode().strip()))
    except (ValueError, UnicodeDecodeError):
        return "(unreadable)"
    return keyring.public_key_hex(key)


def verify_backup(
    folder: Path,
    *,
    public_key: Ed25519PublicKey | None,
    identities: list[x25519.Identity] | None,
) -> Verification:
    found = Checked()
    manifest = read_manifest(folder, public_key, found)
    if manifest is None:
        return found.verification()
    if manifest.encryption == "age" and identities is None:
        found.checked.append(
            f"contents not read: encrypted to {', '.join(manifest.recipients)} "
            "(give --identity KEYFILE to check every file inside)"
        )
    elif not found.problems:
        try:
            read_archive(folder, manifest, identities, found)
        except BackupError as exc:
            found.problems.append(f"{manifest.archive.path}: {exc}")
    rows = ", ".join(f"{count} {table}" for table, count in manifest.database_rows.items())
    found.checked.append(
        f"backup of {manifest.source_data_dir} taken {manifest.created_at} by "
        f"{manifest.created_by}: Mesure {manifest.mesure_version}, schema version "
        f"{manifest.schema_version}, {manifest.storage} storage, {rows or 'no rows'}"
    )
    return found.verification()
