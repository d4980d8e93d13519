"""Every error Mesure raises on purpose, in one tree.

```
MesureError
├── ConfigError            invalid mesure.toml or environment (CLI exit code 2)
├── KeyFileError           a key file is unreadable, malformed or readable by others
├── KeyEpochError          a key epoch cannot be destroyed: the current one, or not kept
├── AuditLogError          the audit log cannot be appended to
├── DuplicateUserError     an account with this e-mail address already exists
├── LoginThrottledError    too many failed logins, or logins at once; ``retry_after`` s
├── PrivacyToolError       a privacy command cannot do what was asked
├── BackupError            a backup or restore cannot be done as asked; nothing written
├── WorkersFailedError     the workers of ``mesure serve`` could not start, or kept dying
├── TCStringError          a TC string cannot be decoded (``consent.tcf``; a ValueError too)
└── HTTPError              answered to a client; ``status`` and ``headers`` say how
    ├── BadRequestError        400, names the offending field (``$.path``)
    │   └── ReportParameterError   400, a report's parameter (a ValueError too)
    ├── UnauthorizedError      401, no valid session cookie or API token
    ├── ForbiddenError         403, unknown site, hostname not allowed, bad ingest token
    ├── RequestTimeoutError    408, body not received in time
    ├── PayloadTooLargeError   413, body over the limit
    ├── RateLimitedError       429, with ``Retry-After``
    └── UnavailableError       503, with ``Retry-After``
        ├── QueueFullError         the write queue is full
        └── WriteFailedError       the group commit failed (disk full, I/O error)
```

Each class is declared here, where the whole tree can be read, but two: ``consent/`` is pure
and imports nothing of the collector, so the root ``MesureError`` is declared in
``consent/errors.py`` (re-exported here) and the TC string decoder keeps its ``TCStringError``.
The command line turns these errors into click's exits (``ConfigProblem``, ``BackupProblem``:
exit code 2), the web app into the JSON answer of ``HTTPError``.
``tests/collector/test_error_tree.py`` checks that this drawing is the tree.
"""

from __future__ import annotations

from pathlib import Path

from consent.errors import MesureError as MesureError


class ConfigError(MesureError):
    """The configuration is invalid; the message names the key and the file."""

    def __init__(self, message: str, *, path: Path | str, key: str | None = None) -> None:
        self.path = str(path)
        self.key = key
        where = f"{self.path}: {key}: " if key else f"{self.path}: "
        super().__init__(where + message)


class KeyFileError(MesureError):
    """A key file is unreadable, malformed, or readable by users other than its owner."""


class KeyEpochError(MesureError):
    """An epoch cannot be destroyed: it is the current one, or it is not kept."""


class AuditLogError(MesureError):
    """The audit log cannot be appended to or read."""


class DuplicateUserError(MesureError):
    """A user with this e-mail address already exists."""


class LoginThrottledError(MesureError):
    """Too many failed logins (or too many logins at once); retry after ``retry_after`` s."""

    def __init__(self, retry_after: int, message: str = "too many failed logins") -> None:
        super().__init__(f"{message}, retry in {retry_after} s")
        self.retry_after = retry_after


class PrivacyToolError(MesureError):
    """A privacy command cannot do what was asked (unknown site, bad period, missing extra)."""


class BackupError(MesureError):
    """A backup or restore cannot be done as asked; nothing was written."""


class WorkersFailedError(MesureError):
    """The collector's workers could not start, or kept dying."""


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


class ReportParameterError(BadRequestError, ValueError):
    """A report's parameter is wrong, found by the report code itself; ``field`` names it.

    A ValueError too: raised in a msgspec ``__post_init__`` (a period, a filter's dimension), it
    becomes a ``ValidationError`` when a query is decoded, and callers outside HTTP catch it as
    the bad value it is."""

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(message, field=field)


class UnauthorizedError(HTTPError):
    """401: no valid session cookie or API token."""

    status = 401

    @property
    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": 'Bearer realm="mesure"'}


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
