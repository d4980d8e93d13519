"""Issue 13, finding 1: nobody but the visitor, on the collector's opt-out page, lifts an opt-out.

Each test opts a visitor out, then replays what a third party can do: send them through a link
it crafted (to the site with a ``#mesure-…`` marker, or to the collector's ``/optout/choose``),
post the choice from its own page, or drive the framed page by script. Afterwards the visitor
must still be opted out: the flag kept, nothing sent and nothing stored. Each waits longer than
the snippet's own consent wait (1,000 ms) before it asserts that nothing was sent, and reads only
the rows of its own paths.
"""

from __future__ import annotations

import html
from urllib.parse import urlencode

import pytest
from playwright.sync_api import Page, expect

from tests.snippet.harness import (
    COLLECTOR_HOST,
    QUIET_MS,
    PageServer,
    Recorder,
    page_html,
    snippet_tag,
    stored_rows,
)
from tests.support import LiveServer

OPTED_OUT = "You are opted out: this browser sends nothing."


def _opt_out(
    page: Page, page_server: PageServer, collector: LiveServer, prefix: str, how: str
) -> tuple[Recorder, str]:
    """Opt the visitor out on ``prefix``/privacy, on the framed page or through the API."""
    frame_src = f"http://{COLLECTOR_HOST}:{collector.port}/optout?site=example"
    frame = f'<iframe id="choice" src="{frame_src}"></iframe>' if how == "framed" else ""
    url = page_server.add(f"{prefix}/privacy", page_html(snippet_tag(collector.port), frame))
    recorder = Recorder(page)
    page.goto(url)
    recorder.wait_for_count(1)
    if how == "framed":
        page.frame_locator("#choice").locator("#optout").click()
        expect(page.frame_locator("#choice").locator("#status")).to_have_text(OPTED_OUT)
    else:
        page.evaluate("mesure('consent', 'optout')")
    flag = page.evaluate("localStorage.getItem('mesure_optout')")
    assert flag
    return recorder, flag


def _attacker_page(page_server: PageServer, path: str, target: str) -> str:
    """A page of another origin (the page server by IP address) with a link to ``target``."""
    page_server.add(path, page_html(body=f'<a id="bait" href="{html.escape(target)}">Win</a>'))
    return f"http://127.0.0.1:{page_server.port}{path}"


def _assert_still_opted_out(
    page: Page, collector: LiveServer, recorder: Recorder, prefix: str, flag: str
) -> None:
    """The flag is the one stored at the opt-out, and nothing was sent or stored since: only the
    privacy page's pageview, before the opt-out. Checked once the page ran past the consent wait
    (QUIET_MS), so that a hit the snippet held back would have been sent."""
    assert QUIET_MS > 1000
    recorder.quiet()
    assert page.evaluate("localStorage.getItem('mesure_optout')") == flag
    assert page.evaluate("localStorage.getItem('mesure_id')") is None
    assert recorder.hits[1:] == [], "hits sent after the opt-out"
    assert len(stored_rows(collector, f"{prefix}/privacy")) == 1
    assert stored_rows(collector, f"{prefix}/landing") == []


@pytest.mark.parametrize(
    ("how", "marker"),
    [
        ("framed", "#mesure-optin"),
        ("framed", "#mesure-anything"),
        # The value an older tracker stored for the opt-out page: a link may guess it.
        ("framed", "#mesure-optin-page"),
        ("framed", "#mesure-page"),
        ("api", "#mesure-api"),
        # Well formed, as the collector sends back to whoever posts it: not this browser's.
        ("framed", "#mesure-1-2-3-4"),
    ],
    ids=["optin", "anything", "optin-page", "page", "api", "minted"],
)
def test_a_crafted_link_to_the_site_does_not_lift_an_opt_out(
    page: Page, page_server: PageServer, collector: LiveServer, how: str, marker: str
) -> None:
    prefix = f"/attack-link-{how}-{marker[8:]}"
    recorder, flag = _opt_out(page, page_server, collector, prefix, how)
    landing = page_server.add(f"{prefix}/landing", page_html(snippet_tag(collector.port)))
    page.goto(_attacker_page(page_server, f"/elsewhere{prefix}", landing + marker))
    page.click("#bait")
    page.wait_for_url(lambda url: url.startswith(landing))
    # The snippet ran on the landing page: it consumed the marker.
    page.wait_for_function("location.hash === ''")
    _assert_still_opted_out(page, collector, recorder, prefix, flag)


def test_a_crafted_get_of_the_choice_route_does_not_lift_an_opt_out(
    page: Page, page_server: PageServer, collector: LiveServer
) -> None:
    prefix = "/attack-get"
    recorder, flag = _opt_out(page, page_server, collector, prefix, "framed")
    landing = page_server.add(f"{prefix}/landing", page_html(snippet_tag(collector.port)))
    query = urlencode({"site": "example", "choice": "optin", "return": landing})
    choose = f"http://{COLLECTOR_HOST}:{collector.port}/optout/choose?{query}"
    page.goto(_attacker_page(page_server, f"/elsewhere{prefix}", choose))
    page.click("#bait")
    page.wait_for_load_state()
    # Wherever the link led, the visitor then browses the site.
    page.goto(landing)
    _assert_still_opted_out(page, collector, recorder, prefix, flag)


def test_a_click_on_the_framed_page_that_the_visitor_did_not_make_is_ignored(
    page: Page, page_server: PageServer, collector: LiveServer
) -> None:
    prefix = "/attack-untrusted"
    recorder, flag = _opt_out(page, page_server, collector, prefix, "framed")
    frame = page.frames[1]
    frame_url = frame.url
    # A script's click (what an extension or a script injected into the frame could do) is not
    # the visitor's: the page neither tells the snippet nor submits its form.
    frame.evaluate("document.getElementById('optin').click()")
    # Were the visitor measured again, this event would be sent (exempt keeps 404s).
    page.evaluate("mesure('event', '404')")
    _assert_still_opted_out(page, collector, recorder, prefix, flag)
    assert page.frames[1].url == frame_url


def test_a_choice_posted_from_another_site_is_refused(
    page: Page, page_server: PageServer, collector: LiveServer
) -> None:
    prefix = "/attack-post"
    recorder, flag = _opt_out(page, page_server, collector, prefix, "framed")
    landing = page_server.add(f"{prefix}/landing", page_html(snippet_tag(collector.port)))
    fields = {"site": "example", "choice": "optin", "back": landing, "secret": "1-2-3-4"}
    inputs = "".join(
        f'<input type="hidden" name="{name}" value="{html.escape(value)}">'
        for name, value in fields.items()
    )
    action = f"http://{COLLECTOR_HOST}:{collector.port}/optout/choose"
    form = f'<form method="post" action="{action}">{inputs}<button id="bait">Win</button></form>'
    page_server.add(f"/elsewhere{prefix}", page_html(body=form))
    page.goto(f"http://127.0.0.1:{page_server.port}/elsewhere{prefix}")
    with page.expect_response(action) as posted:
        page.click("#bait")
    assert posted.value.status == 403
    page.goto(landing)
    _assert_still_opted_out(page, collector, recorder, prefix, flag)
