"""Key epochs kept for access and erasure, their destruction, and the Ed25519 export key.

:meth:`KeyStore.rotate` replaces a site key by the next epoch. Before it does, :func:`rotate`
copies the retiring key to ``keys/epochs/<site>.<kind>.<epoch>.json`` (0600), so rows stored
under it can still be found for an access or erasure request. :func:`destroy_epoch` overwrites
and deletes that copy: from then on nobody, Mesure included, can compute the hashes of that
epoch again, which crypto-shreds the link between those rows and any identifier.

The export key (``keys/export.ed25519``, 0600) signs export manifests; its public half is what
an auditor verifies with.
"""

from __future__ import annotations

import os
import re
import secrets
from datetime import date
from pathlib import Path

import msgspec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from collector.audit import AuditLog
from collector.errors import KeyEpochError, KeyFileError
from collector.keys import KeyStore, SiteKey, SiteKeyKind, shred

EPOCHS_DIR = "epochs"
EXPORT_KEY_FILE = "export.ed25519"
KINDS: tuple[SiteKeyKind, ...] = ("client", "user")
_RETIRED = re.compile(r"^(?P<site>.+)\.(?P<kind>client|user)\.(?P<epoch>[0-9]+)\.json$")


class _KeyFile(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    epoch: int
    key: str


class EpochState(msgspec.Struct, frozen=True, kw_only=True):
    """One site key's epochs: the current one, the retired ones kept, the destroyed ones."""

    site: str
    kind: SiteKeyKind
    current: int
    kept: list[int]
    destroyed: list[int]


class KeyInventory(msgspec.Struct, frozen=True, kw_only=True):
    """Every site key's epochs, and the UTC days whose cookieless keys still exist."""

    site_keys: list[EpochState]
    daily_key_days: list[str]


def rotate(store: KeyStore, site: str, kind: SiteKeyKind, *, by: str | None = None) -> SiteKey:
    """Retire ``site``'s current ``kind`` key (kept until destroyed) and start the next epoch."""
    retiring = store.site_key(site, kind)
    _write_private(
        _retired_path(store.keys_dir, site, kind, retiring.epoch),
        msgspec.json.encode(_KeyFile(epoch=retiring.epoch, key=retiring.key.hex())),
    )
    return store.rotate(site, kind, by=by)


def kept_keys(store: KeyStore, site: str, kind: SiteKeyKind) -> list[SiteKey]:
    """The current key and every retired key still kept, newest first."""
    keys = [store.site_key(site, kind)]
    for epoch in retired_epochs(store.keys_dir, site, kind):
        path = _retired_path(store.keys_dir, site, kind, epoch)
        try:
            data = msgspec.json.decode(path.read_bytes(), type=_KeyFile)
            keys.append(SiteKey(epoch=data.epoch, key=bytes.fromhex(data.key)))
        except FileNotFoundError:
            continue  # destroyed meanwhile
        except (OSError, ValueError, msgspec.DecodeError) as exc:
            raise KeyFileError(f"{path}: unreadable key file: {exc}") from exc
    return sorted(keys, key=lambda key: -key.epoch)


def retired_epochs(keys_dir: Path, site: str, kind: SiteKeyKind) -> list[int]:
    folder = keys_dir / EPOCHS_DIR
    if not folder.is_dir():
        return []
    epochs = []
    for path in folder.iterdir():
        match = _RETIRED.match(path.name)
        if match and match["site"] == site and match["kind"] == kind:
            epochs.append(int(match["epoch"]))
    return sorted(epochs)


def destroy_epoch(
    store: KeyStore,
    audit: AuditLog,
    site: str,
    kind: SiteKeyKind,
    epoch: int,
    *,
    by: str | None = None,
) -> None:
    """Overwrite and delete a retired key: its hashes can never be computed again."""
    current = store.site_key(site, kind)
    if epoch == current.epoch:
        raise KeyEpochError(
            f"epoch {epoch} is the current {kind} key of {site}: rotate it first "
            f"(mesure keys rotate --site {site} --kind {kind})"
        )
    path = _retired_path(store.keys_dir, site, kind, epoch)
    try:
        shred(path)
    except FileNotFoundError:
        raise KeyEpochError(
            f"epoch {epoch} of {site}'s {kind} key is not kept (never existed or destroyed)"
        ) from None
    who = {} if by is None else {"by": by}
    audit.append("key.destroy", concerns=[site], site=site, kind=kind, epoch=str(epoch), **who)


def inventory(store: KeyStore, sites: list[str]) -> KeyInventory:
    states = []
    for site in sites:
        for kind in KINDS:
            current = store.site_key(site, kind).epoch
            kept = retired_epochs(store.keys_dir, site, kind)
            destroyed = [e for e in range(1, current) if e not in kept]
            states.append(
                EpochState(site=site, kind=kind, current=current, kept=kept, destroyed=destroyed)
            )
    return KeyInventory(site_keys=states, daily_key_days=daily_key_days(store.keys_dir))


def daily_key_days(keys_dir: Path) -> list[str]:
    """UTC days (``YYYY-MM-DD``) whose cookieless key still exists."""
    days = []
    for path in (keys_dir / "daily").glob("*.key"):
        try:
            days.append(date.fromisoformat(path.stem).isoformat())
        except ValueError:
            continue
    return sorted(days)


def export_key(keys_dir: Path, audit: AuditLog) -> Ed25519PrivateKey:
    """The instance's export signing key, created (and audit-logged) on first use."""
    path = keys_dir / EXPORT_KEY_FILE
    if not path.exists():
        keys_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        private = Ed25519PrivateKey.generate()
        raw = private.private_bytes_raw().hex().encode()
        if _write_private(path, raw):
            audit.append("key.create", kind="export", public_key=public_key_hex(private))
    try:
        return Ed25519PrivateKey.from_private_bytes(bytes.fromhex(path.read_text().strip()))
    except (OSError, ValueError) as exc:
        raise KeyFileError(f"{path}: unreadable export key: {exc}") from exc


def public_key_hex(private: Ed25519PrivateKey) -> str:
    return private.public_key().public_bytes_raw().hex()


def load_public_key(text: str) -> Ed25519PublicKey:
    """A public key given as 64 hex digits (what ``mesure keys public`` prints)."""
    try:
        return Ed25519PublicKey.from_public_bytes(bytes.fromhex(text.strip()))
    except ValueError as exc:
        raise KeyFileError(f"not an Ed25519 public key (64 hex digits): {exc}") from exc


def _retired_path(keys_dir: Path, site: str, kind: SiteKeyKind, epoch: int) -> Path:
    return keys_dir / EPOCHS_DIR / f"{site}.{kind}.{epoch}.json"


def _write_private(path: Path, data: bytes) -> bool:
    """Create ``path`` with mode 0600 holding ``data``, atomically; ``False`` if it exists."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as file:
        file.write(data)
        file.flush()
        os.fsync(file.fileno())
    try:
        os.link(temp, path)
    except FileExistsError:
        return False
    finally:
        temp.unlink(missing_ok=True)
    return True
