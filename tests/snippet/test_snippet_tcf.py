"""IAB TCF v2.2 through a real ``__tcfapi`` CMP stub: given, refused, changed, late, framed."""

from __future__ import annotations

import json

from playwright.sync_api import Page

from tests.snippet.harness import PageServer, Recorder, page_html, snippet_tag, wait_rows
from tests.snippet.tcf import CMP_LOCATOR, CMP_STUB, set_choice_js, tc_data
from tests.support import LiveServer

GIVEN = tc_data({1, 8, 9, 10})
REFUSED = tc_data({1})


def cmp_page(page_server: PageServer, path: str, tag: str, choice: dict | None = None) -> str:
    preset = f"<script>{set_choice_js(choice)}</script>" if choice else ""
    return page_server.add(path, page_html(CMP_STUB + preset + tag))


def test_consent_given_in_the_cmp_means_granted_with_the_tc_string(
    page: Page, page_server: PageServer, collector: LiveServer
) -> None:
    choice = {**GIVEN, "eventStatus": "tcloaded"}
    url = cmp_page(page_server, "/tcf/given", snippet_tag(collector.port), choice)
    recorder = Recorder(page)
    page.goto(url)
    recorder.wait_for_count(1)
    page.evaluate("mesure('event', 'cta', {props: {place: 'top'}})")
    recorder.wait_for_count(2)
    pageview, cta = recorder.hits
    assert (pageview["mode"], pageview["tcf"]) == ("granted", GIVEN["tcString"])
    assert cta["props"] == {"place": "top"}
    rows = wait_rows(collector, "/tcf/given", 2, sent=recorder.hits)
    assert [row["mode"] for row in rows] == ["granted", "granted"]


def test_consent_refused_falls_to_the_site_default(
    page: Page, page_server: PageServer, collector: LiveServer
) -> None:
    url = cmp_page(page_server, "/tcf/refused", snippet_tag(collector.port), REFUSED)
    recorder = Recorder(page)
    page.goto(url)
    recorder.wait_for_count(1)
    page.evaluate("mesure('event', 'cta', {props: {place: 'top'}}); mesure('event', '404')")
    recorder.wait_for_count(2)
    recorder.quiet()
    pageview, not_found = recorder.hits
    assert (pageview["mode"], pageview["tcf"]) == ("exempt", REFUSED["tcString"])
    assert (not_found["name"], not_found["mode"]) == ("404", "exempt")
    assert [row["mode"] for row in wait_rows(collector, "/tcf/refused", 2, sent=recorder.hits)] == [
        "exempt"
    ] * 2


def test_a_choice_changed_later_applies_at_once(
    page: Page, page_server: PageServer, collector: LiveServer
) -> None:
    choice = {**GIVEN, "eventStatus": "tcloaded"}
    url = cmp_page(page_server, "/tcf/changed", snippet_tag(collector.port), choice)
    recorder = Recorder(page)
    page.goto(url)
    recorder.wait_for_count(1)
    page.evaluate(set_choice_js(REFUSED) + "; mesure('event', 'after', {props: {a: 1}})")
    page.evaluate("mesure('event', '404')")
    page.evaluate(set_choice_js(GIVEN) + "; mesure('event', 'again', {props: {a: 2}})")
    recorder.wait_for_count(3)
    recorder.quiet()
    modes = [(hit["name"], hit["mode"], hit["tcf"], "props" in hit) for hit in recorder.hits]
    assert modes == [
        ("pageview", "granted", GIVEN["tcString"], False),
        ("404", "exempt", REFUSED["tcString"], False),
        ("again", "granted", GIVEN["tcString"], True),
    ]


def test_the_pageview_waits_for_the_visitor_while_the_cmp_ui_is_shown(
    page: Page, page_server: PageServer, collector: LiveServer
) -> None:
    shown = {**REFUSED, "eventStatus": "cmpuishown"}
    tag = snippet_tag(collector.port, consent_wait="20000")
    url = cmp_page(page_server, "/tcf/waiting", tag, shown)
    recorder = Recorder(page)
    page.goto(url)
    page.evaluate("mesure('event', 'early', {props: {a: 1}})")
    recorder.quiet()
    assert recorder.hits == []
    page.evaluate(set_choice_js(GIVEN))
    recorder.wait_for_count(2)
    recorder.quiet()
    # The pageview, then the event held back meanwhile, both under the visitor's choice.
    assert [(hit["name"], hit["mode"]) for hit in recorder.hits] == [
        ("pageview", "granted"),
        ("early", "granted"),
    ]
    rows = wait_rows(collector, "/tcf/waiting", 2, sent=recorder.hits)
    assert [(row["name"], row["mode"]) for row in rows] == [
        ("pageview", "granted"),
        ("early", "granted"),
    ]


def test_a_cmp_that_never_answers_delays_the_pageview_only_for_the_bounded_wait(
    page: Page, page_server: PageServer, collector: LiveServer
) -> None:
    tag = snippet_tag(collector.port, consent_wait="300")
    url = cmp_page(page_server, "/tcf/silent", tag)
    recorder = Recorder(page)
    page.goto(url)
    recorder.wait_for_count(1)
    assert recorder.hits[0]["mode"] == "exempt"
    assert "tcf" not in recorder.hits[0]
    # The listener stays registered: a later choice still applies.
    page.evaluate(set_choice_js(GIVEN) + "; mesure('event', 'late')")
    recorder.wait_for_count(2)
    assert recorder.hits[1]["mode"] == "granted"
    rows = wait_rows(collector, "/tcf/silent", 2, sent=recorder.hits)
    assert [(row["name"], row["mode"]) for row in rows] == [
        ("pageview", "exempt"),
        ("late", "granted"),
    ]


def test_the_vendor_is_required_when_the_site_names_one(
    page: Page, page_server: PageServer, collector: LiveServer
) -> None:
    tag = snippet_tag(collector.port, tcf_vendor="931")
    without = cmp_page(page_server, "/tcf/vendor/without", tag, GIVEN)
    with_vendor = cmp_page(page_server, "/tcf/vendor/with", tag, tc_data({1, 8}, vendors={931}))
    recorder = Recorder(page)
    page.goto(without)
    recorder.wait_for_count(1)
    page.goto(with_vendor)
    recorder.wait_for(lambda hits: hits[-1]["url"] == with_vendor, "second pageview")
    pageviews = [hit for hit in recorder.hits if hit["name"] == "pageview"]
    assert [hit["mode"] for hit in pageviews] == ["exempt", "granted"]
    paths = ("/tcf/vendor/without", "/tcf/vendor/with")
    rows = wait_rows(collector, paths, 2, name="pageview", sent=recorder.hits)
    assert [(row["path"], row["mode"]) for row in rows] == [
        ("/tcf/vendor/without", "exempt"),
        ("/tcf/vendor/with", "granted"),
    ]


def test_publisher_purposes_count_like_core_purposes(
    page: Page, page_server: PageServer, collector: LiveServer
) -> None:
    choice = tc_data(set(), publisher_purposes={1, 9})
    url = cmp_page(page_server, "/tcf/publisher", snippet_tag(collector.port), choice)
    recorder = Recorder(page)
    page.goto(url)
    recorder.wait_for_count(1)
    assert recorder.hits[0]["mode"] == "granted"
    # The collector reads the publisher purposes of the TC string the same way.
    assert [row["mode"] for row in wait_rows(collector, "/tcf/publisher", 1)] == ["granted"]


def test_a_framed_page_reaches_the_cmp_through_the_locator_frame(
    page: Page, page_server: PageServer, collector: LiveServer
) -> None:
    child = page_server.add("/tcf/framed/child", page_html(snippet_tag(collector.port)))
    preset = f"<script>{set_choice_js(GIVEN)}</script>"
    top = page_server.add(
        "/tcf/framed/top",
        page_html(CMP_STUB + preset, CMP_LOCATOR + f'<iframe id="site" src="{child}"></iframe>'),
    )
    recorder = Recorder(page)
    page.goto(top)
    recorder.wait_for_count(1)
    (hit,) = recorder.hits
    assert (hit["url"], hit["mode"], hit["tcf"]) == (child, "granted", GIVEN["tcString"])
    assert page.evaluate("window.cmp.listeners()") == 1
    page.evaluate(set_choice_js(REFUSED))
    page.frame_locator("#site").locator("body").evaluate("() => mesure('event', '404')")
    recorder.wait_for_count(2)
    assert (recorder.hits[1]["mode"], recorder.hits[1]["tcf"]) == ("exempt", REFUSED["tcString"])
    rows = wait_rows(collector, "/tcf/framed/child", 2, sent=recorder.hits)
    assert [row["mode"] for row in rows] == ["granted", "exempt"]


def test_where_gdpr_does_not_apply_tcf_is_not_a_signal_and_nothing_waits(
    page: Page, page_server: PageServer, collector: LiveServer
) -> None:
    # TC data where GDPR does not apply carries no purposes and no TC string (TCF CMP API v2.2).
    choice = {"gdprApplies": False, "eventStatus": "tcloaded", "cmpId": 300, "cmpVersion": 1}
    queue = (
        "<script>window.mesure = window.mesure || function () {"
        " (mesure.q = mesure.q || []).push(arguments) }; mesure('consent', 'granted');</script>"
    )
    # A wait far longer than the bounded wait of the recorder: the answer must end it.
    tag = queue + snippet_tag(collector.port, consent_wait="60000")
    url = cmp_page(page_server, "/tcf/no-gdpr", tag, choice)
    recorder = Recorder(page)
    page.goto(url)
    recorder.wait_for_count(1)
    (hit,) = recorder.hits
    # The visitor's explicit choice stands: TCF neither grants nor restricts.
    assert (hit["name"], hit["mode"]) == ("pageview", "granted")
    assert "tcf" not in hit
    assert [row["mode"] for row in wait_rows(collector, "/tcf/no-gdpr", 1)] == ["granted"]


def test_a_tcf_answer_from_another_window_than_the_cmp_is_ignored(
    page: Page, page_server: PageServer, collector: LiveServer
) -> None:
    url = cmp_page(page_server, "/tcf/forged", snippet_tag(collector.port), REFUSED)
    recorder = Recorder(page)
    page.goto(url)
    recorder.wait_for_count(1)
    # Any script or frame can post a TCF answer; only the CMP's window is listened to.
    forged = {"__tcfapiReturn": {"returnValue": GIVEN, "success": True, "callId": 1}}
    page.evaluate(f"window.postMessage({json.dumps(forged)}, '*')")
    page.evaluate("mesure('event', '404')")
    recorder.wait_for_count(2)
    assert [(hit["mode"], hit["tcf"]) for hit in recorder.hits] == [
        ("exempt", REFUSED["tcString"]),
        ("exempt", REFUSED["tcString"]),
    ]
    assert [row["mode"] for row in wait_rows(collector, "/tcf/forged", 2, sent=recorder.hits)] == [
        "exempt"
    ] * 2
