"""``mesure export`` writes one file per site and month with a signed manifest; ``export verify``
accepts it, and refuses one changed byte, a changed manifest, an added file and a wrong key."""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from collector.config import Config
from collector.privacy.instance import mesure_version
from tests.privacy.support import SITE, events, run, scan, send, write_data_dir
from tests.support import Clock, LiveServer

CLIENT_ID = "cid-export-Yh27pQ"
USER_ID = "export.person@example.org"
Live = Callable[[Config, Clock], LiveServer]
RESIDENCY = {"residency": "eu", "host-location": "Strasbourg, France"}
APRIL = ("export", "--from", "2026-04-01", "--to", "2026-04-30")


@pytest.fixture
def exported(tmp_path: Path, clock: Clock, live: Live) -> tuple[Config, Path]:
    config = write_data_dir(tmp_path / "data", server=RESIDENCY)
    server = live(config, clock)
    send(server, {"mode": "granted", "cid": CLIENT_ID, "uid": USER_ID}, {"mode": "exempt"})
    clock.advance(days=30)  # 2026-04-09: a second month
    send(server, {"mode": "granted", "cid": CLIENT_ID}, {"mode": "denied"}, {"mode": "exempt"})
    server.stop()
    out = tmp_path / "export"
    output = run(
        config.data_dir,
        "export",
        "--site",
        SITE,
        "--from",
        "2026-03-01",
        "--to",
        "2026-04-30",
        "--out",
        str(out),
        "--by",
        "dpo@example.com",
    )
    assert "5 rows" in output
    return config, out


def test_export_files_manifest_and_a_clean_verification(exported: tuple[Config, Path]) -> None:
    config, out = exported
    manifest = json.loads((out / "manifest.json").read_bytes())
    assert [(f["path"], f["rows"]) for f in manifest["files"]] == [
        ("events-shop-2026-03.ndjson", 2),
        ("events-shop-2026-04.ndjson", 3),
    ]
    assert manifest["exported_by"] == "dpo@example.com"
    assert manifest["mesure_version"] == mesure_version() != "unknown"
    assert datetime.fromisoformat(manifest["exported_at"]).utcoffset() == timedelta(0)
    assert (manifest["sites"], manifest["period"], manifest["format"]) == (
        [SITE],
        {"first_day": "2026-03-01", "last_day": "2026-04-30"},
        "ndjson",
    )
    assert manifest["residency"]["residency"] == "eu"
    assert manifest["residency"]["host_location"] == "Strasbourg, France"
    assert manifest["terms"][0]["consent"]["exemption"] is True
    assert manifest["terms"][0]["retention_days"] == {"denied": 760, "exempt": 760, "granted": 760}
    assert manifest["terms"][0]["key_epochs"]["client"] == [1]
    assert manifest["terms"][0]["key_epochs"]["user"] == [1]
    assert {c["name"] for c in manifest["columns"]} >= {"visitor", "user", "mode", "ts"}
    assert all(c["meaning"] for c in manifest["columns"])
    assert manifest["public_key"] == run(config.data_dir, "keys", "public").strip()
    rows = [
        json.loads(line)
        for f in manifest["files"]
        for line in (out / f["path"]).read_text().splitlines()
    ]
    stored = events(config)
    assert [row["id"] for row in rows] == [row["id"] for row in stored]
    assert [row["visitor"] for row in rows] == [
        None if row["visitor"] is None else row["visitor"].hex() for row in stored
    ]
    output = run(config.data_dir, "export", "verify", str(out))
    assert "export verified" in output
    assert output.count("SHA-256") == 2
    assert scan(out, {"client id": CLIENT_ID, "user id": USER_ID}) == []
    assert scan(config.data_dir, {"client id": CLIENT_ID, "user id": USER_ID}) == []


def test_one_changed_byte_is_found(exported: tuple[Config, Path]) -> None:
    config, out = exported
    target = out / "events-shop-2026-04.ndjson"
    data = bytearray(target.read_bytes())
    data[10] ^= 0x01
    target.write_bytes(bytes(data))
    output = run(config.data_dir, "export", "verify", str(out), expect=1)
    assert "FAILED   events-shop-2026-04.ndjson: SHA-256" in output
    assert "ok       signature" in output


def test_a_changed_manifest_or_an_added_file_is_found(exported: tuple[Config, Path]) -> None:
    config, out = exported
    manifest = out / "manifest.json"
    manifest.write_bytes(manifest.read_bytes().replace(b'"rows": 3', b'"rows": 2'))
    (out / "extra.ndjson").write_text("{}\n")
    output = run(config.data_dir, "export", "verify", str(out), expect=1)
    assert "signature of manifest.json: INVALID" in output
    assert "extra.ndjson: not listed in the manifest" in output


def test_a_wrong_public_key_is_refused(tmp_path: Path, exported: tuple[Config, Path]) -> None:
    config, out = exported
    other = write_data_dir(tmp_path / "other")
    other_key = run(other.data_dir, "keys", "public").strip()
    output = run(config.data_dir, "export", "verify", str(out), "--public-key", other_key, expect=1)
    assert f"INVALID for public key {other_key}" in output
    # The auditor's path: the right key, given explicitly, from another machine's point of view.
    right_key = run(config.data_dir, "keys", "public").strip()
    assert "export verified" in run(
        other.data_dir, "export", "verify", str(out), "--public-key", right_key
    )


def test_csv_format(tmp_path: Path, exported: tuple[Config, Path]) -> None:
    config, _ = exported
    out = tmp_path / "csv"
    run(config.data_dir, *APRIL, "--format", "csv", "--out", str(out))
    with (out / "events-shop-2026-04.csv").open(newline="") as file:
        rows = list(csv.DictReader(file))
    assert [row["mode"] for row in rows] == ["granted", "denied", "exempt"]
    assert rows[1]["visitor"] == ""
    assert "export verified" in run(config.data_dir, "export", "verify", str(out))


def test_parquet_format_with_the_optional_extra(
    tmp_path: Path, exported: tuple[Config, Path]
) -> None:
    config, _ = exported
    out = tmp_path / "pq"
    run(config.data_dir, *APRIL, "--format", "parquet", "--out", str(out))
    table = pq.read_table(out / "events-shop-2026-04.parquet")
    stored = [row for row in events(config) if row["ts"] >= table.column("ts")[0].as_py()]
    assert table.column("mode").to_pylist() == ["granted", "denied", "exempt"]
    assert table.column("visitor").to_pylist() == [
        None if row["visitor"] is None else row["visitor"].hex() for row in stored
    ]
    assert "export verified" in run(config.data_dir, "export", "verify", str(out))


def test_parquet_without_its_extra_says_how_to_get_it(
    tmp_path: Path, exported: tuple[Config, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    config, _ = exported
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # as on an install without the extra
    out = tmp_path / "pq"
    refused = run(config.data_dir, *APRIL, "--format", "parquet", "--out", str(out), expect=1)
    assert "pip install --require-hashes -r requirements/parquet.txt" in refused
    assert not out.exists()
