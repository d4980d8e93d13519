"""``mesure audit verify`` finds an edited, a deleted and a reordered entry, at the first broken
link, agreeing with the spine's ``collector.audit.verify``; ``audit show --since`` filters."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from collector.audit import verify
from tests.privacy.support import SITE, run, write_data_dir


def _logged_data_dir(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    write_data_dir(data)
    for kind in ("client", "user", "client"):
        run(data, "keys", "rotate", "--site", SITE, "--kind", kind)
    return data


def _edit_second(lines: list[bytes]) -> list[bytes]:
    entry = json.loads(lines[1])
    entry["detail"]["epoch"] = "99"
    return [lines[0], json.dumps(entry, separators=(",", ":")).encode(), *lines[2:]]


def _delete_second(lines: list[bytes]) -> list[bytes]:
    return [lines[0], *lines[2:]]


def _swap_second_and_third(lines: list[bytes]) -> list[bytes]:
    return [lines[0], lines[2], lines[1], *lines[3:]]


@pytest.mark.parametrize(
    ("tamper", "line", "problem"),
    [
        (_edit_second, 3, "altered"),
        (_delete_second, 2, "deleted"),
        (_swap_second_and_third, 2, "reordered"),
    ],
    ids=["edit-an-entry", "delete-an-entry", "reorder-two-entries"],
)
def test_each_tampering_is_reported_at_its_first_broken_link(
    tmp_path: Path, tamper: Callable[[list[bytes]], list[bytes]], line: int, problem: str
) -> None:
    data = _logged_data_dir(tmp_path)
    log = data / "audit.log"
    assert "audit log intact" in run(data, "audit", "verify")
    lines = log.read_bytes().splitlines()
    assert len(lines) == 5
    log.write_bytes(b"\n".join(tamper(lines)) + b"\n")

    output = run(data, "audit", "verify", expect=1)
    assert f"BROKEN at line {line} ({problem})" in output
    assert verify(log) == line
    report = json.loads(run(data, "audit", "verify", "--json", expect=1))
    assert report["ok"] is False
    assert report["broken"]["line"] == line
    assert report["broken"]["problem"] == problem


def test_an_intact_log_reports_its_head_and_show_filters_by_time(tmp_path: Path) -> None:
    data = _logged_data_dir(tmp_path)
    report = json.loads(run(data, "audit", "verify", "--json"))
    lines = (data / "audit.log").read_bytes().splitlines()
    assert report["ok"] is True
    assert report["entries"] == report["head_seq"] == len(lines)

    shown = run(data, "audit", "show").splitlines()
    assert len(shown) == len(lines)
    assert sum("key.rotate" in row for row in shown) == 3
    assert run(data, "audit", "show", "--since", "2999-01-01") == ""
    as_json = run(data, "audit", "show", "--since", "2000-01-01", "--json").splitlines()
    assert [json.loads(row)["seq"] for row in as_json] == list(range(1, len(lines) + 1))
