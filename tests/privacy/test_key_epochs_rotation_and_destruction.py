"""Key rotation keeps the old epoch for erasure; ``keys destroy`` crypto-shreds it."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

from collector import hashing
from collector.audit import AuditLog
from collector.config import Config
from collector.keys import KEY_RECHECK_SECONDS, KeyStore
from collector.privacy import keyring
from tests.privacy.support import SITE, events, run, scan, send, write_data_dir
from tests.support import Clock, LiveServer

ALICE = "cid-alice-Kq3vX81"
BOB = "cid-bob-Zr55pLw"
Live = Callable[[Config, Clock], LiveServer]


def _granted(cid: str) -> dict[str, str]:
    return {"mode": "granted", "cid": cid}


def test_erasure_reaches_rows_of_a_rotated_epoch(tmp_path: Path, clock: Clock, live: Live) -> None:
    config = write_data_dir(tmp_path / "data")
    server = live(config, clock)
    send(server, _granted(ALICE), _granted(BOB))
    server.stop()
    assert "epoch 1 kept" in run(config.data_dir, "keys", "rotate", "--site", SITE)
    server.start()
    clock.advance(hours=2)
    send(server, _granted(ALICE), _granted(ALICE))
    server.stop()

    epochs = sorted((row["key_epoch"], row["visitor"]) for row in events(config))
    assert [epoch for epoch, _ in epochs] == [1, 1, 2, 2]
    listed = json.loads(run(config.data_dir, "keys", "list", "--json"))
    client = next(s for s in listed["site_keys"] if s["kind"] == "client")
    assert (client["current"], client["kept"], client["destroyed"]) == (2, [1], [])

    output = run(config.data_dir, "dsar", "erase", "--site", SITE, "--client-id", ALICE)
    assert "found 3 event(s)" in output
    assert "epochs [2, 1]" in output
    assert "searched again: 0 event(s) left" in output
    left = events(config)
    assert len(left) == 1
    assert left[0]["visitor"] == hashing.client_visitor(
        _old_key(config, 1, clock), SITE, BOB
    )  # Bob's epoch-1 row is untouched


def test_a_rotation_made_elsewhere_applies_to_the_running_collector_without_restart(
    tmp_path: Path, clock: Clock, live: Live
) -> None:
    config = write_data_dir(tmp_path / "data")
    server = live(config, clock)
    send(server, _granted(ALICE))
    # Another process (here the CLI's own key store) replaces the key file; the collector
    # looks at it again within KEY_RECHECK_SECONDS and hashes with the new epoch from then on.
    assert "epoch 1 kept" in run(config.data_dir, "keys", "rotate", "--site", SITE)
    deadline = time.monotonic() + 5 * KEY_RECHECK_SECONDS
    while True:
        send(server, _granted(ALICE))
        rows = events(config)
        if rows[-1]["key_epoch"] == 2 or time.monotonic() > deadline:
            break
        time.sleep(KEY_RECHECK_SECONDS / 4)
    epochs = [row["key_epoch"] for row in rows]
    assert epochs[0] == 1 and epochs[-1] == 2, epochs
    assert epochs == sorted(epochs)  # never back to the old key once the new one is read
    new_key = _old_key(config, 2, clock)
    assert rows[-1]["visitor"] == hashing.client_visitor(new_key, SITE, ALICE)
    assert rows[0]["visitor"] != rows[-1]["visitor"]


def _old_key(config: Config, epoch: int, clock: Clock) -> bytes:
    store = KeyStore(config.keys_dir, AuditLog(config.audit_path, clock))
    found = [key for key in keyring.kept_keys(store, SITE, "client") if key.epoch == epoch]
    assert len(found) == 1
    return found[0].key


def test_a_destroyed_epoch_can_no_longer_produce_its_hashes(
    tmp_path: Path, clock: Clock, live: Live
) -> None:
    config = write_data_dir(tmp_path / "data")
    server = live(config, clock)
    send(server, _granted(BOB), {"mode": "granted", "cid": BOB, "uid": "bob@example.org"})
    server.stop()
    run(config.data_dir, "keys", "rotate", "--site", SITE)
    old_client, stored = _old_key(config, 1, clock), events(config)[0]["visitor"]
    assert hashing.client_visitor(old_client, SITE, BOB) == stored

    refused = run(
        config.data_dir,
        "keys",
        "destroy",
        "--site",
        SITE,
        "--kind",
        "client",
        "--epoch",
        "2",
        expect=1,
    )
    assert "rotate it first" in refused
    # Without --kind: every kind whose epoch 1 is retired (both were rotated).
    destroyed = run(config.data_dir, "keys", "destroy", "--site", SITE, "--epoch", "1")
    assert destroyed.splitlines() == [
        f"{SITE} client key epoch 1 destroyed",
        f"{SITE} user key epoch 1 destroyed",
    ]
    again = run(config.data_dir, "keys", "destroy", "--site", SITE, "--epoch", "1", expect=1)
    assert "is not kept (never existed or destroyed)" in again

    # The key bytes exist nowhere in the data directory any more, in any form.
    assert scan(config.data_dir, {"client key": old_client.hex()}) == []
    assert old_client not in b"".join(
        p.read_bytes() for p in config.keys_dir.rglob("*") if p.is_file()
    )
    # No kept key reproduces the stored hash, so the rows cannot be found for Bob any more.
    store = KeyStore(config.keys_dir, AuditLog(config.audit_path, clock))
    kept = keyring.kept_keys(store, SITE, "client")
    assert [key.epoch for key in kept] == [2]
    assert all(hashing.client_visitor(key.key, SITE, BOB) != stored for key in kept)
    output = run(config.data_dir, "dsar", "erase", "--site", SITE, "--client-id", BOB)
    assert "found 0 event(s)" in output
    assert len(events(config)) == 2
    listed = json.loads(run(config.data_dir, "keys", "list", "--json"))
    assert {(s["kind"], tuple(s["destroyed"])) for s in listed["site_keys"]} == {
        ("client", (1,)),
        ("user", (1,)),
    }
    actions = [entry.action for entry in AuditLog(config.audit_path, clock).entries()]
    assert actions.count("key.destroy") == 2
