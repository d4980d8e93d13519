"""The consent package's field-policy vectors (``consent/vectors/policy.json``) in Chromium.

For each vector of a site with the default policy, the page puts the snippet in the vector's mode
and then does everything that could send a field: a user id, a custom event with properties and
revenue, a technical event, a single-page navigation (engagement time and a pageview). The wire
fields that leave the browser must be exactly the vector's kept fields among those exercised,
every event name must be one the mode keeps, and nothing may be sent or stored for ``optout``.
Vectors with other site keys (extra exempt properties, identifier lifetimes, ``geo``) configure
the collector only: the snippet has no attribute for them, and the collector enforces them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page

from tests.snippet.harness import PageServer, Recorder, page_html, snippet_tag, wait_rows
from tests.support import LiveServer

VECTORS_FILE = Path(__file__).resolve().parents[2] / "consent" / "vectors" / "policy.json"
VECTORS = [v for v in json.loads(VECTORS_FILE.read_text())["vectors"] if v["site"] == {}]
#: Sent with every hit whatever the mode: the site, the mode and the consent evidence.
ALWAYS = {"site", "mode", "tcf", "gcm"}
#: The wire fields this page's calls could send (no referrer: the page is opened directly).
EXERCISED = {"name", "url", "cid", "screen", "uid", "props", "revenue", "engaged_ms"}
QUEUE = (
    "window.mesure = window.mesure || function () { (mesure.q = mesure.q || []).push(arguments) };"
)
# The page keeps itself from leaving: the snippet sees the click, the browser stays.
OUTBOUND_LINK = (
    '<a id="out" href="https://other.example.org/offer?ref=1">offer</a>'
    "<script>document.getElementById('out').onclick = (e) => e.preventDefault();</script>"
)
CALLS = """
mesure('user', 'policy-user-1');
mesure('event', 'purchase', {props: {plan: 'pro'}, revenue: {amount: '9.90', currency: 'EUR'}});
mesure('event', '404');
history.pushState({}, '', location.pathname + '/next');
"""


def test_the_four_modes_have_a_vector() -> None:
    assert sorted(v["mode"] for v in VECTORS) == ["denied", "exempt", "granted", "optout"]


@pytest.mark.parametrize("vector", VECTORS, ids=[v["id"] for v in VECTORS])
def test_policy_vector(
    page: Page, page_server: PageServer, collector: LiveServer, vector: dict[str, Any]
) -> None:
    mode, expected = vector["mode"], vector["expected"]
    path = f"/policy/{vector['id']}"
    head = f"<script>{QUEUE} mesure('consent', '{mode}');</script>" + snippet_tag(collector.port)
    url = page_server.add(path, page_html(head, OUTBOUND_LINK))
    recorder = Recorder(page)
    page.goto(url)
    if mode == "optout":
        page.evaluate(CALLS)
        page.click("#out")
        recorder.nothing_sent_or_stored(collector, path, f"{path}/next")
        assert page.evaluate("Object.keys(localStorage)") == ["mesure_optout"]
        return
    recorder.wait_for_count(1)
    page.click("#out")
    page.evaluate(CALLS)
    recorder.wait_for(lambda hits: hits[-1]["url"].endswith("/next"), "the second pageview")
    recorder.quiet()

    sent = set().union(*(set(hit) for hit in recorder.hits)) - ALWAYS
    assert sent == set(expected["fields"]) & EXERCISED
    assert {hit["mode"] for hit in recorder.hits} == {mode}
    names = recorder.names()
    if expected["events"] is None:
        assert "purchase" in names
    else:
        assert set(names) <= set(expected["events"])
    for hit in recorder.hits:
        if "props" in hit and expected["properties"] is not None:
            assert set(hit["props"]) <= set(expected["properties"])
    stored_id = page.evaluate("localStorage.getItem('mesure_id')")
    assert (stored_id is not None) == expected["client_storage"]
    rows = wait_rows(collector, (path, f"{path}/next"), len(recorder.hits), sent=recorder.hits)
    assert [row["name"] for row in rows] == names
    assert {row["mode"] for row in rows} == {mode}
    assert all((row["visitor"] is not None) == expected["visitor_id"] for row in rows)
    assert all(
        (row["user"] is not None) == (expected["user_id"] and "uid" in hit)
        for row, hit in zip(rows, recorder.hits, strict=True)
    )
