"""Users, login sessions, API tokens, per-site grants and login failures, in SQLite.

Secrets never reach this module in clear: passwords arrive as scrypt hashes, session and API
tokens as SHA-256 hex digests, login subjects as digests too. A disabled user keeps its row and
grants but has no session and cannot log in.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager
from pathlib import Path

from collector.errors import DuplicateUserError
from collector.storage.rows import AccountRow


class AuthDatabase:
    """The accounts on one connection (:class:`~collector.storage.ports.AccountStore`)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def _sites(self, table: str, column: str, owner_id: int) -> tuple[str, ...]:
        # ``table`` and ``column`` come from this module's own constants, never from a request.
        rows = self._conn.execute(
            f"SELECT site FROM {table} WHERE {column} = ? ORDER BY site", (owner_id,)
        ).fetchall()
        return tuple(row[0] for row in rows)

    def add_user(
        self, email: str, role: str, password_hash: str, sites: Sequence[str], now_ms: int
    ) -> int:
        try:
            with self._conn:
                cursor = self._conn.execute(
                    "INSERT INTO users (email, role, password_hash, created_ts) "
                    "VALUES (?, ?, ?, ?)",
                    (email, role, password_hash, now_ms),
                )
                user_id = int(cursor.lastrowid or 0)
                self._conn.executemany(
                    "INSERT INTO user_sites (user_id, site) VALUES (?, ?)",
                    [(user_id, site) for site in sites],
                )
        except sqlite3.IntegrityError as exc:
            raise DuplicateUserError(email) from exc
        return user_id

    def set_password(self, email: str, password_hash: str) -> bool:
        """Replace the hash and end every session of the user."""
        with self._conn:
            cursor = self._conn.execute(
                "UPDATE users SET password_hash = ? WHERE email = ?", (password_hash, email)
            )
            self._end_sessions(email)
        return cursor.rowcount > 0

    def password_hash(self, email: str) -> tuple[int, str] | None:
        """The id and hash of the user ``email``; ``None`` when there is none or it is
        disabled (a login then fails like a wrong password)."""
        row = self._conn.execute(
            "SELECT id, password_hash FROM users WHERE email = ? AND disabled_ts IS NULL",
            (email,),
        ).fetchone()
        return None if row is None else (int(row[0]), str(row[1]))

    def users(self, user_id: int | None = None) -> list[AccountRow]:
        """Every user by e-mail address, or only ``user_id``."""
        rows = self._conn.execute(
            "SELECT id, email, role, created_ts, disabled_ts FROM users "
            "WHERE ? IS NULL OR id = ? ORDER BY email",
            (user_id, user_id),
        ).fetchall()
        return [
            AccountRow(
                id=row[0],
                name=row[1],
                role=row[2],
                sites=self._sites("user_sites", "user_id", row[0]),
                created_ts=row[3],
                disabled_ts=row[4],
            )
            for row in rows
        ]

    def user_by_email(self, email: str) -> AccountRow | None:
        row = self._conn.execute("SELECT id FROM users WHERE email = ?", (email,)).fetchone()
        return None if row is None else self.user(int(row[0]))

    def set_disabled(self, email: str, disabled_ts: int | None) -> bool:
        """Disable (``disabled_ts``) or enable (``None``) the user ``email``; a disabled user's
        sessions end in the same transaction. ``False`` if there is no such user."""
        with self._conn:
            cursor = self._conn.execute(
                "UPDATE users SET disabled_ts = ? WHERE email = ?", (disabled_ts, email)
            )
            if disabled_ts is not None:
                self._end_sessions(email)
        return cursor.rowcount > 0

    def set_grants(self, email: str, role: str, sites: Sequence[str]) -> bool:
        """Replace the role and site grants of ``email`` and end its sessions (a session must
        not keep rights its account lost). ``False`` if there is no such user."""
        with self._conn:
            cursor = self._conn.execute("UPDATE users SET role = ? WHERE email = ?", (role, email))
            self._conn.execute(
                "DELETE FROM user_sites WHERE user_id IN (SELECT id FROM users WHERE email = ?)",
                (email,),
            )
            self._conn.executemany(
                "INSERT INTO user_sites (user_id, site) SELECT id, ? FROM users WHERE email = ?",
                [(site, email) for site in sites],
            )
            self._end_sessions(email)
        return cursor.rowcount > 0

    def remove_user(self, email: str) -> bool:
        """Delete the user ``email`` with its grants and sessions (``ON DELETE CASCADE``)."""
        with self._conn:
            self._end_sessions(email)
            cursor = self._conn.execute("DELETE FROM users WHERE email = ?", (email,))
        return cursor.rowcount > 0

    def _end_sessions(self, email: str) -> None:
        self._conn.execute(
            "DELETE FROM login_sessions WHERE user_id IN (SELECT id FROM users WHERE email = ?)",
            (email,),
        )

    def user(self, user_id: int) -> AccountRow | None:
        found = self.users(user_id)
        return found[0] if found else None

    def create_session(self, token_sha256: str, user_id: int, now_ms: int, expires_ms: int) -> None:
        with self._conn:
            self._conn.execute("DELETE FROM login_sessions WHERE expires_ts <= ?", (now_ms,))
            self._conn.execute(
                "INSERT INTO login_sessions (token_sha256, user_id, created_ts, expires_ts) "
                "VALUES (?, ?, ?, ?)",
                (token_sha256, user_id, now_ms, expires_ms),
            )

    def session_user(self, token_sha256: str, now_ms: int) -> AccountRow | None:
        # Disabling ends the sessions already; the join also refuses any a race let through.
        row = self._conn.execute(
            "SELECT user_id FROM login_sessions JOIN users ON users.id = user_id "
            "WHERE token_sha256 = ? AND expires_ts > ? AND disabled_ts IS NULL",
            (token_sha256, now_ms),
        ).fetchone()
        return None if row is None else self.user(int(row[0]))

    def delete_session(self, token_sha256: str) -> None:
        with self._conn:
            self._conn.execute("DELETE FROM login_sessions WHERE token_sha256 = ?", (token_sha256,))

    def add_token(
        self, name: str, token_sha256: str, role: str, sites: Sequence[str], now_ms: int
    ) -> int:
        with self._conn:
            cursor = self._conn.execute(
                "INSERT INTO api_tokens (name, token_sha256, role, created_ts) VALUES (?, ?, ?, ?)",
                (name, token_sha256, role, now_ms),
            )
            token_id = int(cursor.lastrowid or 0)
            self._conn.executemany(
                "INSERT INTO token_sites (token_id, site) VALUES (?, ?)",
                [(token_id, site) for site in sites],
            )
        return token_id

    def tokens(self, token_sha256: str | None = None) -> list[AccountRow]:
        """Every token by id, or only the active one whose digest is ``token_sha256``."""
        rows = self._conn.execute(
            "SELECT id, name, role, created_ts, revoked_ts FROM api_tokens "
            "WHERE ? IS NULL OR (token_sha256 = ? AND revoked_ts IS NULL) ORDER BY id",
            (token_sha256, token_sha256),
        ).fetchall()
        return [
            AccountRow(
                id=row[0],
                name=row[1],
                role=row[2],
                sites=self._sites("token_sites", "token_id", row[0]),
                created_ts=row[3],
                revoked_ts=row[4],
            )
            for row in rows
        ]

    def token_by_hash(self, token_sha256: str) -> AccountRow | None:
        found = self.tokens(token_sha256)
        return found[0] if found else None

    def revoke_token(self, token_id: int, now_ms: int) -> bool:
        with self._conn:
            cursor = self._conn.execute(
                "UPDATE api_tokens SET revoked_ts = ? WHERE id = ? AND revoked_ts IS NULL",
                (now_ms, token_id),
            )
        return cursor.rowcount > 0

    @contextmanager
    def write_turn(self) -> Iterator[None]:
        """One transaction that takes SQLite's write lock at once (``BEGIN IMMEDIATE``): what
        is read inside cannot change before it commits, in this process or another (the worker
        processes of ``mesure serve`` share this database)."""
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._conn.rollback()
            raise
        self._conn.commit()

    def failure_times(self, subject: str, since_ms: int) -> list[int]:
        """Times of ``subject``'s failed (or still running) login attempts since ``since_ms``."""
        rows = self._conn.execute(
            "SELECT ts FROM login_failures WHERE subject = ? AND ts >= ? ORDER BY ts",
            (subject, since_ms),
        ).fetchall()
        return [int(row[0]) for row in rows]

    def add_failures(self, subjects: Sequence[str], now_ms: int) -> list[int]:
        """One failure per subject at ``now_ms``; their row ids (to take back on success)."""
        return [
            int(
                self._conn.execute(
                    "INSERT INTO login_failures (subject, ts) VALUES (?, ?)", (subject, now_ms)
                ).lastrowid
                or 0
            )
            for subject in subjects
        ]

    def forget_failures(self, before_ms: int) -> None:
        self._conn.execute("DELETE FROM login_failures WHERE ts < ?", (before_ms,))

    def take_back_failures(self, row_ids: Sequence[int], subjects: Sequence[str]) -> None:
        """Delete the rows ``row_ids`` and every failure of ``subjects``, in one transaction."""
        with self._conn:
            self._conn.executemany(
                "DELETE FROM login_failures WHERE rowid = ?", [(row,) for row in row_ids]
            )
            self._conn.executemany(
                "DELETE FROM login_failures WHERE subject = ?", [(s,) for s in subjects]
            )


@contextmanager
def auth_database(path: Path, *, timeout_ms: int = 10_000) -> Iterator[AuthDatabase]:
    """A connection on the (existing, migrated) database at ``path`` for one call."""
    conn = sqlite3.connect(path, timeout=timeout_ms / 1000)
    conn.execute("PRAGMA foreign_keys = ON")
    with closing(conn):
        yield AuthDatabase(conn)
