"""Bad inputs to ``backup``, ``backup verify`` and ``restore``: each a clear message, exit code 2
(1 for a backup that does not verify), and nothing written."""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from collector.cli.main import main
from tests.backup.support import identity_file, init, mesure


@dataclass(frozen=True)
class Made:
    data: Path
    identity: Path
    recipient: str
    backup: Path


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> Made:
    """A data directory and an encrypted backup of it, made once for the module."""
    root = tmp_path_factory.mktemp("made")
    data, identity, backup = root / "data", root / "identity.txt", root / "backup"
    init(data)
    recipient = identity_file(identity)
    mesure("backup", "--data", str(data), "--out", str(backup), "--recipient", recipient)
    return Made(data=data, identity=identity, recipient=recipient, backup=backup)


def _run(*args: str | Path) -> Result:
    return CliRunner().invoke(main, [str(arg) for arg in args])


def _copy(made: Made, tmp_path: Path) -> Path:
    copy = tmp_path / "copy"
    shutil.copytree(made.backup, copy)
    return copy


def _restore_refused(backup: Path, tmp_path: Path, *extra: str | Path) -> str:
    target = tmp_path / "restored"
    result = _run("restore", backup, "--data", target, *extra)
    assert result.exit_code == 2, result.output
    assert not target.exists()
    assert [path.name for path in tmp_path.iterdir() if "mesure-partial" in path.name] == []
    return result.output


def _sign(made: Made, backup: Path, document: dict[str, object]) -> None:
    """Write ``document`` as ``backup``'s manifest, signed with the instance's own key."""
    instance_key = Ed25519PrivateKey.from_private_bytes(
        bytes.fromhex((made.data / "keys" / "export.ed25519").read_text())
    )
    body = json.dumps(document, indent=2).encode() + b"\n"
    (backup / "manifest.json").write_bytes(body)
    (backup / "manifest.sig").write_text(instance_key.sign(body).hex() + "\n")


def _not_verified(backup: Path, *extra: str | Path) -> str:
    result = _run("backup", "verify", backup, *extra)
    assert result.exit_code == 1, result.output
    assert "backup NOT verified" in result.output
    return result.output


def test_a_backup_needs_a_recipient_or_the_explicit_flag(made: Made, tmp_path: Path) -> None:
    result = _run("backup", "--data", made.data, "--out", tmp_path / "b")
    assert result.exit_code == 2
    assert "give --recipient age1…" in result.output
    both = _run(
        "backup",
        "--data",
        made.data,
        "--out",
        tmp_path / "b",
        "--unencrypted",
        "--recipient",
        made.recipient,
    )
    assert both.exit_code == 2 and "exclude each other" in both.output
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("recipient", "message"),
    [
        ("age1notakey", "'age1notakey' is not an age X25519 public key (age1…)"),
        ("ssh-ed25519 AAAAC3Nz", "is not an age X25519 public key"),
        ("", "is not an age X25519 public key"),
    ],
)
def test_a_malformed_recipient_is_refused(
    made: Made, tmp_path: Path, recipient: str, message: str
) -> None:
    result = _run("backup", "--data", made.data, "--out", tmp_path / "b", "--recipient", recipient)
    assert result.exit_code == 2
    assert message in result.output
    assert list(tmp_path.iterdir()) == []


def test_a_secret_key_given_as_recipient_is_refused_without_echoing_it(
    made: Made, tmp_path: Path
) -> None:
    secret = made.identity.read_text().splitlines()[-1]
    result = _run("backup", "--data", made.data, "--out", tmp_path / "b", "--recipient", secret)
    assert result.exit_code == 2
    assert "this is an age secret key, not a public key" in result.output
    assert secret not in result.output
    files = tmp_path / "recipients.txt"
    files.write_text("age1notakey\n")
    from_file = _run(
        "backup", "--data", made.data, "--out", tmp_path / "b", "--recipients-file", files
    )
    assert from_file.exit_code == 2 and f"{files}, line 1" in from_file.output
    assert sorted(path.name for path in tmp_path.iterdir()) == ["recipients.txt"]


def test_the_out_directory_must_not_exist(made: Made, tmp_path: Path) -> None:
    for existing in (tmp_path / "empty", tmp_path / "full"):
        existing.mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    for existing in (tmp_path / "empty", tmp_path / "full"):
        result = _run(
            "backup",
            "--data",
            made.data,
            "--out",
            existing,
            "--recipient",
            made.recipient,
        )
        assert result.exit_code == 2
        assert f"{existing} already exists: a backup goes to a new directory" in result.output
    assert sorted(path.name for path in tmp_path.rglob("*")) == ["empty", "full", "keep.txt"]


def test_a_wrong_identity_decrypts_nothing(made: Made, tmp_path: Path) -> None:
    other = tmp_path / "other.txt"
    identity_file(other)
    output = _restore_refused(made.backup, tmp_path, "--identity", other)
    assert "none of the identities in --identity is a recipient of this backup" in output
    assert "NOT verified" not in _run("backup", "verify", made.backup).output
    assert "none of the identities given is a recipient" in _not_verified(
        made.backup, "--identity", other
    )
    missing = _restore_refused(made.backup, tmp_path)
    assert "the backup is encrypted: give --identity KEYFILE" in missing
    garbage = tmp_path / "garbage.txt"
    garbage.write_text("AGE-SECRET-KEY-1NOTREALLY\n")
    assert f"--identity {garbage}, line 1: not an age X25519 identity" in _restore_refused(
        made.backup, tmp_path, "--identity", garbage
    )


def test_a_changed_archive_is_found_without_the_identity(made: Made, tmp_path: Path) -> None:
    copy = _copy(made, tmp_path / "backups")
    archive = copy / "data.tar.age"
    body = bytearray(archive.read_bytes())
    body[len(body) // 2] ^= 0x01
    archive.write_bytes(bytes(body))
    assert "FAILED   data.tar.age: SHA-256" in _not_verified(copy)
    output = _restore_refused(copy, tmp_path, "--identity", made.identity)
    assert "does not verify; nothing was restored" in output and "data.tar.age: SHA-256" in output

    archive.write_bytes(bytes(body[: len(body) // 3]))
    assert "data.tar.age: SHA-256" in _not_verified(copy)


def test_a_changed_manifest_breaks_its_signature(made: Made, tmp_path: Path) -> None:
    copy = _copy(made, tmp_path / "backups")
    manifest = copy / "manifest.json"
    manifest.write_text(manifest.read_text().replace('"created_by": "', '"created_by": "x'))
    assert "manifest.json: signature INVALID" in _not_verified(copy)
    assert "signature INVALID" in _restore_refused(copy, tmp_path, "--identity", made.identity)


def test_a_manifest_signed_by_another_key_fails_against_the_instance_key(
    made: Made, tmp_path: Path
) -> None:
    """Anyone with a recipient's public key can make an archive and sign a manifest with a key
    of their own: ``--public-key`` pins the instance's."""
    instance_key = _run("keys", "public", "--data", made.data).output.strip()
    copy = _copy(made, tmp_path / "backups")
    forger = Ed25519PrivateKey.generate()
    document = json.loads((copy / "manifest.json").read_text())
    document["public_key"] = forger.public_key().public_bytes_raw().hex()
    body = json.dumps(document, indent=2).encode() + b"\n"
    (copy / "manifest.json").write_bytes(body)
    (copy / "manifest.sig").write_text(forger.sign(body).hex() + "\n")
    assert "signature INVALID for the key given" in _not_verified(
        copy, "--public-key", instance_key
    )
    output = _restore_refused(
        copy, tmp_path, "--identity", made.identity, "--public-key", instance_key
    )
    assert "signature INVALID" in output
    # Without the pin, the contents still give the forgery away: the export key inside the
    # archive is not the one that signed.
    assert "keys/export.ed25519: not the key that signed the manifest" in _not_verified(
        copy, "--identity", made.identity
    )


def test_a_partial_or_padded_backup_directory_does_not_verify(made: Made, tmp_path: Path) -> None:
    copy = _copy(made, tmp_path / "backups")
    (copy / "notes.txt").write_text("added")
    assert "notes.txt: not listed in the manifest" in _not_verified(copy)
    (copy / "notes.txt").unlink()
    (copy / "manifest.sig").unlink()
    assert "manifest.sig: missing: not a complete backup" in _not_verified(copy)
    assert "not a complete backup" in _restore_refused(copy, tmp_path, "--identity", made.identity)


def test_a_restore_refuses_a_non_empty_directory(made: Made, tmp_path: Path) -> None:
    target = tmp_path / "target"
    target.mkdir()
    (target / "mesure.toml").write_text("# someone's\n")
    result = _run("restore", made.backup, "--data", target, "--identity", made.identity)
    assert result.exit_code == 2
    assert f"{target} is not empty" in result.output
    assert [path.name for path in target.iterdir()] == ["mesure.toml"]
    assert (target / "mesure.toml").read_text() == "# someone's\n"
    # An empty directory is fine: it becomes the data directory.
    empty = tmp_path / "empty"
    empty.mkdir()
    restored = _run("restore", made.backup, "--data", empty, "--identity", made.identity)
    assert restored.exit_code == 0, restored.output
    assert (empty / "mesure.toml").exists()


def test_a_backup_from_a_newer_schema_is_not_restored(made: Made, tmp_path: Path) -> None:
    copy = _copy(made, tmp_path / "backups")
    document = json.loads((copy / "manifest.json").read_text())
    document["schema_migrations"].append("a_later_migration")
    _sign(made, copy, document)
    output = _restore_refused(copy, tmp_path, "--identity", made.identity)
    assert "has migrations this Mesure does not know (a_later_migration)" in output


def test_a_changed_archive_under_a_re_signed_manifest_fails_to_decrypt(
    made: Made, tmp_path: Path
) -> None:
    """Someone holding the export key re-signs a manifest for a changed archive: age's own
    authentication of every chunk still refuses it, and the restore writes nothing."""
    copy = _copy(made, tmp_path / "backups")
    archive = copy / "data.tar.age"
    body = bytearray(archive.read_bytes())
    body[-100] ^= 0x01
    archive.write_bytes(bytes(body))
    document = json.loads((copy / "manifest.json").read_text())
    document["archive"]["sha256"] = hashlib.sha256(body).hexdigest()
    _sign(made, copy, document)
    assert "data.tar.age: the archive cannot be decrypted" in _not_verified(
        copy, "--identity", made.identity
    )
    output = _restore_refused(copy, tmp_path, "--identity", made.identity)
    assert "the archive cannot be decrypted" in output
