"""The opt-out page of the collector, linked from the site and framed by it."""

from __future__ import annotations

import re
from urllib.parse import quote

import httpx
from playwright.sync_api import Page, expect

from collector import auth
from collector.storage.sqlite.accounts import auth_database
from tests.snippet.harness import (
    COLLECTOR_HOST,
    PageServer,
    Recorder,
    page_html,
    snippet_tag,
    wait_rows,
)
from tests.support import LiveServer

STORED = "() => ({storage: {...localStorage}, cookies: document.cookie})"
#: The page's opt-out flag: a secret of 4 random 32-bit numbers, new at each opt-out.
SECRET = re.compile(r"[0-9]+(-[0-9]+){3}")


def test_linked_optout_page_sets_the_flag_on_the_site_and_can_be_undone(
    page: Page, page_server: PageServer, collector: LiveServer
) -> None:
    url = page_server.add("/linked/privacy", "")
    optout = f"http://{COLLECTOR_HOST}:{collector.port}/optout?site=example&return={quote(url)}"
    page_server.add(
        "/linked/privacy",
        page_html(snippet_tag(collector.port), f'<a id="manage" href="{optout}">Opt out</a>'),
    )
    recorder = Recorder(page)
    page.goto(url)
    recorder.wait_for_count(1)
    assert set(page.evaluate(STORED)["storage"]) == {"mesure_id"}

    page.click("#manage")
    # Not opted out: the page has nothing to lift, so it offers no way to opt back in.
    expect(page.locator("#optin")).to_be_hidden()
    with page.expect_request("**/optout/choose") as posted:
        page.click("#optout")
    assert posted.value.method == "POST"
    # Back on the site: the snippet consumed the marker, kept the flag, removed the id.
    page.wait_for_url(url)
    assert page.evaluate("location.hash") == ""
    secret = page.evaluate(STORED)["storage"]["mesure_optout"]
    assert SECRET.fullmatch(secret)
    assert page.evaluate(STORED) == {"storage": {"mesure_optout": secret}, "cookies": ""}
    page.evaluate("mesure('consent', 'granted'); mesure('event', 'ignored')")
    page.reload()
    recorder.quiet()
    # The link to the collector's page was an outbound click (and leaving the page sent its
    # engagement time); nothing after the opt-out.
    sent = len(recorder.hits)
    assert [name for name in recorder.names() if name != "engagement"] == ["pageview", "outbound"]

    page.click("#manage")
    # The snippet handed its secret to the page in the fragment of the link, which no server
    # sees; the form sends it back.
    page.wait_for_url(lambda address: address.endswith("#" + secret))
    with page.expect_request("**/optout/choose") as posted:
        page.click("#optin")
    assert f"secret={secret}" in (posted.value.post_data or "")
    page.wait_for_url(url)
    recorder.wait_for_count(sent + 1)
    assert recorder.names()[sent:] == ["pageview"]
    assert "mesure_optout" not in page.evaluate(STORED)["storage"]
    rows = wait_rows(collector, "/linked/privacy", 2, name="pageview", sent=recorder.hits)
    assert [row["mode"] for row in rows] == ["exempt", "exempt"]


def test_framed_optout_page_talks_to_the_snippet_of_the_embedding_page(
    page: Page, page_server: PageServer, collector: LiveServer
) -> None:
    frame_src = f"http://{COLLECTOR_HOST}:{collector.port}/optout?site=example"
    url = page_server.add(
        "/framed/privacy",
        page_html(snippet_tag(collector.port), f'<iframe id="choice" src="{frame_src}"></iframe>'),
    )
    recorder = Recorder(page)
    page.goto(url)
    recorder.wait_for_count(1)
    frame = page.frame_locator("#choice")
    # The page shows the client id the snippet keeps, for access and erasure requests.
    client_id = page.evaluate(STORED)["storage"]["mesure_id"].split(".")[0]
    expect(frame.locator("#client-id code")).to_have_text(client_id)
    expect(frame.locator("#status")).to_have_text("")
    frame.locator("#optout").click()
    expect(frame.locator("#status")).to_have_text("You are opted out: this browser sends nothing.")
    expect(frame.locator("#client-id")).to_be_hidden()  # opting out deleted the id
    # The frame did not navigate: the choice went to the snippet by postMessage.
    assert page.frames[1].url == frame_src
    stored = page.evaluate(STORED)
    assert SECRET.fullmatch(stored["storage"]["mesure_optout"])
    assert stored == {
        "storage": {"mesure_optout": stored["storage"]["mesure_optout"]},
        "cookies": "",
    }
    page.evaluate("mesure('event', 'ignored'); history.pushState({}, '', '/framed/other')")
    recorder.quiet()
    assert recorder.names() == ["pageview"]

    frame.locator("#optin").click()
    expect(frame.locator("#status")).to_have_text("This browser is measured again.")
    page.evaluate("mesure('event', '404')")
    recorder.wait_for_count(2)
    assert recorder.names() == ["pageview", "404"]
    assert recorder.console_errors == []
    assert recorder.page_errors == []
    # The id the page showed is what an erasure request needs: it finds the first pageview.
    _erase_by_client_id(collector, client_id, expect_found=1)


def _erase_by_client_id(collector: LiveServer, client_id: str, *, expect_found: int) -> None:
    with auth_database(collector.config.database_path) as db:
        token = auth.create_token(db, "dpo", "dpo", [], 0)[1]
    erased = httpx.post(
        f"{collector.url}/api/v1/privacy/dsar/erase",
        json={"site": "example", "client_id": client_id},
        headers={"authorization": f"Bearer {token}"},
    )
    assert erased.status_code == 200, erased.text
    assert erased.json()["report"]["events_found"] == expect_found
    assert erased.json()["report"]["events_after"] == 0


def test_messages_from_other_origins_are_ignored(
    page: Page, page_server: PageServer, collector: LiveServer
) -> None:
    url = page_server.add("/framed/forged", page_html(snippet_tag(collector.port)))
    recorder = Recorder(page)
    page.goto(url)
    recorder.wait_for_count(1)
    # The page itself (not the collector's origin) posts an opt-out message: no effect.
    page.evaluate("window.postMessage({mesure: 'optout'}, '*')")
    page.evaluate("mesure('event', '404')")
    recorder.wait_for_count(2)
    assert "mesure_optout" not in page.evaluate(STORED)["storage"]
