"""Custom events, revenue and user ids: sent in full under `granted`, stripped under `exempt`."""

from __future__ import annotations

from playwright.sync_api import Page

from tests.snippet.harness import PageServer, Recorder, page_html, snippet_tag, wait_rows
from tests.support import LiveServer

CALLS = """
mesure('user', 'customer-7');
mesure('event', 'purchase', {props: {plan: 'pro', seats: 3},
                             revenue: {amount: '49.90', currency: 'EUR'}});
mesure('event', '404');
"""


def test_granted_events_carry_props_revenue_and_user(
    page: Page, page_server: PageServer, collector: LiveServer
) -> None:
    url = page_server.add("/events/granted", page_html(snippet_tag(collector.port)))
    recorder = Recorder(page)
    page.goto(url)
    recorder.wait_for_count(1)
    page.evaluate("mesure('consent', 'granted');" + CALLS)
    recorder.wait_for_count(3)
    recorder.quiet()
    assert recorder.names() == ["pageview", "purchase", "404"]
    purchase = recorder.hits[1]
    assert purchase["mode"] == "granted"
    assert purchase["props"] == {"plan": "pro", "seats": 3}
    assert purchase["revenue"] == {"amount": "49.90", "currency": "EUR"}
    assert purchase["uid"] == "customer-7"
    rows = wait_rows(collector, "/events/granted", 3, sent=recorder.hits)
    stored = rows[1]
    assert (stored["name"], stored["mode"]) == ("purchase", "granted")
    assert (stored["revenue_amount"], stored["revenue_currency"]) == ("49.90", "EUR")
    assert stored["user"] is not None
    assert stored["props"] == {"plan": "pro", "seats": 3}


def test_exempt_sends_technical_events_only_and_no_props_revenue_or_user(
    page: Page, page_server: PageServer, collector: LiveServer
) -> None:
    url = page_server.add("/events/exempt", page_html(snippet_tag(collector.port)))
    recorder = Recorder(page)
    page.goto(url)
    recorder.wait_for_count(1)
    page.evaluate(CALLS)
    recorder.wait_for_count(2)
    recorder.quiet()
    # `exempt` keeps pageviews and technical events (404 is one); a free custom event, its
    # properties, its revenue and the user id never leave the browser.
    assert recorder.names() == ["pageview", "404"]
    for hit in recorder.hits:
        assert hit["mode"] == "exempt"
        assert not {"props", "revenue", "uid"} & set(hit)
    rows = wait_rows(collector, "/events/exempt", 2, sent=recorder.hits)
    assert [row["name"] for row in rows] == ["pageview", "404"]
    for row in rows:
        assert row["props"] is None
        assert row["revenue_amount"] is None
        assert row["user"] is None


def test_a_mode_change_applies_to_the_next_hit_in_both_directions(
    page: Page, page_server: PageServer, collector: LiveServer
) -> None:
    url = page_server.add("/events/switch", page_html(snippet_tag(collector.port)))
    recorder = Recorder(page)
    page.goto(url)
    recorder.wait_for_count(1)
    steps = ["granted", "exempt", "denied", "granted"]
    for mode in steps:
        page.evaluate(
            f"mesure('consent', '{mode}'); mesure('event', '404');"
            " mesure('event', 'step', {props: {n: 1}})"
        )
    recorder.wait_for_count(8)
    recorder.quiet()
    sent = [(hit["name"], hit["mode"], "props" in hit, "cid" in hit) for hit in recorder.hits[1:]]
    assert sent == [
        ("404", "granted", False, True),
        ("step", "granted", True, True),
        ("404", "exempt", False, True),
        ("404", "denied", False, False),
        ("step", "denied", False, False),
        ("404", "granted", False, True),
        ("step", "granted", True, True),
    ]
    # `denied` removed the id: the id of the last hits is a new one.
    assert recorder.hits[-1]["cid"] != recorder.hits[1]["cid"]
    rows = wait_rows(collector, "/events/switch", 8)
    # Hits leave as concurrent requests, so they may be stored in another order than sent:
    # compare what was stored as a multiset.
    stored = sorted(
        (row["name"], row["mode"], row["props"] is not None, row["visitor"] is not None)
        for row in rows
    )
    assert stored == sorted(
        [
            ("pageview", "exempt", False, True),
            ("404", "granted", False, True),
            ("step", "granted", True, True),
            ("404", "exempt", False, True),
            ("404", "denied", False, False),
            ("step", "denied", False, False),
            ("404", "granted", False, True),
            ("step", "granted", True, True),
        ]
    )
