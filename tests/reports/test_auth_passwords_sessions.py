"""Passwords (scrypt), sessions that expire, CSRF tokens bound to their session."""

from __future__ import annotations

from pathlib import Path

import pytest

from collector import auth
from collector.storage.sqlite.accounts import auth_database
from collector.storage.sqlite.events import open_storage

PASSWORD = "a long enough password"


def test_password_hashes_are_salted_scrypt() -> None:
    first = auth.hash_password(PASSWORD, n=2**12)
    second = auth.hash_password(PASSWORD, n=2**12)
    assert first.startswith("scrypt$4096$8$1$")
    assert first != second
    assert auth.verify_password(PASSWORD, first)
    assert not auth.verify_password(PASSWORD + "!", first)
    assert not auth.verify_password(PASSWORD, "md5$abc")


def test_csrf_token_is_bound_to_its_session() -> None:
    token = auth.csrf_token("session-one")
    assert auth.csrf_valid("session-one", token)
    assert not auth.csrf_valid("session-two", token)
    assert not auth.csrf_valid("session-one", None)


@pytest.fixture
def database(tmp_path: Path) -> Path:
    path = tmp_path / "mesure.db"
    open_storage(path).close()
    return path


def test_sessions_expire_and_end_at_logout(database: Path) -> None:
    with auth_database(database) as db:
        db.add_user("o@example.test", "owner", auth.hash_password(PASSWORD, n=2**12), [], 0)
        session = auth.login(db, "o@example.test", PASSWORD, 1_000)
        assert session is not None
        last_moment = 1_000 + auth.SESSION_LIFETIME_MS - 1
        found = auth.authenticate(db, bearer=None, session=session, now_ms=last_moment)
        assert found is not None and (found.kind, found.role, found.sites) == ("user", "owner", ())
        assert auth.authenticate(db, bearer=None, session=session, now_ms=last_moment + 1) is None
        again = auth.login(db, "o@example.test", PASSWORD, 2_000)
        assert again is not None
        auth.logout(db, again)
        assert auth.authenticate(db, bearer=None, session=again, now_ms=2_001) is None


def test_a_bearer_header_is_never_a_session(database: Path) -> None:
    with auth_database(database) as db:
        db.add_user("o@example.test", "owner", auth.hash_password(PASSWORD, n=2**12), [], 0)
        session = auth.login(db, "o@example.test", PASSWORD, 0)
        assert session is not None
        assert auth.authenticate(db, bearer=session, session=None, now_ms=1) is None


@pytest.mark.parametrize(
    ("role", "reports", "manage", "privacy"),
    [("owner", True, True, True), ("analyst", True, False, False), ("dpo", True, False, True)],
)
def test_role_permissions(role: auth.Role, reports: bool, manage: bool, privacy: bool) -> None:
    principal = auth.Principal(kind="token", id=1, name="t", role=role, sites=("example",))
    assert (principal.may("reports"), principal.may("manage"), principal.may("privacy")) == (
        reports,
        manage,
        privacy,
    )
    assert principal.may_see("example") and not principal.may_see("other")


def test_attempts_reserved_out_of_their_arrival_order_are_not_refused(database: Path) -> None:
    """Concurrent logins are stamped when they arrive but reserved in turn: one that arrived
    first may be reserved second. Below the free tries that is no reason to wait (a fresh
    Debian root once saw a 429 on the second of two concurrent logins)."""
    with auth_database(database) as db:
        db.add_user("o@example.test", "owner", auth.hash_password(PASSWORD, n=2**12), [], 0)
        assert auth.login(db, "o@example.test", "wrong password!", 5_000, address="a") is None
        assert auth.login(db, "o@example.test", "wrong password!", 4_990, address="a") is None
        assert auth.login(db, "o@example.test", PASSWORD, 4_980, address="a") is not None
