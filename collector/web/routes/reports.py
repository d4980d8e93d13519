"""The JSON reports API under ``/api/v1/`` (reports and goals).

Every report route needs a caller (session cookie or ``Authorization: Bearer`` API token):
anonymous → 401, a role or site the caller lacks → 403, a bad parameter → 400 naming it.
State-changing requests authenticated by cookie must carry ``X-CSRF-Token`` (or a
``csrf_token`` form field). Report SQL runs in worker threads, never on the event loop.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import msgspec
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from collector import auth, reports
from collector.config import Config
from collector.errors import BadRequestError, ForbiddenError
from collector.reports import params
from collector.reports.export import breakdown_csv, csv_name
from collector.reports.model import GoalIn
from collector.reports.query import ReportQuery
from collector.reports.results import BreakdownReport
from collector.storage import reports_for, saved_for
from collector.storage.ports import ReportStore
from collector.storage.rows import check_dimension
from collector.web.callers import check_csrf, current_principal, request_now
from collector.web.http import read_json

_goal_decoder = msgspec.json.Decoder(GoalIn)


class Call(msgspec.Struct, frozen=True):
    """An authorised report call: the caller, the sites it covers, the query and the time."""

    principal: auth.Principal
    sites: list[str]
    query: ReportQuery
    now: datetime


Report = Callable[[ReportStore, Call, Request], msgspec.Struct]


def routes(config: Config) -> list[BaseRoute]:
    """The ``/api/v1`` report and goal routes."""

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
                    return report(db, call, request)

            result = await run_in_threadpool(run)
            if isinstance(result, BreakdownReport) and request.query_params.get("format") == "csv":
                return Response(
                    breakdown_csv(result),
                    media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{csv_name(result)}"'},
                )
            return Response(msgspec.json.encode(result), media_type="application/json")

        return Route(path, endpoint, methods=["GET"])

    def goal_of(db: ReportStore, call: Call, request: Request) -> reports.Goal | None:
        spec = params.goal_param(request.query_params)
        return None if spec is None else reports.resolve_goal(db, call.sites, spec, config=config)

    def required_goal(db: ReportStore, call: Call, request: Request) -> reports.Goal:
        goal = goal_of(db, call, request)
        if goal is None:
            raise BadRequestError("this report needs a goal", field="goal")
        return goal

    def common(call: Call) -> dict[str, Any]:
        return {"sites": call.sites, "now": call.now}

    def aggregate(db: ReportStore, call: Call, request: Request) -> msgspec.Struct:
        goal = goal_of(db, call, request)
        return reports.aggregate(db, config, call.query, goal=goal, **common(call))

    def timeseries(db: ReportStore, call: Call, request: Request) -> msgspec.Struct:
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

    def breakdown(db: ReportStore, call: Call, request: Request) -> msgspec.Struct:
        query = request.query_params
        if "by" not in query:
            raise BadRequestError("breakdown needs `by`", field="by")
        params.choice(query, "format", ("json", "csv"), "json")
        check_dimension(query["by"], field="by")
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

    def goals(db: ReportStore, call: Call, request: Request) -> msgspec.Struct:
        return reports.goals_report(db, config, call.query, **common(call))

    def funnel(db: ReportStore, call: Call, request: Request) -> msgspec.Struct:
        return reports.funnel(
            db,
            config,
            call.query,
            steps=params.steps(request.query_params),
            within_days=params.within_days(request.query_params),
            **common(call),
        )

    def retention(db: ReportStore, call: Call, request: Request) -> msgspec.Struct:
        by = params.choice(request.query_params, "cohorts", ("week", "month"), "week")
        return reports.retention(db, config, call.query, by=by, **common(call))  # type: ignore[arg-type]

    def experiment(db: ReportStore, call: Call, request: Request) -> msgspec.Struct:
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

    def consent(db: ReportStore, call: Call, request: Request) -> msgspec.Struct:
        return reports.consent_report(db, config, call.query, **common(call))

    def attribution(db: ReportStore, call: Call, request: Request) -> msgspec.Struct:
        goal = required_goal(db, call, request)
        return reports.attribution(db, config, call.query, goal=goal, **common(call))

    def rfm(db: ReportStore, call: Call, request: Request) -> msgspec.Struct:
        currency = request.query_params.get("currency")
        if currency is not None and (len(currency) != 3 or not currency.isupper()):
            raise BadRequestError("currency is a three-letter ISO code", field="currency")
        return reports.rfm(db, config, call.query, currency=currency, **common(call))

    def realtime(db: ReportStore, call: Call, request: Request) -> msgspec.Struct:
        return reports.realtime(db, sites=call.sites, now=call.now, filters=call.query.filters)

    async def post_goal(request: Request) -> Response:
        principal = await principal_of(request)
        check_csrf(principal, request.headers.get("x-csrf-token"))
        if not principal.may("manage"):
            raise ForbiddenError("only an owner can define goals")
        goal = await read_json(request, _goal_decoder, "a JSON goal")
        if config.site(goal.site) is None:
            raise BadRequestError(f"unknown site {goal.site!r}", field="site")
        if not principal.may_see(goal.site):
            raise ForbiddenError(f"no access to site {goal.site!r}", field="site")
        _refuse_config_goal(config, goal.site, goal.name)
        saved = reports.Goal(name=goal.name, kind=goal.kind, match=goal.match)
        moment = int(now(request).timestamp() * 1000)

        def save() -> None:
            with saved_for(config) as db:
                db.save_goal(goal.site, saved, moment)

        await run_in_threadpool(save)
        return Response(msgspec.json.encode(goal), status_code=201, media_type="application/json")

    async def delete_goal(request: Request) -> Response:
        principal = await principal_of(request)
        check_csrf(principal, request.headers.get("x-csrf-token"))
        if not principal.may("manage"):
            raise ForbiddenError("only an owner can delete goals")
        site, name = request.query_params.get("site", ""), request.query_params.get("name", "")
        if config.site(site) is None:
            raise BadRequestError(f"unknown site {site!r}", field="site")
        if not principal.may_see(site):
            raise ForbiddenError(f"no access to site {site!r}", field="site")
        _refuse_config_goal(config, site, name)

        def delete() -> bool:
            with saved_for(config) as db:
                return db.delete_goal(site, name)

        if not await run_in_threadpool(delete):
            raise BadRequestError(f"no goal named {name!r} for {site!r}", field="name")
        return Response(status_code=204)

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
    ]


def _refuse_config_goal(config: Config, site_id: str, name: str) -> None:
    """Goals of ``mesure.toml`` are edited there: the API neither shadows nor deletes them."""
    site = config.site(site_id)
    if site is not None and any(goal.name == name for goal in site.goals):
        raise BadRequestError(f"goal {name!r} is defined in mesure.toml", field="name")
