"""What the snippet keeps in the browser: one id with its creation time, never extended;
nothing under `denied`; a cookie only where localStorage is blocked."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from playwright.sync_api import Page

from tests.snippet.harness import PageServer, Recorder, page_html, snippet_tag, wait_rows
from tests.support import LiveServer

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
LIFETIME = timedelta(days=395)

STORED = "() => ({storage: {...localStorage}, cookies: document.cookie})"
BLOCK_STORAGE = """
Object.defineProperty(window, 'localStorage', {
  get() { throw new DOMException('blocked by the test', 'SecurityError'); },
});
"""


def ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def test_the_id_lives_13_months_from_creation_and_visits_do_not_extend_it(
    page: Page, page_server: PageServer, collector: LiveServer
) -> None:
    url = page_server.add("/lifetime/page", page_html(snippet_tag(collector.port)))
    recorder = Recorder(page)
    ids = []
    moments = [T0, T0 + timedelta(days=200), T0 + LIFETIME - timedelta(minutes=1), T0 + LIFETIME]
    for visit, moment in enumerate(moments, start=1):
        page.clock.set_fixed_time(moment)
        page.goto(url)
        recorder.wait_for_count(visit)
        ids.append(recorder.hits[-1]["cid"])
        stored = page.evaluate(STORED)["storage"]
        created = T0 if visit < 4 else T0 + LIFETIME
        assert stored == {"mesure_id": f"{ids[-1]}.{ms(created)}"}, f"visit {visit}"
    assert ids[0] == ids[1] == ids[2]
    assert ids[3] != ids[0]
    rows = wait_rows(collector, "/lifetime/page", 4, sent=recorder.hits)
    assert len({row["visitor"] for row in rows[:3]}) == 1
    assert rows[3]["visitor"] not in {rows[0]["visitor"], None}


def test_denied_stores_nothing_and_sends_no_id(
    page: Page, page_server: PageServer, collector: LiveServer
) -> None:
    tag = snippet_tag(collector.port, default_mode="denied")
    url = page_server.add("/denied/page", page_html(tag))
    recorder = Recorder(page)
    page.goto(url, referer="https://news.example.org/")
    recorder.wait_for_count(1)
    page.evaluate("mesure('event', 'signup', {props: {plan: 'pro'}})")
    recorder.wait_for_count(2)
    # No engagement time is kept for `denied`: leaving the page sends nothing.
    page.goto("about:blank")
    page.go_back()
    recorder.wait_for_count(3)
    recorder.quiet()
    assert recorder.names() == ["pageview", "signup", "pageview"]
    for hit in recorder.hits:
        assert hit["mode"] == "denied"
        assert set(hit) <= {"site", "name", "url", "mode"}
    assert page.evaluate(STORED) == {"storage": {}, "cookies": ""}
    rows = wait_rows(collector, "/denied/page", 3, sent=recorder.hits)
    assert [(row["mode"], row["visitor"]) for row in rows] == [("denied", None)] * 3


def test_denied_removes_an_id_stored_before(
    page: Page, page_server: PageServer, collector: LiveServer
) -> None:
    url = page_server.add("/denied/after-granted", page_html(snippet_tag(collector.port)))
    recorder = Recorder(page)
    page.goto(url)
    recorder.wait_for_count(1)
    assert set(page.evaluate(STORED)["storage"]) == {"mesure_id"}
    page.evaluate("mesure('consent', 'denied')")
    assert page.evaluate(STORED) == {"storage": {}, "cookies": ""}


def test_a_cookie_keeps_the_id_where_local_storage_is_blocked(
    page: Page, page_server: PageServer, collector: LiveServer
) -> None:
    url = page_server.add("/cookie/page", page_html(snippet_tag(collector.port)))
    page.add_init_script(BLOCK_STORAGE)
    recorder = Recorder(page)
    page.goto(url)
    recorder.wait_for_count(1)
    page.reload()
    recorder.wait_for_count(2)
    first, second = recorder.hits
    assert first["cid"] == second["cid"]
    cookies = {c["name"]: c for c in page.context.cookies()}
    assert set(cookies) == {"mesure_id"}
    assert cookies["mesure_id"]["value"].startswith(first["cid"] + ".")
    # The cookie expires with the id: 13 months after its creation.
    created = int(cookies["mesure_id"]["value"].rsplit(".", 1)[1]) / 1000
    assert abs(cookies["mesure_id"]["expires"] - (created + LIFETIME.total_seconds())) < 60
    page.evaluate("mesure('consent', 'denied')")
    assert page.context.cookies() == []
