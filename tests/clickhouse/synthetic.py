"""A seeded synthetic dataset for the backend parity tests, with timestamps relative to now.

Two sites (UTC and Europe/Paris, so local days differ from UTC days), client and cookieless
visitors, visits crossing local midnight (cookieless ones under yesterday's daily key), every
consent mode, page and event goals, funnels, cohorts over several weeks, an A/B experiment
property, revenue by users, campaign tags, engagement pings and drop counters.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from collector.storage.rows import DropCount, Event
from tests.reports.dataset import event

MINUTE = 60_000
DAY = 24 * 60 * MINUTE
SITES = {"example": "UTC", "paris": "Europe/Paris"}
PAGES = ["/", "/pricing", "/blog/a", "/blog/b", "/shop/shoes", "/shop/hats", "/checkout", "/a[1]?"]
SOURCES = [None, "Google", "news.example", "Newsletter"]
BROWSERS = [("Firefox", "128"), ("Chrome", "126"), ("Safari", None), (None, None)]


def now_for_tests() -> datetime:
    """Noon UTC today: the data spans the last ten weeks, well inside every TTL."""
    today = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)
    return today


def build(
    now: datetime, *, visitors: int = 60, seed: int = 8
) -> tuple[list[Event], list[DropCount]]:
    rng = random.Random(seed)
    now_ms = int(now.timestamp() * 1000)
    events: list[Event] = []
    for number in range(visitors):
        site = "paris" if number % 3 == 0 else "example"
        kind = "cookieless" if number % 4 == 0 else "client"
        mode = (
            ("granted", "exempt", "granted", "denied")[number % 4] if kind == "client" else "exempt"
        )
        who = None if mode == "denied" else f"{site[:2]}{number:03d}"
        user = (
            f"user{number % 5}".encode().ljust(16, b"_")
            if mode == "granted" and number % 3
            else None
        )
        browser, version = BROWSERS[number % len(BROWSERS)]
        base = {
            "site": site,
            "kind": kind,
            "mode": mode,
            "browser": browser,
            "browser_version": version,
            "os": "Linux" if number % 2 else "iOS",
            "os_version": None if number % 5 else "17.4",
            "device": ("desktop", "mobile", "tablet")[number % 3],
            "country": ("FR", "DE", None)[number % 3],
            "screen": "1920x1080" if number % 2 else None,
            "reasons": "explicit" if mode == "granted" else "exemption",
        }
        for visit_number in range(rng.randint(1, 4)):
            start = now_ms - rng.randint(0, 70) * DAY - rng.randint(0, DAY - 1)
            if visit_number == 0 and number % 5 == 1:
                # Starts before local midnight and goes on after it.
                start = now_ms - 2 * DAY - (12 * 60 + 10) * MINUTE
            source = SOURCES[rng.randrange(len(SOURCES))]
            ts = start
            for step in range(rng.randint(1, 6)):
                page = PAGES[rng.randrange(len(PAGES))]
                fields = dict(base)
                if step == 0:
                    fields["source"] = source
                    if mode == "granted" and source == "Newsletter":
                        fields["utm_source"] = "newsletter"
                        fields["utm_campaign"] = f"spring{number % 2}"
                props = {"variant": "AB"[number % 2], "plan": ("free", "pro")[number % 2]}
                if number % 6 == 0:
                    props["score"] = number % 3 if number % 12 else 1.5
                    props["beta"] = bool(number % 12)
                events.append(
                    _event(
                        ts, who, "pageview", page, fields, user, props if mode != "denied" else None
                    )
                )
                roll = rng.random()
                if roll < 0.25:
                    events.append(
                        _event(
                            ts + 5_000,
                            who,
                            "engagement",
                            page,
                            fields,
                            user,
                            None,
                            engaged_ms=rng.randint(1000, 60000),
                        )
                    )
                elif roll < 0.45 and mode != "denied":
                    revenue = {"revenue_amount": "19.90", "revenue_currency": "EUR"} if user else {}
                    events.append(
                        _event(
                            ts + 9_000,
                            who,
                            "buy",
                            page,
                            fields,
                            user,
                            {"variant": "AB"[number % 2]},
                            **revenue,
                        )
                    )
                ts += rng.randint(1, 40) * MINUTE if step % 3 != 2 else rng.randint(1, 3) * MINUTE
    drops = [
        DropCount(site, (now - timedelta(days=d)).date().isoformat(), reason, hits)
        for d, site, reason, hits in [
            (0, "example", "optout", 3),
            (1, "paris", "optout", 2),
            (2, "example", "bot", 5),
            (0, "example", "optout", 1),
        ]
    ]
    return sorted(events, key=lambda e: e.ts), drops


def _event(
    ts: int,
    who: str | None,
    name: str,
    path: str,
    fields: dict,
    user: bytes | None,
    props: dict | None,
    **extra: object,
) -> Event:
    fields = dict(fields)
    site = fields.pop("site")
    mode = fields.pop("mode")
    kind = fields.pop("kind")
    result = event(
        ts, who, name, path, site=site, mode=mode, kind=kind, props=props, **fields, **extra
    )
    if who is not None:
        result.key_epoch = 3 if kind == "client" else ts // DAY
        if kind == "cookieless":
            # The daily key changed at midnight: the hash differs, the previous one is offered.
            day = ts // DAY
            result.visitor = f"{who}-{day}".encode().ljust(16, b".")[:16]
            result.previous_visitor = f"{who}-{day - 1}".encode().ljust(16, b".")[:16]
            result.previous_key_epoch = day - 1
    if user is not None and mode == "granted":
        result.user = user
        result.user_epoch = 1
    return result
