"""Malformed and hostile requests: each gets the right status, and nothing is stored."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from tests.support import LiveServer, browser_client

OK = {"site": "example", "url": "https://example.com/page"}


def hit(**changes: Any) -> bytes:
    """A valid hit with ``changes`` applied (``None`` removes a field)."""
    body = {**OK, **changes}
    return json.dumps({k: v for k, v in body.items() if v is not None}).encode()


def raw(text: str) -> bytes:
    return text.encode()


# (id, path, body, extra headers, expected status, expected error field or None)
CASES: list[tuple[str, str, bytes, dict[str, str], int, str | None]] = [
    ("empty-body", "/api/hit", b"", {}, 400, "$"),
    ("not-json", "/api/hit", b"hello", {}, 400, "$"),
    ("json-array", "/api/hit", b"[]", {}, 400, "$"),
    ("json-null", "/api/hit", b"null", {}, 400, "$"),
    ("json-string", "/api/hit", b'"example"', {}, 400, "$"),
    ("missing-site", "/api/hit", hit(site=None), {}, 400, "$.site"),
    ("missing-url", "/api/hit", hit(url=None), {}, 400, "$.url"),
    ("site-number", "/api/hit", hit(site=42), {}, 400, "$.site"),
    ("url-number", "/api/hit", hit(url=7), {}, 400, "$.url"),
    ("name-object", "/api/hit", hit(name={"a": 1}), {}, 400, "$.name"),
    ("unknown-field", "/api/hit", hit(extra=1), {}, 400, "$.extra"),
    ("url-too-long", "/api/hit", hit(url="https://example.com/" + "a" * 2030), {}, 400, "$.url"),
    ("name-too-long", "/api/hit", hit(name="n" * 101), {}, 400, "$.name"),
    ("empty-name", "/api/hit", hit(name=""), {}, 400, "$.name"),
    ("too-many-props", "/api/hit", hit(props={f"k{i}": i for i in range(31)}), {}, 400, "$.props"),
    ("prop-key-too-long", "/api/hit", hit(props={"k" * 65: 1}), {}, 400, "$.props"),
    ("prop-value-too-long", "/api/hit", hit(props={"k": "v" * 501}), {}, 400, "$.props[...]"),
    ("prop-value-object", "/api/hit", hit(props={"k": {"a": 1}}), {}, 400, "$.props[...]"),
    ("prop-value-array", "/api/hit", hit(props={"k": [1]}), {}, 400, "$.props[...]"),
    ("prop-value-null", "/api/hit", hit(props={"k": None}), {}, 400, "$.props[...]"),
    ("props-not-object", "/api/hit", hit(props=[1, 2]), {}, 400, "$.props"),
    (
        "currency-4-letters",
        "/api/hit",
        hit(revenue={"amount": 1, "currency": "EURO"}),
        {},
        400,
        "$.revenue.currency",
    ),
    (
        "currency-lowercase",
        "/api/hit",
        hit(revenue={"amount": 1, "currency": "eur"}),
        {},
        400,
        "$.revenue.currency",
    ),
    (
        "amount-comma",
        "/api/hit",
        hit(revenue={"amount": "12,50", "currency": "EUR"}),
        {},
        400,
        "$.revenue.amount",
    ),
    (
        "amount-exponent-text",
        "/api/hit",
        hit(revenue={"amount": "1e5", "currency": "EUR"}),
        {},
        400,
        "$.revenue.amount",
    ),
    (
        "amount-missing-currency",
        "/api/hit",
        hit(revenue={"amount": 3}),
        {},
        400,
        "$.revenue.currency",
    ),
    ("screen-negative", "/api/hit", hit(screen=-1), {}, 400, "$.screen"),
    ("screen-text", "/api/hit", hit(screen="1024"), {}, 400, "$.screen"),
    ("engaged-negative", "/api/hit", hit(engaged_ms=-5), {}, 400, "$.engaged_ms"),
    ("engaged-over-a-day", "/api/hit", hit(engaged_ms=86_400_001), {}, 400, "$.engaged_ms"),
    (
        "nan",
        "/api/hit",
        raw('{"site":"example","url":"https://example.com/","screen":NaN}'),
        {},
        400,
        "$",
    ),
    (
        "infinity",
        "/api/hit",
        raw('{"site":"example","url":"https://example.com/","props":{"x":Infinity}}'),
        {},
        400,
        "$",
    ),
    (
        "number-overflow",
        "/api/hit",
        raw('{"site":"example","url":"https://example.com/","props":{"x":1e999}}'),
        {},
        400,
        "$.props[...]",
    ),
    ("unknown-mode", "/api/hit", hit(mode="maybe"), {}, 400, "$.mode"),
    ("gcm-unknown-type", "/api/hit", hit(gcm={"tracking": "granted"}), {}, 400, "$.gcm"),
    (
        "gcm-bad-state",
        "/api/hit",
        hit(gcm={"analytics_storage": "yes"}),
        {},
        400,
        "$.gcm[...]",
    ),
    ("cid-with-space", "/api/hit", hit(cid="a b"), {}, 400, "$.cid"),
    ("cid-too-long", "/api/hit", hit(cid="c" * 65), {}, 400, "$.cid"),
    ("uid-too-long", "/api/hit", hit(uid="u" * 257), {}, 400, "$.uid"),
    ("tcf-bad-chars", "/api/hit", hit(tcf="CO<script>"), {}, 400, "$.tcf"),
    ("nul-in-url", "/api/hit", hit(url="https://example.com/\u0000x"), {}, 400, "$.url"),
    ("escape-in-name", "/api/hit", hit(name="click\u001b[31m"), {}, 400, "$.name"),
    ("newline-in-prop", "/api/hit", hit(props={"k": "a\nb"}), {}, 400, "$.props[...]"),
    (
        "invalid-utf8",
        "/api/hit",
        b'{"site":"example","url":"https://example.com/\xff"}',
        {},
        400,
        "$",
    ),
    ("deep-json", "/api/hit", b"[" * 30_000 + b"]" * 30_000, {}, 400, "$"),
    (
        "deep-json-in-props",
        "/api/hit",
        raw(
            '{"site":"example","url":"https://example.com/","props":{"k":'
            + "[" * 30_000
            + "]" * 30_000
            + "}}"
        ),
        {},
        400,
        "$.props[...]",
    ),
    ("sql-in-site", "/api/hit", hit(site="example'; DROP TABLE events;--"), {}, 400, "$.site"),
    ("relative-url", "/api/hit", hit(url="/page"), {}, 400, "$.url"),
    ("javascript-url", "/api/hit", hit(url="javascript:alert(1)"), {}, 400, "$.url"),
    (
        "form-content-type",
        "/api/hit",
        hit(),
        {"content-type": "application/x-www-form-urlencoded"},
        400,
        "content-type",
    ),
    ("ip-field-on-hit", "/api/hit", hit(ip="1.2.3.4"), {}, 400, "$.ip"),
    ("body-over-64k", "/api/hit", hit(props={"k": "v" * 70_000}), {}, 413, None),
    ("unknown-site", "/api/hit", hit(site="other"), {}, 403, "$.site"),
    ("foreign-hostname", "/api/hit", hit(url="https://evil.test/page"), {}, 403, "$.url"),
    ("lookalike-hostname", "/api/hit", hit(url="https://example.com.evil.test/"), {}, 403, "$.url"),
    ("foreign-origin", "/api/hit", hit(), {"origin": "https://evil.test"}, 403, "$.url"),
    ("batch-empty", "/api/batch", b"[]", {}, 400, "$"),
    ("batch-1001", "/api/batch", json.dumps([OK] * 1001).encode(), {}, 400, "$"),
    (
        "batch-over-1mib",
        "/api/batch",
        json.dumps([{**OK, "props": {"k": "v" * 400}}] * 3000).encode(),
        {},
        413,
        None,
    ),
    ("batch-not-array", "/api/batch", hit(), {}, 400, "$"),
    (
        "batch-bad-second-event",
        "/api/batch",
        json.dumps([OK, {**OK, "screen": -1}]).encode(),
        {},
        400,
        "$[1].screen",
    ),
    (
        "batch-ip-without-token",
        "/api/batch",
        json.dumps([{**OK, "ip": "1.2.3.4"}]).encode(),
        {},
        403,
        "$[0].ip",
    ),
    (
        "batch-ua-without-token",
        "/api/batch",
        json.dumps([{**OK, "ua": "curl"}]).encode(),
        {},
        403,
        "$[0].ua",
    ),
    (
        "batch-wrong-token",
        "/api/batch",
        json.dumps([OK]).encode(),
        {"authorization": "Bearer not-the-token"},
        403,
        "$[0].site",
    ),
    (
        "batch-negative-ts",
        "/api/batch",
        json.dumps([{**OK, "ts": -1}]).encode(),
        {},
        400,
        "$[0].ts",
    ),
    (
        "batch-foreign-hostname-second",
        "/api/batch",
        json.dumps([OK, {**OK, "url": "https://evil.test/"}]).encode(),
        {},
        403,
        "$[1].url",
    ),
]


@pytest.fixture(scope="module")
def hostile_server(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from tests.support import build_config

    data_dir = tmp_path_factory.mktemp("hostile")
    server = LiveServer(build_config(data_dir, client_rate_per_minute=100_000), None)
    server.start()
    yield server
    server.stop()


@pytest.mark.parametrize(
    ("path", "body", "headers", "status", "field"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_hostile_input_is_refused_and_not_stored(
    hostile_server: LiveServer,
    path: str,
    body: bytes,
    headers: dict[str, str],
    status: int,
    field: str | None,
) -> None:
    with browser_client(hostile_server.url) as client:
        response = client.post(
            path, content=body, headers={"content-type": "text/plain", **headers}
        )
    assert response.status_code == status, response.text
    if field is not None:
        assert response.json()["field"] == field
    assert hostile_server.events() == []
    assert hostile_server.dropped_hits() == {}


def test_the_table_has_at_least_forty_distinct_cases() -> None:
    assert len({case[0] for case in CASES}) == len(CASES) >= 40


HOSTILE_TEXT = "<script>alert(1)</script>'; DROP TABLE events;-- \" OR 1=1"


def test_sql_and_html_in_every_string_field_are_stored_verbatim(
    serve: Callable[..., LiveServer],
) -> None:
    server = serve()
    body = {
        "site": "example",
        "url": "https://example.com/a",
        "name": HOSTILE_TEXT,
        "mode": "granted",
        "props": {HOSTILE_TEXT[:60]: HOSTILE_TEXT},
        "uid": HOSTILE_TEXT,
    }
    with browser_client(server.url) as client:
        assert client.post("/api/hit", json=body).status_code == 202
        assert client.post("/api/hit", json=OK).status_code == 202
    rows = server.events()
    assert [row["name"] for row in rows] == [HOSTILE_TEXT, "pageview"]
    assert rows[0]["props"] == {HOSTILE_TEXT[:60]: HOSTILE_TEXT}
