"""Access control: users (scrypt), login sessions, API tokens, roles and per-site grants.

Roles: ``owner`` may do everything; ``analyst`` reads reports; ``dpo`` reads reports and uses
the privacy tools. A user or token with no site grant sees every site; with grants, only those.
API tokens and session tokens are random, shown once, and stored only as SHA-256 digests.

Failed logins are throttled per account and address, per address and per account
(:data:`THROTTLES`): past a number of free failures, each attempt waits after the last failure,
1 s doubling up to 15 minutes. An attempt is reserved (counted as a failure) in the database
before its password is hashed and taken back if it succeeds, so concurrent attempts, in any
worker process, cannot pass the limit. At most :data:`MAX_CONCURRENT_HASHES` scrypt
computations run at once in a process (:func:`hashing_slot`): each holds 32 MiB.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import secrets
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Literal

import msgspec

from collector.config import Config
from collector.errors import LoginThrottledError
from collector.storage.ports import AccountStore
from collector.storage.rows import AccountRow

Role = Literal["owner", "analyst", "dpo"]
ROLES: tuple[Role, ...] = ("owner", "analyst", "dpo")
Permission = Literal["reports", "manage", "privacy"]
PERMISSIONS: dict[Role, frozenset[Permission]] = {
    "owner": frozenset({"reports", "manage", "privacy"}),
    "analyst": frozenset({"reports"}),
    "dpo": frozenset({"reports", "privacy"}),
}
TOKEN_PREFIX = "msr_"
SESSION_COOKIE = "mesure_session"
SESSION_LIFETIME_MS = 14 * 24 * 3600 * 1000
MIN_PASSWORD_LENGTH = 10
# scrypt cost: n = 2**15, r = 8 (32 MiB, tens of milliseconds); stored with the hash so it can grow.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**15, 8, 1
#: scrypt computations at once per process (32 MiB each): twenty anonymous logins at once grew
#: a worker from 49 to 584 MB without this bound, to 116 MB with it. Beyond it a login is
#: refused at once (429, ``Retry-After: 1``).
MAX_CONCURRENT_HASHES = 2
BACKOFF_FIRST_MS = 1000
BACKOFF_MAX_MS = 15 * 60 * 1000
HOUR_MS = 3600 * 1000


class Throttle(msgspec.Struct, frozen=True, kw_only=True):
    """One way of counting failed logins: ``free`` failures within ``memory_ms`` cost nothing;
    after that, each attempt waits for the back-off after the last failure."""

    kind: Literal["account-address", "address", "account"]
    free: int
    memory_ms: int
    #: A successful login forgets these failures. Not an address's: an attacker could reset
    #: their address by logging in to an account of their own.
    forgotten_at_login: bool


THROTTLES: tuple[Throttle, ...] = (
    # What a user mistyping their password meets; an attacker elsewhere does not touch it.
    Throttle(kind="account-address", free=5, memory_ms=24 * HOUR_MS, forgotten_at_login=True),
    # One address trying many e-mail addresses (an office behind one NAT shares it: generous).
    Throttle(kind="address", free=20, memory_ms=HOUR_MS, forgotten_at_login=False),
    # Many addresses trying one account: bounds guesses per account, whatever their number.
    Throttle(kind="account", free=50, memory_ms=24 * HOUR_MS, forgotten_at_login=True),
)
MAX_FAILURES = THROTTLES[0].free
FAILURE_MEMORY_MS = max(throttle.memory_ms for throttle in THROTTLES)
_hashing = threading.BoundedSemaphore(MAX_CONCURRENT_HASHES)


class Principal(msgspec.Struct, frozen=True, kw_only=True):
    """Who is calling: a logged-in user or an API token."""

    kind: Literal["user", "token"]
    id: int
    name: str
    role: Role
    #: Granted sites; empty means every configured site.
    sites: tuple[str, ...]
    #: The session token (cookie) when ``kind == "user"``; it keys the CSRF token.
    session: str | None = None

    def may(self, permission: Permission) -> bool:
        return permission in PERMISSIONS[self.role]

    def may_see(self, site: str) -> bool:
        return not self.sites or site in self.sites

    def visible_sites(self, config: Config) -> list[str]:
        return [site.id for site in config.sites if self.may_see(site.id)]


def backoff_ms(failures: int, free: int) -> int:
    """The wait after the last of ``failures``: none below ``free``, then 1 s doubling per
    failure up to 15 minutes."""
    if failures < free:
        return 0
    return min(BACKOFF_FIRST_MS << min(failures - free, 30), BACKOFF_MAX_MS)


@contextmanager
def hashing_slot() -> Iterator[None]:
    """One of the process's :data:`MAX_CONCURRENT_HASHES` slots for password hashing, held by
    the thread that hashes; :class:`LoginThrottledError` at once when none is free (waiting
    would hold the request, and queueing them is how memory grew)."""
    if not _hashing.acquire(blocking=False):
        raise LoginThrottledError(1, "too many logins at once")
    try:
        yield
    finally:
        _hashing.release()


def check_role(role: str) -> Role:
    for known in ROLES:
        if role == known:
            return known
    raise ValueError(f"unknown role {role!r} (owner, analyst or dpo)")


def hash_password(password: str, *, n: int = SCRYPT_N) -> str:
    """``scrypt$n$r$p$salt$hash`` (base64) of ``password`` with a random 16-byte salt."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValueError(f"a password has at least {MIN_PASSWORD_LENGTH} characters")
    salt = secrets.token_bytes(16)
    digest = _scrypt(password, salt, n, SCRYPT_R, SCRYPT_P)
    return "$".join(["scrypt", str(n), str(SCRYPT_R), str(SCRYPT_P), _b64(salt), _b64(digest)])


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    found = _scrypt(password, base64.b64decode(salt), int(n), int(r), int(p))
    return hmac.compare_digest(found, base64.b64decode(digest))


@functools.cache
def _unknown_account_hash() -> str:
    return hash_password(secrets.token_urlsafe(16))


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        password.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=256 * n * r * 2, dklen=32
    )


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def sha256_hex(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def normalize_email(email: str) -> str:
    cleaned = email.strip().lower()
    if "@" not in cleaned or len(cleaned) > 254 or any(c.isspace() for c in cleaned):
        raise ValueError(f"not an e-mail address: {email!r}")
    return cleaned


def check_sites(config: Config, sites: Sequence[str]) -> list[str]:
    unknown = [site for site in sites if config.site(site) is None]
    if unknown:
        raise ValueError(f"unknown site {unknown[0]!r}")
    return sorted(set(sites))


def add_user(
    db: AccountStore, email: str, password: str, role: str, sites: Sequence[str], now_ms: int
) -> int:
    return db.add_user(
        normalize_email(email), check_role(role), hash_password(password), sites, now_ms
    )


def create_token(
    db: AccountStore, name: str, role: str, sites: Sequence[str], now_ms: int
) -> tuple[int, str]:
    """A new API token: its id and the secret, which is shown once and never stored."""
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token_id = db.add_token(name, sha256_hex(secret), check_role(role), sites, now_ms)
    return token_id, secret


def _principal(row: AccountRow, kind: Literal["user", "token"], session: str | None) -> Principal:
    return Principal(
        kind=kind,
        id=row.id,
        name=row.name,
        role=check_role(row.role),
        sites=row.sites,
        session=session,
    )


def _subjects(email: str, address: str) -> list[tuple[Throttle, str]]:
    """Each throttle's subject for a login of ``email`` from ``address``, as digests."""
    keys = {
        "account-address": f"login-pair:{len(email)}:{email}:{address}",
        "address": f"login-address:{address}",
        "account": f"login:{email}",
    }
    return [(throttle, sha256_hex(keys[throttle.kind])) for throttle in THROTTLES]


class _Attempt(msgspec.Struct, frozen=True):
    """A reserved login attempt: the failure rows it added, and the subjects a success
    forgets."""

    rows: list[int]
    forgotten_at_login: list[str]


def _reserve(db: AccountStore, email: str, address: str, now_ms: int) -> _Attempt:
    """Count this attempt as a failure before the password is checked, unless a throttle says
    to wait (:class:`LoginThrottledError`). Reading the counts and adding the attempt happen
    in one write transaction, so concurrent attempts (in any process) see each other."""
    subjects = _subjects(email, address)
    with db.write_turn():
        db.forget_failures(now_ms - FAILURE_MEMORY_MS)
        wait_ms = 0
        for throttle, subject in subjects:
            times = db.failure_times(subject, now_ms - throttle.memory_ms)
            backoff = backoff_ms(len(times), throttle.free)
            # Only a back-off makes a wait: below the free tries, a concurrent attempt stamped
            # later than this one (it arrived later, was reserved first) is no reason to wait.
            if backoff:
                wait_ms = max(wait_ms, times[-1] + backoff - now_ms)
        if wait_ms > 0:
            raise LoginThrottledError(-(-wait_ms // 1000))
        rows = db.add_failures([subject for _throttle, subject in subjects], now_ms)
    forgotten = [subject for throttle, subject in subjects if throttle.forgotten_at_login]
    return _Attempt(rows, forgotten)


def _check_password(
    db: AccountStore, email: str, password: str, now_ms: int, address: str
) -> tuple[int, _Attempt] | None:
    """The user id for a right password of an enabled account (its attempt still reserved),
    ``None`` otherwise (the attempt stays a failure)."""
    name = email.strip().lower()
    attempt = _reserve(db, name, address, now_ms)
    found = db.password_hash(name)
    if found is None:
        # Spend the same scrypt time as for a real account: the answer's delay must not tell
        # which e-mail addresses have an account.
        verify_password(password, _unknown_account_hash())
    if found is None or not verify_password(password, found[1]):
        return None
    return found[0], attempt


def login(
    db: AccountStore, email: str, password: str, now_ms: int, *, address: str = ""
) -> str | None:
    """A new session token for valid credentials, ``None`` otherwise.

    ``address`` keys the per-address throttles: an opaque key of the client's address (the
    routes pass a keyed hash, never the address). Raises :class:`LoginThrottledError` when a
    throttle says to wait, before the password is even checked.
    """
    checked = _check_password(db, email, password, now_ms, address)
    if checked is None:
        return None
    user_id, attempt = checked
    db.take_back_failures(attempt.rows, attempt.forgotten_at_login)
    session = secrets.token_urlsafe(32)
    db.create_session(sha256_hex(session), user_id, now_ms, now_ms + SESSION_LIFETIME_MS)
    return session


def change_password(
    db: AccountStore,
    email: str,
    current: str,
    new: str,
    now_ms: int,
    *,
    n: int = SCRYPT_N,
    address: str = "",
) -> str | None:
    """Replace ``email``'s password when ``current`` is right: every session of the account
    ends (a stolen cookie dies with the old password) and a new session token is returned.

    ``None`` for a wrong ``current`` password, which counts as a failed login (so this cannot
    be used to guess passwords faster); :class:`LoginThrottledError` as for :func:`login`;
    ``ValueError`` for a new password that is too short.
    """
    if len(new) < MIN_PASSWORD_LENGTH:
        raise ValueError(f"a password has at least {MIN_PASSWORD_LENGTH} characters")
    checked = _check_password(db, email, current, now_ms, address)
    if checked is None:
        return None
    user_id, attempt = checked
    db.set_password(email.strip().lower(), hash_password(new, n=n))
    db.take_back_failures(attempt.rows, attempt.forgotten_at_login)
    session = secrets.token_urlsafe(32)
    db.create_session(sha256_hex(session), user_id, now_ms, now_ms + SESSION_LIFETIME_MS)
    return session


def logout(db: AccountStore, session: str) -> None:
    db.delete_session(sha256_hex(session))


def authenticate(
    db: AccountStore, *, bearer: str | None, session: str | None, now_ms: int
) -> Principal | None:
    """The caller behind an ``Authorization: Bearer`` token or a session cookie."""
    if bearer is not None:
        token = db.token_by_hash(sha256_hex(bearer))
        return None if token is None else _principal(token, "token", None)
    if session is not None:
        user = db.session_user(sha256_hex(session), now_ms)
        return None if user is None else _principal(user, "user", session)
    return None


def csrf_token(session: str) -> str:
    """The CSRF token of a login session: forms and ``X-CSRF-Token`` headers carry it."""
    return hmac.new(session.encode("utf-8"), b"mesure-csrf", hashlib.sha256).hexdigest()


def csrf_valid(session: str, candidate: str | None) -> bool:
    return candidate is not None and hmac.compare_digest(csrf_token(session), candidate)
