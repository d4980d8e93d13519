"""The dashboard's routes: its pages, the login page, the password form and static files.

Anonymous visitors are sent to ``/login`` (303, with ``next``); a role that lacks a page's
permission gets a 403 page. Every response carries :data:`CSP` and its companions.
"""

from __future__ import annotations

import hashlib
from datetime import UTC
from html import escape
from pathlib import Path
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

import sdk_snippet
from collector import auth
from collector.config import Config
from collector.errors import ForbiddenError, LoginThrottledError, UnauthorizedError
from collector.storage import accounts_for
from collector.web.callers import (
    current_principal,
    login_address,
    set_session_cookie,
)
from collector.web.callers import request_now as now_of
from collector.web.dashboard import html
from collector.web.dashboard.pages import PAGES, Page
from collector.web.dashboard.skeletons import Context
from collector.web.http import local_path, read_form

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
STATIC_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
#: Nothing but our own origin; no inline script or style anywhere (charts are SVG elements
#: with presentation attributes, which style-src does not govern).
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}
PASSWORD_MESSAGES = {
    "changed": ("notice", "Your password is changed; other sessions are logged out."),
    "wrong": ("alert", "The current password is wrong."),
    "mismatch": ("alert", "The two new passwords differ."),
    "short": ("alert", f"A password has at least {auth.MIN_PASSWORD_LENGTH} characters."),
    "throttled": ("alert", "Too many failed attempts; try again in a few minutes."),
}


def _headers(extra: dict[str, str] | None = None) -> dict[str, str]:
    return {**SECURITY_HEADERS, "Cache-Control": "no-store", **(extra or {})}


def _static_files() -> dict[str, tuple[bytes, str, str]]:
    """``name → (bytes, media type, ETag)`` of the files shipped in ``collector/web/static``."""
    found: dict[str, tuple[bytes, str, str]] = {}
    for path in sorted(STATIC_DIR.iterdir()):
        media = STATIC_TYPES.get(path.suffix)
        if media is not None and path.is_file():
            data = path.read_bytes()
            found[path.name] = (data, media, '"' + hashlib.sha256(data).hexdigest()[:32] + '"')
    return found


def embed_tags(config: Config, sites: list[str]) -> dict[str, str]:
    tags: dict[str, str] = {}
    for site in sites:
        try:
            tags[site] = sdk_snippet.embed_tag(site, config.server.origin)
        except FileNotFoundError:
            tags[site] = f"(run `mesure snippet --site {site}` once the snippet is built)"
    return tags


def routes(config: Config) -> list[BaseRoute]:
    static = _static_files()

    async def caller(request: Request) -> auth.Principal | None:
        try:
            return await current_principal(request, config)
        except UnauthorizedError:
            return None

    def to_login(request: Request) -> Response:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse("/login?" + urlencode({"next": target}), 303, headers=_headers())

    def page_route(page: Page) -> Route:
        async def endpoint(request: Request) -> Response:
            principal = await caller(request)
            if principal is None:
                return to_login(request)
            sites = principal.visible_sites(config)
            state = html.state_from(
                {
                    k: request.query_params.getlist(k)
                    for k in (*html.STATE_PARAMS, *html.PAGE_PARAMS)
                }
            )
            csrf = auth.csrf_token(principal.session) if principal.session else ""
            ctx = Context(
                principal=principal,
                sites=tuple(sites),
                csrf=csrf,
                embed_tags=embed_tags(config, [state.site] if state.site in sites else sites),
            )
            status = 200
            if not principal.may(page.permission):
                body, status = html.forbidden_body(page), 403
            else:
                body = html.page_body(page, ctx)
                if page.id == "account":
                    body = _password_notice(request.query_params.get("msg")) + body
            shown = state.site if state.site in sites else (sites[0] if sites else None)
            site = config.site(shown) if shown else None
            moment = now_of(request).astimezone(site.zone if site else UTC)
            text = html.shell(
                page,
                principal,
                sites=sites,
                state=state,
                csrf=csrf,
                body=body,
                now_local=moment.strftime("%Y-%m-%dT%H:%M"),
            )
            return HTMLResponse(text, status_code=status, headers=_headers())

        return Route(
            page.path,
            endpoint,
            methods=["GET"],
            name=f"dashboard-{page.id}",
            include_in_schema=False,
        )

    async def login_form(request: Request) -> Response:
        query = request.query_params
        text = html.login_page(
            next_path=local_path(query.get("next", "/")),
            error=query.get("error"),
            retry=query.get("retry") if (query.get("retry") or "").isdigit() else None,
            out=query.get("out") == "1",
        )
        return HTMLResponse(text, headers=_headers())

    async def change_password(request: Request) -> Response:
        principal = await current_principal(request, config)
        fields = await read_form(request)
        if principal.session is None or not auth.csrf_valid(
            principal.session, fields.get("csrf_token")
        ):
            raise ForbiddenError("missing or invalid CSRF token", field="csrf_token")
        new, again = fields.get("new", ""), fields.get("again", "")
        if new != again:
            return _back("mismatch")
        if len(new) < auth.MIN_PASSWORD_LENGTH:
            return _back("short")
        moment = int(now_of(request).timestamp() * 1000)
        address = login_address(request)

        def change() -> str | None:
            with auth.hashing_slot(), accounts_for(config) as db:
                return auth.change_password(
                    db, principal.name, fields.get("current", ""), new, moment, address=address
                )

        try:
            session = await run_in_threadpool(change)
        except LoginThrottledError:
            return _back("throttled")
        if session is None:
            return _back("wrong")
        response = _back("changed")
        set_session_cookie(response, session, request, config)
        return response

    async def static_file(request: Request) -> Response:
        found = static.get(request.path_params["name"])
        if found is None:
            return Response("not found", status_code=404, headers=SECURITY_HEADERS)
        data, media, etag = found
        # Revalidated on every load (cheap 304s), so a new release is picked up at once.
        headers = {**SECURITY_HEADERS, "ETag": etag, "Cache-Control": "no-cache"}
        if request.headers.get("if-none-match") == etag:
            return Response(status_code=304, headers=headers)
        return Response(data, media_type=media, headers=headers)

    handlers: list[BaseRoute] = [page_route(page) for page in PAGES]
    handlers += [
        Route("/login", login_form, methods=["GET"], include_in_schema=False),
        Route("/account/password", change_password, methods=["POST"], include_in_schema=False),
        Route("/static/{name}", static_file, methods=["GET"], include_in_schema=False),
    ]
    return handlers


def _back(message: str) -> Response:
    return RedirectResponse(f"/account?msg={message}", 303, headers=_headers())


def _password_notice(message: str | None) -> str:
    if message not in PASSWORD_MESSAGES:
        return ""
    kind, text = PASSWORD_MESSAGES[message]
    role = "alert" if kind == "alert" else "status"
    return f'<p class="{kind}" role="{role}">{escape(text)}</p>'
