"""The snippet never breaks the page: host scripts that throw, odd calls, a collector down."""

from __future__ import annotations

import socket

from playwright.sync_api import Page

from tests.snippet.harness import COLLECTOR_HOST, PageServer, Recorder, page_html, snippet_tag
from tests.support import LiveServer

THROWING_HOST = """
<script>window.dataLayer = 'not an array'; throw new Error('host script failed');</script>
<script>window.addEventListener('click', () => { throw new Error('host click handler'); });</script>
<a id="out" href="https://partner.example.org/">Partner</a>
<script>document.addEventListener('click', (e) => e.preventDefault());</script>
"""

ODD_CALLS = """
mesure('no-such-command');
mesure('event');
mesure('event', {toString() { throw new Error('nasty name'); }});
mesure('event', '404', null);
mesure('consent', 'maybe');
mesure('user', {toString() { throw new Error('nasty id'); }});
mesure();
"""


def closed_port() -> int:
    """A port with nothing listening (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_host_page_errors_and_odd_calls_do_not_break_the_snippet(
    page: Page, page_server: PageServer, collector: LiveServer
) -> None:
    url = page_server.add(
        "/robust/host", page_html(THROWING_HOST + snippet_tag(collector.port), "<p>Hello</p>")
    )
    recorder = Recorder(page)
    page.goto(url)
    recorder.wait_for_count(1)
    page.evaluate(ODD_CALLS)
    page.click("#out")
    recorder.wait_for_count(3)
    recorder.quiet()
    assert recorder.names() == ["pageview", "404", "outbound"]
    # The only errors are the page's own.
    assert recorder.page_errors == ["host script failed", "host click handler"]
    assert recorder.console_errors == []


def test_a_collector_that_is_down_causes_no_page_error(
    page: Page, page_server: PageServer, collector: LiveServer
) -> None:
    down = f"http://{COLLECTOR_HOST}:{closed_port()}"
    tag = snippet_tag(collector.port, api=down)
    url = page_server.add("/robust/down", page_html(tag, '<a id="pdf" href="/a.pdf">PDF</a>'))
    page.add_init_script("document.addEventListener('click', (e) => e.preventDefault())")
    recorder = Recorder(page)
    page.goto(url)
    recorder.wait_for_count(1)
    page.evaluate("mesure('event', '404')")
    page.click("#pdf")
    page.evaluate("history.pushState({}, '', '/robust/down/next')")
    recorder.wait_for(lambda hits: hits[-1]["url"].endswith("/next"), "SPA pageview")
    recorder.quiet()
    assert recorder.page_errors == []
    # Chromium itself logs the refused connections; the snippet adds nothing of its own
    # (no unhandled rejection, no exception).
    for message in recorder.console_errors:
        assert "ERR_CONNECTION_REFUSED" in message or "Failed to load resource" in message
