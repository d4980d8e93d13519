"""The running collector keeps its own days: when its clock passes a UTC midnight, it destroys
the daily key that expired and makes the day's retention run, with no hit to prompt it and
without a restart (a collector that runs for months must not keep a key past its 48 hours)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from collector.audit import AuditLog
from collector.config import Config
from collector.web.app import sweep_delay
from tests.privacy.support import events, send, write_data_dir
from tests.support import Clock, LiveServer

#: How often the collector under test looks at its clock: it is set forward, never waited for.
SWEEP_SECONDS = 0.02
#: The bound of each wait for the collector to act: hundreds of its sweeps.
WITHIN_SECONDS = 10.0


@pytest.fixture
def sweeping(clock: Clock) -> Iterator[Callable[[Config], LiveServer]]:
    started: list[LiveServer] = []

    def start(config: Config) -> LiveServer:
        server = LiveServer(config, clock, sweep_seconds=SWEEP_SECONDS)
        started.append(server)
        server.start()
        return server

    yield start
    for server in started:
        server.stop()


def _eventually(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WITHIN_SECONDS
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {WITHIN_SECONDS:.0f} s: {what}")
        time.sleep(SWEEP_SECONDS)


def _daily_keys(config: Config) -> list[str]:
    return sorted(path.name for path in (config.keys_dir / "daily").glob("*.key"))


def _audited(config: Config, action: str) -> list[tuple[str, dict[str, str]]]:
    entries = AuditLog(config.audit_path, datetime.now).entries()
    return [(entry.at, entry.detail) for entry in entries if entry.action == action]


def _retention_runs(config: Config) -> list[tuple[str, str, str]]:
    return [
        (detail["by"], detail["now"], detail["events"])
        for _at, detail in _audited(config, "retention.run")
    ]


def test_keys_expire_and_retention_runs_at_midnight_without_a_hit_or_a_restart(
    tmp_path: Path, clock: Clock, sweeping: Callable[[Config], LiveServer]
) -> None:
    config = write_data_dir(tmp_path / "data", {"retention-granted-days": 1})
    server = sweeping(config)
    send(server, {"mode": "granted", "cid": "cid-sweep-1"})  # 2026-03-10 12:00, kept a day
    assert _daily_keys(config) == ["2026-03-10.key"]

    # Nothing but the clock from here on.
    clock.set(datetime(2026, 3, 11, 0, 0, 1, tzinfo=UTC))
    _eventually(lambda: "2026-03-11.key" in _daily_keys(config), "the new day's key")
    # The pass that made it looked for expired keys first: yesterday's stays one more day, for
    # the visits that went on past midnight.
    assert _daily_keys(config) == ["2026-03-10.key", "2026-03-11.key"]
    _eventually(lambda: len(_retention_runs(config)) == 2, "the first day's retention run")
    assert len(events(config)) == 1  # kept until 12:00 today

    clock.set(datetime(2026, 3, 12, 0, 0, 1, tzinfo=UTC))
    today = ["2026-03-11.key", "2026-03-12.key"]
    _eventually(lambda: _daily_keys(config) == today, "the expired key destroyed, today's made")
    destroyed = _audited(config, "daily-key.destroy")
    assert destroyed == [("2026-03-12T00:00:01+00:00", {"day": "2026-03-10"})]
    _eventually(lambda: len(_retention_runs(config)) == 3, "the second day's retention run")
    assert _retention_runs(config) == [
        ("server (start-up)", "2026-03-10T12:00:00+00:00", "0"),
        ("server (daily)", "2026-03-11T00:00:01+00:00", "0"),
        ("server (daily)", "2026-03-12T00:00:01+00:00", "1"),
    ]
    assert events(config) == []
    assert server.visits() == []


def test_a_failed_sweep_is_logged_and_the_next_one_still_comes(
    tmp_path: Path,
    clock: Clock,
    sweeping: Callable[[Config], LiveServer],
    caplog: pytest.LogCaptureFixture,
) -> None:
    config = write_data_dir(tmp_path / "data")
    sweeping(config)
    # Where a folder stands, the new day's key file can be neither written nor read.
    blocked = config.keys_dir / "daily" / "2026-03-11.key"
    blocked.mkdir()
    clock.set(datetime(2026, 3, 11, 0, 0, 1, tzinfo=UTC))

    def failed() -> bool:
        return any("daily key sweep failed" in record.getMessage() for record in caplog.records)

    _eventually(failed, "the failed sweep logged")
    blocked.rmdir()
    _eventually(blocked.is_file, "the new day's key made by a later sweep")
    assert _daily_keys(config) == ["2026-03-10.key", "2026-03-11.key"]


def test_the_sweep_wakes_at_midnight_and_at_least_every_period() -> None:
    evening = datetime(2026, 3, 10, 23, 59, 30, tzinfo=UTC)
    assert sweep_delay(evening, 600) == 30
    assert sweep_delay(evening - timedelta(hours=1), 600) == 600
    # Midnight in UTC, whatever zone the clock reads in: 00:30 at UTC+1 is 23:30 UTC.
    paris = datetime(2026, 3, 11, 0, 30, tzinfo=timezone(timedelta(hours=1)))
    assert sweep_delay(paris, 86_400) == 1800
