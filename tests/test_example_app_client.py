"""``examples/app_client.py`` run as a user would, against a real collector."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable

from collector.config import token_sha256
from tests.support import ROOT, LiveServer

TOKEN = "app-client-token"


def _run_example(server: LiveServer, token: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "examples/app_client.py", "--collector", server.url]
    return subprocess.run(
        [*command, "--site", "app", "--token", token],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_app_client_example_sends_a_granted_session(serve: Callable[..., LiveServer]) -> None:
    server = serve(
        sites={"app": ["app.example.com"]},
        site_options={"app": {"ingest-token-sha256": token_sha256(TOKEN)}},
    )
    run = _run_example(server, TOKEN)
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("4 events acknowledged")

    rows = server.events()
    assert [(row["name"], row["path"], row["mode"]) for row in rows] == [
        ("pageview", "/home", "granted"),
        ("pageview", "/pricing", "granted"),
        ("pageview", "/signup", "granted"),
        ("signup", "/signup", "granted"),
    ]
    assert len({row["visitor"] for row in rows}) == 1
    assert all(row["visitor_kind"] == "client" and len(row["visitor"]) == 16 for row in rows)
    assert all(row["visit"] == rows[0]["visit"] for row in rows)
    signup = rows[-1]
    assert (signup["revenue_amount"], signup["revenue_currency"]) == ("49.00", "EUR")
    assert signup["user"] is not None and len(signup["user"]) == 16
    assert signup["os"] == "iOS"

    stored = b"".join(path.read_bytes() for path in server.data_dir.rglob("*") if path.is_file())
    for raw in (b"192.0.2.44", b"customer-1042", b"app-install-7f3a"):
        assert raw not in stored


def test_app_client_reports_a_refused_batch(serve: Callable[..., LiveServer]) -> None:
    server = serve(sites={"app": ["app.example.com"]})
    run = _run_example(server, "not-the-token")
    assert run.returncode == 1
    assert "403" in run.stderr and "field $[0].site" in run.stderr
    assert server.events() == []
