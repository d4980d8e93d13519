"""Verifying an export directory: the signature over ``manifest.json``, then every file's size,
SHA-256 and row count, and that no file was added. Needs nothing but the directory and the
instance's public key, so an auditor can run it on their own machine.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import msgspec
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from collector.privacy.manifest import MANIFEST_FILE, SIGNATURE_FILE, manifest_decoder


class Verification(msgspec.Struct, frozen=True, kw_only=True):
    ok: bool
    #: One line per check that passed.
    checked: list[str]
    #: One line per check that failed.
    problems: list[str]


def verify_export(folder: Path, public_key: Ed25519PublicKey) -> Verification:
    checked: list[str] = []
    problems: list[str] = []
    try:
        body = (folder / MANIFEST_FILE).read_bytes()
        signature = bytes.fromhex((folder / SIGNATURE_FILE).read_text().strip())
    except (OSError, ValueError) as exc:
        return Verification(ok=False, checked=[], problems=[f"unreadable manifest: {exc}"])
    key_hex = public_key.public_bytes_raw().hex()
    try:
        public_key.verify(signature, body)
        checked.append(f"signature of {MANIFEST_FILE}: valid Ed25519, public key {key_hex}")
    except InvalidSignature:
        problems.append(
            f"signature of {MANIFEST_FILE}: INVALID for public key {key_hex} "
            "(the manifest was changed, or it was signed by another key)"
        )
    try:
        manifest = manifest_decoder.decode(body)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        problems.append(f"{MANIFEST_FILE}: not a valid manifest: {exc}")
        return Verification(ok=False, checked=checked, problems=problems)
    listed = {MANIFEST_FILE, SIGNATURE_FILE}
    for entry in manifest.files:
        listed.add(entry.path)
        path = folder / entry.path
        if not path.is_file() or path.parent != folder:
            problems.append(f"{entry.path}: missing")
            continue
        data = path.read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        if digest != entry.sha256 or len(data) != entry.bytes:
            problems.append(
                f"{entry.path}: SHA-256 {digest} ({len(data)} bytes) does not match the "
                f"manifest's {entry.sha256} ({entry.bytes} bytes)"
            )
            continue
        checked.append(f"{entry.path}: SHA-256 {digest}, {len(data)} bytes, {entry.rows} rows")
    for path in sorted(folder.iterdir()):
        if path.name not in listed:
            problems.append(f"{path.name}: not listed in the manifest")
    checked.append(
        f"{len(manifest.files)} file(s), {manifest.total_rows} row(s), sites "
        f"{', '.join(manifest.sites)}, {manifest.period.first_day}..{manifest.period.last_day}, "
        f"exported {manifest.exported_at} by {manifest.exported_by}"
    )
    return Verification(ok=not problems, checked=checked, problems=problems)
