"""Access and erasure requests by user id and by client id, with row counts before and after,
the cookieless notice, and no raw identifier left anywhere (data directory and exports)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from collector.config import Config
from tests.privacy.support import SITE, events, run, scan, send, write_data_dir
from tests.support import Clock, LiveServer

ALICE_CID, ALICE_UID = "cid-alice-Hw81Pq2", "alice.secret@example.org"
BOB_CID, BOB_UID = "cid-bob-Lm20Rt7", "bob-user-00042"
NEEDLES = {"alice cid": ALICE_CID, "alice uid": ALICE_UID, "bob cid": BOB_CID, "bob uid": BOB_UID}
Live = Callable[[Config, Clock], LiveServer]


def _traffic(tmp_path: Path, clock: Clock, live: Live) -> Config:
    config = write_data_dir(tmp_path / "data")
    server = live(config, clock)
    send(
        server,
        {"mode": "granted", "cid": ALICE_CID},  # before logging in: same visit, no user id
        {"mode": "granted", "cid": ALICE_CID, "uid": ALICE_UID},
        {"mode": "granted", "cid": ALICE_CID, "uid": ALICE_UID, "name": "signup"},
        {"mode": "granted", "cid": BOB_CID, "uid": BOB_UID},
        {"mode": "exempt", "cid": BOB_CID},
        {"mode": "exempt"},  # cookieless
        {"mode": "denied"},
    )
    clock.advance(days=1)
    send(server, {"mode": "granted", "cid": ALICE_CID, "uid": ALICE_UID})  # a second visit
    server.stop()
    return config


def test_access_then_erasure_by_user_id(tmp_path: Path, clock: Clock, live: Live) -> None:
    config = _traffic(tmp_path, clock, live)
    assert len(events(config)) == 8
    out = tmp_path / "alice-access"
    output = run(
        config.data_dir, "dsar", "access", "--site", SITE, "--user-id", ALICE_UID, "--out", str(out)
    )
    assert "3 event(s) in 2 visit(s) found under user-id epochs [1]" in output
    assert "Cookieless visitors" in output
    assert "cannot be found by this request" in output
    manifest = json.loads((out / "manifest.json").read_bytes())
    assert manifest["kind"] == "access"
    assert manifest["total_rows"] == 3
    assert manifest["request"]["identifier"] == "user-id"
    # Her events, and the visits they belong to (with her pre-login pageview counted in them).
    assert [(f["path"], f["table"], f["rows"]) for f in manifest["files"]] == [
        ("events-shop-2026-03.ndjson", "events", 3),
        ("visits-shop.ndjson", "visits", 2),
    ]
    assert {c["name"] for c in manifest["visit_columns"]} >= {"visitor", "start_ts", "pageviews"}
    visits = [json.loads(line) for line in (out / "visits-shop.ndjson").read_text().splitlines()]
    events_file = out / "events-shop-2026-03.ndjson"
    rows = [json.loads(line) for line in events_file.read_text().splitlines()]
    assert {v["id"] for v in visits} == {r["visit"] for r in rows}
    assert {v["visitor"] for v in visits} == {r["visitor"] for r in rows}
    assert sorted(v["pageviews"] for v in visits) == [1, 2]
    assert "export verified" in run(config.data_dir, "export", "verify", str(out))

    output = run(config.data_dir, "dsar", "erase", "--site", SITE, "--user-id", ALICE_UID)
    assert "found 3 event(s) in 2 visit(s)" in output
    # Her pre-login pageview shared the first visit: it goes with the visit.
    assert "deleted 3 event(s), 1 other event(s) of the same visits, 2 visit(s)" in output
    assert "searched again: 0 event(s) left" in output
    left = events(config)
    assert len(left) == 4
    assert {row["mode"] for row in left} == {"granted", "exempt", "denied"}
    again = run(
        config.data_dir,
        "dsar",
        "access",
        "--site",
        SITE,
        "--user-id",
        ALICE_UID,
        "--out",
        str(tmp_path / "after"),
    )
    assert "0 event(s) in 0 visit(s)" in again
    assert scan(config.data_dir, NEEDLES) == []
    assert scan(tmp_path / "after", NEEDLES) == scan(out, NEEDLES) == []


def test_erasure_by_client_id_as_from_the_opt_out_page(
    tmp_path: Path, clock: Clock, live: Live
) -> None:
    config = _traffic(tmp_path, clock, live)
    before = len(events(config))
    output = run(config.data_dir, "dsar", "erase", "--site", SITE, "--client-id", BOB_CID)
    # Bob's granted and exempt hits: one visitor hash, both rows.
    assert "found 2 event(s) in 1 visit(s)" in output
    assert "searched again: 0 event(s) left" in output
    left = events(config)
    assert len(left) == before - 2
    assert all(row["user"] is None or row["user_epoch"] == 1 for row in left)
    audit = (config.data_dir / "audit.log").read_text()
    assert json.loads(audit.splitlines()[-1])["action"] == "dsar.erase"
    assert BOB_CID not in audit
    assert scan(config.data_dir, NEEDLES) == []


def test_a_request_needs_exactly_one_identifier_and_a_known_site(tmp_path: Path) -> None:
    config = write_data_dir(tmp_path / "data")
    both = run(
        config.data_dir,
        "dsar",
        "erase",
        "--site",
        SITE,
        "--user-id",
        "a",
        "--client-id",
        "b",
        expect=2,
    )
    assert "exactly one of --user-id and --client-id" in both
    unknown = run(config.data_dir, "dsar", "erase", "--site", "nope", "--user-id", "a", expect=1)
    assert "unknown site 'nope'" in unknown
