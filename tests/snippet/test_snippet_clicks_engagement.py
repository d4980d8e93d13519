"""Outbound links, file downloads and engagement time, in real Chromium."""

from __future__ import annotations

from urllib.parse import urlsplit

from playwright.sync_api import Page

from tests.snippet.harness import PageServer, Recorder, page_html, snippet_tag, wait_rows
from tests.support import LiveServer

# The page keeps every click on the page: the tests look at what was sent, not at navigation.
LINKS = """
<script>document.addEventListener('click', (e) => e.preventDefault());
document.addEventListener('auxclick', (e) => e.preventDefault());</script>
<a id="out" href="https://partner.example.org/offer?ref=42#x"><span>Partner</span></a>
<a id="pdf" href="/files/report.pdf?token=secret">Report</a>
<a id="zip" href="/files/data.ZIP">Data</a>
<a id="inside" href="/about">About</a>
<a id="mail" href="mailto:someone@example.com">Mail</a>
"""


def test_outbound_and_download_clicks_send_their_target_without_query(
    page: Page, page_server: PageServer, collector: LiveServer
) -> None:
    url = page_server.add("/clicks/page", page_html(snippet_tag(collector.port), LINKS))
    recorder = Recorder(page)
    page.goto(url)
    recorder.wait_for_count(1)
    page.click("#out span")
    page.click("#pdf")
    page.click("#zip")
    page.click("#inside")
    page.click("#mail")
    page.click("#out", button="middle")
    page.click("#out", button="right")
    recorder.wait_for_count(5)
    recorder.quiet()
    assert recorder.names() == ["pageview", "outbound", "download", "download", "outbound"]
    targets = [hit["props"]["url"] for hit in recorder.hits[1:]]
    base = url.removesuffix("/clicks/page")
    assert targets == [
        "https://partner.example.org/offer",
        f"{base}/files/report.pdf",
        f"{base}/files/data.ZIP",
        "https://partner.example.org/offer",
    ]
    # Clicks are counted on the page they happen on.
    assert {hit["url"] for hit in recorder.hits} == {url}
    assert {hit["mode"] for hit in recorder.hits} == {"exempt"}
    rows = wait_rows(collector, "/clicks/page", 5)
    # The exemption keeps the target of a click (the `url` property), nothing else, cleaned as
    # every URL-valued field is: scheme, host and path (no port, no query, no fragment).
    host = urlsplit(base).hostname
    stored = [
        "https://partner.example.org/offer",
        f"http://{host}/files/report.pdf",
        f"http://{host}/files/data.ZIP",
        "https://partner.example.org/offer",
    ]
    assert sorted(row["name"] for row in rows) == sorted(recorder.names())
    assert sorted(row["props"].get("url", "") for row in rows if row["props"]) == sorted(stored)
    assert [set(row["props"]) for row in rows if row["props"]] == [{"url"}] * 4


def test_download_extensions_are_configurable(
    page: Page, page_server: PageServer, collector: LiveServer
) -> None:
    tag = snippet_tag(collector.port, downloads="zip|tar")
    links = LINKS + '<a id="tar" href="/files/src.tar">Source</a>'
    url = page_server.add("/clicks/configured", page_html(tag, links))
    recorder = Recorder(page)
    page.goto(url)
    recorder.wait_for_count(1)
    page.click("#pdf")
    page.click("#tar")
    page.click("#zip")
    recorder.wait_for_count(3)
    recorder.quiet()
    assert [hit["props"]["url"].rsplit("/", 1)[1] for hit in recorder.hits[1:]] == [
        "src.tar",
        "data.ZIP",
    ]
    rows = wait_rows(collector, "/clicks/configured", 3, sent=recorder.hits)
    assert [row["name"] for row in rows] == ["pageview", "download", "download"]


def test_engagement_is_the_visible_time_sent_when_the_page_is_left(
    page: Page, page_server: PageServer, collector: LiveServer
) -> None:
    first = page_server.add("/engagement/first", page_html(snippet_tag(collector.port)))
    second = page_server.add("/engagement/second", page_html(snippet_tag(collector.port)))
    # A paused clock only moves when the test moves it, so the times are exact.
    page.clock.install(time=1_700_000_000_000)
    page.clock.pause_at(1_700_000_001_000)
    recorder = Recorder(page)
    page.goto(first)
    recorder.wait_for_count(1)
    page.clock.fast_forward(7000)
    # A single-page-app navigation closes the engagement of the previous URL (sent with fetch).
    page.evaluate("history.pushState({}, '', '/engagement/first/next')")
    recorder.wait_for_count(3)
    page.clock.fast_forward(4000)
    # Leaving the page hides it: the engagement of the last URL goes out (keepalive fetch).
    page.goto(second)
    recorder.wait_for(lambda hits: hits[-1]["url"] == second, "pageview of the second page")

    # The request of a page being left is seen by the collector only: check the stored rows.
    paths = ("/engagement/first", "/engagement/first/next", "/engagement/second")
    rows = wait_rows(collector, paths, 5, sent=recorder.hits)
    engagements = [(row["path"], row["engaged_ms"]) for row in rows if row["name"] == "engagement"]
    assert engagements == [("/engagement/first", 7000), ("/engagement/first/next", 4000)]
    pageviews = [row["path"] for row in rows if row["name"] == "pageview"]
    assert pageviews == ["/engagement/first", "/engagement/first/next", "/engagement/second"]
