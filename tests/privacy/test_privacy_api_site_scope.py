"""The privacy API is scoped to the caller's sites (issue 13, finding 3): a privacy officer
granted one site reads the audit entries, register, key epochs, exports and retention of that
site only; an audit entry that concerns other sites (or every site) is withheld from them. And
the register's HTML carries the dashboard's security headers (finding 8)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from collector import auth
from collector.cli.main import main as cli
from collector.config import Config, load_config
from collector.storage.sqlite.accounts import auth_database
from collector.storage.sqlite.events import open_storage
from collector.web.dashboard.routes import CSP
from tests.conftest import CLOCK_START
from tests.support import BROWSER_UA, Clock, LiveServer

PASSWORD = "a long enough password"
BLOG_EDITOR = "editor@blog.example"
SHOP_DPO = "dpo@shop.example"
TOML = """
[[sites]]
id = "shop"
hostnames = ["shop.example"]

[[sites]]
id = "blog"
hostnames = ["blog.example"]
"""


class Scoped:
    """A live collector with two sites, an owner token (every site) and a dpo token granted
    ``shop``; what the owner did on each site; the exports' directory names."""

    def __init__(self, config: Config, server: LiveServer, owner: str, shop_dpo: str) -> None:
        self.config = config
        self.server = server
        self.owner = owner
        self.shop_dpo = shop_dpo
        self.exports: dict[str, str] = {}

    def client(self, token: str) -> httpx.Client:
        headers = {"authorization": f"Bearer {token}", "user-agent": BROWSER_UA}
        return httpx.Client(base_url=self.server.url, headers=headers)


def _mesure(data: Path, *args: str, stdin: str | None = None) -> None:
    result = CliRunner().invoke(cli, [*args, "--data", str(data)], input=stdin)
    assert result.exit_code == 0, result.output


@pytest.fixture(scope="module")
def scoped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scoped]:
    data = tmp_path_factory.mktemp("scope") / "data"
    data.mkdir(mode=0o700)
    (data / "mesure.toml").write_text(TOML)
    config = load_config(data, {})
    open_storage(config.database_path).close()
    answer = f"{PASSWORD}\n" * 2
    _mesure(data, "user", "add", BLOG_EDITOR, "--role", "analyst", "--site", "blog", stdin=answer)
    _mesure(data, "user", "add", SHOP_DPO, "--role", "dpo", "--site", "shop", stdin=answer)
    with auth_database(config.database_path) as db:
        owner = auth.create_token(db, "admin", "owner", [], 0)[1]
        shop_dpo = auth.create_token(db, "shop-privacy", "dpo", ["shop"], 0)[1]
    server = LiveServer(config, Clock(CLOCK_START))
    server.start()
    running = Scoped(config, server, owner, shop_dpo)
    try:
        with running.client(owner) as client:
            for site, cid in (("shop", "shop-c"), ("blog", "blog-c"), ("blog", "blog-gone")):
                hit = {"site": site, "url": f"https://{site}.example/", "mode": "granted"}
                assert client.post("/api/hit", json={**hit, "cid": cid}).status_code == 202
            # Erased before the exports: an export holding an erased subject's rows goes too.
            erased = client.post(
                "/api/v1/privacy/dsar/erase", json={"site": "blog", "client_id": "blog-gone"}
            )
            assert erased.status_code == 200, erased.text
            for site in ("shop", "blog"):
                period = {"first_day": "2026-03-01", "last_day": "2026-03-31"}
                exported = client.post("/api/v1/privacy/export", json={"site": site, **period})
                assert exported.status_code == 200, exported.text
                running.exports[site] = Path(exported.json()["dir"]).name
            rotated = client.post("/api/v1/privacy/keys/rotate", json={"site": "blog"})
            assert rotated.status_code == 200, rotated.text
        yield running
    finally:
        server.stop()


def _audit(scoped: Scoped, token: str) -> dict[str, Any]:
    with scoped.client(token) as client:
        answer = client.get("/api/v1/privacy/audit")
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def test_a_site_dpo_reads_only_its_sites_audit_entries(scoped: Scoped) -> None:
    everything = _audit(scoped, scoped.owner)
    seen = _audit(scoped, scoped.shop_dpo)
    owner_text = json.dumps(everything["entries"])
    assert BLOG_EDITOR in owner_text and '"site":"blog"' in owner_text.replace(" ", "")
    # Nothing about the other site reaches the shop's privacy officer: not its exports,
    # erasures or key epochs, not the e-mail address of its staff.
    shown = json.dumps(seen["entries"])
    assert "blog" not in shown
    assert BLOG_EDITOR not in shown
    actions = [
        (entry["action"], entry["detail"].get("site") or entry["detail"].get("sites"))
        for entry in seen["entries"]
    ]
    assert ("export", "shop") in actions
    assert ("key.create", "shop") in actions
    assert any(a == "user.add" and e["detail"]["user"] == SHOP_DPO for a, e in _pairs(seen))
    # Entries about every site (data directory, daily keys, the owner's token) are withheld
    # too: they are counted, so the officer knows the log holds more than they may read.
    assert everything["withheld"] == 0
    assert seen["withheld"] == len(everything["entries"]) - len(seen["entries"]) > 0
    # The chain check is over the whole log, whoever asks.
    assert seen["check"] == everything["check"]
    assert seen["check"]["ok"] is True


def _pairs(audit: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(entry["action"], entry) for entry in audit["entries"]]


def test_a_site_dpo_gets_the_register_and_keys_of_its_sites(scoped: Scoped) -> None:
    with scoped.client(scoped.shop_dpo) as client:
        register = client.get("/api/v1/privacy/register")
        markdown = client.get("/api/v1/privacy/register", params={"format": "md"})
        keys = client.get("/api/v1/privacy/keys")
    assert [site["site"] for site in register.json()["sites"]] == ["shop"]
    assert "## Site shop" in markdown.text and "blog" not in markdown.text
    assert {state["site"] for state in keys.json()["keys"]["site_keys"]} == {"shop"}
    with scoped.client(scoped.owner) as client:
        every = client.get("/api/v1/privacy/keys").json()
    assert {state["site"] for state in every["keys"]["site_keys"]} == {"shop", "blog"}


def test_a_site_dpo_verifies_only_exports_of_its_sites(scoped: Scoped) -> None:
    with scoped.client(scoped.shop_dpo) as client:
        own = client.post("/api/v1/privacy/export/verify", json={"dir": scoped.exports["shop"]})
        other = client.post("/api/v1/privacy/export/verify", json={"dir": scoped.exports["blog"]})
    assert own.status_code == 200 and own.json()["ok"] is True, own.text
    assert (other.status_code, other.json()["field"]) == (403, "$.dir")
    assert "blog" not in other.text


def test_a_site_dpo_runs_retention_on_its_sites_only(scoped: Scoped) -> None:
    with scoped.client(scoped.shop_dpo) as client:
        report = client.post("/api/v1/privacy/retention", json={"dry_run": True})
    assert report.status_code == 200, report.text
    assert {cutoff["site"] for cutoff in report.json()["cutoffs"]} == {"shop"}
    assert {count["site"] for count in report.json()["deleted"]} == {"shop"}
    # Its own run is in its audit view.
    assert _audit(scoped, scoped.shop_dpo)["entries"][-1]["action"] == "retention.dry-run"


def test_the_register_page_carries_the_dashboards_security_headers(scoped: Scoped) -> None:
    with scoped.client(scoped.owner) as client:
        page = client.get("/api/v1/privacy/register", params={"format": "html"})
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert page.headers["content-security-policy"] == CSP
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["cache-control"] == "no-store"
