"""``POST /api/v1/account/password``: a logged-in user changes their own password.

The current password is checked like a login (a wrong one counts as a failed attempt, so the
route cannot be used to guess faster), the request must carry the session's CSRF token, every
session of the account ends, and a fresh session cookie and CSRF token are returned. API tokens
have no password: ``403``. JSON ``{current_password, new_password}`` or a form with the same
fields plus ``csrf_token`` and an optional same-origin ``next``.
"""

from __future__ import annotations

import msgspec
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from collector import auth
from collector.api_routes import (
    _body,
    _check_csrf,
    _form,
    _local,
    current_principal,
    request_now,
    set_session_cookie,
)
from collector.config import Config
from collector.errors import BadRequestError, ForbiddenError, RateLimitedError
from collector.storage.auth_sqlite import auth_database


class PasswordIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """The JSON body; missing passwords are refused below with the field named."""

    current_password: str = ""
    new_password: str = ""
    csrf_token: str | None = None


_decoder = msgspec.json.Decoder(PasswordIn)


def routes(config: Config) -> list[BaseRoute]:
    async def post_password(request: Request) -> Response:
        principal = await current_principal(request, config)
        form = request.headers.get("content-type", "").startswith(
            "application/x-www-form-urlencoded"
        )
        if form:
            fields = await _form(request)
        else:
            try:
                body = _decoder.decode(await _body(request))
            except msgspec.ValidationError as exc:
                raise BadRequestError(str(exc), field="$") from None
            except msgspec.DecodeError:
                raise BadRequestError(
                    "expected {current_password, new_password}", field="$"
                ) from None
            fields = {k: v for k, v in msgspec.structs.asdict(body).items() if v is not None}
        _check_csrf(principal, request.headers.get("x-csrf-token") or fields.get("csrf_token"))
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

        def change() -> str | None:
            with auth_database(config.database_path) as db:
                return auth.change_password(db, principal.name, current, new, moment)

        try:
            session = await run_in_threadpool(change)
        except auth.LoginThrottledError as exc:
            raise RateLimitedError(str(exc), retry_after=exc.retry_after) from None
        if session is None:
            raise ForbiddenError("the current password is wrong", field="current_password")
        if form:
            response: Response = RedirectResponse(_local(fields.get("next", "/")), 303)
        else:
            body = {"csrf_token": auth.csrf_token(session)}
            response = Response(msgspec.json.encode(body), media_type="application/json")
        # The same cookie as at login: the old one named a session that no longer exists.
        set_session_cookie(response, session, request, config)
        return response

    return [Route("/api/v1/account/password", post_password, methods=["POST"])]
