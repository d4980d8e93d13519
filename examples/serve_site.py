"""Serve the example site, with Mesure's snippet embedded, against a running collector.

    python examples/serve_site.py --collector http://127.0.0.1:8000
    python examples/serve_site.py --collector http://127.0.0.1:8000 --example tcf
    python examples/serve_site.py --collector http://127.0.0.1:8000 --example consent-mode
    python examples/serve_site.py --collector http://127.0.0.1:8000 --example banner

The pages live in ``examples/site/``; each example adds its consent integration from
``examples/consent/<example>.html`` (the part before ``<!-- mesure:split -->`` goes into the
``<head>`` before the snippet, the rest at the end of the ``<body>``). ``mesure serve`` creates a
demo site called ``localhost`` that accepts ``localhost`` and ``127.0.0.1``: the default here.
"""

from __future__ import annotations

import argparse
import html
import mimetypes
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

HERE = Path(__file__).resolve().parent
# Runnable from a checkout as well as with Mesure installed (tests/setup.sh: into `.venv`).
sys.path.insert(1, str(HERE.parent))
from tc_string import encode_tc_string  # noqa: E402

import sdk_snippet  # noqa: E402

SITE_DIR = HERE / "site"
CONSENT_DIR = HERE / "consent"
EXAMPLES = ("site", "tcf", "consent-mode", "banner")
SPLIT = "<!-- mesure:split -->"
QUEUE_STUB = (
    "<script>window.mesure = window.mesure || function () {"
    " (mesure.q = mesure.q || []).push(arguments); };</script>"
)


def snippet_tag(collector: str, site: str, *, allow_automation: bool = False) -> str:
    """The embed tag, with its integrity hash; local pages are measured (``data-allow-local``)."""
    flags = " data-allow-local" + (" data-allow-automation" if allow_automation else "")
    return (
        f'<script defer src="{html.escape(collector)}/m.js" data-site="{html.escape(site)}"'
        f'{flags} integrity="{sdk_snippet.sri_hash()}" crossorigin="anonymous"></script>'
    )


def consent_parts(example: str) -> tuple[str, str]:
    """The example's consent integration: what goes in the head, what goes in the body."""
    if example == "site":
        return "", ""
    head, _, body = (CONSENT_DIR / f"{example}.html").read_text(encoding="utf-8").partition(SPLIT)
    return head, body


def render(page: str, *, head: str, body: str, collector: str, site: str, origin: str) -> str:
    replacements = {
        "<!-- mesure:head -->": head,
        "<!-- mesure:body -->": body,
        "{{collector}}": html.escape(collector),
        "{{site}}": quote(site),
        "{{page}}": quote(origin + "/privacy.html", safe=""),
        # The stand-in CMP of the TCF example: all purposes, or purpose 1 only.
        "{{tc_given}}": encode_tc_string(range(1, 11)),
        "{{tc_refused}}": encode_tc_string([1]),
    }
    for marker, value in replacements.items():
        page = page.replace(marker, value)
    return page


def make_handler(
    example: str, collector: str, site: str, allow_automation: bool
) -> type[BaseHTTPRequestHandler]:
    consent_head, consent_body = consent_parts(example)
    head = (
        QUEUE_STUB + consent_head + snippet_tag(collector, site, allow_automation=allow_automation)
    )

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = urlsplit(self.path).path
            file = (SITE_DIR / (path.lstrip("/") or "index.html")).resolve()
            if not file.is_relative_to(SITE_DIR) or not file.is_file():
                self.send_error(404)
                return
            body = file.read_bytes()
            content_type = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
            if file.suffix == ".html":
                origin = f"http://{self.headers.get('Host', 'localhost')}"
                text = render(
                    body.decode("utf-8"),
                    head=head,
                    body=consent_body,
                    collector=collector,
                    site=site,
                    origin=origin,
                )
                body = text.encode("utf-8")
                content_type = "text/html; charset=utf-8"
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            sys.stderr.write(f"{self.address_string()} {format % args}\n")

    return Handler


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--collector", required=True, help="origin of a running collector")
    parser.add_argument("--example", choices=EXAMPLES, default="site")
    parser.add_argument("--site", default="localhost", help="site id in the collector's config")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080, help="0 picks a free port")
    parser.add_argument(
        "--allow-automation",
        action="store_true",
        help="measure automated browsers too (the browser tests use it)",
    )
    args = parser.parse_args(argv)
    collector = args.collector.rstrip("/")
    handler = make_handler(args.example, collector, args.site, args.allow_automation)
    server = ThreadingHTTPServer((args.host, args.port), handler)
    host, port = server.server_address[:2]
    print(f"Serving the {args.example} example on http://{host}:{port}/", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
