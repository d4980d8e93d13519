"""The consent package's shared vectors (``consent/vectors/resolve.json``), replayed in Chromium.

Each vector a browser can reproduce (``client: true``) becomes a page: its TC data through a
``__tcfapi`` CMP stub, its Consent Mode state through ``gtag('consent', 'update', …)``, its
``Sec-GPC: 1`` as ``navigator.globalPrivacyControl``, its claim through ``mesure('consent', …)``,
its site policy as data attributes and as the collector's configuration. The mode the snippet
sends, and the mode the collector stores, must be the vector's.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page

from tests.snippet.harness import PageServer, Recorder, page_html, snippet_tag, wait_rows
from tests.snippet.tcf import CMP_STUB
from tests.support import Clock, LiveServer, build_config

VECTORS_FILE = Path(__file__).resolve().parents[2] / "consent" / "vectors" / "resolve.json"
VECTORS = [v for v in json.loads(VECTORS_FILE.read_text())["vectors"] if v["client"]]
GPC_ON = "Object.defineProperty(Navigator.prototype, 'globalPrivacyControl', {get: () => true});"
QUEUE = (
    "window.mesure = window.mesure || function () { (mesure.q = mesure.q || []).push(arguments) };"
)
# One site of the collector per distinct site policy of the vectors.
POLICIES = sorted({json.dumps(v["site"], sort_keys=True) for v in VECTORS})


def site_id(vector: dict[str, Any]) -> str:
    return f"policy{POLICIES.index(json.dumps(vector['site'], sort_keys=True))}"


def snippet_attributes(site: dict[str, Any]) -> dict[str, str]:
    """The data attributes that give the snippet a site's consent policy."""
    attributes: dict[str, str] = {}
    for key, value in site.items():
        if key == "exemption" and value is False:
            attributes["default_mode"] = "denied"
        elif key == "honour-gpc" and value is False:
            attributes["ignore_gpc"] = ""
        elif key == "tcf-vendor-id":
            attributes["tcf_vendor"] = str(value)
        else:
            raise AssertionError(f"a client vector with a site key the snippet cannot take: {key}")
    return attributes


@pytest.fixture(scope="module")
def vector_collector(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A collector whose clock is the vectors' `now` (TC strings are dated relative to it)."""
    (now,) = {v["now"] for v in VECTORS}
    policies = [json.loads(policy) for policy in POLICIES]
    hostnames = ["example.com", "*.example.com"]
    config = build_config(
        tmp_path_factory.mktemp("vectors"),
        sites={f"policy{index}": hostnames for index in range(len(policies))},
        consent={f"policy{index}": policy for index, policy in enumerate(policies)},
    )
    server = LiveServer(config, Clock(datetime.fromisoformat(now.replace("Z", "+00:00"))))
    server.start()
    yield server
    server.stop()


def vector_page(vector: dict[str, Any], collector_port: int) -> str:
    head = ""
    if vector["tcdata"] is not None:
        head += CMP_STUB + f"<script>window.cmp.set({json.dumps(vector['tcdata'])})</script>"
    if vector["gcm"] is not None:
        head += (
            "<script>window.dataLayer = window.dataLayer || [];"
            " function gtag() { dataLayer.push(arguments); }"
            f" gtag('consent', 'update', {json.dumps(vector['gcm'])});</script>"
        )
    head += f"<script>{QUEUE}"
    if vector["claim"] is not None:
        head += f" mesure('consent', {json.dumps(vector['claim'])});"
    head += "</script>"
    attributes = snippet_attributes(vector["site"])
    return page_html(head + snippet_tag(collector_port, site=site_id(vector), **attributes))


def test_every_client_vector_is_a_client_vector_the_snippet_understands() -> None:
    assert len(VECTORS) >= 30
    for vector in VECTORS:
        snippet_attributes(vector["site"])
        assert vector["sec_gpc"] in ([], ["1"]) and vector["dnt"] == []


@pytest.mark.parametrize("vector", VECTORS, ids=[v["id"] for v in VECTORS])
def test_vector(
    page: Page, page_server: PageServer, vector_collector: LiveServer, vector: dict[str, Any]
) -> None:
    path = f"/vectors/{vector['id']}"
    url = page_server.add(path, vector_page(vector, vector_collector.port))
    if vector["sec_gpc"] == ["1"]:
        page.add_init_script(GPC_ON)
    recorder = Recorder(page)
    page.goto(url)
    expected = vector["expected"]["mode"]
    if expected == "optout":
        recorder.nothing_sent_or_stored(vector_collector, path)
        assert page.evaluate("localStorage.getItem('mesure_id')") is None
        return
    recorder.wait_for_count(1)
    (hit,) = recorder.hits
    assert hit["mode"] == expected
    assert hit.get("tcf") == vector["tc_string"]
    assert ("cid" in hit) == (expected in ("exempt", "granted"))
    (row,) = wait_rows(vector_collector, path, 1)
    assert row["mode"] == expected
    assert (row["visitor"] is None) == (expected == "denied")
