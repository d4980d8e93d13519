"""The privacy JSON API under ``/api/v1/privacy/``, for the ``dpo`` and ``owner`` roles.

``GET audit`` (chain check and entries, ``?since=``), ``GET register`` (``?format=``),
``POST export``, ``POST export/verify``, ``POST dsar/access``, ``POST dsar/erase``,
``POST retention`` (``dry_run``), ``GET keys`` (epochs and the export public key),
``POST keys/rotate``, ``POST keys/destroy``.
Exports are written under ``DATA/exports/`` and their manifest returned. Anonymous → 401,
another role or an ungranted site → 403, a bad body → 400 naming the field.
Cookie-authenticated POSTs need ``X-CSRF-Token``.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any

import msgspec
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from collector import auth
from collector.audit import AuditLog
from collector.callers import check_csrf, current_principal
from collector.config import Config
from collector.errors import BadRequestError, ForbiddenError, MesureError
from collector.http import read_small_body
from collector.keys import KeyStore, SiteKeyKind
from collector.privacy import audit_check, dsar, keyring, register
from collector.privacy.export import export_events
from collector.privacy.instance import Instance
from collector.privacy.manifest import Format
from collector.privacy.retention import run_retention
from collector.privacy.verify import verify_export
from collector.storage import privacy_for

EXPORTS_DIR = "exports"
Day = Annotated[str, msgspec.Meta(pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")]


class ApiIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Shared options of the privacy API's request bodies."""


class ExportIn(ApiIn):
    site: str
    first_day: Day
    last_day: Day
    format: Format = "ndjson"


class SubjectIn(ApiIn):
    site: str
    user_id: str | None = None
    client_id: str | None = None
    format: Format = "ndjson"


class VerifyIn(ApiIn):
    #: The name of an export directory under ``DATA/exports/`` (as ``POST export`` answered).
    dir: Annotated[str, msgspec.Meta(pattern=r"^[0-9A-Za-z][0-9A-Za-z_.-]*$", max_length=100)]


class RetentionIn(ApiIn):
    dry_run: bool = False


class RotateIn(ApiIn):
    site: str
    #: ``None``: both the client and the user key.
    kind: SiteKeyKind | None = None


class DestroyIn(ApiIn):
    site: str
    kind: SiteKeyKind
    epoch: int


def routes(config: Config) -> list[BaseRoute]:
    """The ``/api/v1/privacy/`` routes of ``config``'s instance."""

    def clock_of(request: Request) -> Callable[[], datetime]:
        clock: Callable[[], datetime] = request.state.services.clock
        return clock

    def instance(request: Request) -> Instance:
        clock = clock_of(request)
        keys: KeyStore = request.state.services.keys
        return Instance(
            config=config, audit=AuditLog(config.audit_path, clock), keys=keys, clock=clock
        )

    async def caller(request: Request, site: str | None) -> auth.Principal:
        found = await current_principal(request, config)
        if not found.may("privacy"):
            raise ForbiddenError("the privacy tools are for the dpo and owner roles")
        if site is not None:
            if config.site(site) is None:
                raise BadRequestError(f"unknown site {site!r}", field="$.site")
            if not found.may_see(site):
                raise ForbiddenError(f"no access to site {site!r}", field="$.site")
        if request.method == "POST":
            check_csrf(found, request.headers.get("x-csrf-token"))
        return found

    async def body(request: Request, type_: type[Any]) -> Any:
        raw = await read_small_body(request)
        try:
            return msgspec.json.decode(raw, type=type_)
        except msgspec.ValidationError as exc:
            message, _, path = str(exc).partition(" - at `")
            raise BadRequestError(message, field=path.rstrip("`") or "$") from None
        except msgspec.DecodeError as exc:
            raise BadRequestError(f"invalid JSON: {exc}", field="$") from None

    def actor(principal: auth.Principal) -> str:
        return f"{principal.kind}:{principal.name} ({principal.role}, api)"

    def new_export_dir(inst: Instance) -> Path:
        stamp = inst.clock().strftime("%Y%m%dT%H%M%SZ")
        return config.data_dir / EXPORTS_DIR / f"{stamp}-{secrets.token_hex(4)}"

    def json_response(value: Any) -> Response:
        return Response(msgspec.json.encode(value), media_type="application/json")

    async def get_audit(request: Request) -> Response:
        await caller(request, None)
        since_text = request.query_params.get("since")
        try:
            since = None if since_text is None else datetime.fromisoformat(since_text)
        except ValueError:
            raise BadRequestError("not an ISO 8601 time", field="since") from None
        if since is not None and since.tzinfo is None:
            raise BadRequestError("give a time zone (e.g. +00:00)", field="since")
        result = audit_check.check(config.audit_path)
        entries = audit_check.entries_since(config.audit_path, since)
        return json_response({"check": result, "entries": entries})

    async def get_register(request: Request) -> Response:
        await caller(request, None)
        fmt = request.query_params.get("format", "json")
        if fmt not in register.REGISTER_FORMATS:
            raise BadRequestError("format is md, html or json", field="format")
        text = register.render(register.build_register(config), fmt)  # type: ignore[arg-type]
        media = {"json": "application/json", "md": "text/markdown", "html": "text/html"}[fmt]
        return Response(text, media_type=f"{media}; charset=utf-8")

    async def post_export(request: Request) -> Response:
        wanted: ExportIn = await body(request, ExportIn)
        principal = await caller(request, wanted.site)
        inst = instance(request)

        def work() -> Any:
            with privacy_for(config) as db:
                out = new_export_dir(inst)
                manifest = export_events(
                    inst,
                    db,
                    sites=[wanted.site],
                    first_day=date.fromisoformat(wanted.first_day),
                    last_day=date.fromisoformat(wanted.last_day),
                    fmt=wanted.format,
                    out=out,
                    actor=actor(principal),
                )
                return {"dir": str(out), "manifest": manifest}

        return json_response(await _run(work))

    def subject_of(wanted: SubjectIn) -> dsar.Subject:
        if (wanted.user_id is None) == (wanted.client_id is None):
            raise BadRequestError("give exactly one of user_id and client_id", field="$.user_id")
        if wanted.user_id is not None:
            return dsar.Subject(site=wanted.site, identifier="user-id", value=wanted.user_id)
        assert wanted.client_id is not None
        return dsar.Subject(site=wanted.site, identifier="client-id", value=wanted.client_id)

    async def post_access(request: Request) -> Response:
        wanted: SubjectIn = await body(request, SubjectIn)
        subject = subject_of(wanted)
        principal = await caller(request, wanted.site)
        inst = instance(request)

        def work() -> Any:
            with privacy_for(config) as db:
                out = new_export_dir(inst)
                report, manifest = dsar.access(
                    inst, db, subject, out=out, fmt=wanted.format, actor=actor(principal)
                )
                return {"report": report, "dir": str(out), "manifest": manifest}

        return json_response(await _run(work))

    async def post_erase(request: Request) -> Response:
        wanted: SubjectIn = await body(request, SubjectIn)
        subject = subject_of(wanted)
        principal = await caller(request, wanted.site)
        inst = instance(request)

        def work() -> Any:
            with privacy_for(config) as db:
                return {"report": dsar.erase(inst, db, subject, actor=actor(principal))}

        return json_response(await _run(work))

    async def post_verify(request: Request) -> Response:
        wanted: VerifyIn = await body(request, VerifyIn)
        await caller(request, None)
        inst = instance(request)
        folder = config.data_dir / EXPORTS_DIR / wanted.dir
        if not folder.is_dir():
            raise BadRequestError(f"no export {wanted.dir!r} in {EXPORTS_DIR}/", field="$.dir")

        def work() -> Any:
            public = keyring.export_key(inst.keys.keys_dir, inst.audit).public_key()
            return verify_export(folder, public)

        return json_response(await _run(work))

    async def post_retention(request: Request) -> Response:
        wanted: RetentionIn = await body(request, RetentionIn)
        principal = await caller(request, None)
        inst = instance(request)

        def work() -> Any:
            with privacy_for(config) as db:
                # Like the server's own daily run: no VACUUM, which would stall ingestion.
                return run_retention(
                    inst,
                    db,
                    now=inst.clock(),
                    dry_run=wanted.dry_run,
                    actor=actor(principal),
                    vacuum=False,
                )

        return json_response(await _run(work))

    async def get_keys(request: Request) -> Response:
        await caller(request, None)
        inst = instance(request)

        def work() -> Any:
            found = keyring.inventory(inst.keys, [site.id for site in config.sites])
            public = keyring.public_key_hex(keyring.export_key(inst.keys.keys_dir, inst.audit))
            return {"keys": found, "export_public_key": public}

        return json_response(await _run(work))

    async def post_rotate(request: Request) -> Response:
        wanted: RotateIn = await body(request, RotateIn)
        principal = await caller(request, wanted.site)
        inst = instance(request)

        def work() -> Any:
            kinds = keyring.KINDS if wanted.kind is None else (wanted.kind,)
            # This process hashes with the new epoch at once; other worker processes load it
            # when they restart.
            epochs = {
                kind: keyring.rotate(inst.keys, wanted.site, kind, by=actor(principal)).epoch
                for kind in kinds
            }
            return {"site": wanted.site, "epochs": epochs}

        return json_response(await _run(work))

    async def post_destroy(request: Request) -> Response:
        wanted: DestroyIn = await body(request, DestroyIn)
        principal = await caller(request, wanted.site)
        inst = instance(request)

        def work() -> Any:
            keyring.destroy_epoch(
                inst.keys, inst.audit, wanted.site, wanted.kind, wanted.epoch, by=actor(principal)
            )
            return {"site": wanted.site, "kind": wanted.kind, "destroyed": wanted.epoch}

        return json_response(await _run(work))

    prefix = "/api/v1/privacy"
    return [
        Route(f"{prefix}/audit", get_audit, methods=["GET"]),
        Route(f"{prefix}/register", get_register, methods=["GET"]),
        Route(f"{prefix}/export", post_export, methods=["POST"]),
        Route(f"{prefix}/export/verify", post_verify, methods=["POST"]),
        Route(f"{prefix}/dsar/access", post_access, methods=["POST"]),
        Route(f"{prefix}/dsar/erase", post_erase, methods=["POST"]),
        Route(f"{prefix}/retention", post_retention, methods=["POST"]),
        Route(f"{prefix}/keys", get_keys, methods=["GET"]),
        Route(f"{prefix}/keys/rotate", post_rotate, methods=["POST"]),
        Route(f"{prefix}/keys/destroy", post_destroy, methods=["POST"]),
    ]


async def _run(work: Callable[[], Any]) -> Any:
    """Run blocking privacy work off the event loop; its refusals become 400s."""
    try:
        return await run_in_threadpool(work)
    except MesureError as exc:
        if isinstance(exc, BadRequestError | ForbiddenError):
            raise
        raise BadRequestError(str(exc), field="$") from None
