"""Processes writing one SQLite file take turns through its lock file (``Storage.write_turn``);
groups of any size are stored in a bounded set of statement shapes.

Two handles on one file stand for two worker processes: ``flock`` locks belong to the open
file, so two handles in one process exclude each other exactly as two processes do.
"""

from __future__ import annotations

import threading
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from collector.storage.rows import Event
from collector.storage.sqlite.events import (
    _EVENTS_PER_INSERT,
    _SMALL_INSERT,
    _insert_sizes,
    open_storage,
)


def _event(path: str) -> Event:
    return Event(
        site="example",
        ts=1_764_000_000_000,
        name="pageview",
        mode="exempt",
        reasons="",
        hostname="example.com",
        path=path,
    )


def test_a_write_waits_for_the_turn_another_process_holds(tmp_path: Path) -> None:
    first = open_storage(tmp_path / "mesure.db")
    second = open_storage(tmp_path / "mesure.db", migrate=False)
    done = threading.Event()

    def write() -> None:
        second.insert_hits([_event("/waited")])
        done.set()

    try:
        with first.write_turn():
            writer = threading.Thread(target=write)
            writer.start()
            # Waiting on the lock file, not failing: nothing is written while the turn is held.
            assert not done.wait(0.3)
            assert first.count_events() == 0
        writer.join()
        assert done.is_set()
        assert [row["path"] for row in first.events()] == ["/waited"]
    finally:
        first.close()
        second.close()


def test_writes_inside_a_turn_keep_it_until_the_turn_ends(tmp_path: Path) -> None:
    storage = open_storage(tmp_path / "mesure.db")
    other = open_storage(tmp_path / "mesure.db", migrate=False)
    done = threading.Event()
    try:
        with storage.write_turn():
            storage.insert_hits([_event("/a")])  # its own transaction, in the same turn
            storage.insert_hits([_event("/b")])
            waiting = threading.Thread(
                target=lambda: (other.insert_hits([_event("/c")]), done.set())
            )
            waiting.start()
            assert not done.wait(0.3)  # the turn outlives the two transactions
        waiting.join()
        assert sorted(row["path"] for row in storage.events()) == ["/a", "/b", "/c"]
    finally:
        storage.close()
        other.close()


@given(st.integers(0, 5_000))
def test_insert_statements_cover_every_event_in_a_few_sizes(count: int) -> None:
    sizes = list(_insert_sizes(count))
    assert sum(sizes) == count
    assert set(sizes) <= {*range(1, _SMALL_INSERT + 1), _EVENTS_PER_INSERT}


def test_a_group_of_every_size_is_stored_whole(tmp_path: Path) -> None:
    storage = open_storage(tmp_path / "mesure.db")
    try:
        total = 0
        for count in (1, 31, 32, 33, 199, 200, 233, 1_001):
            storage.insert_hits([_event(f"/{count}/{n}") for n in range(count)])
            total += count
        paths = [row["path"] for row in storage.events()]
        assert len(paths) == len(set(paths)) == total
    finally:
        storage.close()
