"""The collector's ``/api/v1/privacy/`` routes on a real server: dpo and owner tokens only;
export, access, erasure, audit and register answer what the CLI does."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from collector import auth
from collector.config import Config
from collector.storage.sqlite.accounts import auth_database
from tests.privacy.support import PAGE, SITE, events, send, write_data_dir
from tests.support import BROWSER_UA, Clock, LiveServer

CLIENT_ID = "cid-api-Ty61mN"
Live = Callable[[Config, Clock], LiveServer]


def _files_holding(config: Config, needle: bytes) -> list[str]:
    files = [path for path in config.data_dir.rglob("*") if path.is_file()]
    return [path.name for path in files if needle in path.read_bytes()]


def _token(config: Config, role: str) -> str:
    with auth_database(config.database_path) as db:
        return auth.create_token(db, f"{role}-token", role, [], 0)[1]


@pytest.fixture
def api(tmp_path: Path, clock: Clock, live: Live) -> Iterator[tuple[Config, httpx.Client]]:
    config = write_data_dir(tmp_path / "data")
    server = live(config, clock)
    send(server, {"mode": "granted", "cid": CLIENT_ID}, {"mode": "granted", "cid": CLIENT_ID})
    send(server, {"mode": "exempt"})
    with httpx.Client(base_url=server.url) as client:
        yield config, client


def test_roles_and_authentication(api: tuple[Config, httpx.Client]) -> None:
    config, client = api
    assert client.get("/api/v1/privacy/audit").status_code == 401
    analyst = {"authorization": f"Bearer {_token(config, 'analyst')}"}
    assert client.get("/api/v1/privacy/audit", headers=analyst).status_code == 403
    body = {"site": SITE, "client_id": CLIENT_ID}
    assert client.post("/api/v1/privacy/dsar/erase", json=body, headers=analyst).status_code == 403
    for role in ("dpo", "owner"):
        headers = {"authorization": f"Bearer {_token(config, role)}"}
        answer = client.get("/api/v1/privacy/audit", headers=headers)
        assert answer.status_code == 200
        assert answer.json()["check"]["ok"] is True
    assert len(events(config)) == 3  # nothing was erased by the refused call


def test_export_access_erase_audit_and_register(api: tuple[Config, httpx.Client]) -> None:
    config, client = api
    client.headers["authorization"] = f"Bearer {_token(config, 'dpo')}"
    bad = client.post("/api/v1/privacy/export", json={"site": SITE, "first_day": "March"})
    assert bad.status_code == 400
    exported = client.post(
        "/api/v1/privacy/export",
        json={"site": SITE, "first_day": "2026-03-01", "last_day": "2026-03-31"},
    )
    assert exported.status_code == 200, exported.text
    assert exported.json()["manifest"]["total_rows"] == 3
    assert exported.json()["manifest"]["exported_by"] == "token:dpo-token (dpo, api)"
    folder = Path(exported.json()["dir"])
    assert folder.parent == config.data_dir / "exports"
    verified = client.post("/api/v1/privacy/export/verify", json={"dir": folder.name})
    assert verified.json()["ok"] is True, verified.text
    assert verified.json()["checked"][0].startswith("signature of manifest.json: valid Ed25519")
    (folder / "manifest.json").write_bytes((folder / "manifest.json").read_bytes() + b" ")
    tampered = client.post("/api/v1/privacy/export/verify", json={"dir": folder.name})
    assert tampered.json()["ok"] is False
    outside = client.post("/api/v1/privacy/export/verify", json={"dir": "../keys"})
    assert outside.status_code == 400 and outside.json()["field"] == "$.dir"

    access = client.post("/api/v1/privacy/dsar/access", json={"site": SITE, "client_id": CLIENT_ID})
    assert access.json()["report"]["events_found"] == 2
    stored_hash = events(config)[0]["visitor"]
    assert _files_holding(config, stored_hash) != []
    erase = client.post("/api/v1/privacy/dsar/erase", json={"site": SITE, "client_id": CLIENT_ID})
    assert erase.json()["report"]["events_after"] == 0
    assert erase.json()["report"]["deleted"]["subject_events"] == 2
    assert len(events(config)) == 1
    # With the collector still running (its connection open), the erased visitor's hash is in
    # no file any more: not in the database, not in its write-ahead log.
    assert _files_holding(config, stored_hash) == []

    audit = client.get("/api/v1/privacy/audit", params={"since": "2000-01-01T00:00:00+00:00"})
    actions = [entry["action"] for entry in audit.json()["entries"]]
    assert actions[-3:] == ["export", "dsar.access", "dsar.erase"]
    register = client.get("/api/v1/privacy/register", params={"format": "md"})
    assert register.headers["content-type"].startswith("text/markdown")
    assert "## Site shop" in register.text


def test_retention_and_keys_over_the_api(api: tuple[Config, httpx.Client]) -> None:
    config, client = api
    analyst = {"authorization": f"Bearer {_token(config, 'analyst')}"}
    assert client.get("/api/v1/privacy/keys", headers=analyst).status_code == 403
    assert client.post("/api/v1/privacy/retention", json={}, headers=analyst).status_code == 403
    client.headers["authorization"] = f"Bearer {_token(config, 'owner')}"

    dry = client.post("/api/v1/privacy/retention", json={"dry_run": True})
    assert dry.status_code == 200, dry.text
    assert dry.json()["dry_run"] is True
    assert {(c["mode"], c["events"]) for c in dry.json()["deleted"]} == {
        ("denied", 0),
        ("exempt", 0),
        ("granted", 0),
    }
    assert client.post("/api/v1/privacy/retention", json={"dry": 1}).status_code == 400

    keys = client.get("/api/v1/privacy/keys").json()
    assert len(keys["export_public_key"]) == 64
    client_key = next(k for k in keys["keys"]["site_keys"] if k["kind"] == "client")
    assert (client_key["current"], client_key["kept"]) == (1, [])

    rotated = client.post("/api/v1/privacy/keys/rotate", json={"site": SITE, "kind": "client"})
    assert rotated.json() == {"site": SITE, "epochs": {"client": 2}}
    hit = {"site": SITE, "url": PAGE, "mode": "granted", "cid": CLIENT_ID}
    sent = client.post("/api/hit", json=hit, headers={"user-agent": BROWSER_UA})
    assert sent.status_code == 202
    stored = events(config)  # the running server hashes with the new epoch at once
    assert [row["key_epoch"] for row in stored if row["visitor_kind"] == "client"] == [1, 1, 2]
    refused = client.post(
        "/api/v1/privacy/keys/destroy", json={"site": SITE, "kind": "client", "epoch": 2}
    )
    assert refused.status_code == 400 and "rotate it first" in refused.json()["error"]
    destroyed = client.post(
        "/api/v1/privacy/keys/destroy", json={"site": SITE, "kind": "client", "epoch": 1}
    )
    assert destroyed.status_code == 200, destroyed.text
    # Erasure by client id cannot reach the epoch-1 rows any more: that key is gone.
    erased = client.post("/api/v1/privacy/dsar/erase", json={"site": SITE, "client_id": CLIENT_ID})
    assert erased.json()["report"]["events_found"] == 1  # only the epoch-2 row
    audit = client.get("/api/v1/privacy/audit").json()
    acted = [(e["action"], e["detail"]["by"]) for e in audit["entries"] if "by" in e["detail"]]
    assert acted[-4:] == [
        ("retention.dry-run", "token:owner-token (owner, api)"),
        ("key.rotate", "token:owner-token (owner, api)"),
        ("key.destroy", "token:owner-token (owner, api)"),
        ("dsar.erase", "token:owner-token (owner, api)"),
    ]


@pytest.mark.parametrize(
    ("first_day", "last_day", "field"),
    [
        ("2026-13-45", "2026-03-31", "$.first_day"),  # the pattern's shape, not a date
        ("2026-03-01", "9999-12-31", "$.last_day"),  # the day after overflows
        ("0001-01-01", "2026-03-31", "$.first_day"),
        ("2026-03-31", "2026-03-01", "$.last_day"),
    ],
)
def test_export_days_outside_the_calendar_are_refused(
    api: tuple[Config, httpx.Client], first_day: str, last_day: str, field: str
) -> None:
    # Issue 13, finding 8: such days answered 500 (ValueError, OverflowError).
    config, client = api
    client.headers["authorization"] = f"Bearer {_token(config, 'dpo')}"
    period = {"first_day": first_day, "last_day": last_day}
    answer = client.post("/api/v1/privacy/export", json={"site": SITE, **period})
    assert (answer.status_code, answer.json()["field"]) == (400, field), answer.text
