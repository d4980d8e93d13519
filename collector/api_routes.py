"""The JSON reports API under ``/api/v1/`` and the login/logout endpoints.

Every report route needs a caller (session cookie or ``Authorization: Bearer`` API token):
anonymous → 401, a role or site the caller lacks → 403, a bad parameter → 400 naming it.
State-changing requests authenticated by cookie must carry ``X-CSRF-Token`` (or a
``csrf_token`` form field). Report SQL runs in worker threads, never on the event loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import msgspec
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from collector import auth, reports
from collector.audit import AuditLog
from collector.config import Config
from collector.errors import (
    BadRequestError,
    ForbiddenError,
    HTTPError,
    RateLimitedError,
    RequestTimeoutError,
)
from collector.reports import params
from collector.reports.export import breakdown_csv, csv_name
from collector.reports.model import GoalIn
from collector.reports.query import ReportQuery, check_dimension
from collector.reports.results import BreakdownReport
from collector.storage import reports_for
from collector.storage.auth_sqlite import auth_database
from collector.storage.reports_sqlite import ReportsDatabase

MAX_BODY_BYTES = 16 * 1024
_login_decoder = msgspec.json.Decoder(dict[str, str])
_goal_decoder = msgspec.json.Decoder(GoalIn)


class UnauthorizedError(HTTPError):
    """401: no valid session cookie or API token."""

    status = 401

    @property
    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": 'Bearer realm="mesure"'}


class Call(msgspec.Struct, frozen=True):
    """An authorised report call: the caller, the sites it covers, the query and the time."""

    principal: auth.Principal
    sites: list[str]
    query: ReportQuery
    now: datetime


Report = Callable[[ReportsDatabase, Call, Request], msgspec.Struct]


def routes(config: Config) -> list[BaseRoute]:
    """The ``/api/v1`` report routes plus ``POST /login`` and ``POST /logout``."""

    def now(request: Request) -> datetime:
        return request_now(request)

    async def principal_of(request: Request) -> auth.Principal:
        return await current_principal(request, config)

    def visible(principal: auth.Principal, request: Request) -> list[str]:
        wanted = params.requested_sites(request.query_params)
        if wanted is None:
            sites = principal.visible_sites(config)
            if not sites:
                raise ForbiddenError("no site is granted to this account", field="site")
            return sites
        for site in wanted:
            if config.site(site) is None:
                raise BadRequestError(f"unknown site {site!r}", field="site")
            if not principal.may_see(site):
                raise ForbiddenError(f"no access to site {site!r}", field="site")
        return wanted

    def report_route(path: str, extra: tuple[str, ...], report: Report) -> Route:
        async def endpoint(request: Request) -> Response:
            principal = await principal_of(request)
            if not principal.may("reports"):
                raise ForbiddenError("this role cannot read reports")
            params.check_known(request.query_params, extra)
            sites = visible(principal, request)
            query = params.report_query(request.query_params)
            call = Call(
                principal=principal,
                sites=sites,
                query=msgspec.structs.replace(query, sites=tuple(sites)),
                now=now(request),
            )

            def run() -> msgspec.Struct:
                with reports_for(config) as db:
                    try:
                        return report(db, call, request)
                    except ValueError as exc:
                        raise BadRequestError(str(exc), field=_field_of(str(exc), extra)) from None

            result = await run_in_threadpool(run)
            if isinstance(result, BreakdownReport) and request.query_params.get("format") == "csv":
                return Response(
                    breakdown_csv(result),
                    media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{csv_name(result)}"'},
                )
            return Response(msgspec.json.encode(result), media_type="application/json")

        return Route(path, endpoint, methods=["GET"])

    def goal_of(db: ReportsDatabase, call: Call, request: Request) -> reports.Goal | None:
        spec = params.goal_param(request.query_params)
        return None if spec is None else reports.resolve_goal(db, call.sites, spec, config=config)

    def required_goal(db: ReportsDatabase, call: Call, request: Request) -> reports.Goal:
        goal = goal_of(db, call, request)
        if goal is None:
            raise BadRequestError("this report needs a goal", field="goal")
        return goal

    def common(call: Call) -> dict[str, Any]:
        return {"sites": call.sites, "now": call.now}

    def aggregate(db: ReportsDatabase, call: Call, request: Request) -> msgspec.Struct:
        goal = goal_of(db, call, request)
        return reports.aggregate(db, config, call.query, goal=goal, **common(call))

    def timeseries(db: ReportsDatabase, call: Call, request: Request) -> msgspec.Struct:
        interval = params.choice(
            request.query_params, "interval", ("hour", "day", "week", "month"), "day"
        )
        return reports.timeseries(
            db,
            config,
            call.query,
            interval=interval,  # type: ignore[arg-type]
            goal=goal_of(db, call, request),
            **common(call),
        )

    def breakdown(db: ReportsDatabase, call: Call, request: Request) -> msgspec.Struct:
        query = request.query_params
        if "by" not in query:
            raise BadRequestError("breakdown needs `by`", field="by")
        params.choice(query, "format", ("json", "csv"), "json")
        try:
            check_dimension(query["by"])
        except ValueError as exc:
            raise BadRequestError(str(exc), field="by") from None
        return reports.breakdown(
            db,
            config,
            call.query,
            by=query["by"],
            limit=params.positive_int(query, "limit", 100, 1000),
            page=params.positive_int(query, "page", 1, 1_000_000),
            goal=goal_of(db, call, request),
            **common(call),
        )

    def goals(db: ReportsDatabase, call: Call, request: Request) -> msgspec.Struct:
        return reports.goals_report(db, config, call.query, **common(call))

    def funnel(db: ReportsDatabase, call: Call, request: Request) -> msgspec.Struct:
        return reports.funnel(
            db,
            config,
            call.query,
            steps=params.steps(request.query_params),
            within_days=params.within_days(request.query_params),
            **common(call),
        )

    def retention(db: ReportsDatabase, call: Call, request: Request) -> msgspec.Struct:
        by = params.choice(request.query_params, "cohorts", ("week", "month"), "week")
        return reports.retention(db, config, call.query, by=by, **common(call))  # type: ignore[arg-type]

    def experiment(db: ReportsDatabase, call: Call, request: Request) -> msgspec.Struct:
        prop = request.query_params.get("property")
        if not prop:
            raise BadRequestError("experiment needs `property`", field="property")
        return reports.experiment(
            db,
            config,
            call.query,
            prop=prop,
            goal=required_goal(db, call, request),
            control=request.query_params.get("control"),
            **common(call),
        )

    def consent(db: ReportsDatabase, call: Call, request: Request) -> msgspec.Struct:
        return reports.consent_report(db, config, call.query, **common(call))

    def attribution(db: ReportsDatabase, call: Call, request: Request) -> msgspec.Struct:
        goal = required_goal(db, call, request)
        return reports.attribution(db, config, call.query, goal=goal, **common(call))

    def rfm(db: ReportsDatabase, call: Call, request: Request) -> msgspec.Struct:
        currency = request.query_params.get("currency")
        if currency is not None and (len(currency) != 3 or not currency.isupper()):
            raise BadRequestError("currency is a three-letter ISO code", field="currency")
        return reports.rfm(db, config, call.query, currency=currency, **common(call))

    def realtime(db: ReportsDatabase, call: Call, request: Request) -> msgspec.Struct:
        return reports.realtime(db, sites=call.sites, now=call.now, filters=call.query.filters)

    async def post_goal(request: Request) -> Response:
        principal = await principal_of(request)
        _check_csrf(principal, request.headers.get("x-csrf-token"))
        if not principal.may("manage"):
            raise ForbiddenError("only an owner can define goals")
        body = await _body(request)
        try:
            goal = _goal_decoder.decode(body)
        except msgspec.ValidationError as exc:
            raise BadRequestError(str(exc), field="$") from None
        except msgspec.DecodeError:
            raise BadRequestError("invalid JSON", field="$") from None
        if config.site(goal.site) is None:
            raise BadRequestError(f"unknown site {goal.site!r}", field="site")
        if not principal.may_see(goal.site):
            raise ForbiddenError(f"no access to site {goal.site!r}", field="site")
        _refuse_config_goal(config, goal.site, goal.name)
        saved = reports.Goal(name=goal.name, kind=goal.kind, match=goal.match)
        moment = int(now(request).timestamp() * 1000)

        def save() -> None:
            with reports_for(config) as db:
                db.save_goal(goal.site, saved, moment)

        await run_in_threadpool(save)
        return Response(msgspec.json.encode(goal), status_code=201, media_type="application/json")

    async def delete_goal(request: Request) -> Response:
        principal = await principal_of(request)
        _check_csrf(principal, request.headers.get("x-csrf-token"))
        if not principal.may("manage"):
            raise ForbiddenError("only an owner can delete goals")
        site, name = request.query_params.get("site", ""), request.query_params.get("name", "")
        if config.site(site) is None:
            raise BadRequestError(f"unknown site {site!r}", field="site")
        if not principal.may_see(site):
            raise ForbiddenError(f"no access to site {site!r}", field="site")
        _refuse_config_goal(config, site, name)

        def delete() -> bool:
            with reports_for(config) as db:
                return db.delete_goal(site, name)

        if not await run_in_threadpool(delete):
            raise BadRequestError(f"no goal named {name!r} for {site!r}", field="name")
        return Response(status_code=204)

    async def post_login(request: Request) -> Response:
        _check_origin(request)
        form = request.headers.get("content-type", "").startswith(
            "application/x-www-form-urlencoded"
        )
        if form:
            fields = await _form(request)
        else:
            try:
                fields = _login_decoder.decode(await _body(request))
            except msgspec.DecodeError:
                raise BadRequestError("expected {email, password}", field="$") from None
        email, password = fields.get("email", ""), fields.get("password", "")
        if not email or not password:
            raise BadRequestError("email and password are required", field="email")
        moment = int(now(request).timestamp() * 1000)

        def check() -> str | None:
            with auth_database(config.database_path) as db:
                session = auth.login(db, email, password, moment)
            if session is not None:  # logins are audited (issue 6); failures are throttled
                at = now(request)
                AuditLog(config.audit_path, lambda: at).append(
                    "login", user=auth.normalize_email(email)
                )
            return session

        try:
            session = await run_in_threadpool(check)
        except auth.LoginThrottledError as exc:
            if form:  # the dashboard's login page says so instead of showing JSON
                return _login_again(fields, "throttled", exc.retry_after)
            raise RateLimitedError(str(exc), retry_after=exc.retry_after) from None
        if session is None:
            if form:
                return _login_again(fields, "invalid", None)
            raise UnauthorizedError("wrong e-mail address or password")
        if form:
            response: Response = RedirectResponse(_local(fields.get("next", "/")), 303)
        else:
            body = {"csrf_token": auth.csrf_token(session)}
            response = Response(msgspec.json.encode(body), media_type="application/json")
        set_session_cookie(response, session, request, config)
        return response

    async def post_logout(request: Request) -> Response:
        principal = await principal_of(request)
        candidate = request.headers.get("x-csrf-token")
        form_post = request.headers.get("content-type", "").startswith(
            "application/x-www-form-urlencoded"
        )
        if candidate is None and form_post:
            candidate = (await _form(request)).get("csrf_token")
        _check_csrf(principal, candidate)
        if principal.session is not None:
            session = principal.session

            def end() -> None:
                with auth_database(config.database_path) as db:
                    auth.logout(db, session)

            await run_in_threadpool(end)
        # The dashboard's logout button is a form: send the browser back to the login page.
        response = RedirectResponse("/login?out=1", 303) if form_post else Response(status_code=204)
        response.delete_cookie(auth.SESSION_COOKIE, path="/")
        return response

    return [
        report_route("/api/v1/aggregate", ("goal",), aggregate),
        report_route("/api/v1/timeseries", ("interval", "goal"), timeseries),
        report_route("/api/v1/breakdown", ("by", "limit", "page", "goal", "format"), breakdown),
        report_route("/api/v1/goals", (), goals),
        report_route("/api/v1/funnel", ("step", "within"), funnel),
        report_route("/api/v1/retention", ("cohorts",), retention),
        report_route("/api/v1/experiment", ("property", "goal", "control"), experiment),
        report_route("/api/v1/consent", (), consent),
        report_route("/api/v1/attribution", ("goal",), attribution),
        report_route("/api/v1/rfm", ("currency",), rfm),
        report_route("/api/v1/realtime", (), realtime),
        Route("/api/v1/goals", post_goal, methods=["POST"]),
        Route("/api/v1/goals", delete_goal, methods=["DELETE"]),
        Route("/login", post_login, methods=["POST"]),
        Route("/logout", post_logout, methods=["POST"]),
    ]


def request_now(request: Request) -> datetime:
    """The app's injected clock (``Services.clock``), read once per request."""
    clock: Callable[[], datetime] = request.state.services.clock
    return clock()


async def current_principal(request: Request, config: Config) -> auth.Principal:
    """The caller (API token or session cookie), or 401. Other route modules (dashboard,
    privacy tools) use this with :func:`authorize`."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    bearer = token.strip() if scheme.lower() == "bearer" and token.strip() else None
    session = request.cookies.get(auth.SESSION_COOKIE)
    moment = int(request_now(request).timestamp() * 1000)

    def lookup() -> auth.Principal | None:
        with auth_database(config.database_path) as db:
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
        _check_csrf(principal, request.headers.get("x-csrf-token"))
    if not principal.may(permission):
        raise ForbiddenError(f"this role ({principal.role}) may not do this")
    return principal


def _check_csrf(principal: auth.Principal, candidate: str | None) -> None:
    """Cookie sessions must prove the request comes from our own pages; tokens need not."""
    if principal.session is not None and not auth.csrf_valid(principal.session, candidate):
        raise ForbiddenError("missing or invalid CSRF token", field="x-csrf-token")


def _refuse_config_goal(config: Config, site_id: str, name: str) -> None:
    """Goals of ``mesure.toml`` are edited there: the API neither shadows nor deletes them."""
    site = config.site(site_id)
    if site is not None and any(goal.name == name for goal in site.goals):
        raise BadRequestError(f"goal {name!r} is defined in mesure.toml", field="name")


def _field_of(message: str, extra: tuple[str, ...]) -> str:
    """The parameter a report's ``ValueError`` is about (the messages name it first)."""
    for name in (*extra, "limit", "page", "from", "to", "site", "step", "within", "interval"):
        if name in message:
            return name
    if "goal" in message:
        return "goal"
    return "period"


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


async def _body(request: Request) -> bytes:
    """The body, refused past ``MAX_BODY_BYTES`` before it is all read, and when it takes longer
    than the server's ``body-timeout-ms`` to arrive (a slow client holds no handler for long)."""
    timeout = request.state.services.config.server.body_timeout_ms / 1000
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(timeout):
            async for chunk in request.stream():
                size += len(chunk)
                if size > MAX_BODY_BYTES:
                    raise BadRequestError(f"body over {MAX_BODY_BYTES} bytes", field="$")
                chunks.append(chunk)
    except TimeoutError:
        raise RequestTimeoutError(f"body not received within {timeout:g} s") from None
    return b"".join(chunks)


async def _form(request: Request) -> dict[str, str]:
    """An ``application/x-www-form-urlencoded`` body (parsed here: no multipart dependency)."""
    try:
        text = (await _body(request)).decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequestError("form body is not UTF-8", field="$") from None
    return dict(parse_qsl(text, keep_blank_values=True))


def _login_again(fields: dict[str, str], error: str, retry_after: int | None) -> Response:
    """Back to the login form (303), saying why; the ``next`` path is kept."""
    query = {"error": error, "next": _local(fields.get("next", "/"))}
    if retry_after is not None:
        query["retry"] = str(retry_after)
    headers = {} if retry_after is None else {"Retry-After": str(retry_after)}
    return RedirectResponse("/login?" + urlencode(query), 303, headers=headers)


def _local(target: str) -> str:
    """Only same-origin paths are followed after login (no open redirect)."""
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return "/"
    return target


def _check_origin(request: Request) -> None:
    """Login CSRF: a browser posting the login form from another site sends its ``Origin``;
    refuse it, or that site could log the visitor into the attacker's account."""
    origin = request.headers.get("origin")
    if origin is None:
        return
    host = request.headers.get("host", "")
    if origin == "null" or urlsplit(origin).netloc.lower() != host.lower():
        raise ForbiddenError("cross-site login refused", field="origin")


def _secure(request: Request, config: Config) -> bool:
    forwarded = request.headers.get("x-forwarded-proto", "")
    return (
        request.url.scheme == "https"
        or forwarded == "https"
        or config.server.origin.startswith("https://")
    )
