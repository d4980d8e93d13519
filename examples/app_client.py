"""A server-side / app client for Mesure's batch API, using only the standard library.

Apps and back ends send events in batches to ``POST /api/batch``. With the site's ingest token
(``mesure init`` prints it once) they may pass each event's client IP and user agent, so the
collector derives the same cookieless visitor, country and device as for a browser hit; the raw IP
and the raw ids never reach the database.

Run against a local collector::

    python examples/app_client.py --collector http://127.0.0.1:8000 --site demo --token TOKEN

It sends one app session (a screen view per screen, a sign-up event with revenue) and prints what
the collector answered.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any

MAX_BATCH = 1000  # the collector's limit per request


class MesureError(Exception):
    """The collector refused a batch (the message names the field it objected to)."""


class MesureClient:
    """Buffers events and sends them in batches; retries when the collector asks to wait."""

    def __init__(
        self, collector: str, site: str, *, token: str | None = None, attempts: int = 5
    ) -> None:
        self.endpoint = collector.rstrip("/") + "/api/batch"
        self.site = site
        self.token = token
        self.attempts = attempts
        self._events: list[dict[str, Any]] = []

    def track(
        self,
        url: str,
        name: str = "pageview",
        *,
        mode: str = "exempt",
        ts_ms: int | None = None,
        cid: str | None = None,
        uid: str | None = None,
        ip: str | None = None,
        ua: str | None = None,
        props: Mapping[str, str | int | float | bool] | None = None,
        revenue: tuple[str, str] | None = None,
    ) -> None:
        """Queue one event; ``mode`` is the consent the app obtained (the server re-checks it)."""
        event: dict[str, Any] = {"site": self.site, "url": url, "name": name, "mode": mode}
        optional = {"ts": ts_ms, "cid": cid, "uid": uid, "ip": ip, "ua": ua}
        event.update({key: value for key, value in optional.items() if value is not None})
        if props:
            event["props"] = dict(props)
        if revenue:
            event["revenue"] = {"amount": revenue[0], "currency": revenue[1]}
        self._events.append(event)
        if len(self._events) >= MAX_BATCH:
            self.flush()

    def flush(self) -> int:
        """Send everything queued; return how many events the collector acknowledged."""
        sent = 0
        while self._events:
            batch, self._events = self._events[:MAX_BATCH], self._events[MAX_BATCH:]
            sent += self._send(batch)
        return sent

    def _send(self, batch: list[dict[str, Any]]) -> int:
        body = json.dumps(batch).encode("utf-8")
        headers = {"content-type": "application/json", "user-agent": "mesure-app-client/1"}
        if self.token:
            headers["authorization"] = f"Bearer {self.token}"
        for attempt in range(self.attempts):
            request = urllib.request.Request(self.endpoint, body, headers, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=10) as response:
                    return int(json.load(response)["received"])
            except urllib.error.HTTPError as exc:
                # 429 and 503 are back-pressure: nothing of the batch was stored, send it again.
                if exc.code in (429, 503) and attempt + 1 < self.attempts:
                    time.sleep(float(exc.headers.get("retry-after", "1")))
                    continue
                detail = json.loads(exc.read() or b"{}")
                raise MesureError(
                    f"{exc.code}: {detail.get('error')} (field {detail.get('field')})"
                ) from None
        raise MesureError("the collector stayed busy")


def demo_session(client: MesureClient, *, now_ms: int) -> None:
    """One app visitor: three screens, then a sign-up with revenue, all under granted consent."""
    visitor = {
        "ip": "192.0.2.44",
        "ua": "ExampleApp/3.2 (iPhone; iOS 18.1)",
        "cid": "app-install-7f3a",
    }
    for offset, screen in enumerate(("home", "pricing", "signup")):
        client.track(
            f"https://app.example.com/{screen}", mode="granted", ts_ms=now_ms + offset, **visitor
        )
    client.track(
        "https://app.example.com/signup",
        "signup",
        mode="granted",
        ts_ms=now_ms + 3,
        uid="customer-1042",
        props={"plan": "pro"},
        revenue=("49.00", "EUR"),
        **visitor,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--collector", default="http://127.0.0.1:8000")
    parser.add_argument("--site", required=True)
    parser.add_argument("--token", help="the site's ingest token (needed to pass ip/ua)")
    args = parser.parse_args(argv)
    client = MesureClient(args.collector, args.site, token=args.token)
    demo_session(client, now_ms=int(time.time() * 1000))
    try:
        acknowledged = client.flush()
    except (MesureError, urllib.error.URLError) as exc:
        print(f"refused: {exc}", file=sys.stderr)
        return 1
    print(f"{acknowledged} events acknowledged by {client.endpoint}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
