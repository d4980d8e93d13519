"""Saved funnels under ``/api/v1/funnels``: list (any reports reader), save and delete (owners).

Stored like goals (per site, by name) and guarded by the same rules: anonymous → 401, a role
or site the caller lacks → 403, cookie sessions send ``X-CSRF-Token`` on POST and DELETE.
A saved funnel is run through ``GET /api/v1/funnel`` with its ``step`` and ``within``.
"""

from __future__ import annotations

import msgspec
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from collector import auth
from collector.config import Config
from collector.errors import BadRequestError, ForbiddenError
from collector.reports import params
from collector.storage import saved_for
from collector.storage.rows import SavedFunnel
from collector.web.callers import authorize, request_now
from collector.web.http import read_json

_decoder = msgspec.json.Decoder(SavedFunnel)


def routes(config: Config) -> list[BaseRoute]:
    def check_site(principal: auth.Principal, site: str) -> None:
        if config.site(site) is None:
            raise BadRequestError(f"unknown site {site!r}", field="site")
        if not principal.may_see(site):
            raise ForbiddenError(f"no access to site {site!r}", field="site")

    async def list_funnels(request: Request) -> Response:
        principal = await authorize(request, config, "reports")
        params.check_known(request.query_params, ())
        wanted = params.requested_sites(request.query_params)
        if wanted is None:
            sites = principal.visible_sites(config)
        else:
            for site in wanted:
                check_site(principal, site)
            sites = wanted

        def read() -> list[SavedFunnel]:
            with saved_for(config) as db:
                return db.stored_funnels(sites)

        found = await run_in_threadpool(read)
        return Response(msgspec.json.encode({"funnels": found}), media_type="application/json")

    async def post_funnel(request: Request) -> Response:
        principal = await authorize(request, config, "reports", csrf=True)
        if not principal.may("manage"):
            raise ForbiddenError("only an owner can define funnels")
        funnel = await read_json(request, _decoder, "a JSON funnel")
        if funnel.within != "visit" and not 1 <= int(funnel.within[:-1]) <= 366:
            raise BadRequestError("within must be `visit` or 1d to 366d", field="within")
        check_site(principal, funnel.site)
        moment = int(request_now(request).timestamp() * 1000)

        def save() -> None:
            with saved_for(config) as db:
                db.save_funnel(funnel, moment)

        await run_in_threadpool(save)
        return Response(msgspec.json.encode(funnel), status_code=201, media_type="application/json")

    async def delete_funnel(request: Request) -> Response:
        principal = await authorize(request, config, "reports", csrf=True)
        if not principal.may("manage"):
            raise ForbiddenError("only an owner can delete funnels")
        site, name = request.query_params.get("site", ""), request.query_params.get("name", "")
        check_site(principal, site)

        def delete() -> bool:
            with saved_for(config) as db:
                return db.delete_funnel(site, name)

        if not await run_in_threadpool(delete):
            raise BadRequestError(f"no funnel named {name!r} for {site!r}", field="name")
        return Response(status_code=204)

    return [
        Route("/api/v1/funnels", list_funnels, methods=["GET"]),
        Route("/api/v1/funnels", post_funnel, methods=["POST"]),
        Route("/api/v1/funnels", delete_funnel, methods=["DELETE"]),
    ]
