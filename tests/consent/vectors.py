"""Load the shipped JSON vectors (``consent/vectors/*.json``) as package data."""

from __future__ import annotations

import json
from datetime import datetime
from importlib import resources
from typing import Any

import msgspec

from consent import Mode, Signals, SitePolicy


def load(name: str) -> dict[str, Any]:
    text = (resources.files("consent") / "vectors" / name).read_text(encoding="utf-8")
    document: dict[str, Any] = json.loads(text)
    return document


def site_of(vector: dict[str, Any]) -> SitePolicy:
    return msgspec.convert(vector["site"], SitePolicy)


def signals_of(vector: dict[str, Any]) -> Signals:
    return Signals(
        claim=None if vector["claim"] is None else Mode(vector["claim"]),
        tc_string=vector["tc_string"],
        gcm=vector["gcm"],
        sec_gpc=tuple(vector["sec_gpc"]),
        dnt=tuple(vector["dnt"]),
    )


def now_of(vector: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(vector["now"])
