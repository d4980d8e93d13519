"""A live collector with accounts for the reports API tests: users of every role, a user
granted another site only, API tokens; ``login`` returns a client carrying the session."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import httpx

from collector import auth
from collector.config import token_sha256
from collector.storage.sqlite.accounts import auth_database
from tests.support import Clock, LiveServer, build_config

INGEST_TOKEN = "reports-ingest-token"
PASSWORD = "correct horse battery"
UA = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
USERS = {
    "owner": ("owner@example.test", "owner", ()),
    "analyst": ("analyst@example.test", "analyst", ("example",)),
    "dpo": ("dpo@example.test", "dpo", ("example",)),
    "wrong-site": ("other@example.test", "analyst", ("other",)),
}


class Accounts:
    """The running server, its clock and the secrets of its accounts."""

    def __init__(self, server: LiveServer, clock: Clock, tokens: dict[str, str]) -> None:
        self.server = server
        self.clock = clock
        self.tokens = tokens

    def client(self, headers: dict[str, str] | None = None) -> httpx.Client:
        return httpx.Client(base_url=self.server.url, headers={"user-agent": UA, **(headers or {})})

    def login(self, who: str) -> tuple[httpx.Client, str]:
        """A client holding ``who``'s session cookie, and its CSRF token."""
        client = self.client()
        response = client.post("/login", json={"email": USERS[who][0], "password": PASSWORD})
        if response.status_code != 200:
            client.close()
            raise AssertionError(f"login of {who} failed: {response.text}")
        return client, response.json()["csrf_token"]

    def bearer(self, name: str) -> httpx.Client:
        return self.client({"authorization": f"Bearer {self.tokens[name]}"})


def start(
    data_dir: Path, now: datetime | None = None, goals: list[dict[str, str]] | None = None
) -> Accounts:
    """``goals``: the ``[[sites.goals]]`` of site ``example``."""
    clock = Clock(now or datetime(2026, 3, 10, 12, 0, tzinfo=UTC))
    example = {"ingest-token-sha256": token_sha256(INGEST_TOKEN), "goals": goals or []}
    config = build_config(
        data_dir,
        {"example": ["example.com"], "other": ["other.example"]},
        site_options={"example": example},
    )
    server = LiveServer(config, clock)
    server.start()  # the lifespan creates and migrates the database
    moment = int(clock().timestamp() * 1000)
    tokens: dict[str, str] = {}
    with auth_database(config.database_path) as db:
        for email, role, sites in USERS.values():
            # A lower scrypt cost keeps the suite fast; login reads the cost from the hash.
            db.add_user(email, role, auth.hash_password(PASSWORD, n=2**12), sites, moment)
        tokens["analyst-token"] = auth.create_token(db, "ci", "analyst", ["example"], moment)[1]
        tokens["owner-token"] = auth.create_token(db, "admin", "owner", [], moment)[1]
        revoked_id, tokens["revoked-token"] = auth.create_token(db, "old", "owner", [], moment)
        db.revoke_token(revoked_id, moment)
    return Accounts(server, clock, tokens)
