"""The wire format of ``POST /api/hit`` and ``POST /api/batch``: field names and limits, once.

The snippet and docs/ingest-api.md use exactly these names. Every string refuses control characters;
numbers are finite and bounded; unknown fields are refused.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal, TypeVar

import msgspec
from msgspec import Meta

from collector.errors import BadRequestError
from consent.modes import Mode

MAX_HIT_BYTES = 64 * 1024
MAX_BATCH_BYTES = 1024 * 1024
MAX_BATCH_EVENTS = 1000
MAX_ENGAGED_MS = 24 * 60 * 60 * 1000

_PRINTABLE = r"^[^\x00-\x1f\x7f]*$"

SiteId = Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_.-]*$")]
Url = Annotated[str, Meta(min_length=1, max_length=2048, pattern=_PRINTABLE)]
EventName = Annotated[str, Meta(min_length=1, max_length=100, pattern=_PRINTABLE)]
TcString = Annotated[str, Meta(min_length=1, max_length=8192, pattern=r"^[A-Za-z0-9_.-]+$")]
ClientId = Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
UserId = Annotated[str, Meta(min_length=1, max_length=256, pattern=_PRINTABLE)]
PropKey = Annotated[str, Meta(min_length=1, max_length=64, pattern=_PRINTABLE)]
PropText = Annotated[str, Meta(max_length=500, pattern=_PRINTABLE)]
Finite = Annotated[float, Meta(ge=-1e15, le=1e15)]
Integer = Annotated[int, Meta(ge=-(10**15), le=10**15)]
PropValue = PropText | Integer | Finite | bool
Props = Annotated[dict[PropKey, PropValue], Meta(max_length=30)]
DecimalText = Annotated[str, Meta(max_length=24, pattern=r"^-?[0-9]{1,15}(\.[0-9]{1,6})?$")]
Currency = Annotated[str, Meta(pattern=r"^[A-Z]{3}$")]
ScreenWidth = Annotated[int, Meta(ge=0, le=100_000)]
EngagedMs = Annotated[int, Meta(ge=0, le=MAX_ENGAGED_MS)]
GcmType = Literal[
    "ad_storage",
    "ad_user_data",
    "ad_personalization",
    "analytics_storage",
    "functionality_storage",
    "personalization_storage",
    "security_storage",
]
GcmState = Literal["granted", "denied"]
EpochMs = Annotated[int, Meta(ge=0, le=10**14)]
IpText = Annotated[str, Meta(min_length=2, max_length=45, pattern=r"^[0-9A-Fa-f:.]+$")]
UserAgent = Annotated[str, Meta(max_length=1024, pattern=_PRINTABLE)]


class WireStruct(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Shared options of everything a client sends."""


class Revenue(WireStruct):
    amount: DecimalText | Integer | Finite
    currency: Currency

    @property
    def decimal(self) -> str:
        """The amount as a decimal string (numbers are written in their shortest exact form)."""
        if isinstance(self.amount, str):
            return self.amount
        return repr(self.amount)


class HitIn(WireStruct):
    """One hit, as the snippet sends it."""

    site: SiteId
    url: Url
    name: EventName = "pageview"
    referrer: Url | None = None
    mode: Mode | None = None
    tcf: TcString | None = None
    gcm: dict[GcmType, GcmState] | None = None
    cid: ClientId | None = None
    uid: UserId | None = None
    props: Props | None = None
    revenue: Revenue | None = None
    screen: ScreenWidth | None = None
    engaged_ms: EngagedMs | None = None


class BatchEventIn(HitIn):
    """One event of ``POST /api/batch``: a hit plus its time and, with a token, its client."""

    ts: EpochMs | None = None
    ip: IpText | None = None
    ua: UserAgent | None = None


BatchIn = Annotated[list[BatchEventIn], Meta(min_length=1, max_length=MAX_BATCH_EVENTS)]

hit_decoder = msgspec.json.Decoder(HitIn)
batch_decoder = msgspec.json.Decoder(BatchIn)

T = TypeVar("T")

_PATH = re.compile(r" - at `(?:key` in `)?(\$[^`]*)`$")
_NAMED_FIELD = re.compile(r"(?:missing required|unknown) field `([^`]+)`")


def decode_hit(body: bytes) -> HitIn:
    return _decode(hit_decoder, body)


def decode_batch(body: bytes) -> list[BatchEventIn]:
    return _decode(batch_decoder, body)


def _decode(decoder: msgspec.json.Decoder[T], body: bytes) -> T:
    """Decode ``body`` or raise :class:`BadRequestError` naming the offending field."""
    try:
        return decoder.decode(body)
    except msgspec.ValidationError as exc:
        message = str(exc)
        match = _PATH.search(message)
        field = match.group(1) if match else "$"
        named = _NAMED_FIELD.search(message)
        if named:  # the object is the path; the field it lacks or should not have is more useful
            field = f"{field}.{named.group(1)}"
        raise BadRequestError(_PATH.sub("", message), field=field) from None
    except msgspec.DecodeError as exc:
        raise BadRequestError(f"invalid JSON: {exc}", field="$") from None
    except UnicodeDecodeError:
        raise BadRequestError("body is not valid UTF-8", field="$") from None
    except RecursionError:
        raise BadRequestError("JSON nested too deeply", field="$") from None
