"""Who is calling: the API token or session behind a request, its rights, its CSRF proof and
its session cookie. Every authenticated route module (reports, account, funnels, privacy,
dashboard) goes through these."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from collector import auth, hashing
from collector.config import Config
from collector.errors import ForbiddenError, UnauthorizedError
from collector.storage import accounts_for
from collector.web.routes.ingest import client_of


def request_now(request: Request) -> datetime:
    """The app's injected clock (``Services.clock``), read once per request."""
    clock: Callable[[], datetime] = request.state.services.clock
    return clock()


async def current_principal(request: Request, config: Config) -> auth.Principal:
    """The caller (API token or session cookie), or 401."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    bearer = token.strip() if scheme.lower() == "bearer" and token.strip() else None
    session = request.cookies.get(auth.SESSION_COOKIE)
    moment = int(request_now(request).timestamp() * 1000)

    def lookup() -> auth.Principal | None:
        with accounts_for(config) as db:
            return auth.authenticate(db, bearer=bearer, session=session, now_ms=moment)

    found = await run_in_threadpool(lookup)
    if found is None:
        raise UnauthorizedError("log in or send an API token")
    return found


async def authorize(
    request: Request, config: Config, permission: auth.Permission, *, csrf: bool = False
) -> auth.Principal:
    """The caller if it holds ``permission`` (401 / 403 otherwise); with ``csrf``, a cookie
    session must also send its CSRF token (``X-CSRF-Token`` header)."""
    principal = await current_principal(request, config)
    if csrf:
        check_csrf(principal, request.headers.get("x-csrf-token"))
    if not principal.may(permission):
        raise ForbiddenError(f"this role ({principal.role}) may not do this")
    return principal


def login_address(request: Request) -> str:
    """What the login throttles count the caller's address under: a keyed hash of the client
    address as the collector sees it (``client-ip-header`` included) under the day's random
    cookieless key, so the database never holds an address, and what it holds cannot be linked
    to one once that key is destroyed (within 48 hours)."""
    keys = request.state.services.keys.daily_keys(request_now(request))
    return hashing.keyed_hash(keys.current.key, b"login-address", client_of(request).ip).hex()


def check_csrf(principal: auth.Principal, candidate: str | None) -> None:
    """Cookie sessions must prove the request comes from our own pages; tokens need not."""
    if principal.session is not None and not auth.csrf_valid(principal.session, candidate):
        raise ForbiddenError("missing or invalid CSRF token", field="x-csrf-token")


def set_session_cookie(response: Response, session: str, request: Request, config: Config) -> None:
    """The login session cookie (also re-set after a password change, which ends the old
    session): HttpOnly, SameSite=Lax, Secure when the request came over TLS."""
    response.set_cookie(
        auth.SESSION_COOKIE,
        session,
        max_age=auth.SESSION_LIFETIME_MS // 1000,
        httponly=True,
        samesite="lax",
        secure=_secure(request, config),
        path="/",
    )


def _secure(request: Request, config: Config) -> bool:
    forwarded = request.headers.get("x-forwarded-proto", "")
    return (
        request.url.scheme == "https"
        or forwarded == "https"
        or config.server.origin.startswith("https://")
    )
