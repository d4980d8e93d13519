"""The privacy promises, checked on the bytes Mesure stores, on both backends (SQLite, chDB).

One scenario per backend, run once: a real ``mesure serve`` (its own process, with a
``client-ip-header``, so the test chooses the addresses it sees) takes hits over HTTP in every
consent mode, the pixel and a batch with its ingest token. Real ``mesure export``, ``dsar
access``, ``dsar erase`` and ``retention run`` processes then act on the data directory. After
each stage, every file under the data directory (SQLite's database and write-ahead log, rollups
included, or chDB's parts, decompressed; the audit log; the exports) and the server's own log is
read and searched for the unique markers the test sent (:mod:`tests.privacy.stored_bytes`).
Every marker is a run of letters, so URL cleaning never masks it by accident; markers that must
stay (Bob's, never erased, exempt) prove the search sees what is there. ``mesure backup`` runs
after the traffic and at the end: each archive is decrypted with its age identity and searched
too.

With SQLite the collector keeps running while the commands run, as in production (its write-
ahead log is live); chDB holds its path in one process, so it is stopped first.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import signal
import sqlite3
import string
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pyrage
import pytest
from pyrage import x25519

from tests.privacy.stored_bytes import clickhouse_blocks, scan
from tests.privacy.support import run_mesure
from tests.support import BROWSER_UA, free_port, start_mesure_serve

SITE = "shop"
HOST = "shop.example"
TOKEN = "invariants-ingest-token"
#: Letters only: a digit run of six or more would be masked, an e-mail too.
M = "".join(secrets.choice(string.ascii_lowercase) for _ in range(10))
#: The addresses the collector sees (``x-forwarded-for``) and the batch's own.
BROWSER_IP = "198.51.100.77"
BATCH_IP = "2001:db8::4243"
CARD = "4970123456789012"


def mark(label: str) -> str:
    return f"{label}{M}"


#: Raw identifiers: never stored, logged or exported, in any stage.
PEOPLE = {
    "alice": ("granted", mark("alicecid"), mark("alice.user@")),
    "bob": ("exempt", mark("bobcid"), mark("bobuid")),
    "carol": ("granted", mark("carolcid"), mark("caroluid")),
    "denied": ("denied", mark("deniedcid"), mark("denieduid")),
    "optout": ("optout", mark("optoutcid"), mark("optoutuid")),
    "dave": ("granted", mark("davecid"), mark("daveuid")),
}
RAW_IDS: dict[str, str | bytes] = {
    "browser ip": BROWSER_IP,
    "batch ip": BATCH_IP,
    "batch ip expanded": "2001:0db8:0000:0000:0000:0000:0000:4243",
    **{f"{who} cid": cid for who, (_, cid, _) in PEOPLE.items()},
    **{f"{who} uid": uid for who, (_, _, uid) in PEOPLE.items()},
}


def attack_url(who: str) -> str:
    """Issue 13, finding 2: a download whose URL holds an e-mail, a card number and a secret."""
    return (
        f"https://{HOST}/files/{mark(who + 'jane')}.doe@example.org/invoice-{CARD}.pdf"
        f"?sig={mark(who + 'SECRET')}"
    )


def cleaned_attack_url() -> str:
    return f"https://{HOST}/files/[email]/invoice-[number].pdf"


def full_hit(who: str, name: str = "pageview", **extra: Any) -> dict[str, Any]:
    """A hit carrying every field, each with its own marker: the mode decides what stays."""
    mode, cid, uid = PEOPLE[who]
    return {
        "site": SITE,
        "name": name,
        "mode": mode,
        "cid": cid,
        "uid": uid,
        "url": f"https://{HOST}/{mark(who + 'page')}?utm_campaign={mark(who + 'utm')}"
        f"&utm_source=news&q={mark(who + 'query')}",
        "referrer": f"https://{mark(who + 'ref')}.example/{mark(who + 'refpath')}/"
        f"{mark(who + 'refmail')}@example.org/{CARD}?x={mark(who + 'refquery')}",
        "props": {"url": attack_url(who), "plan": mark(who + "prop")},
        "revenue": {"amount": "4321.5", "currency": "EUR"},
        "screen": 1280,
        "engaged_ms": 4321,
        **extra,
    }


#: Markers of fields a mode does not keep, and of what the URL cleaning removes: never stored.
def never_stored() -> dict[str, str]:
    found: dict[str, str] = {"card number": CARD}
    for who in PEOPLE:
        found[f"{who} e-mail in a URL"] = mark(who + "jane")
        found[f"{who} signed URL secret"] = mark(who + "SECRET")
        found[f"{who} referrer e-mail"] = mark(who + "refmail")
        found[f"{who} referrer query"] = mark(who + "refquery")
        found[f"{who} page query"] = mark(who + "query")
    for who in ("bob", "denied"):  # exempt and denied: no campaign, property, referrer URL
        found[f"{who} campaign"] = mark(who + "utm")
        found[f"{who} free property"] = mark(who + "prop")
        found[f"{who} referrer path"] = mark(who + "refpath")
    found["denied referrer"] = mark("deniedref")
    # Opt-out: not a row in any table, rollups included.
    for label in ("optoutpage", "optoutsecond", "optoutref", "optoutrefpath", "optoututm",
                  "optoutprop", "gpcpage"):  # fmt: skip
        found[f"opt-out {label}"] = mark(label)
    found["pixel e-mail"] = mark("pixeljane")
    found["batch URL secret"] = mark("daveSECRET")
    return found


#: What one person left: their markers (and, once known, their keyed hashes).
def traces(who: str) -> dict[str, str | bytes]:
    found: dict[str, str | bytes] = {
        f"{who} page": mark(who + "page"),
        f"{who} second page": mark(who + "second"),
    }
    if PEOPLE[who][0] == "granted":
        found[f"{who} campaign"] = mark(who + "utm")
        found[f"{who} free property"] = mark(who + "prop")
        found[f"{who} referrer domain"] = mark(who + "ref")
        found[f"{who} referrer path"] = mark(who + "refpath")
    if PEOPLE[who][0] == "exempt":
        found[f"{who} referrer domain"] = mark(who + "ref")
    return found


@dataclass
class Stage:
    """What the search found after one stage, and where."""

    found: dict[str, list[str]]
    exports: list[str]


@dataclass
class World:
    backend: str
    data: Path
    log: Path
    rows: list[dict[str, Any]]
    hashes: dict[str, bytes]
    stages: dict[str, Stage] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)
    rollup_keys: dict[str, list[str]] = field(default_factory=dict)
    #: What the search found in each backup's archive, decrypted.
    backups: dict[str, dict[str, list[str]]] = field(default_factory=dict)


def _toml(data: Path, backend: str) -> str:
    storage = f'storage = "chdb://{data}/chdb?database=mesure"\n\n' if backend == "chdb" else ""
    return (
        f"{storage}[server]\n"
        'client-ip-header = "x-forwarded-for"\n\n'
        "[[sites]]\n"
        f'id = "{SITE}"\n'
        f'hostnames = ["{HOST}", "127.0.0.1"]\n'
        f'ingest-token-sha256 = "{hashlib.sha256(TOKEN.encode()).hexdigest()}"\n\n'
        "[sites.consent]\n"
        "retention-granted-days = 20\n"
    )


def _send_traffic(url: str) -> None:
    headers = {"user-agent": BROWSER_UA, "x-forwarded-for": BROWSER_IP}
    with httpx.Client(base_url=url, headers=headers, timeout=30) as client:

        def hit(body: dict[str, Any], **more_headers: str) -> None:
            response = client.post("/api/hit", json=body, headers=more_headers)
            assert response.status_code == 202, response.text

        for who in ("alice", "bob", "carol", "denied", "optout"):
            hit(full_hit(who))
            body = full_hit(who, url=f"https://{HOST}/{mark(who + 'second')}")
            del body["referrer"]
            hit(body)  # the visit's exit page changes: its row is rewritten
            hit({**full_hit(who, name="download"), "url": f"https://{HOST}/{mark(who + 'page')}"})
            hit({**full_hit(who, name="outbound"), "url": f"https://{HOST}/{mark(who + 'page')}"})
        # Opt-out by Global Privacy Control, whatever the claim.
        hit(full_hit("carol", url=f"https://{HOST}/{mark('gpcpage')}"), **{"sec-gpc": "1"})
        # A granted property holding a URL under any name is cleaned too.
        hit(
            {
                "site": SITE,
                "name": "share",
                "mode": "granted",
                "cid": PEOPLE["carol"][1],
                "url": f"https://{HOST}/{mark('carolpage')}",
                "props": {"link": attack_url("carol"), "plan": mark("carolprop")},
            }
        )
        # Cookieless exempt hit (no client id) and the pixel, with personal data in its URL.
        hit({"site": SITE, "url": f"https://{HOST}/{mark('cookiepage')}", "mode": "exempt"})
        pixel = client.get(
            "/p.gif",
            params={"site": SITE, "url": f"https://{HOST}/{mark('pixeljane')}@example.org/x"},
        )
        assert pixel.status_code == 200
        _, cid, uid = PEOPLE["dave"]
        batch = [
            {
                "site": SITE,
                "url": f"https://{HOST}/{mark('davepage')}?sig={mark('daveSECRET')}",
                "ip": BATCH_IP,
                "ua": BROWSER_UA,
                "cid": cid,
                "uid": uid,
                "mode": "granted",
            }
        ]
        response = client.post(
            "/api/batch", json=batch, headers={"authorization": f"Bearer {TOKEN}"}
        )
        assert response.status_code == 202, response.text


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=60)


def _sqlite_rollups_settled(data: Path) -> None:
    """The running collector's writer rebuilds queued rollup days when idle: wait for it."""
    for _attempt in range(600):  # a bound: normally done before the first look
        with sqlite3.connect(f"file:{data / 'mesure.db'}?mode=ro", uri=True, timeout=10) as conn:
            if conn.execute("SELECT count(*) FROM rollup_pending_days").fetchone()[0] == 0:
                return
        subprocess.run(["sleep", "0.05"], check=True, timeout=5)
    raise AssertionError("rollups still pending after 30 s")


def _rollup_keys(data: Path) -> list[str]:
    with sqlite3.connect(f"file:{data / 'mesure.db'}?mode=ro", uri=True, timeout=10) as conn:
        rows = conn.execute(
            "SELECT DISTINCT key FROM day_rollups WHERE typeof(key) = 'text'"
        ).fetchall()
        # The values of the changes still waiting in the log (not yet merged into the rows).
        logged = [
            key
            for (blob,) in conn.execute("SELECT changes FROM rollup_log")
            for _dim, _day, key, *_ in msgspec.msgpack.decode(blob)[0]
            if isinstance(key, str)
        ]
        return sorted({str(row[0]) for row in rows} | set(logged))


def _exports(data: Path) -> list[str]:
    root = data / "exports"
    return sorted(path.name for path in root.iterdir()) if root.is_dir() else []


def _read_export(folder: Path) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for path in sorted(folder.glob("events-*.ndjson")):
        rows += [json.loads(line) for line in path.read_text().splitlines()]
    return rows


@pytest.fixture(scope="module", params=["sqlite", "chdb"])
def world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> World:
    backend = request.param
    root = tmp_path_factory.mktemp(f"invariants-{backend}")
    data = root / "data"
    data.mkdir(mode=0o700)
    (data / "mesure.toml").write_text(_toml(data, backend), encoding="utf-8")
    process = start_mesure_serve(data, free_port(), {**os.environ})
    log = root / "serve.log"
    try:
        return _run_scenario(backend, data, log, process, request)
    finally:
        _stop(process)


def _run_scenario(
    backend: str,
    data: Path,
    log: Path,
    process: subprocess.Popen[bytes],
    request: pytest.FixtureRequest,
) -> World:
    port = process.args[process.args.index("--port") + 1]  # type: ignore[union-attr]
    _send_traffic(f"http://127.0.0.1:{port}")
    if backend == "sqlite":
        _sqlite_rollups_settled(data)
    else:
        _stop(process)  # chDB: one process holds the path
    today = datetime.now(UTC).date().isoformat()
    needles: dict[str, str | bytes] = {**RAW_IDS, **never_stored()}
    for who in ("alice", "bob", "carol"):
        needles.update(traces(who))

    def stage(name: str) -> None:
        world.stages[name] = Stage(found=scan([data, log], needles), exports=_exports(data))
        if backend == "sqlite":
            world.rollup_keys[name] = _rollup_keys(data)

    identity = x25519.Identity.generate()

    def backup(name: str) -> None:
        """``mesure backup`` to an age key; its archive decrypted, then searched."""
        out = data.parent / f"backup-{name}"
        run_mesure(data, "backup", "--out", str(out), "--recipient", str(identity.to_public()))
        archive = data.parent / f"backup-{name}.tar"
        archive.write_bytes(pyrage.decrypt((out / "data.tar.age").read_bytes(), [identity]))
        world.backups[name] = scan([archive], needles)

    world = World(backend=backend, data=data, log=log, rows=[], hashes={})
    stage("ingested")
    backup("ingested")
    exports = data / "exports"
    run_mesure(data, "export", "--site", SITE, "--from", today, "--to", today,
               "--out", str(exports / "everything"))  # fmt: skip
    world.rows = _read_export(exports / "everything")
    _, _, alice_uid = PEOPLE["alice"]
    access = exports / "alice-access"
    run_mesure(data, "dsar", "access", "--site", SITE, "--user-id", alice_uid, "--out", str(access))
    for row in _read_export(access):
        world.hashes["alice visitor hash"] = bytes.fromhex(row["visitor"])
        if row["user"]:
            world.hashes["alice user hash"] = bytes.fromhex(row["user"])
    # Bob's own access export holds none of Alice's rows: it outlives her erasure.
    _, bob_cid, _ = PEOPLE["bob"]
    run_mesure(data, "dsar", "access", "--site", SITE, "--client-id", bob_cid,
               "--out", str(exports / "bob-access"))  # fmt: skip
    carol = next(row for row in world.rows if row["path"] == "/" + mark("carolpage"))
    world.hashes["carol visitor hash"] = bytes.fromhex(carol["visitor"])
    world.hashes["carol user hash"] = bytes.fromhex(carol["user"])
    needles.update(world.hashes)
    stage("exported")
    world.outputs["erase"] = run_mesure(
        data, "dsar", "erase", "--site", SITE, "--user-id", alice_uid
    )
    stage("erased")
    run_mesure(data, "export", "--site", SITE, "--from", today, "--to", today, "--format", "csv",
               "--out", str(exports / "later"))  # fmt: skip
    stage("exported again")
    # Twenty-nine days on, granted rows are past their 20 days, and so is the export holding
    # some (a dry run); thirty-one days on, every export is past ``exports-keep-days`` (30).
    sooner = (datetime.now(UTC) + timedelta(days=29)).strftime("%Y-%m-%dT%H:%M:%S")
    world.outputs["dry run"] = run_mesure(
        data, "retention", "run", "--as-of", sooner, "--dry-run", "--json"
    )
    later = (datetime.now(UTC) + timedelta(days=31)).strftime("%Y-%m-%dT%H:%M:%S")
    world.outputs["retention"] = run_mesure(data, "retention", "run", "--as-of", later, "--json")
    stage("retained")
    _stop(process)
    stage("stopped")
    backup("stopped")
    return world


# ---------------------------------------------------------------------------------------------


STAGES = ["ingested", "exported", "erased", "exported again", "retained", "stopped"]
ALICE = [mark("alicepage"), mark("alicesecond"), mark("aliceref")]


@pytest.mark.parametrize("when", STAGES)
def test_no_raw_ip_client_id_or_user_id_anywhere(world: World, when: str) -> None:
    """Database, write-ahead log, rollups, chDB parts, audit log, exports, the server's log."""
    found = world.stages[when].found
    assert {name: found[name] for name in RAW_IDS if name in found} == {}


@pytest.mark.parametrize("when", ["ingested", "stopped"])
def test_no_raw_identifier_in_a_backup_decrypted(world: World, when: str) -> None:
    """``mesure backup``'s archive, decrypted with its age identity: no raw IP, client id or
    user id, nothing no mode keeps; taken after the erasure and retention, nothing of Alice or
    Carol."""
    found = world.backups[when]
    assert {name: found[name] for name in RAW_IDS if name in found} == {}
    assert {name: found[name] for name in never_stored() if name in found} == {}
    if when == "stopped":
        gone = [*traces("alice"), *traces("carol"), *world.hashes]
        assert {name: found[name] for name in gone if name in found} == {}
    if world.backend == "sqlite":  # chDB's rows are not in a backup (docs/operations.md)
        assert set(traces("bob")) <= set(found)


@pytest.mark.parametrize("when", STAGES)
def test_what_no_mode_keeps_and_what_url_cleaning_removes_is_nowhere(
    world: World, when: str
) -> None:
    """Fields a mode drops (by bytes, not only by rows), opt-outs (no row in any table, rollups
    included), and what URL cleaning masks in every URL-valued field."""
    found = world.stages[when].found
    assert {name: found[name] for name in never_stored() if name in found} == {}


COMMON = {"id", "site", "ts", "name", "mode", "reasons", "hostname", "path"}
EXEMPT = COMMON | {
    "visitor", "visitor_kind", "key_epoch", "visit", "referrer_domain", "source", "browser",
    "browser_version", "os", "device", "screen", "props", "engaged_ms",
}  # fmt: skip
GRANTED = EXEMPT | {
    "user", "user_epoch", "query", "referrer", "utm_source", "utm_campaign", "revenue_amount",
    "revenue_currency",
}  # fmt: skip


def _kept(row: Mapping[str, Any]) -> set[str]:
    return {name for name, value in row.items() if value is not None}


def _first(world: World, who: str) -> dict[str, Any]:
    return next(row for row in world.rows if row["path"] == "/" + mark(who + "page"))


def test_each_mode_keeps_exactly_its_fields(world: World) -> None:
    assert _kept(_first(world, "denied")) == COMMON
    assert _kept(_first(world, "bob")) == EXEMPT
    assert _kept(_first(world, "alice")) == GRANTED
    bob, alice = _first(world, "bob"), _first(world, "alice")
    assert json.loads(bob["props"]) == {"url": cleaned_attack_url()}
    assert bob["referrer_domain"] == mark("bobref") + ".example"
    assert alice["referrer"] == (
        f"https://{mark('aliceref')}.example/{mark('alicerefpath')}/[email]/[number]"
    )
    assert alice["query"] == f"utm_campaign={mark('aliceutm')}&utm_source=news"
    assert json.loads(alice["props"]) == {"url": cleaned_attack_url(), "plan": mark("aliceprop")}
    # Exempt keeps its technical events only; an opt-out leaves no row.
    exempt_names = {row["name"] for row in world.rows if row["mode"] == "exempt"}
    assert exempt_names == {"pageview", "download", "outbound"}
    assert not [row for row in world.rows if "optout" in row["path"] or "gpc" in row["path"]]


def test_every_url_valued_field_is_cleaned(world: World) -> None:
    """Issue 13, finding 2: ``props.url`` of download and outbound events, in every mode, and a
    URL under any other property name, are cleaned like the page URL."""
    for row in world.rows:
        props = json.loads(row["props"]) if row["props"] else {}
        for value in props.values():
            if isinstance(value, str) and value.startswith("http"):
                assert value == cleaned_attack_url(), row
        assert "@" not in row["path"] and CARD not in row["path"]
        assert row["referrer"] is None or "?" not in row["referrer"]
    clicks = [row for row in world.rows if row["name"] in ("download", "outbound")]
    assert {row["mode"] for row in clicks} == {"granted", "exempt", "denied"}
    kept = [row for row in clicks if row["mode"] != "denied"]
    assert kept and all(json.loads(row["props"])["url"] == cleaned_attack_url() for row in kept)
    share = next(row for row in world.rows if row["name"] == "share")
    assert json.loads(share["props"]) == {"link": cleaned_attack_url(), "plan": mark("carolprop")}
    pixel = [row for row in world.rows if row["path"] == "/[email]/x"]
    assert len(pixel) == 1


def test_the_search_sees_what_is_stored(world: World) -> None:
    """Controls: the markers of what stays are found, in the database or chDB's parts, and an
    access export holds Alice's markers and keyed hashes."""
    store = "chdb" if world.backend == "chdb" else "mesure.db"
    for when in STAGES:
        found = world.stages[when].found
        for name in traces("bob"):
            assert any(store in path for path in found.get(name, [])), (when, name)
    exported = world.stages["exported"].found
    for name in [*traces("alice"), "alice visitor hash", "alice user hash"]:
        assert any("alice-access" in path for path in exported.get(name, [])), name
        assert any(store in path for path in exported.get(name, [])), name
    erased = world.stages["erased"].found
    assert all(any("bob-access" in path for path in erased[name]) for name in traces("bob"))


def test_erasure_leaves_no_byte_of_the_subject(world: World) -> None:
    """Issue 13, finding 7: after ``dsar erase`` nothing of Alice remains under the data
    directory: events, visits, rollups (the values of their rows too), write-ahead log, every export
    holding any of her rows (her access export and the full export), logs."""
    assert "searched again: 0 event(s) left" in world.outputs["erase"]
    alice = [*traces("alice"), "alice visitor hash", "alice user hash"]
    for when in ("erased", "exported again", "retained", "stopped"):
        found = world.stages[when].found
        assert {name: found[name] for name in alice if name in found} == {}, when
    assert world.stages["exported"].exports == ["alice-access", "bob-access", "everything"]
    assert world.stages["erased"].exports == ["bob-access"]
    assert "2 export(s) holding the subject's rows deleted" in world.outputs["erase"]
    if world.backend == "sqlite":
        assert "/" + mark("alicepage") in world.rollup_keys["exported"]
        assert not [key for key in world.rollup_keys["erased"] if any(a in key for a in ALICE)]
        assert "/" + mark("bobpage") in world.rollup_keys["erased"]


def test_retention_leaves_no_byte_of_what_it_deletes_and_expires_exports(world: World) -> None:
    """Carol's granted rows are past their 20 days: nothing of them remains, not even in an
    export (younger than its own limit). Exports kept on the server expire after
    ``exports-keep-days`` (default 30)."""
    report = json.loads(world.outputs["retention"])
    assert sum(c["events"] for c in report["deleted"] if c["mode"] == "granted") > 0
    carol = [*traces("carol"), "carol visitor hash", "carol user hash"]
    assert {name for name in carol if name in world.stages["erased"].found} == set(carol)
    for when in ("retained", "stopped"):
        found = world.stages[when].found
        assert {name: found[name] for name in carol if name in found} == {}, when
    if world.backend == "sqlite":
        carol_keys = [mark("carolpage"), mark("carolsecond"), mark("carolref")]
        assert not [
            key for key in world.rollup_keys["retained"] if any(c in key for c in carol_keys)
        ]
    assert world.stages["exported again"].exports == ["bob-access", "later"]
    assert json.loads(world.outputs["dry run"])["exports_deleted"] == ["exports/later"]
    assert world.stages["retained"].exports == []
    assert report["exports_deleted"] == ["exports/bob-access", "exports/later"]


def test_the_scan_sees_through_clickhouse_compression() -> None:
    """The reader of chDB's parts: a compressed block of the default codec (LZ4) decompressed."""
    import lz4.block

    plain = b"prefix " + mark("inside").encode() * 3
    payload = lz4.block.compress(plain, store_size=False)
    header = bytes([0x82]) + (9 + len(payload)).to_bytes(4, "little")
    block = bytes(16) + header + len(plain).to_bytes(4, "little") + payload
    assert clickhouse_blocks(block + block) == plain + plain
    assert clickhouse_blocks(b"SQLite format 3\x00" + bytes(100)) is None
