"""The OpenAPI 3.1 description of the collector, served at ``/api/openapi.json``.

Built from the app's own route table: every route must have an entry in :data:`OPERATIONS`
(a test checks it), and bodies and results are described by the msgspec Structs the handlers
decode and encode (``msgspec.json.schema_components``), so the schemas cannot drift from them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from collector import auth
from collector.ingest import wire
from collector.reports.consent_report import AttributionReport, ConsentReport
from collector.reports.experiments import ExperimentReport
from collector.reports.funnels import FunnelReport
from collector.reports.goals import GoalsReport
from collector.reports.model import GoalIn
from collector.reports.results import (
    AggregateReport,
    BreakdownReport,
    RealtimeReport,
    TimeseriesReport,
)
from collector.reports.retention import RetentionReport
from collector.reports.rfm import RFMReport
from collector.storage.rows import SavedFunnel
from collector.web.routes.accounts import PasswordIn
from collector.web.routes.privacy import (
    DestroyIn,
    ExportIn,
    RetentionIn,
    RotateIn,
    SubjectIn,
    VerifyIn,
)
from collector.web.routes.snippet import ChoiceIn

OPENAPI_PATH = "/api/openapi.json"


class ErrorOut(msgspec.Struct):
    """Every 4xx/5xx JSON answer: what is wrong and, when known, the field or parameter."""

    error: str
    field: str | None


class HealthOut(msgspec.Struct):
    status: str
    queued: int
    committing: int


class BatchOut(msgspec.Struct):
    received: int


class LoginIn(msgspec.Struct):
    email: str
    password: str


class LoginOut(msgspec.Struct):
    csrf_token: str


class Operation(msgspec.Struct, frozen=True, kw_only=True):
    """What a route does; ``body`` and ``ok`` name types or are raw schemas."""

    summary: str
    tag: str
    #: ``None``: public; ``"api"``: API token or session; ``"ingest"``: optional ingest token.
    auth: str | None = None
    query: tuple[tuple[str, str], ...] = ()
    body: Any = None
    body_types: tuple[str, ...] = ("application/json",)
    ok_status: int = 200
    ok: Any = None
    ok_type: str = "application/json"
    errors: tuple[int, ...] = ()


_REPORT_QUERY = (
    ("site", "Site id(s), comma-separated or repeated; `all` or absent: every visible site."),
    ("period", "today, 7d, 30d (default), month, year or custom."),
    ("from", "First day (YYYY-MM-DD) of a custom period."),
    ("to", "Last day (YYYY-MM-DD) of a custom period."),
    ("filter", "dimension:operator:value, e.g. page:is:/pricing (repeatable)."),
    ("compare", "previous_period: also the period before."),
)
_REPORT_ERRORS = (400, 401, 403)
_INGEST_ERRORS = (400, 403, 408, 413, 429, 503)
_PRIVACY_ERRORS = (400, 401, 403)
_OBJECT = {"type": "object"}
_TEXT = {"type": "string"}


def _report(summary: str, result: type, *extra: tuple[str, str]) -> Operation:
    return Operation(
        summary=summary,
        tag="reports",
        auth="api",
        query=_REPORT_QUERY + extra,
        ok=result,
        errors=_REPORT_ERRORS,
    )


def _privacy(summary: str, body: Any = None, **kwargs: Any) -> Operation:
    return Operation(
        summary=summary, tag="privacy", auth="api", body=body, errors=_PRIVACY_ERRORS, **kwargs
    )


_GOAL = ("goal", "A goal name, or page:/pattern* or event:name.")
#: Every route of the collector, by (path, method). HEAD follows GET and is not listed.
OPERATIONS: dict[tuple[str, str], Operation] = {
    ("/api/hit", "post"): Operation(
        summary="Record one hit (the snippet's beacon).",
        tag="ingest",
        body=wire.HitIn,
        body_types=("application/json", "text/plain"),
        ok_status=202,
        errors=_INGEST_ERRORS,
    ),
    ("/api/batch", "post"): Operation(
        summary="Record up to 1,000 events; ip/ua per event need the site's ingest token.",
        tag="ingest",
        auth="ingest",
        body=wire.BatchIn,
        body_types=("application/json", "text/plain"),
        ok_status=202,
        ok=BatchOut,
        errors=_INGEST_ERRORS,
    ),
    ("/p.gif", "get"): Operation(
        summary="The <noscript> pixel: a pageview of `url` (or the Referer).",
        tag="ingest",
        query=(("site", "Site id."), ("url", "The page's absolute URL.")),
        ok={"type": "string", "format": "binary"},
        ok_type="image/gif",
        errors=(400, 403, 429, 503),
    ),
    ("/healthz", "get"): Operation(
        summary="Liveness and the write queue's state.", tag="operations", ok=HealthOut
    ),
    (OPENAPI_PATH, "get"): Operation(summary="This description.", tag="operations", ok=_OBJECT),
    ("/m.js", "get"): Operation(
        summary="The tracker script (ETag; 304 when unchanged).",
        tag="snippet",
        ok=_TEXT,
        ok_type="application/javascript",
        errors=(304,),
    ),
    ("/optout", "get"): Operation(
        summary="The visitor opt-out page of a site.",
        tag="snippet",
        query=(("site", "Site id."), ("return", "Where the linked page sends the visitor back.")),
        ok=_TEXT,
        ok_type="text/html",
        errors=(404,),
    ),
    ("/optout/choose", "post"): Operation(
        summary="The opt-out page's choice: back to the site (303) with the snippet's marker.",
        tag="snippet",
        body=ChoiceIn,
        body_types=("application/x-www-form-urlencoded", "application/json"),
        ok_status=303,
        errors=(400, 403, 404),
    ),
    ("/optout.js", "get"): Operation(
        summary="The opt-out page's script.",
        tag="snippet",
        ok=_TEXT,
        ok_type="application/javascript",
    ),
    ("/api/v1/aggregate", "get"): _report("Visitors, visits, pageviews, …", AggregateReport, _GOAL),
    ("/api/v1/timeseries", "get"): _report(
        "Metrics per hour, day, week or month.",
        TimeseriesReport,
        ("interval", "hour, day (default), week or month."),
        _GOAL,
    ),
    ("/api/v1/breakdown", "get"): Operation(
        summary="Metrics per value of a dimension (JSON or CSV).",
        tag="reports",
        auth="api",
        query=(
            *_REPORT_QUERY,
            ("by", "The dimension (page, source, browser, prop:NAME, …); required."),
            ("limit", "Rows per page (1-1000, default 100)."),
            ("page", "Page number (default 1)."),
            _GOAL,
            ("format", "json (default) or csv."),
        ),
        ok=BreakdownReport,
        errors=_REPORT_ERRORS,
    ),
    ("/api/v1/goals", "get"): _report("Conversions of every goal.", GoalsReport),
    ("/api/v1/funnel", "get"): _report(
        "A funnel of steps.",
        FunnelReport,
        ("step", "page:/path or event:name (repeatable)."),
        ("within", "visit (default) or Nd."),
    ),
    ("/api/v1/retention", "get"): _report(
        "Retention cohorts.", RetentionReport, ("cohorts", "week (default) or month.")
    ),
    ("/api/v1/experiment", "get"): _report(
        "Conversion per variant of an A/B experiment.",
        ExperimentReport,
        ("property", "The property holding the variant; required."),
        ("goal", "The goal; required."),
        ("control", "The control variant."),
    ),
    ("/api/v1/consent", "get"): _report("Hits and visitors per consent mode.", ConsentReport),
    ("/api/v1/attribution", "get"): _report(
        "First and last touch of a goal's conversions.",
        AttributionReport,
        ("goal", "The goal; required."),
    ),
    ("/api/v1/rfm", "get"): _report(
        "Recency, frequency, monetary value.", RFMReport, ("currency", "ISO 4217 code.")
    ),
    ("/api/v1/realtime", "get"): _report("The last 30 minutes.", RealtimeReport),
    ("/api/v1/goals", "post"): Operation(
        summary="Define a goal (owner).",
        tag="reports",
        auth="api",
        body=GoalIn,
        ok_status=201,
        ok=GoalIn,
        errors=_REPORT_ERRORS,
    ),
    ("/api/v1/goals", "delete"): Operation(
        summary="Delete a goal (owner).",
        tag="reports",
        auth="api",
        query=(("site", "Site id."), ("name", "Goal name.")),
        ok_status=204,
        errors=_REPORT_ERRORS,
    ),
    ("/login", "post"): Operation(
        summary="Log in: a session cookie, and the CSRF token (JSON) or a redirect (form).",
        tag="auth",
        body=LoginIn,
        body_types=("application/json", "application/x-www-form-urlencoded"),
        ok=LoginOut,
        errors=(303, 400, 401, 429),
    ),
    ("/logout", "post"): Operation(
        summary="End the session.", tag="auth", auth="api", ok_status=204, errors=(401, 403)
    ),
    ("/api/v1/privacy/audit", "get"): _privacy(
        "Check the audit log's hash chain; entries since a time.",
        query=(("since", "ISO 8601 time with a zone."),),
        ok=_OBJECT,
    ),
    ("/api/v1/privacy/register", "get"): _privacy(
        "The register of processing.",
        query=(("format", "json (default), md or html."),),
        ok=_OBJECT,
    ),
    ("/api/v1/privacy/export", "post"): _privacy(
        "Export a site's events of a period, signed.",
        body=ExportIn,
        ok=_OBJECT,
    ),
    ("/api/v1/privacy/dsar/access", "post"): _privacy(
        "Everything stored about one data subject.", body=SubjectIn, ok=_OBJECT
    ),
    ("/api/v1/privacy/dsar/erase", "post"): _privacy(
        "Erase one data subject's data.", body=SubjectIn, ok=_OBJECT
    ),
    ("/api/v1/privacy/export/verify", "post"): _privacy(
        "Check an export's file hashes and signature.", body=VerifyIn, ok=_OBJECT
    ),
    ("/api/v1/privacy/retention", "post"): _privacy(
        "Run retention now (or count what it would delete).", body=RetentionIn, ok=_OBJECT
    ),
    ("/api/v1/privacy/keys", "get"): _privacy(
        "Key epochs of every site (ids, never key material) and the export public key.",
        ok=_OBJECT,
    ),
    ("/api/v1/privacy/keys/rotate", "post"): _privacy(
        "Start a new key epoch for a site (owner).", body=RotateIn, ok=_OBJECT
    ),
    ("/api/v1/privacy/keys/destroy", "post"): _privacy(
        "Destroy a retired key epoch: its hashes can no longer be produced (owner).",
        body=DestroyIn,
        ok=_OBJECT,
    ),
    ("/api/v1/funnels", "get"): Operation(
        summary="Saved funnels of the visible sites.",
        tag="reports",
        auth="api",
        query=(("site", "Site id."),),
        ok=_OBJECT,
        errors=_REPORT_ERRORS,
    ),
    ("/api/v1/funnels", "post"): Operation(
        summary="Save a funnel (owner); one of the same site and name is replaced.",
        tag="reports",
        auth="api",
        body=SavedFunnel,
        ok_status=201,
        ok=SavedFunnel,
        errors=_REPORT_ERRORS,
    ),
    ("/api/v1/funnels", "delete"): Operation(
        summary="Delete a saved funnel (owner).",
        tag="reports",
        auth="api",
        query=(("site", "Site id."), ("name", "Funnel name.")),
        ok_status=204,
        errors=_REPORT_ERRORS,
    ),
    ("/api/v1/account/password", "post"): Operation(
        summary="Change the logged-in user's password; a new session cookie and CSRF token.",
        tag="auth",
        auth="api",
        body=PasswordIn,
        ok=LoginOut,
        errors=(400, 401, 403, 429),
    ),
}

_STATUS_TEXT = {
    200: "OK",
    201: "Created",
    202: "Accepted: stored (committed) or counted as filtered",
    204: "No content",
    303: "See other",
    304: "Not modified",
    400: "Bad request: the field or parameter is named",
    401: "No valid session or API token",
    403: "Not allowed (site, hostname, role, token or CSRF)",
    404: "Not found",
    408: "Body not received in time",
    413: "Body too large",
    429: "Rate limited: retry after Retry-After seconds",
    503: "Write queue full or storage failing: retry after Retry-After seconds",
}


def route_operations(routes: Sequence[BaseRoute]) -> list[tuple[str, str]]:
    """Every (path, method) of ``routes``; HEAD goes with GET."""
    found = []
    for route in routes:
        # The dashboard's HTML pages are not API (include_in_schema=False).
        if isinstance(route, Route) and route.include_in_schema:
            for method in sorted(route.methods or ()):
                if method != "HEAD":
                    found.append((route.path, method.lower()))
    return found


def document(routes: Sequence[BaseRoute], *, strict: bool = True) -> dict[str, Any]:
    """The OpenAPI document of the operations ``routes`` serve.

    A route missing from :data:`OPERATIONS` is a ``KeyError`` when ``strict`` (the tests);
    the served document lists it as undescribed instead of failing.
    """
    wanted = route_operations(routes)
    types: list[Any] = [ErrorOut]
    operations: dict[tuple[str, str], Operation] = {}
    for key in wanted:
        operation = OPERATIONS.get(key)
        if operation is None:
            if strict:
                raise KeyError(
                    f"{key[1].upper()} {key[0]} is not described in collector.web.openapi"
                )
            operation = Operation(summary="Not described yet.", tag="undescribed")
        operations[key] = operation
        types += [t for t in (operation.body, operation.ok) if _is_type(t)]
    schemas_of, components = msgspec.json.schema_components(
        types, ref_template="#/components/schemas/{name}"
    )
    refs = dict(zip(map(_type_key, types), schemas_of, strict=True))

    def schema(value: Any) -> dict[str, Any]:
        return refs[_type_key(value)] if _is_type(value) else dict(value)

    paths: dict[str, dict[str, Any]] = {}
    for (path, method), operation in operations.items():
        paths.setdefault(path, {})[method] = _operation(operation, schema)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Mesure collector",
            "version": "1",
            "description": "Ingest (public), reports and privacy tools (API token or session).",
        },
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "apiToken": {"type": "http", "scheme": "bearer"},
                "session": {"type": "apiKey", "in": "cookie", "name": auth.SESSION_COOKIE},
                "ingestToken": {"type": "http", "scheme": "bearer"},
            },
        },
    }


def _operation(operation: Operation, schema: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"summary": operation.summary, "tags": [operation.tag]}
    if operation.auth == "api":
        out["security"] = [{"apiToken": []}, {"session": []}]
    elif operation.auth == "ingest":
        out["security"] = [{}, {"ingestToken": []}]
    if operation.query:
        out["parameters"] = [
            {"name": name, "in": "query", "required": False, "description": text, "schema": _TEXT}
            for name, text in operation.query
        ]
    if operation.body is not None:
        body = schema(operation.body)
        out["requestBody"] = {
            "required": True,
            "content": {
                media: {"schema": body if media != "text/plain" else _TEXT}
                for media in operation.body_types
            },
        }
    ok: dict[str, Any] = {"description": _STATUS_TEXT[operation.ok_status]}
    if operation.ok is not None:
        ok["content"] = {operation.ok_type: {"schema": schema(operation.ok)}}
        if operation.ok_type == "application/json" and operation.ok is BreakdownReport:
            ok["content"]["text/csv"] = {"schema": _TEXT}
    responses: dict[str, Any] = {str(operation.ok_status): ok}
    error_body = {"application/json": {"schema": schema(ErrorOut)}}
    for status in operation.errors:
        if status in (303, 304):
            responses[str(status)] = {"description": _STATUS_TEXT[status]}
        elif status == 404 and operation.tag == "snippet":
            responses["404"] = {
                "description": _STATUS_TEXT[404],
                "content": {"text/plain": {"schema": _TEXT}},
            }
        else:
            responses[str(status)] = {"description": _STATUS_TEXT[status], "content": error_body}
    out["responses"] = responses
    return out


def _is_type(value: Any) -> bool:
    return value is not None and not isinstance(value, dict)


def _type_key(value: Any) -> str:
    return repr(value)


def routes() -> list[BaseRoute]:
    """``GET /api/openapi.json``, describing the routes of the app that serves it."""

    async def openapi(request: Request) -> Response:
        document_bytes = getattr(request.app.state, "openapi_json", None)
        if document_bytes is None:
            document_bytes = msgspec.json.encode(document(request.app.routes, strict=False))
            request.app.state.openapi_json = document_bytes
        return Response(document_bytes, media_type="application/json")

    return [Route(OPENAPI_PATH, openapi, methods=["GET"])]
