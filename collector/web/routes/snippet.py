"""The routes that serve the tracker (``/m.js``) and the visitor opt-out page (``/optout``).

The opt-out page lives on the collector's origin, so it cannot touch the site's storage itself.
It hands the visitor's choice to the snippet running on the site, which keeps the flag:

- framed by the site (``<iframe src="https://stats.example.eu/optout?site=example">``), its
  script posts ``{"mesure": "optout"|"optin"}`` to the parent window after the visitor's own
  click (``isTrusted``); the snippet accepts it only from the collector's origin and answers
  ``{"mesure": true|false, "id": …}``: whether the flag is stored, and the client id it keeps,
  which the page shows so that the visitor can ask for access or erasure (``{"mesureId": 1}``
  asks for both without changing anything, as the page does when it loads);
- linked, its form posts to ``/optout/choose``, which redirects back to the site (the ``return``
  URL when its hostname belongs to the site, else the site's first hostname) with
  ``#mesure-optout``, or with ``#mesure-SECRET`` to opt back in. The secret is the snippet's flag
  itself, random: the snippet put it in the fragment of the site's link to this page, the page's
  script copies it into the form, and the snippet lifts the flag only for that exact value. So
  only a visitor who came from the site, in the browser that opted out, and clicked here opts
  back in; a link that anyone else crafts (``#mesure-optin``, a forged form) can only opt out.

The page runs no inline script (its script is ``/optout.js``) under a strict Content Security
Policy whose ``frame-ancestors`` and ``form-action`` list the site's hostnames.
"""

from __future__ import annotations

import base64
import hashlib
import html
import re
from urllib.parse import urlsplit

import msgspec
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

import sdk_snippet
from collector.config import Config, SiteConfig
from collector.errors import ForbiddenError
from collector.web.http import read_fields

#: Browsers keep the tracker a week, then revalidate it cheaply with its ETag.
SCRIPT_CACHE_CONTROL = "public, max-age=604800, stale-while-revalidate=86400"
CHOICES = ("optout", "optin")
#: The snippet's opt-out secret: 4 random 32-bit numbers joined by ``-``. Only such a value is
#: sent back: digits keep it apart from the flags a link could name (``api``, the older ``page``).
SECRET = re.compile(r"[0-9]{1,10}(?:-[0-9]{1,10}){3}")


class ChoiceIn(msgspec.Struct, kw_only=True):
    """The opt-out page's form: its site, the choice, where to go back, the snippet's secret."""

    site: str = ""
    choice: str = ""
    back: str = ""
    secret: str = ""


_choice_decoder = msgspec.json.Decoder(ChoiceIn)

_STYLE = (
    "body{font:16px/1.5 system-ui,sans-serif;max-width:36em;margin:1em auto;padding:0 1em;"
    "color:#222}button{font:inherit;margin:.3em .5em .3em 0;padding:.4em .9em;"
    "border:1px solid #555;border-radius:4px;color:inherit;background:none;cursor:pointer}"
    "#status:empty{display:none}#status{font-weight:bold}"
)
_STYLE_HASH = "sha256-" + base64.b64encode(hashlib.sha256(_STYLE.encode()).digest()).decode()

# Linked: the form carries the snippet's secret, from the fragment (which no server sees) of the
# site's link. Framed: send the choice to the embedding snippet instead of posting the form, and
# show the state it answers with. Only the parent's answer counts.
OPTOUT_SCRIPT = """\
(() => {
  const status = document.getElementById('status');
  const secret = document.getElementById('secret');
  const optin = document.getElementById('optin');
  if (window.parent === window) {
    const hash = location.hash.slice(1);
    secret.value = /^[0-9-]+$/.test(hash) ? hash : '';
    // Without the secret the site's snippet would not lift its flag: no button that does nothing.
    optin.hidden = !secret.value;
    return;
  }
  optin.hidden = false;
  let chosen = false;
  for (const button of document.querySelectorAll('button[name=choice]')) {
    button.addEventListener('click', (event) => {
      event.preventDefault();
      // Only the visitor's own click counts, not a script's click().
      if (!event.isTrusted) return;
      chosen = true;
      window.parent.postMessage({ mesure: button.value }, '*');
    });
  }
  const id = document.getElementById('client-id');
  let answered = false;
  window.addEventListener('message', (event) => {
    const answer = event.source === window.parent && event.data;
    const state = answer && answer.mesure;
    if (state === true) status.textContent = status.dataset.optout;
    if (state === false && chosen) status.textContent = status.dataset.optin;
    if (state === true || state === false) {
      answered = true;
      id.querySelector('code').textContent = answer.id || '';
      id.hidden = !answer.id;
    }
  });
  // Ask the site's snippet for the state and the client id it keeps (answered to us alone);
  // again for a few seconds, in case the snippet (a deferred script) is not running yet.
  const ask = () => window.parent.postMessage({ mesureId: 1 }, '*');
  ask();
  let tries = 0;
  const timer = setInterval(() => (answered || ++tries > 10 ? clearInterval(timer) : ask()), 300);
})();
"""


# The page is never cached but its script is, for an hour: a new page must not run an older script.
_SCRIPT_SRC = "/optout.js?v=" + hashlib.sha256(OPTOUT_SCRIPT.encode()).hexdigest()[:12]


def routes(config: Config) -> list[Route]:
    """The snippet's routes, to be mounted at the root of the collector."""

    async def script(request: Request) -> Response:
        return script_response(request.headers.get("if-none-match"))

    async def optout_script(request: Request) -> Response:
        return Response(
            OPTOUT_SCRIPT,
            media_type="application/javascript",
            headers={"Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"},
        )

    async def optout_page(request: Request) -> Response:
        site = config.site(request.query_params.get("site", ""))
        if site is None:
            return PlainTextResponse("unknown site", status_code=404)
        back = return_url(site, request.query_params.get("return"), request.headers.get("referer"))
        return Response(
            render_optout_page(site, back),
            media_type="text/html",
            headers={
                "Content-Security-Policy": optout_csp(site),
                "Cache-Control": "no-store",
                # Not no-referrer: that would make the form's own post carry `Origin: null`.
                "Referrer-Policy": "same-origin",
                "X-Content-Type-Options": "nosniff",
            },
        )

    async def choose(request: Request) -> Response:
        _check_own_page(request)
        fields = await read_fields(request, _choice_decoder, "{site, choice, back, secret}")
        site = config.site(fields.get("site", ""))
        choice = fields.get("choice", "")
        if site is None or choice not in CHOICES:
            return PlainTextResponse("unknown site or choice", status_code=404)
        back = return_url(site, fields.get("back"), None).split("#")[0]
        secret = fields.get("secret", "")
        if choice == "optout":
            back += "#mesure-optout"
        elif SECRET.fullmatch(secret):
            back += "#mesure-" + secret
        return RedirectResponse(back, status_code=303)

    return [
        Route("/m.js", script, methods=["GET", "HEAD"]),
        Route("/optout", optout_page, methods=["GET"]),
        Route("/optout/choose", choose, methods=["POST"]),
        Route("/optout.js", optout_script, methods=["GET"]),
    ]


def _check_own_page(request: Request) -> None:
    """Only the opt-out page's own form may post a choice: a browser says where a post comes
    from (``Sec-Fetch-Site``, else ``Origin``). A client that sends neither is no browser, so
    no visitor's choice that it could forge; it only gets the redirect it could write itself."""
    fetch_site = request.headers.get("sec-fetch-site")
    origin = request.headers.get("origin")
    host = request.headers.get("host", "").lower()
    if fetch_site is not None:
        allowed = fetch_site == "same-origin"
    else:
        allowed = origin is None or urlsplit(origin).netloc.lower() == host
    if not allowed:
        raise ForbiddenError("a choice is posted from the opt-out page only", field="origin")


def script_response(if_none_match: str | None) -> Response:
    """``/m.js``: the built tracker, or 304 when the client already holds this version."""
    etag = sdk_snippet.etag()
    headers = {
        "ETag": etag,
        "Cache-Control": SCRIPT_CACHE_CONTROL,
        "Access-Control-Allow-Origin": "*",
        "Cross-Origin-Resource-Policy": "cross-origin",
        "X-Content-Type-Options": "nosniff",
    }
    if if_none_match and _etag_matches(if_none_match, etag):
        return Response(status_code=304, headers=headers)
    return Response(
        sdk_snippet.script_bytes(), media_type="application/javascript", headers=headers
    )


def _etag_matches(if_none_match: str, etag: str) -> bool:
    # RFC 9110: a list of (possibly weak) tags, or "*"; the comparison is weak.
    tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
    return "*" in tags or etag in tags


def hostname_allowed(site: SiteConfig, hostname: str) -> bool:
    """Whether ``hostname`` is one of the site's names (``*.example.com`` covers subdomains)."""
    hostname = hostname.lower()
    for allowed in site.hostnames:
        if allowed.startswith("*.") and hostname.endswith(allowed[1:]):
            return True
        if hostname == allowed:
            return True
    return False


def return_url(site: SiteConfig, requested: str | None, referer: str | None) -> str:
    """Where the linked opt-out page sends the visitor back: never a host outside the site."""
    for candidate in (requested, referer):
        if not candidate:
            continue
        parts = urlsplit(candidate)
        if parts.scheme in ("http", "https") and hostname_allowed(site, parts.hostname or ""):
            return candidate
    exact = [name for name in site.hostnames if not name.startswith("*.")]
    return f"https://{exact[0] if exact else site.hostnames[0][2:]}/"


def optout_csp(site: SiteConfig) -> str:
    """No inline script, nothing loaded from elsewhere; only the site may frame the page, and
    its form goes nowhere but here and (by the redirect) back to the site."""
    hosts = " ".join(f"{name}:*" for name in site.hostnames)
    return (
        "default-src 'none'; script-src 'self'; "
        f"style-src '{_STYLE_HASH}'; form-action 'self' {hosts}; base-uri 'none'; "
        f"frame-ancestors 'self' {hosts}"
    )


def render_optout_page(site: SiteConfig, back: str) -> str:
    """The opt-out page of ``site``: two choices, as one form that works framed and linked."""
    name = html.escape(site.id)
    site_value = html.escape(site.id, quote=True)
    back_value = html.escape(back, quote=True)
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Audience measurement on {name}</title>
<style>{_STYLE}</style>
</head>
<body>
<h1>Audience measurement on {name}</h1>
<p>This site counts its visits with Mesure, a self-hosted analytics service: the data stays
with the site, and identifiers are stored only as keyed hashes.</p>
<p>You can object: this browser then keeps only a flag that says so, and sends nothing more
to the site's statistics. Clearing this site's data in your browser removes the flag.</p>
<p id="status" role="status" data-optout="You are opted out: this browser sends nothing."
 data-optin="This browser is measured again."></p>
<p id="client-id" hidden>This browser's id for this site is <code></code>. To see or erase
what was measured under it, send it to the site with your request. Note it before you opt out:
opting out deletes it.</p>
<form method="post" action="/optout/choose">
<input type="hidden" name="site" value="{site_value}">
<input type="hidden" name="back" value="{back_value}">
<input type="hidden" name="secret" id="secret" value="">
<button id="optout" name="choice" value="optout">Opt out</button>
<button id="optin" name="choice" value="optin" hidden>Measure me again</button>
</form>
<script src="{_SCRIPT_SRC}"></script>
</body>
</html>
"""
