"""Keyed hashes, the key store (site keys, daily keys and their destruction) and the audit log."""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from collector import hashing
from collector.audit import AuditLog, verify
from collector.cli.main import main
from collector.errors import KeyFileError
from collector.keys import KeyStore
from tests.support import Clock, LiveServer

KEY = bytes(range(32))
START = datetime(2026, 3, 10, 23, 50, tzinfo=UTC)


def test_keyed_hash_is_16_bytes_and_depends_on_key_and_every_part() -> None:
    base = hashing.keyed_hash(KEY, "site", "value")
    assert len(base) == 16
    assert hashing.keyed_hash(KEY, "site", "value") == base
    assert hashing.keyed_hash(bytes(32), "site", "value") != base
    assert hashing.keyed_hash(KEY, "site", "valuf") != base


@pytest.mark.parametrize(
    ("left", "right"),
    [(("ab", "c"), ("a", "bc")), (("a", ""), ("", "a")), (("a",), ("a", ""))],
    ids=["boundary-shift", "empty-swap", "extra-empty-part"],
)
def test_parts_are_separated_unambiguously(left: tuple[str, ...], right: tuple[str, ...]) -> None:
    assert hashing.keyed_hash(KEY, *left) != hashing.keyed_hash(KEY, *right)


def test_each_purpose_hashes_the_same_input_differently() -> None:
    values = {
        hashing.client_visitor(KEY, "s", "x"),
        hashing.user(KEY, "s", "x"),
        hashing.cookieless_visitor(KEY, "s", "x", ""),
    }
    assert len(values) == 3


def _store(tmp_path: Path, clock: Clock) -> tuple[KeyStore, AuditLog]:
    audit = AuditLog(tmp_path / "audit.log", clock)
    return KeyStore.open(tmp_path / "keys", audit, ["example"]), audit


def test_site_keys_are_private_files_created_once_and_audited(tmp_path: Path) -> None:
    clock = Clock(START)
    store, audit = _store(tmp_path, clock)
    client = store.site_key("example", "client")
    files = sorted(p.name for p in (tmp_path / "keys").iterdir())
    assert files == ["daily", "example.client.json", "example.user.json"]
    for path in (tmp_path / "keys").rglob("*"):
        assert path.stat().st_mode & 0o077 == 0
    reopened, _ = _store(tmp_path, clock)
    assert reopened.site_key("example", "client") == client
    assert [e.action for e in audit.entries()] == ["key.create", "key.create"]
    assert client.key.hex() not in repr(client)


def test_rotation_moves_to_the_next_epoch_with_a_new_key(tmp_path: Path) -> None:
    store, audit = _store(tmp_path, Clock(START))
    old = store.site_key("example", "user")
    new = store.rotate("example", "user")
    assert (new.epoch, new.key != old.key) == (old.epoch + 1, True)
    assert audit.entries()[-1].action == "key.rotate"
    assert audit.entries()[-1].detail == {"site": "example", "kind": "user", "epoch": "2"}


def test_world_readable_key_file_refuses_to_start(tmp_path: Path) -> None:
    _store(tmp_path, Clock(START))
    os.chmod(tmp_path / "keys" / "example.client.json", 0o644)
    with pytest.raises(KeyFileError, match=r"example\.client\.json"):
        _store(tmp_path, Clock(START))


def test_a_key_file_of_another_user_refuses_to_start(tmp_path: Path) -> None:
    _store(tmp_path, Clock(START))
    os.chown(tmp_path / "keys" / "example.user.json", 65534, -1)  # the tests run as root
    with pytest.raises(KeyFileError, match=r"example\.user\.json belongs to uid 65534"):
        _store(tmp_path, Clock(START))


def test_serve_refuses_world_readable_keys_with_exit_code_2(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert CliRunner().invoke(main, ["init", "--data", str(data)]).exit_code == 0
    os.chmod(data / "keys" / "localhost.client.json", 0o644)
    for command in (
        ["serve"],
        ["keys", "list"],
        ["dsar", "erase", "--site", "localhost", "--client-id", "x"],
    ):
        result = CliRunner().invoke(main, [*command, "--data", str(data)])
        assert result.exit_code == 2, (command, result.output)
        assert "localhost.client.json is accessible to other users (mode 644)" in result.output
        assert "chmod -R go-rwx" in result.output


def test_daily_keys_rotate_at_midnight_and_die_within_48_hours(tmp_path: Path) -> None:
    clock = Clock(START)
    store, audit = _store(tmp_path, clock)
    daily_dir = tmp_path / "keys" / "daily"

    first = store.daily_keys(clock())
    assert first.previous is None and first.current.epoch == 20260310
    clock.advance(minutes=20)  # 00:10 on the 11th
    second = store.daily_keys(clock())
    assert second.previous == first.current
    assert second.current.key != first.current.key
    clock.advance(days=1)  # the 12th: the 10th ended 24 h 10 min ago and is destroyed now
    third = store.daily_keys(clock())
    assert third.previous == second.current
    assert sorted(p.name for p in daily_dir.iterdir()) == ["2026-03-11.key", "2026-03-12.key"]
    actions = [(e.action, e.detail.get("day")) for e in audit.entries() if "daily" in e.action]
    assert actions == [
        ("daily-key.create", "2026-03-10"),
        ("daily-key.create", "2026-03-11"),
        ("daily-key.destroy", "2026-03-10"),
        ("daily-key.create", "2026-03-12"),
    ]
    destroyed_at = datetime.fromisoformat(audit.entries()[-2].at)
    assert destroyed_at - datetime(2026, 3, 11, tzinfo=UTC) <= timedelta(hours=48)


def test_a_later_start_destroys_every_stale_daily_key(tmp_path: Path) -> None:
    clock = Clock(START)
    store, _ = _store(tmp_path, clock)
    store.daily_keys(clock())
    clock.advance(days=10)
    later, audit = _store(tmp_path, clock)
    keys = later.daily_keys(clock())
    assert keys.previous is None
    assert [p.name for p in (tmp_path / "keys" / "daily").iterdir()] == ["2026-03-20.key"]
    assert audit.entries()[-2].action == "daily-key.destroy"


def test_audit_log_chain_verifies_and_reports_the_first_broken_link(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.log", Clock(START))
    for number in range(5):
        log.append("test", number=str(number))
    assert verify(log.path) is None
    original = log.path.read_bytes().splitlines()
    edited = list(original)
    edited[2] = edited[2].replace(b'"number":"2"', b'"number":"9"')
    log.path.write_bytes(b"\n".join(edited) + b"\n")
    assert verify(log.path) == 4  # entry 3 was edited: the link stored in entry 4 no longer holds
    log.path.write_bytes(b"\n".join(original[:1] + original[2:]) + b"\n")
    assert verify(log.path) == 2  # entry 2 was deleted


def test_the_collector_destroys_stale_daily_keys_at_start_without_any_hit(
    serve: Callable[..., LiveServer],
) -> None:
    clock = Clock(START)
    server = serve(clock=clock)
    daily_dir = server.data_dir / "keys" / "daily"
    assert [p.name for p in daily_dir.iterdir()] == ["2026-03-10.key"]
    server.stop()
    clock.advance(days=3)
    server.start()
    assert [p.name for p in daily_dir.iterdir()] == ["2026-03-13.key"]
    log = AuditLog(server.config.audit_path, clock)
    assert [e.detail["day"] for e in log.entries() if e.action == "daily-key.destroy"] == [
        "2026-03-10"
    ]
