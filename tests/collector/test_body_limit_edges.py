"""The body limits at their exact edges: 64 KiB per hit, 1 MiB per batch, declared or chunked."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import pytest

from collector.ingest.wire import MAX_BATCH_BYTES, MAX_HIT_BYTES
from tests.support import LiveServer, browser_client

HIT = {"site": "example", "url": "https://example.com/edge"}


def _padded(document: object, size: int) -> bytes:
    """``document`` as JSON, padded with trailing spaces (valid JSON) to exactly ``size`` bytes."""
    body = json.dumps(document).encode()
    assert len(body) <= size
    return body + b" " * (size - len(body))


def _chunks(body: bytes) -> Iterator[bytes]:
    for start in range(0, len(body), 16 * 1024):
        yield body[start : start + 16 * 1024]


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_body_at_the_limit_is_accepted_and_one_byte_more_is_413(
    serve: Callable[..., LiveServer], chunked: bool
) -> None:
    server = serve()
    cases = [
        ("/api/hit", _padded(HIT, MAX_HIT_BYTES), 202),
        ("/api/hit", _padded(HIT, MAX_HIT_BYTES + 1), 413),
        ("/api/batch", _padded([HIT] * 3, MAX_BATCH_BYTES), 202),
        ("/api/batch", _padded([HIT] * 3, MAX_BATCH_BYTES + 1), 413),
    ]
    with browser_client(server.url, headers={"content-type": "text/plain"}) as client:
        for path, body, status in cases:
            content = _chunks(body) if chunked else body
            answer = client.post(path, content=content)
            assert answer.status_code == status, (path, len(body), answer.text)
            if status == 413:
                assert answer.json()["error"] == f"body over {len(body) - 1} bytes"
    assert len(server.events()) == 4  # the accepted hit and the batch of three
