"""What a backup holds, read with Debian's own ``age`` and ``tar``: the same files as the data
directory and as ``mesure restore`` writes (key files 0600, folders 0700); an unencrypted backup
only with its flag and a warning; every backup and restore in the audit log."""

from __future__ import annotations

import hashlib
import json
import stat
import subprocess
from pathlib import Path

import msgspec

from collector.audit import AuditEntry
from tests.backup.support import COMMAND_TIMEOUT, identity_file, init, mesure, tree

AGE = "/usr/bin/age"


def _entries(log: bytes) -> list[AuditEntry]:
    return [msgspec.json.decode(line, type=AuditEntry) for line in log.splitlines()]


def _modes(root: Path) -> dict[str, int]:
    return {
        path.relative_to(root).as_posix(): stat.S_IMODE(path.stat().st_mode)
        for path in [root, *root.rglob("*")]
    }


def test_a_backup_decrypted_with_age_gives_the_same_files(tmp_path: Path) -> None:
    data = tmp_path / "data"
    init(data)
    mesure("keys", "rotate", "--site", "example.com", "--kind", "user", "--data", str(data))
    first, second = tmp_path / "first.txt", tmp_path / "second.txt"
    first_recipient = identity_file(first)
    recipients_file = tmp_path / "recipients.txt"
    recipients_file.write_text(f"# the second\n\n{identity_file(second)}\n", encoding="ascii")
    out = tmp_path / "backup"
    mesure(
        "backup",
        "--data",
        str(data),
        "--out",
        str(out),
        "--recipient",
        first_recipient,
        "--recipients-file",
        str(recipients_file),
        "--by",
        "ops team",
    )
    assert sorted(path.name for path in out.iterdir()) == [
        "data.tar.age",
        "manifest.json",
        "manifest.sig",
    ]
    manifest = json.loads((out / "manifest.json").read_text())
    assert len(manifest["recipients"]) == 2

    # Plain age with the second identity, then plain tar.
    tar = tmp_path / "data.tar"
    subprocess.run(
        [AGE, "-d", "-i", str(second), "-o", str(tar), str(out / "data.tar.age")],
        check=True,
        timeout=COMMAND_TIMEOUT,
    )
    assert hashlib.sha256(tar.read_bytes()).hexdigest() == manifest["archive"]["tar_sha256"]
    extracted = tmp_path / "extracted"
    extracted.mkdir(mode=0o700)
    subprocess.run(
        ["tar", "-x", "-p", "-f", str(tar), "-C", str(extracted)],
        check=True,
        timeout=COMMAND_TIMEOUT,
    )
    files = tree(extracted)
    listed = {entry["path"]: entry for entry in manifest["files"]}
    assert sorted(files) == sorted(listed)
    assert {"mesure.toml", "mesure.db", "audit.log", "keys/export.ed25519"} <= set(files)
    assert "keys/epochs/example.com.user.1.json" in files  # a retired epoch, still kept
    for path, body in files.items():
        assert hashlib.sha256(body).hexdigest() == listed[path]["sha256"], path

    live = tree(data)
    for path in files.keys() - {"mesure.db", "audit.log"}:
        assert files[path] == live[path], path
    # The live log is the backed-up one plus the backup's own entry.
    assert live["audit.log"].startswith(files["audit.log"])
    (entry,) = _entries(live["audit.log"][len(files["audit.log"]) :])
    assert entry.action == "backup" and entry.detail["by"] == "ops team"
    assert entry.detail["sha256"] == manifest["archive"]["sha256"]
    key_modes = {path: mode for path, mode in _modes(extracted).items() if path.startswith("keys")}
    assert all(
        mode == (0o700 if (extracted / p).is_dir() else 0o600) for p, mode in key_modes.items()
    )

    # Mesure's own restore, with the first identity: the same files, key files 0600.
    restored = tmp_path / "restored"
    mesure("restore", str(out), "--data", str(restored), "--identity", str(first))
    restored_files = tree(restored)
    assert sorted(restored_files) == sorted(files)
    for path in files.keys() - {"audit.log"}:
        assert restored_files[path] == files[path], path
    assert restored_files["audit.log"].startswith(files["audit.log"])
    (entry,) = _entries(restored_files["audit.log"][len(files["audit.log"]) :])
    assert entry.action == "restore" and entry.detail["backup"] == str(out)
    for path, mode in _modes(restored).items():
        if (restored / path).is_dir():
            assert mode == 0o700, path
        elif path.startswith("keys/"):
            assert mode == 0o600, path
    mesure("audit", "verify", "--data", str(restored))
    mesure("keys", "list", "--data", str(restored))  # the key store accepts the restored keys


def test_an_unencrypted_backup_needs_its_flag_and_warns(tmp_path: Path) -> None:
    data = tmp_path / "data"
    init(data)
    out = tmp_path / "backup"
    refused = mesure("backup", "--data", str(data), "--out", str(out), expect=2)
    assert "--recipient" in refused.stderr and "--unencrypted" in refused.stderr
    assert not out.exists()

    done = mesure("backup", "--data", str(data), "--out", str(out), "--unencrypted")
    assert "WARNING: --unencrypted" in done.stderr
    assert f"WARNING: {out} is NOT encrypted" in done.stderr
    assert sorted(path.name for path in out.iterdir()) == [
        "data.tar",
        "manifest.json",
        "manifest.sig",
    ]
    listing = subprocess.run(
        ["tar", "-t", "-f", str(out / "data.tar")],
        check=True,
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT,
    ).stdout.split()
    assert "keys/example.com.client.json" in listing
    # Readable, so verified through without an identity.
    verified = mesure("backup", "verify", str(out))
    assert "file(s) in the archive: sizes and SHA-256 as in the manifest" in verified.stdout
    restored = tmp_path / "restored"
    mesure("restore", str(out), "--data", str(restored))
    assert (restored / "keys" / "example.com.client.json").read_bytes() == (
        data / "keys" / "example.com.client.json"
    ).read_bytes()
