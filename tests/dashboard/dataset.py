"""A realistic data directory for the dashboard tests (and for looking at the dashboard by
hand): two sites, ~300 visitors over eight weeks, campaigns, devices, consent modes, an A/B
test, revenue, saved goals and a saved funnel, and accounts of every role.

``python -m tests.dashboard.dataset DIR`` writes it; the events go through the real storage
module (visits assigned as at ingest), the accounts through the real auth module.
"""

from __future__ import annotations

import random
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

from collector import auth
from collector.config import Config
from collector.storage.rows import DropCount, Event, Goal, SavedFunnel
from collector.storage.sqlite.accounts import auth_database
from collector.storage.sqlite.reports import reports_database
from collector.storage.sqlite.saved import saved_database
from tests.reports.dataset import event, store, visitor
from tests.support import build_config

#: A Tuesday noon (as the suite's clock); the data spans the 56 days before it.
NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
PASSWORD = "correct horse battery"
T = TypeVar("T")
USERS = {
    "owner": "owner@example.test",
    "analyst": "analyst@example.test",
    "dpo": "dpo@example.test",
}
SOURCES = [
    # (source, referrer, referrer domain, utm source, utm medium, utm campaign), weight
    (("Google", "https://www.google.com/", "www.google.com", None, None, None), 34),
    ((None, None, None, None, None, None), 25),
    (("Newsletter", None, None, "newsletter", "email", "spring-launch"), 14),
    (("Mastodon", "https://mastodon.social/", "mastodon.social", None, None, None), 9),
    (("Hacker News", "https://news.ycombinator.com/", "news.ycombinator.com", None, None, None), 8),
    (("Bing", "https://www.bing.com/", "www.bing.com", None, None, None), 5),
    (("github.com", "https://github.com/mesure/mesure", "github.com", None, None, None), 5),
]
DEVICES = [
    (("desktop", "Chrome", "126", "Windows", "11", "desktop"), 30),
    (("desktop", "Firefox", "128", "Linux", None, "desktop"), 12),
    (("desktop", "Safari", "17", "macOS", "14", "laptop"), 16),
    (("mobile", "Safari", "17", "iOS", "17", "phone"), 22),
    (("mobile", "Chrome", "126", "Android", "14", "phone"), 15),
    (("tablet", "Safari", "17", "iPadOS", "17", "tablet"), 5),
]
COUNTRIES = [("FR", 35), ("DE", 20), ("GB", 12), ("US", 10), ("NL", 8), ("ES", 8), ("BE", 7)]
ENTRY = [("/", 45), ("/blog/privacy-first-analytics", 25), ("/pricing", 20), ("/docs", 10)]
NEXT = {
    "/": [("/pricing", 40), ("/docs", 25), ("/blog/privacy-first-analytics", 15), (None, 20)],
    "/blog/privacy-first-analytics": [("/", 30), ("/pricing", 25), (None, 45)],
    "/docs": [("/docs/install", 50), ("/pricing", 20), (None, 30)],
    "/docs/install": [("/pricing", 30), (None, 70)],
    "/pricing": [("/signup", 45), ("/docs", 15), (None, 40)],
    "/signup": [(None, 100)],
}


def _pick(rng: random.Random, table: list[tuple[T, int]]) -> T:
    return rng.choices([item for item, _ in table], weights=[w for _, w in table])[0]


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def events(now: datetime = NOW, *, seed: int = 7) -> tuple[list[Event], list[DropCount]]:
    """Deterministic events of sites ``example`` and ``shop`` in the 56 days before ``now``."""
    rng = random.Random(seed)
    found: list[Event] = []
    drops: list[DropCount] = []
    for number in range(320):
        site = "example" if number < 280 else "shop"
        mode = _pick(rng, [("granted", 66), ("exempt", 24), ("denied", 10)])
        who = None if mode == "denied" else f"{site}-v{number}"
        variant = "A" if number % 2 else "B"
        user = visitor(f"user-{number}") if mode == "granted" and rng.random() < 0.5 else None
        device = _pick(rng, DEVICES)
        country = _pick(rng, COUNTRIES)
        reasons = {"granted": "claim:granted", "exempt": "no-signal", "denied": "claim:denied"}
        for _visit in range(_pick(rng, [(1, 60), (2, 25), (3, 15)])):
            days_ago = rng.randrange(0, 56)
            start = (now - timedelta(days=days_ago)).replace(
                hour=rng.randrange(7, 23), minute=rng.randrange(60), second=0
            )
            if start >= now:
                start -= timedelta(days=1)
            source = _pick(rng, SOURCES)
            path: str | None = _pick(rng, ENTRY) if site == "example" else "/shop"
            moment = start
            first = True
            while path is not None:
                fields: dict[str, object] = {"country": country}
                if mode != "denied":
                    fields.update(
                        device=device[0],
                        browser=device[1],
                        browser_version=device[2],
                        os=device[3],
                        os_version=device[4],
                        screen=device[5],
                        source=source[0],
                        referrer=source[1],
                        referrer_domain=source[2],
                        utm_source=source[3],
                        utm_medium=source[4],
                        utm_campaign=source[5],
                        engaged_ms=rng.randrange(4_000, 90_000),
                    )
                if mode == "granted":
                    fields["user"] = user
                    if first:
                        fields["props"] = {"variant": variant}
                found.append(
                    event(
                        _ms(moment),
                        who,
                        "pageview",
                        path,
                        site=site,
                        mode=mode,
                        reasons=reasons[mode],
                        **fields,  # type: ignore[arg-type]
                    )
                )
                first = False
                if path == "/signup" and mode == "granted":
                    rate = 0.45 if variant == "B" else 0.3
                    if rng.random() < rate:
                        moment += timedelta(seconds=rng.randrange(20, 120))
                        found.append(
                            event(
                                _ms(moment),
                                who,
                                "signup",
                                path,
                                site=site,
                                mode=mode,
                                reasons=reasons[mode],
                                user=user,
                                source=source[0],
                                utm_source=source[3],
                                props={"plan": rng.choice(["starter", "pro", "team"])},
                            )
                        )
                if site == "shop" and user is not None:
                    moment += timedelta(seconds=rng.randrange(30, 300))
                    amount = rng.choice(["19.00", "49.00", "99.00", "149.00"])
                    found.append(
                        event(
                            _ms(moment),
                            who,
                            "purchase",
                            "/shop/checkout",
                            site=site,
                            mode=mode,
                            reasons=reasons[mode],
                            user=user,
                            revenue_amount=amount,
                            revenue_currency="EUR",
                        )
                    )
                path = None if site == "shop" else _pick(rng, NEXT[path])
                moment += timedelta(seconds=rng.randrange(15, 240))
    for days_ago in range(56):
        day = (now - timedelta(days=days_ago)).date().isoformat()
        drops.append(DropCount("example", day, "optout", rng.randrange(0, 4)))
        drops.append(DropCount("example", day, "bot", rng.randrange(0, 9)))
    return [e for e in found if e.ts < _ms(now)], [d for d in drops if d.hits]


def config(data_dir: Path) -> Config:
    return build_config(
        data_dir,
        {"example": ["example.com", "www.example.com"], "shop": ["shop.example.com"]},
        site_options={"example": {"timezone": "Europe/Paris"}, "shop": {"timezone": "UTC"}},
    )


def write(data_dir: Path, now: datetime = NOW) -> Config:
    """Create the data directory: events, saved goals and funnel, accounts."""
    found = config(data_dir)
    stored, drops = events(now)
    store(found, stored, drops)
    moment = _ms(now)
    with reports_database(found.database_path) as db:
        db.save_goal("example", Goal(name="Signed up", kind="event", match="signup"), moment)
        db.save_goal("example", Goal(name="Saw pricing", kind="page", match="/pricing"), moment)
    with saved_database(found.database_path) as db:
        db.save_funnel(
            SavedFunnel(
                site="example",
                name="Pricing to signup",
                steps=["page:/pricing", "page:/signup", "event:signup"],
            ),
            moment,
        )
    with auth_database(found.database_path) as db:
        for role, email in USERS.items():
            # A lower scrypt cost keeps the tests fast; login reads the cost from the hash.
            db.add_user(email, role, auth.hash_password(PASSWORD, n=2**12), (), moment)
    return found


if __name__ == "__main__":
    write(Path(sys.argv[1]))
