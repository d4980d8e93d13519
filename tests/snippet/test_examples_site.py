"""Every example of examples/ runs with its one command and works in real Chromium."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from consent import tcf
from tests.snippet.harness import COLLECTOR_HOST, SITE_HOST, Recorder, wait_rows
from tests.support import LiveServer, build_config

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
# The download link is kept on the page: the test looks at what was sent.
KEEP_DOWNLOADS = """document.addEventListener('click', (event) => {
  if (event.target.closest('#price-list, #partner')) event.preventDefault();
});"""


@pytest.fixture
def collector(tmp_path: Path) -> Iterator[LiveServer]:
    """A collector of the test's own, in place of the one the browser tests share: the examples'
    pages have fixed paths that several of these tests visit (/pricing.html), so rows at one
    could be another test's."""
    server = LiveServer(build_config(tmp_path / "collector"), None)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def example_site(collector: LiveServer) -> Iterator[Callable[[str], str]]:
    """Start ``python examples/serve_site.py`` for an example; return the site's base URL."""
    processes: list[subprocess.Popen[str]] = []

    def start(example: str) -> str:
        command = [
            sys.executable,
            str(EXAMPLES / "serve_site.py"),
            "--collector",
            f"http://{COLLECTOR_HOST}:{collector.port}",
            "--example",
            example,
            "--site",
            "example",
            "--port",
            "0",
            "--allow-automation",
        ]
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        )
        processes.append(process)
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith(f"Serving the {example} example on http://127.0.0.1:"), line
        port = line.rsplit(":", 1)[1].strip().rstrip("/")
        return f"http://{SITE_HOST}:{port}"

    yield start
    for process in processes:
        process.terminate()
        process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()


def test_site_example_tour(page: Page, example_site: Callable[[str], str], collector: LiveServer):
    base = example_site("site")
    page.add_init_script(KEEP_DOWNLOADS)
    recorder = Recorder(page)
    page.goto(base + "/")
    recorder.wait_for_count(1)
    page.click("#partner")
    page.click("#to-pricing")
    recorder.wait_for(lambda hits: hits[-1]["url"] == base + "/pricing.html", "pricing pageview")
    page.click("#join")
    page.click("#price-list")
    page.goto(base + "/docs.html")
    page.click("[data-tab=sourdough]")
    page.click("[data-tab=brioche]")
    recorder.wait_for(lambda hits: hits[-1]["url"].endswith("recipe=brioche"), "tab pageview")
    recorder.quiet()
    sent = [(hit["name"], hit["url"].removeprefix(base)) for hit in recorder.hits]
    assert [entry for entry in sent if entry[0] != "engagement"] == [
        ("pageview", "/"),
        ("outbound", "/"),
        ("pageview", "/pricing.html"),
        ("download", "/pricing.html"),
        ("pageview", "/docs.html"),
        ("pageview", "/docs.html?recipe=sourdough"),
        ("pageview", "/docs.html?recipe=brioche"),
    ]
    # Exempt: the custom `join` event (with its revenue) stays in the browser.
    assert all(hit["mode"] == "exempt" for hit in recorder.hits)
    assert recorder.console_errors == recorder.page_errors == []
    rows = wait_rows(collector, "/docs.html", 3, name="pageview", sent=recorder.hits)
    assert len(rows) == 3

    # The privacy page frames the collector's opt-out page.
    page.goto(base + "/privacy.html")
    recorder.wait_for(lambda hits: hits[-1]["url"] == base + "/privacy.html", "privacy pageview")
    frame = page.frame_locator("#optout-frame")
    frame.locator("#optout").click()
    expect(frame.locator("#status")).to_have_text("You are opted out: this browser sends nothing.")
    count = len(recorder.hits)
    page.goto(base + "/")
    recorder.quiet()
    assert len(recorder.hits) == count


def test_tcf_example(page: Page, example_site: Callable[[str], str], collector: LiveServer):
    base = example_site("tcf")
    recorder = Recorder(page)
    page.goto(base + "/")
    expect(page.locator("#consent-banner")).to_be_visible()
    # The CMP shows its banner: after the bounded wait the pageview goes out as exempt.
    recorder.wait_for_count(1)
    assert (recorder.hits[0]["mode"], "tcf" in recorder.hits[0]) == ("exempt", False)
    page.click("#accept")
    expect(page.locator("#consent-banner")).to_be_hidden()
    page.goto(base + "/pricing.html")
    expect(page.locator("#consent-banner")).to_be_hidden()
    page.click("#join")
    recorder.wait_for(lambda hits: hits[-1]["name"] == "join", "join event")
    join = recorder.hits[-1]
    assert join["mode"] == "granted"
    assert join["tcf"].startswith("CQ")
    assert join["revenue"] == {"amount": "29.90", "currency": "EUR"}
    rows = wait_rows(collector, "/pricing.html", 1, name="join")
    assert rows[-1]["mode"] == "granted"


def test_consent_mode_example(
    page: Page, example_site: Callable[[str], str], collector: LiveServer
) -> None:
    base = example_site("consent-mode")
    recorder = Recorder(page)
    page.goto(base + "/")
    recorder.wait_for_count(1)
    first = recorder.hits[0]
    assert (first["mode"], first["gcm"]) == ("exempt", {"analytics_storage": "denied"})
    page.click("#accept")
    page.goto(base + "/pricing.html")
    page.click("#join")
    recorder.wait_for(lambda hits: hits[-1]["name"] == "join", "join event")
    join = recorder.hits[-1]
    assert (join["mode"], join["gcm"]) == ("granted", {"analytics_storage": "granted"})
    assert join["props"] == {"plan": "club"}


def test_explicit_banner_example(
    page: Page, example_site: Callable[[str], str], collector: LiveServer
) -> None:
    base = example_site("banner")
    recorder = Recorder(page)
    page.goto(base + "/")
    recorder.wait_for_count(1)
    assert recorder.hits[0]["mode"] == "exempt"
    page.click("#refuse")
    page.goto(base + "/pricing.html")
    page.click("#join")
    recorder.wait_for(lambda hits: hits[-1]["name"] == "join", "join event")
    recorder.quiet()
    after = [hit for hit in recorder.hits[1:] if hit["name"] != "engagement"]
    assert [(hit["name"], hit["mode"]) for hit in after] == [
        ("pageview", "denied"),
        ("join", "denied"),
    ]
    assert all("cid" not in hit for hit in after)
    # Only the banner's own memory of the choice is in the browser: no Mesure id.
    assert page.evaluate("Object.keys(localStorage)") == ["demo_choice"]
    rows = wait_rows(collector, "/pricing.html", 1, name="join")
    assert (rows[-1]["mode"], rows[-1]["visitor"]) == ("denied", None)


def test_the_tcf_example_writes_tc_strings_the_collector_reads_as_intended() -> None:
    spec = importlib.util.spec_from_file_location("example_tc_string", EXAMPLES / "tc_string.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    given = tcf.decode(module.encode_tc_string(range(1, 11), vendors={931}, day=date(2026, 6, 1)))
    assert given.purposes_consent == frozenset(range(1, 11))
    assert given.vendor_consents == frozenset({931})
    assert given.tcf_policy_version == 4 and given.is_service_specific
    assert given.last_updated == given.created == datetime(2026, 6, 1, tzinfo=UTC)
    publisher = tcf.decode(module.encode_tc_string([], publisher_purposes={1, 9}))
    assert publisher.purposes_consent == frozenset()
    assert publisher.publisher_purposes_consent == frozenset({1, 9})
