"""Google Consent Mode v2 through the dataLayer, and Global Privacy Control."""

from __future__ import annotations

from playwright.sync_api import Page

from tests.snippet.harness import PageServer, Recorder, page_html, snippet_tag, wait_rows
from tests.support import LiveServer

GTAG = (
    "<script>window.dataLayer = window.dataLayer || [];"
    " function gtag() { dataLayer.push(arguments); }"
    " gtag('consent', 'default', {analytics_storage: 'denied', ad_storage: 'denied'});</script>"
)
GPC_ON = "Object.defineProperty(Navigator.prototype, 'globalPrivacyControl', {get: () => true});"
STORED = "() => ({storage: {...localStorage}, cookies: document.cookie})"


def test_consent_mode_default_denied_then_update_granted(
    page: Page, page_server: PageServer, collector: LiveServer
) -> None:
    url = page_server.add("/gcm/exempt", page_html(GTAG + snippet_tag(collector.port)))
    recorder = Recorder(page)
    page.goto(url)
    recorder.wait_for_count(1)
    # Denied analytics storage falls to the site default, exempt: no free custom event.
    page.evaluate("mesure('event', 'cta', {props: {place: 'hero'}})")
    page.evaluate(
        "gtag('consent', 'update', {analytics_storage: 'granted'});"
        " mesure('event', 'cta', {props: {place: 'footer'}})"
    )
    recorder.wait_for_count(2)
    recorder.quiet()
    before, after = recorder.hits
    assert (before["mode"], before["gcm"]) == ("exempt", {"analytics_storage": "denied"})
    assert (after["name"], after["mode"]) == ("cta", "granted")
    assert after["gcm"] == {"analytics_storage": "granted"}
    assert after["props"] == {"place": "footer"}
    rows = wait_rows(collector, "/gcm/exempt", 2, sent=recorder.hits)
    assert [(row["name"], row["mode"]) for row in rows] == [
        ("pageview", "exempt"),
        ("cta", "granted"),
    ]


def test_consent_mode_with_a_denied_site_default_stores_nothing_until_granted(
    page: Page, page_server: PageServer, collector: LiveServer
) -> None:
    tag = snippet_tag(collector.port, default_mode="denied")
    url = page_server.add("/gcm/denied", page_html(GTAG + tag))
    recorder = Recorder(page)
    page.goto(url)
    recorder.wait_for_count(1)
    assert recorder.hits[0]["mode"] == "denied"
    assert "cid" not in recorder.hits[0]
    assert page.evaluate(STORED) == {"storage": {}, "cookies": ""}
    page.evaluate("gtag('consent', 'update', {analytics_storage: 'granted'})")
    page.evaluate("history.pushState({}, '', '/gcm/denied/next')")
    recorder.wait_for(lambda hits: hits[-1]["name"] == "pageview" and len(hits) > 1, "pageview")
    assert recorder.hits[-1]["mode"] == "granted"
    assert set(page.evaluate(STORED)["storage"]) == {"mesure_id"}
    paths = ("/gcm/denied", "/gcm/denied/next")
    rows = wait_rows(collector, paths, 2, name="pageview", sent=recorder.hits)
    assert [(row["mode"], row["visitor"] is None) for row in rows] == [
        ("denied", True),
        ("granted", False),
    ]


def test_a_regional_granted_default_is_not_taken_as_consent(
    page: Page, page_server: PageServer, collector: LiveServer
) -> None:
    gtag = GTAG.replace(
        "{analytics_storage: 'denied', ad_storage: 'denied'}",
        "{analytics_storage: 'granted', region: ['US-CA']}",
    )
    url = page_server.add("/gcm/regional", page_html(gtag + snippet_tag(collector.port)))
    recorder = Recorder(page)
    page.goto(url)
    recorder.wait_for_count(1)
    assert recorder.hits[0]["mode"] == "exempt"
    assert "gcm" not in recorder.hits[0]
    assert [row["mode"] for row in wait_rows(collector, "/gcm/regional", 1)] == ["exempt"]


def test_gpc_means_optout_nothing_sent_nothing_stored(
    page: Page, page_server: PageServer, collector: LiveServer
) -> None:
    url = page_server.add("/gpc/optout", page_html(snippet_tag(collector.port)))
    page.add_init_script(GPC_ON)
    recorder = Recorder(page)
    page.goto(url)
    page.evaluate(
        "mesure('consent', 'granted'); mesure('event', 'ignored');"
        " history.pushState({}, '', '/gpc/optout/next')"
    )
    recorder.nothing_sent_or_stored(collector, "/gpc/optout", "/gpc/optout/next")
    assert page.evaluate(STORED) == {"storage": {}, "cookies": ""}


def test_gpc_can_be_ignored_by_the_site(
    page: Page, page_server: PageServer, collector: LiveServer
) -> None:
    url = page_server.add("/gpc/ignored", page_html(snippet_tag(collector.port, ignore_gpc="")))
    page.add_init_script(GPC_ON)
    recorder = Recorder(page)
    page.goto(url)
    recorder.wait_for_count(1)
    assert recorder.hits[0]["mode"] == "exempt"
    assert [row["mode"] for row in wait_rows(collector, "/gpc/ignored", 1)] == ["exempt"]
