"""What a collector process opens once and every request uses: the :class:`Services` its
lifespan (:func:`collector.web.app.create_app`) puts in the request state.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from starlette.requests import Request

from collector.config import Config
from collector.ingest.pipeline import Pipeline
from collector.ingest.writer import Writer
from collector.keys import KeyStore
from collector.storage.ports import EventStore


@dataclass(frozen=True)
class Services:
    """What the lifespan opens, shared by every request of the process."""

    config: Config
    clock: Callable[[], datetime]
    storage: EventStore
    writer: Writer
    keys: KeyStore
    pipeline: Pipeline


def services(request: Request) -> Services:
    found: Services = request.state.services
    return found
