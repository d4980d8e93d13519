"""The privacy JSON API under ``/api/v1/privacy/``, for the ``dpo`` and ``owner`` roles.

``GET audit`` (chain check and entries, ``?since=``), ``GET register`` (``?format=``),
``POST export``, ``POST export/verify``, ``POST dsar/access``, ``POST dsar/erase``,
``POST retention`` (``dry_run``), ``GET keys`` (epochs and the export public key),
``POST keys/rotate``, ``POST keys/destroy``.
Exports are written under ``DATA/exports/`` and their manifest returned. Anonymous → 401,
another role or an ungranted site → 403, a bad body → 400 naming the field.
Cookie-authenticated POSTs need ``X-CSRF-Token``.

Every route is scoped to the caller's sites: a caller granted some sites gets the register, key
epochs and retention of those, verifies only exports whose signed manifest names only those,
and reads only the audit entries about those (an entry about other sites, or about every site,
is withheld and counted). Answers carry the dashboard's security headers.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any

import msgspec
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from collector import auth
from collector.audit import AuditLog
from collector.config import Config
from collector.errors import BadRequestError, ForbiddenError, MesureError
from collector.keys import KeyStore, SiteKeyKind
from collector.privacy import audit_check, dsar, keyring, register
from collector.privacy.export import export_events
from collector.privacy.instance import Instance
from collector.privacy.manifest import MANIFEST_FILE, SIGNATURE_FILE, Format, manifest_decoder
from collector.privacy.retention import run_retention
from collector.privacy.verify import verify_export
from collector.reports.params import FIRST_DATE, LAST_DATE
from collector.storage import privacy_for
from collector.web.callers import check_csrf, current_principal
from collector.web.dashboard.routes import SECURITY_HEADERS
from collector.web.http import read_small_body

EXPORTS_DIR = "exports"
#: On every answer: the register's HTML is a page like the dashboard's; nothing is cached.
HEADERS = {**SECURITY_HEADERS, "Cache-Control": "no-store"}
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
        return Response(msgspec.json.encode(value), media_type="application/json", headers=HEADERS)

    def sees_every_site(principal: auth.Principal) -> bool:
        return len(principal.visible_sites(config)) == len(config.sites)

    def scope_of(principal: auth.Principal) -> list[str] | None:
        """The sites a route works on for ``principal``; ``None``: every site."""
        return None if sees_every_site(principal) else principal.visible_sites(config)

    async def get_audit(request: Request) -> Response:
        principal = await caller(request, None)
        since_text = request.query_params.get("since")
        try:
            since = None if since_text is None else datetime.fromisoformat(since_text)
        except ValueError:
            raise BadRequestError("not an ISO 8601 time", field="since") from None
        if since is not None and since.tzinfo is None:
            raise BadRequestError("give a time zone (e.g. +00:00)", field="since")
        # The chain check covers the whole log, whoever asks: it shows entries were removed,
        # not what they said.
        result = audit_check.check(config.audit_path)
        entries = audit_check.entries_since(config.audit_path, since)
        visible = scope_of(principal)
        shown = [e for e in entries if visible is None or e.concerns_only(visible)]
        withheld = len(entries) - len(shown)
        return json_response({"check": result, "entries": shown, "withheld": withheld})

    async def get_register(request: Request) -> Response:
        principal = await caller(request, None)
        fmt = request.query_params.get("format", "json")
        if fmt not in register.REGISTER_FORMATS:
            raise BadRequestError("format is md, html or json", field="format")
        record = register.build_register(config)
        visible = scope_of(principal)
        if visible is not None:
            record = msgspec.structs.replace(
                record, sites=[site for site in record.sites if site.site in visible]
            )
        text = register.render(record, fmt)
        media = {"json": "application/json", "md": "text/markdown", "html": "text/html"}[fmt]
        return Response(text, media_type=f"{media}; charset=utf-8", headers=HEADERS)

    async def post_export(request: Request) -> Response:
        wanted: ExportIn = await body(request, ExportIn)
        first_day, last_day = _period(wanted)
        principal = await caller(request, wanted.site)
        inst = instance(request)

        def work() -> Any:
            with privacy_for(config) as db:
                out = new_export_dir(inst)
                manifest = export_events(
                    inst,
                    db,
                    sites=[wanted.site],
                    first_day=first_day,
                    last_day=last_day,
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
        principal = await caller(request, None)
        inst = instance(request)
        folder = config.data_dir / EXPORTS_DIR / wanted.dir
        if not folder.is_dir():
            raise BadRequestError(f"no export {wanted.dir!r} in {EXPORTS_DIR}/", field="$.dir")
        visible = scope_of(principal)

        def work() -> Any:
            public = keyring.export_key(inst.keys.keys_dir, inst.audit).public_key()
            if visible is not None:
                sites = _signed_sites(folder, public)
                if sites is None or not set(sites) <= set(visible):
                    # Same answer whether the export is another site's or unreadable: which
                    # sites a foreign export holds is not this caller's business either.
                    raise ForbiddenError(
                        f"export {wanted.dir!r} is not of your sites only", field="$.dir"
                    )
            return verify_export(folder, public)

        return json_response(await _run(work))

    async def post_retention(request: Request) -> Response:
        wanted: RetentionIn = await body(request, RetentionIn)
        principal = await caller(request, None)
        inst = instance(request)
        visible = scope_of(principal)

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
                    sites=visible,
                )

        return json_response(await _run(work))

    async def get_keys(request: Request) -> Response:
        principal = await caller(request, None)
        inst = instance(request)

        def work() -> Any:
            # The daily keys' days and the export public key are the instance's, not a site's.
            found = keyring.inventory(inst.keys, principal.visible_sites(config))
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


def _period(wanted: ExportIn) -> tuple[date, date]:
    """The export's days, each a real date within the reports' bounds (the day after the last
    must exist), the first not after the last; 400 naming the field otherwise."""
    days = []
    for name, text in (("first_day", wanted.first_day), ("last_day", wanted.last_day)):
        try:
            day = date.fromisoformat(text)
        except ValueError:
            raise BadRequestError("not a date YYYY-MM-DD", field=f"$.{name}") from None
        if not FIRST_DATE <= day <= LAST_DATE:
            raise BadRequestError(f"a date from {FIRST_DATE} to {LAST_DATE}", field=f"$.{name}")
        days.append(day)
    if days[1] < days[0]:
        raise BadRequestError("last_day is before first_day", field="$.last_day")
    return days[0], days[1]


def _signed_sites(folder: Path, public: Ed25519PublicKey) -> list[str] | None:
    """The sites an export's manifest names, if its signature holds (an unsigned claim could
    name any site); ``None`` when the manifest is unreadable or its signature fails."""
    try:
        manifest = (folder / MANIFEST_FILE).read_bytes()
        public.verify(bytes.fromhex((folder / SIGNATURE_FILE).read_text().strip()), manifest)
        return list(manifest_decoder.decode(manifest).sites)
    except (OSError, ValueError, InvalidSignature, msgspec.DecodeError, msgspec.ValidationError):
        return None


async def _run(work: Callable[[], Any]) -> Any:
    """Run blocking privacy work off the event loop; its refusals become 400s."""
    try:
        return await run_in_threadpool(work)
    except MesureError as exc:
        if isinstance(exc, BadRequestError | ForbiddenError):
            raise
        raise BadRequestError(str(exc), field="$") from None
