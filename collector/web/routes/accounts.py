"""Accounts over HTTP: ``POST /login``, ``POST /logout`` and ``POST /api/v1/account/password``.

Each takes a JSON body (API clients) or a form (the dashboard's pages, which are sent back to a
page instead of getting JSON). A password change checks the current password like a login (a
wrong one counts as a failed attempt, so the route cannot be used to guess faster), needs the
session's CSRF token, ends every session of the account and returns a fresh session cookie and
CSRF token; API tokens have no password: ``403``.
"""

from __future__ import annotations

from urllib.parse import urlencode, urlsplit

import msgspec
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from collector import auth
from collector.audit import AuditLog
from collector.config import Config
from collector.errors import (
    BadRequestError,
    ForbiddenError,
    LoginThrottledError,
    RateLimitedError,
    UnauthorizedError,
)
from collector.storage import accounts_for
from collector.web.callers import (
    check_csrf,
    current_principal,
    login_address,
    request_now,
    set_session_cookie,
)
from collector.web.http import is_form, local_path, read_fields, read_form


class LoginIn(msgspec.Struct, kw_only=True):
    """The JSON login body; missing fields are refused below with the field named."""

    email: str = ""
    password: str = ""


class PasswordIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """The JSON body of a password change; missing passwords are refused with the field named."""

    current_password: str = ""
    new_password: str = ""
    csrf_token: str | None = None


_login_decoder = msgspec.json.Decoder(LoginIn)
_password_decoder = msgspec.json.Decoder(PasswordIn)


def routes(config: Config) -> list[BaseRoute]:
    async def post_login(request: Request) -> Response:
        _check_origin(request)
        fields = await read_fields(request, _login_decoder, "{email, password}")
        email, password = fields.get("email", ""), fields.get("password", "")
        if not email or not password:
            raise BadRequestError("email and password are required", field="email")
        at = request_now(request)
        moment = int(at.timestamp() * 1000)
        address = login_address(request)

        def check() -> str | None:
            with auth.hashing_slot(), accounts_for(config) as db:
                session = auth.login(db, email, password, moment, address=address)
                found = None if session is None else db.user_by_email(auth.normalize_email(email))
            if found is not None:  # logins are audited (issue 6); failures are throttled
                AuditLog(config.audit_path, lambda: at).append(
                    "login", concerns=found.sites or None, user=found.name
                )
            return session

        form = is_form(request)
        try:
            session = await run_in_threadpool(check)
        except LoginThrottledError as exc:
            if form:  # the dashboard's login page says so instead of showing JSON
                return _login_again(fields, "throttled", exc.retry_after)
            raise RateLimitedError(str(exc), retry_after=exc.retry_after) from None
        if session is None:
            if form:
                return _login_again(fields, "invalid", None)
            raise UnauthorizedError("wrong e-mail address or password")
        return _signed_in(request, config, session, fields if form else None)

    async def post_logout(request: Request) -> Response:
        principal = await current_principal(request, config)
        candidate = request.headers.get("x-csrf-token")
        form = is_form(request)
        if candidate is None and form:
            candidate = (await read_form(request)).get("csrf_token")
        check_csrf(principal, candidate)
        if principal.session is not None:
            session = principal.session

            def end() -> None:
                with accounts_for(config) as db:
                    auth.logout(db, session)

            await run_in_threadpool(end)
        # The dashboard's logout button is a form: send the browser back to the login page.
        response = RedirectResponse("/login?out=1", 303) if form else Response(status_code=204)
        response.delete_cookie(auth.SESSION_COOKIE, path="/")
        return response

    async def post_password(request: Request) -> Response:
        principal = await current_principal(request, config)
        fields = await read_fields(request, _password_decoder, "{current_password, new_password}")
        check_csrf(principal, request.headers.get("x-csrf-token") or fields.get("csrf_token"))
        if principal.kind != "user":
            raise ForbiddenError("an API token has no password; log in to change yours")
        current, new = fields.get("current_password", ""), fields.get("new_password", "")
        if not current:
            raise BadRequestError("current_password is required", field="current_password")
        if len(new) < auth.MIN_PASSWORD_LENGTH:
            raise BadRequestError(
                f"a password has at least {auth.MIN_PASSWORD_LENGTH} characters",
                field="new_password",
            )
        moment = int(request_now(request).timestamp() * 1000)
        address = login_address(request)

        def change() -> str | None:
            with auth.hashing_slot(), accounts_for(config) as db:
                return auth.change_password(
                    db, principal.name, current, new, moment, address=address
                )

        try:
            session = await run_in_threadpool(change)
        except LoginThrottledError as exc:
            raise RateLimitedError(str(exc), retry_after=exc.retry_after) from None
        if session is None:
            raise ForbiddenError("the current password is wrong", field="current_password")
        # A new cookie as at login: the old one named a session that no longer exists.
        return _signed_in(request, config, session, fields if is_form(request) else None)

    return [
        Route("/login", post_login, methods=["POST"]),
        Route("/logout", post_logout, methods=["POST"]),
        Route("/api/v1/account/password", post_password, methods=["POST"]),
    ]


def _signed_in(
    request: Request, config: Config, session: str, form: dict[str, str] | None
) -> Response:
    """A form goes on to its ``next`` page; a JSON client gets the session's CSRF token."""
    if form is not None:
        response: Response = RedirectResponse(local_path(form.get("next", "/")), 303)
    else:
        body = {"csrf_token": auth.csrf_token(session)}
        response = Response(msgspec.json.encode(body), media_type="application/json")
    set_session_cookie(response, session, request, config)
    return response


def _login_again(fields: dict[str, str], error: str, retry_after: int | None) -> Response:
    """Back to the login form (303), saying why; the ``next`` path is kept."""
    query = {"error": error, "next": local_path(fields.get("next", "/"))}
    if retry_after is not None:
        query["retry"] = str(retry_after)
    headers = {} if retry_after is None else {"Retry-After": str(retry_after)}
    return RedirectResponse("/login?" + urlencode(query), 303, headers=headers)


def _check_origin(request: Request) -> None:
    """Login CSRF: a browser posting the login form from another site sends its ``Origin``;
    refuse it, or that site could log the visitor into the attacker's account."""
    origin = request.headers.get("origin")
    if origin is None:
        return
    host = request.headers.get("host", "")
    if origin == "null" or urlsplit(origin).netloc.lower() != host.lower():
        raise ForbiddenError("cross-site login refused", field="origin")
