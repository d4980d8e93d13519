"""docs/design.md §5.1: no raw IP address, client id or user id anywhere in the data directory."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from pathlib import Path

import httpx

from collector.config import token_sha256
from tests.support import Clock, LiveServer

TEST_IP = "203.0.113.77"
BATCH_IP = "2001:db8::4242"
CLIENT_ID = "cid-Zq81xW0secretVisitor"
USER_ID = "user.secret+42@example.org"
TOKEN = "privacy-test-token"


def _needles() -> dict[str, bytes]:
    needles = {
        "ip": TEST_IP.encode(),
        "ip-packed": ipaddress.ip_address(TEST_IP).packed,
        "batch-ip": BATCH_IP.encode(),
        "batch-ip-expanded": ipaddress.ip_address(BATCH_IP).exploded.encode(),
        "batch-ip-packed": ipaddress.ip_address(BATCH_IP).packed,
        "client-id": CLIENT_ID.encode(),
        "user-id": USER_ID.encode(),
    }
    for name, value in list(needles.items()):
        if not name.endswith("packed"):
            needles[name + "-utf16"] = value.decode().encode("utf-16-le")
    return needles


def _scan(data_dir: Path) -> list[tuple[str, str]]:
    found = []
    files = [path for path in data_dir.rglob("*") if path.is_file()]
    for path in files:
        content = path.read_bytes()
        for name, needle in _needles().items():
            if needle in content:
                found.append((str(path.relative_to(data_dir)), name))
    return found


def test_no_raw_identifier_reaches_the_data_directory(
    serve: Callable[..., LiveServer], clock: Clock
) -> None:
    server = serve(
        clock=clock,
        client_ip_header="x-forwarded-for",
        site_options={"example": {"ingest-token-sha256": token_sha256(TOKEN)}},
    )
    headers = {"x-forwarded-for": TEST_IP, "user-agent": "Mozilla/5.0 Firefox/128.0"}
    page = "https://example.com/account"
    hits = [
        {"mode": "granted", "cid": CLIENT_ID, "uid": USER_ID, "props": {"plan": "pro"}},
        {"mode": "exempt", "cid": CLIENT_ID, "uid": USER_ID},
        {"mode": "exempt", "uid": USER_ID},
        {"mode": "denied", "cid": CLIENT_ID, "uid": USER_ID},
        {"mode": "optout", "cid": CLIENT_ID, "uid": USER_ID},
    ]
    with httpx.Client(base_url=server.url, headers=headers) as client:
        for fields in hits:
            body = {"site": "example", "url": page, **fields}
            assert client.post("/api/hit", json=body).status_code == 202
        clock.advance(days=1)  # a daily key rotation too
        batch = [
            {
                "site": "example",
                "url": page,
                "ip": BATCH_IP,
                "ua": "App/2",
                "uid": USER_ID,
                "cid": CLIENT_ID,
                "mode": "granted",
            },
        ]
        response = client.post(
            "/api/batch", json=batch, headers={"authorization": f"Bearer {TOKEN}"}
        )
        assert response.status_code == 202
        assert client.get(f"/p.gif?site=example&url={page}").status_code == 200

    rows = server.events()
    assert len(rows) >= 5
    assert any(row["user"] is not None for row in rows)
    assert (server.data_dir / "mesure.db-wal").exists()
    assert _scan(server.data_dir) == []
    server.stop()  # checkpoint the WAL into the database file, then scan again
    assert _scan(server.data_dir) == []


def test_the_scan_finds_a_planted_identifier(tmp_path: Path) -> None:
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "leak.txt").write_bytes(b"prefix" + CLIENT_ID.encode("utf-16-le"))
    assert _scan(tmp_path) == [("keys/leak.txt", "client-id-utf16")]
