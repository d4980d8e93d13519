"""Every error Mesure raises on purpose, in one tree.

```
MesureError
├── ConfigError            invalid mesure.toml or environment (CLI exit code 2)
├── KeyFileError           a key file is unreadable, malformed or readable by others
├── AuditLogError          the audit log cannot be appended to
└── HTTPError              answered to a client; ``status`` and ``headers`` say how
    ├── BadRequestError        400, names the offending field (``$.path``)
    ├── ForbiddenError         403, unknown site, hostname not allowed, bad ingest token
    ├── RequestTimeoutError    408, body not received in time
    ├── PayloadTooLargeError   413, body over the limit
    ├── RateLimitedError       429, with ``Retry-After``
    └── UnavailableError       503, with ``Retry-After``
        ├── QueueFullError         the write queue is full
        └── WriteFailedError       the group commit failed (disk full, I/O error)
```
"""

from __future__ import annotations

from pathlib import Path


class MesureError(Exception):
    """Base of every error Mesure raises on purpose."""


class ConfigError(MesureError):
    """The configuration is invalid; the message names the key and the file."""

    def __init__(self, message: str, *, path: Path | str, key: str | None = None) -> None:
        self.path = str(path)
        self.key = key
        where = f"{self.path}: {key}: " if key else f"{self.path}: "
        super().__init__(where + message)


class KeyFileError(MesureError):
    """A key file is unreadable, malformed, or readable by users other than its owner."""


class AuditLogError(MesureError):
    """The audit log cannot be appended to or read."""


class HTTPError(MesureError):
    """An error answered to the client with ``status``, a JSON body and ``headers``."""

    status = 500

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    @property
    def headers(self) -> dict[str, str]:
        return {}


class BadRequestError(HTTPError):
    status = 400


class ForbiddenError(HTTPError):
    status = 403


class RequestTimeoutError(HTTPError):
    status = 408


class PayloadTooLargeError(HTTPError):
    status = 413


class _RetryLaterError(HTTPError):
    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after

    @property
    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


class RateLimitedError(_RetryLaterError):
    status = 429


class UnavailableError(_RetryLaterError):
    status = 503


class QueueFullError(UnavailableError):
    """The bounded write queue is full: the hit is refused, never silently dropped."""


class WriteFailedError(UnavailableError):
    """The group commit failed: nothing in the group was acknowledged."""
