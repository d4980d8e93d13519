"""Browser-test plumbing: a server for the fixture pages and a recorder of the hits a page sends.

Pages are served from ``http://example.com:PORT`` (Chromium maps the name to 127.0.0.1), a
different origin from the collector at ``http://stats.example.com:PORT``, so CORS is real.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from playwright.sync_api import ConsoleMessage, Page, Request

from tests.support import LiveServer

SITE_HOST = "example.com"
COLLECTOR_HOST = "stats.example.com"


def _consent_wait_ms() -> float:
    source = Path(__file__).resolve().parents[2] / "sdk_snippet" / "src" / "m.js"
    found = re.search(r"data\.consentWait \|\| ([0-9][0-9.e]*)", source.read_text())
    assert found, f"{source}: the default of data-consent-wait is no longer where it was"
    return float(found[1])


#: The snippet's own consent wait (the default of data-consent-wait): the longest it holds the
#: first pageview back while a CMP has not answered. Read from the source, so the checks below
#: follow it.
CONSENT_WAIT_MS = _consent_wait_ms()
#: How long a test lets the page run before it asserts that a hit was *not* sent: past the
#: consent wait, or a hit that it held back would be sent after the check. Bounded; never an
#: assertion on time.
QUIET_MS = CONSENT_WAIT_MS + 250
#: Upper bound for a hit that must arrive.
ARRIVAL_MS = 5000


class PageServer:
    """Serves HTML registered by the tests; any path not registered answers 404."""

    def __init__(self) -> None:
        self._pages: dict[str, tuple[str, bytes]] = {}
        pages = self._pages

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                entry = pages.get(self.path.split("?")[0])
                if self.path == "/favicon.ico":
                    self.send_response(204)
                    self.end_headers()
                    return
                if entry is None:
                    self.send_error(404)
                    return
                content_type, body = entry
                self.send_response(200)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def add(self, path: str, html: str, content_type: str = "text/html; charset=utf-8") -> str:
        """Register ``html`` at ``path`` and return its URL on the site's origin."""
        self._pages[path] = (content_type, html.encode("utf-8"))
        return f"http://{SITE_HOST}:{self.port}{path}"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def snippet_tag(collector_port: int, site: str = "example", **attributes: str) -> str:
    """The embed tag, loading ``m.js`` from the collector; automation is allowed for the tests."""
    extra = "".join(
        f' data-{name.replace("_", "-")}="{value}"'
        if value != ""
        else f" data-{name.replace('_', '-')}"
        for name, value in attributes.items()
    )
    return (
        f'<script defer src="http://{COLLECTOR_HOST}:{collector_port}/m.js" '
        f'data-site="{site}" data-allow-automation{extra}></script>'
    )


def page_html(head: str = "", body: str = "", title: str = "Test page") -> str:
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title>{head}</head>"
        f"<body>{body}</body></html>"
    )


class Recorder:
    """What a page sent to ``/api/hit`` and what it logged, seen from the browser."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.hits: list[dict[str, Any]] = []
        self.console_errors: list[str] = []
        self.page_errors: list[str] = []
        page.on("request", self._on_request)
        page.on("console", self._on_console)
        page.on("pageerror", lambda error: self.page_errors.append(str(error)))

    def _on_request(self, request: Request) -> None:
        if request.method == "POST" and request.url.endswith("/api/hit"):
            self.hits.append(json.loads(request.post_data or "null"))

    def _on_console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.console_errors.append(message.text)

    def names(self) -> list[str]:
        return [hit["name"] for hit in self.hits]

    def wait_for(self, predicate: Callable[[list[dict[str, Any]]], bool], what: str) -> None:
        """Wait (bounded) until ``predicate(hits)`` holds, letting the page run meanwhile."""
        waited = 0
        while not predicate(self.hits):
            if waited >= ARRIVAL_MS:
                raise AssertionError(f"{what}: not sent; hits sent: {self.hits}")
            self.page.wait_for_timeout(25)
            waited += 25

    def wait_for_count(self, count: int) -> list[dict[str, Any]]:
        self.wait_for(lambda hits: len(hits) >= count, f"{count} hit(s)")
        return self.hits

    def quiet(self) -> None:
        """Let the page run for QUIET_MS after the test's last action, so that hits that must
        not be sent would have been, and a count of what was sent is complete."""
        self.page.wait_for_timeout(QUIET_MS)

    def nothing_sent_or_stored(self, server: LiveServer, *paths: str) -> None:
        """Assert, once the page ran for QUIET_MS, that it sent no hit and that ``server``
        stored none at ``paths`` (exactly these: the collector is shared by the tests)."""
        self.quiet()
        assert self.hits == [], f"sent: {self.hits}"
        stored = stored_rows(server, paths)
        assert stored == [], f"stored: {stored}"


def stored_rows(
    server: LiveServer, paths: str | tuple[str, ...], name: str | None = None
) -> list[dict[str, Any]]:
    """The rows stored at exactly ``paths`` (named ``name`` if given). Never a prefix: the
    browser tests share one collector, and a prefix of one test's path may begin another's."""
    wanted = {paths} if isinstance(paths, str) else set(paths)
    return [row for row in server.events() if row["path"] in wanted and name in (None, row["name"])]


def wait_rows(
    server: LiveServer,
    paths: str | tuple[str, ...],
    count: int,
    name: str | None = None,
    sent: list[dict[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """:func:`stored_rows` once there are ``count`` of them; in the order the page ``sent``
    them when given.

    A 202 means committed, but the test may look before the response arrived: wait, bounded.
    """
    deadline = time.monotonic() + ARRIVAL_MS / 1000
    while True:
        rows = stored_rows(server, paths, name)
        if len(rows) >= count or time.monotonic() > deadline:
            return rows if sent is None else in_sent_order(rows, sent)
        time.sleep(0.02)


def in_sent_order(rows: list[dict[str, Any]], sent: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``rows`` reordered to follow the hits as the page sent them.

    Hits leave as concurrent requests and the collector stores them as they arrive, which is
    not always the order they were sent in. Each sent hit takes the first stored row of its
    name whose kept properties it carries, preferring one of the same mode (the collector may
    lower a mode); rows that match no sent hit keep their stored order, at the end.
    """
    left = list(rows)
    ordered: list[dict[str, Any]] = []
    for hit in sent:
        fits = [row for row in left if _stored_from(row, hit)]
        same_mode = [row for row in fits if row["mode"] == hit.get("mode")]
        if fits:
            row = (same_mode or fits)[0]
            left.remove(row)
            ordered.append(row)
    return ordered + left


def _stored_from(row: dict[str, Any], hit: dict[str, Any]) -> bool:
    if row["name"] != hit.get("name"):
        return False
    kept = row.get("props") or {}
    given = hit.get("props") or {}
    return all(key in given and given[key] == value for key, value in kept.items())
