"""age keys: the recipients a backup is encrypted to, the identities that decrypt it.

Only X25519 keys, the age format's own (``age1…`` public keys, ``AGE-SECRET-KEY-1…``
identities as ``age-keygen`` writes them), so that the ordinary ``age`` command decrypts every
backup too. Files of keys follow age's own format: one key per line, ``#`` comments.
"""

from __future__ import annotations

from pathlib import Path

from pyrage import IdentityError, RecipientError, x25519

from collector.errors import BackupError

_SECRET_PREFIX = "AGE-SECRET-KEY-"


def parse_recipient(text: str, where: str = "--recipient") -> x25519.Recipient:
    value = text.strip()
    if value.upper().startswith(_SECRET_PREFIX):
        # Said outright: the secret key would otherwise be echoed in the error message.
        raise BackupError(
            f"{where}: this is an age secret key, not a public key: give its public key "
            "(age-keygen -y KEYFILE prints it) and keep the secret key away from the backups"
        )
    try:
        return x25519.Recipient.from_str(value)
    except RecipientError as exc:
        raise BackupError(
            f"{where}: {value!r} is not an age X25519 public key (age1…): {exc}"
        ) from None


def read_recipients_file(path: Path) -> list[x25519.Recipient]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise BackupError(f"--recipients-file {path}: cannot be read: {exc}") from None
    found = [
        parse_recipient(line, f"{path}, line {number}")
        for number, line in enumerate(lines, start=1)
        if line.strip() and not line.lstrip().startswith("#")
    ]
    if not found:
        raise BackupError(f"--recipients-file {path}: holds no age public key (age1…)")
    return found


def read_identities(path: Path) -> list[x25519.Identity]:
    """The identities of an age identity file (``age-keygen -o KEYFILE``)."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise BackupError(f"--identity {path}: cannot be read: {exc}") from None
    found = []
    for number, line in enumerate(lines, start=1):
        value = line.strip()
        if not value or value.startswith("#"):
            continue
        try:
            found.append(x25519.Identity.from_str(value))
        except IdentityError:
            # The line itself is never shown: it may be a secret key with a typo.
            raise BackupError(
                f"--identity {path}, line {number}: not an age X25519 identity "
                "(AGE-SECRET-KEY-1…, as age-keygen writes)"
            ) from None
    if not found:
        raise BackupError(f"--identity {path}: holds no age identity (AGE-SECRET-KEY-1…)")
    return found


def public_keys(identities: list[x25519.Identity]) -> list[str]:
    return [str(identity.to_public()) for identity in identities]
