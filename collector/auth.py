"""Access control: users (scrypt), login sessions, API tokens, roles and per-site grants.

Roles: ``owner`` may do everything; ``analyst`` reads reports; ``dpo`` reads reports and uses
the privacy tools. A user or token with no site grant sees every site; with grants, only those.
API tokens and session tokens are random, shown once, and stored only as SHA-256 digests.
Failed logins are limited per account (:data:`MAX_FAILURES` in :data:`FAILURE_WINDOW_MS`).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import secrets
from collections.abc import Sequence
from typing import Literal

import msgspec

from collector.config import Config
from collector.storage.auth_sqlite import AccountRow, AuthDatabase

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
MAX_FAILURES = 5
FAILURE_WINDOW_MS = 15 * 60 * 1000
MIN_PASSWORD_LENGTH = 10
# scrypt cost: n = 2**15, r = 8 (32 MiB, tens of milliseconds); stored with the hash so it can grow.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**15, 8, 1


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


class LoginThrottledError(Exception):
    """Too many failed logins for this account; retry after ``retry_after`` seconds."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many failed logins, retry in {retry_after} s")
        self.retry_after = retry_after


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
    db: AuthDatabase, email: str, password: str, role: str, sites: Sequence[str], now_ms: int
) -> int:
    return db.add_user(
        normalize_email(email), check_role(role), hash_password(password), sites, now_ms
    )


def create_token(
    db: AuthDatabase, name: str, role: str, sites: Sequence[str], now_ms: int
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


def login(db: AuthDatabase, email: str, password: str, now_ms: int) -> str | None:
    """A new session token for valid credentials, ``None`` otherwise.

    Raises :class:`LoginThrottledError` after too many recent failures for this account,
    before the password is even checked.
    """
    subject = sha256_hex("login:" + email.strip().lower())
    failures = db.failures_since(subject, now_ms - FAILURE_WINDOW_MS)
    if len(failures) >= MAX_FAILURES:
        retry_ms = failures[-MAX_FAILURES] + FAILURE_WINDOW_MS - now_ms
        raise LoginThrottledError(max(1, -(-retry_ms // 1000)))
    found = db.password_hash(email.strip().lower())
    if found is None:
        # Spend the same scrypt time as for a real account: the answer's delay must not tell
        # which e-mail addresses have an account.
        verify_password(password, _unknown_account_hash())
    if found is None or not verify_password(password, found[1]):
        db.record_failure(subject, now_ms, now_ms - FAILURE_WINDOW_MS)
        return None
    db.clear_failures(subject)
    session = secrets.token_urlsafe(32)
    db.create_session(sha256_hex(session), found[0], now_ms, now_ms + SESSION_LIFETIME_MS)
    return session


def change_password(
    db: AuthDatabase, email: str, current: str, new: str, now_ms: int, *, n: int = SCRYPT_N
) -> str | None:
    """Replace ``email``'s password when ``current`` is right: every session of the account
    ends (a stolen cookie dies with the old password) and a new session token is returned.

    ``None`` for a wrong ``current`` password, which counts as a failed login (so this cannot
    be used to guess passwords faster); :class:`LoginThrottledError` as for :func:`login`;
    ``ValueError`` for a new password that is too short.
    """
    replacement = hash_password(new, n=n)
    if login(db, email, current, now_ms) is None:
        return None
    db.set_password(email.strip().lower(), replacement)
    session = secrets.token_urlsafe(32)
    found = db.password_hash(email.strip().lower())
    assert found is not None  # the login above found the account
    db.create_session(sha256_hex(session), found[0], now_ms, now_ms + SESSION_LIFETIME_MS)
    return session


def logout(db: AuthDatabase, session: str) -> None:
    db.delete_session(sha256_hex(session))


def authenticate(
    db: AuthDatabase, *, bearer: str | None, session: str | None, now_ms: int
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
