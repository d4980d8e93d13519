"""Pageviews in real Chromium: on load, on single-page-app navigation, queued calls, exclusions."""

from __future__ import annotations

import re

from playwright.sync_api import Page

from tests.snippet.harness import PageServer, Recorder, page_html, snippet_tag, wait_rows
from tests.support import LiveServer


def test_pageview_on_load_carries_site_url_mode_id_screen_and_referrer(
    page: Page, page_server: PageServer, collector: LiveServer
) -> None:
    url = page_server.add("/load/page", page_html(snippet_tag(collector.port)))
    recorder = Recorder(page)
    page.goto(url + "?utm_source=news#top", referer="https://news.example.org/story")
    recorder.wait_for_count(1)
    recorder.quiet()
    (hit,) = recorder.hits
    assert hit["site"] == "example"
    assert hit["name"] == "pageview"
    # The fragment never leaves the browser; the query is stripped by the collector.
    assert hit["url"] == url + "?utm_source=news"
    assert hit["mode"] == "exempt"
    assert re.fullmatch(r"[0-9]+(-[0-9]+){3}", hit["cid"])
    assert hit["screen"] == page.viewport_size["width"]
    assert hit["referrer"] == "https://news.example.org/story"
    assert set(hit) == {"site", "name", "url", "mode", "cid", "screen", "referrer"}
    (row,) = wait_rows(collector, "/load/page", 1)
    assert (row["site"], row["name"], row["mode"], row["path"]) == (
        "example",
        "pageview",
        "exempt",
        "/load/page",
    )
    assert row["visitor_kind"] == "client"
    # Campaign attribution is kept under `granted` only (consent/field_policy.py).
    assert row["utm_source"] is None
    assert row["referrer_domain"].endswith("example.org")


def test_spa_navigation_counts_each_new_url_once(
    page: Page, page_server: PageServer, collector: LiveServer
) -> None:
    url = page_server.add("/spa/home", page_html(snippet_tag(collector.port)))
    recorder = Recorder(page)
    page.goto(url, referer="https://search.example.org/")
    recorder.wait_for_count(1)
    page.evaluate("history.pushState({}, '', '/spa/list')")
    page.evaluate("history.pushState({}, '', '/spa/list')")
    page.evaluate("history.replaceState({}, '', '/spa/item?id=3')")
    page.evaluate("history.back()")

    def pageviews() -> list[str]:
        return [hit["url"] for hit in recorder.hits if hit["name"] == "pageview"]

    base = url.removesuffix("/spa/home")
    # The second push of /spa/list made a history entry that replaceState turned into the item;
    # going back returns to the first /spa/list entry.
    expected = [url, f"{base}/spa/list", f"{base}/spa/item?id=3", f"{base}/spa/list"]
    recorder.wait_for(lambda hits: len(pageviews()) >= 4, "four pageviews")
    recorder.quiet()
    assert pageviews() == expected
    # Only the first pageview of the page load carries the referrer.
    referrers = [hit.get("referrer") for hit in recorder.hits if hit["name"] == "pageview"]
    assert referrers == ["https://search.example.org/", None, None, None]
    spa = ("/spa/home", "/spa/list", "/spa/item")
    rows = wait_rows(collector, spa, 4, name="pageview", sent=recorder.hits)
    assert [row["path"] for row in rows] == [
        "/spa/home",
        "/spa/list",
        "/spa/item",
        "/spa/list",
    ]
    # One visitor, one visit.
    assert len({(row["visitor"], row["visit"]) for row in rows}) == 1


def test_hash_routing_is_counted_only_when_enabled(
    page: Page, page_server: PageServer, collector: LiveServer
) -> None:
    plain = page_server.add("/hash/plain", page_html(snippet_tag(collector.port)))
    routed = page_server.add("/hash/app", page_html(snippet_tag(collector.port, hash="")))
    recorder = Recorder(page)
    page.goto(plain)
    recorder.wait_for_count(1)
    page.evaluate("location.hash = '#/settings'")
    recorder.quiet()
    assert recorder.names() == ["pageview"]

    page.goto(routed)
    recorder.wait_for_count(2)
    page.evaluate("location.hash = '#/settings'")
    recorder.wait_for(lambda hits: hits[-1]["url"].endswith("/settings"), "hash pageview")
    recorder.quiet()
    pageviews = [hit["url"] for hit in recorder.hits if hit["name"] == "pageview"]
    assert pageviews == [plain, routed, routed + "/settings"]
    paths = ("/hash/plain", "/hash/app", "/hash/app/settings")
    rows = wait_rows(collector, paths, 3, name="pageview", sent=recorder.hits)
    assert [row["path"] for row in rows] == ["/hash/plain", "/hash/app", "/hash/app/settings"]


def test_calls_queued_before_load_are_replayed_in_order_after_the_pageview(
    page: Page, page_server: PageServer, collector: LiveServer
) -> None:
    stub = (
        "<script>window.mesure = window.mesure || function () {"
        " (mesure.q = mesure.q || []).push(arguments) };"
        " mesure('consent', 'granted');"
        " mesure('event', 'signup', {props: {plan: 'pro'}});"
        " mesure('user', 'u-42');"
        " mesure('event', 'paid', {revenue: {amount: '12.50', currency: 'EUR'}});</script>"
    )
    url = page_server.add("/queue/page", page_html(stub + snippet_tag(collector.port)))
    recorder = Recorder(page)
    page.goto(url)
    recorder.wait_for_count(3)
    recorder.quiet()
    assert recorder.names() == ["pageview", "signup", "paid"]
    pageview, signup, paid = recorder.hits
    # The queued consent applies before anything is sent.
    assert {hit["mode"] for hit in recorder.hits} == {"granted"}
    assert signup["props"] == {"plan": "pro"}
    assert paid["revenue"] == {"amount": "12.50", "currency": "EUR"}
    # Calls keep their order: the user id was set after `signup` was queued, and each hit
    # carries the state at the time it is sent (after the whole queue was replayed).
    assert paid["uid"] == "u-42"
    assert pageview["cid"] == signup["cid"] == paid["cid"]
    rows = wait_rows(collector, "/queue/page", 3, sent=recorder.hits)
    assert [(row["name"], row["mode"]) for row in rows] == [
        ("pageview", "granted"),
        ("signup", "granted"),
        ("paid", "granted"),
    ]
    assert rows[1]["props"] == {"plan": "pro"}
    assert (rows[2]["revenue_amount"], rows[2]["revenue_currency"]) == ("12.50", "EUR")
    assert rows[2]["user"] is not None


def test_local_pages_are_not_measured_unless_allowed(
    page: Page, page_server: PageServer, collector: LiveServer
) -> None:
    page_server.add("/local/off", page_html(snippet_tag(collector.port)))
    page_server.add("/local/on", page_html(snippet_tag(collector.port, allow_local="")))
    recorder = Recorder(page)
    page.goto(f"http://127.0.0.1:{page_server.port}/local/off")
    page.evaluate("mesure('event', 'ignored')")
    recorder.nothing_sent_or_stored(collector, "/local/off")
    page.goto(f"http://localhost:{page_server.port}/local/on")
    recorder.wait_for_count(1)
    assert recorder.names() == ["pageview"]
    rows = wait_rows(collector, ("/local/off", "/local/on"), 1)
    assert [row["path"] for row in rows] == ["/local/on"]


def test_automated_browsers_are_not_measured_unless_allowed(
    page: Page, page_server: PageServer, collector: LiveServer
) -> None:
    tag = snippet_tag(collector.port).replace(" data-allow-automation", "")
    url = page_server.add("/automation/page", page_html(tag))
    recorder = Recorder(page)
    page.goto(url)
    assert page.evaluate("navigator.webdriver") is True
    page.evaluate("mesure('event', 'ignored')")
    recorder.nothing_sent_or_stored(collector, "/automation/page")
