"""``/api/openapi.json`` describes every route, and the live server keeps to it under
schemathesis: no 5xx, no undocumented status, content type or response shape, on every
endpoint, anonymous and with an owner's API token."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import httpx
import pytest
import schemathesis
import uvicorn
from click.testing import CliRunner
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.config import SchemathesisConfig

from collector.cli.accounts import COMMANDS
from collector.config import Config, load_config
from collector.datadir import initialize
from collector.web import openapi
from collector.web.app import create_app
from tests.support import BROWSER_UA, build_config

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def _app(config: Config) -> Any:
    return create_app(config)


def test_every_route_is_described_and_nothing_else(tmp_path: Path) -> None:
    app = _app(build_config(tmp_path))
    served = set(openapi.route_operations(app.routes))
    assert served == set(openapi.OPERATIONS)
    document = openapi.document(app.routes)
    described = {(path, method) for path, item in document["paths"].items() for method in item}
    assert described == served
    for path, method in served:
        operation = document["paths"][path][method]
        assert operation["responses"], (path, method)
        if "requestBody" in operation:
            assert "application/json" in operation["requestBody"]["content"], (path, method)


def test_a_route_without_a_description_fails_the_check_not_the_server(tmp_path: Path) -> None:
    app = create_app(build_config(tmp_path))
    app.router.routes.append(_undescribed_route())
    with pytest.raises(KeyError, match="GET /api/undescribed"):
        openapi.document(app.routes)
    served = openapi.document(app.routes, strict=False)
    assert served["paths"]["/api/undescribed"]["get"]["tags"] == ["undescribed"]


def _undescribed_route() -> Any:
    from starlette.responses import Response
    from starlette.routing import Route

    async def endpoint(request: Any) -> Response:
        return Response()

    return Route("/api/undescribed", endpoint, methods=["GET"])


@contextlib.contextmanager
def _server(app: Any) -> Iterator[str]:
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", ws="none")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    waiting = threading.Event()
    while not server.started:
        assert thread.is_alive(), "the collector failed to start"
        waiting.wait(0.01)
    try:
        yield f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join()


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """A collector on a data directory made by ``mesure init``; an owner token from
    ``mesure token create``."""
    data = tmp_path_factory.mktemp("openapi") / "data"
    initialize(data, ["example.com"])
    group = click.Group("mesure", commands=COMMANDS)
    result = CliRunner().invoke(group, ["token", "create", "--role", "owner", "--data", str(data)])
    assert result.exit_code == 0, result.output
    token = result.output.strip().splitlines()[-1]
    config = load_config(data, {"MESURE_CLIENT_RATE_PER_MINUTE": "100000"})
    with _server(_app(config)) as url:
        with httpx.Client(base_url=url, headers={"user-agent": BROWSER_UA}) as client:
            body = {"site": "example.com", "url": "https://example.com/", "mode": "granted"}
            assert client.post("/api/hit", json={**body, "cid": "abc"}).status_code == 202
        yield url, token


def test_the_served_description_is_the_generated_one(live: tuple[str, str]) -> None:
    url, _token = live
    served = httpx.get(url + openapi.OPENAPI_PATH).json()
    assert served["openapi"].startswith("3.")
    assert ("/api/hit", "post") in {(p, m) for p, item in served["paths"].items() for m in item}
    assert set(served["paths"]) == {path for path, _ in openapi.OPERATIONS}


@pytest.fixture(scope="module")
def api_schema(live: tuple[str, str]) -> Any:
    url, _token = live
    # Generated cases only (the coverage phase's exhaustive boundary cases take minutes).
    config = SchemathesisConfig.from_dict(
        {"phases": {"coverage": {"enabled": False}, "stateful": {"enabled": False}}}
    )
    return schemathesis.openapi.from_url(url + openapi.OPENAPI_PATH, config=config)


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck))
def test_every_endpoint_keeps_to_the_description(case: Any, live: tuple[str, str]) -> None:
    _url, token = live
    headers = {"user-agent": BROWSER_UA}
    case.call_and_validate(headers=headers, checks=CHECKS)
    case.call_and_validate(headers={**headers, "authorization": f"Bearer {token}"}, checks=CHECKS)


def test_only_the_dashboards_html_routes_are_left_out(tmp_path: Path) -> None:
    from starlette.routing import Route

    left_out = {
        route.path
        for route in create_app(build_config(tmp_path)).routes
        if isinstance(route, Route) and not route.include_in_schema
    }
    assert {"/", "/privacy", "/login", "/account/password", "/static/{name}"} <= left_out
    assert not {path for path in left_out if path.startswith("/api/")}
