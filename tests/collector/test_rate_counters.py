"""The rate limiter's shared counters: one count per key across worker rows, fixed memory."""

from __future__ import annotations

import os
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from collector.ingest.ratelimit import CounterTable, RateLimiter, SharedCounters
from tests.support import Clock

WINDOW = 29_000_000


def test_workers_count_in_their_own_rows_and_limits_see_the_sum() -> None:
    table = CounterTable(workers=2, slots=64)
    first, second = table.for_worker(0), table.for_worker(1)
    assert first.add(b"client", WINDOW, 2, limit=3)
    assert not second.add(b"client", WINDOW, 2, limit=3)  # 2 + 2 > 3
    assert second.add(b"client", WINDOW, 1, limit=3)
    assert not first.add(b"client", WINDOW, 1, limit=3)
    assert first.add(b"other", WINDOW, 3, limit=3)  # keys are counted apart


def test_a_new_window_starts_every_key_from_zero() -> None:
    table = CounterTable(slots=8)
    assert table.add(b"k", WINDOW, 5, limit=5)
    assert not table.add(b"k", WINDOW, 1, limit=5)
    assert table.add(b"k", WINDOW + 1, 5, limit=5)


def test_a_full_table_makes_new_keys_share_a_counter_never_count_less() -> None:
    table = CounterTable(slots=4)
    for key in (b"a", b"b", b"c", b"d"):
        assert table.add(key, WINDOW, 3, limit=3)
    # Every slot holds another key of this window: the fifth shares one and starts at its 3.
    assert not table.add(b"e", WINDOW, 1, limit=3)
    assert table.add(b"e", WINDOW + 1, 1, limit=3)


def test_forked_processes_share_the_counts() -> None:
    table = CounterTable(workers=2, slots=64)
    pid = os.fork()
    if pid == 0:
        os._exit(0 if table.for_worker(1).add(b"k", WINDOW, 4, limit=5) else 1)
    assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0
    assert table.for_worker(0).add(b"k", WINDOW, 1, limit=5)
    assert not table.for_worker(0).add(b"k", WINDOW, 1, limit=5)


def test_worker_index_outside_the_table_is_refused() -> None:
    with pytest.raises(ValueError, match="worker index 2"):
        CounterTable(workers=2, slots=8).for_worker(2)


def test_rate_limiter_answers_the_seconds_left_in_the_minute() -> None:
    clock = Clock(datetime(2026, 11, 30, 12, 0, 45, tzinfo=UTC))
    counters = SharedCounters(workers=2).for_worker(1)
    limiter = RateLimiter(2, clock, counters.clients)
    assert limiter.hit(b"ip-hash") is None
    assert limiter.hit(b"ip-hash") is None
    assert limiter.hit(b"ip-hash") == 15
    clock.advance(seconds=15)
    assert limiter.hit(b"ip-hash") is None


@given(
    st.lists(
        st.tuples(st.integers(0, 2), st.sampled_from([b"a", b"b", b"c"]), st.integers(1, 4)),
        max_size=60,
    ),
    st.integers(1, 12),
)
def test_counts_match_a_plain_dictionary_while_the_table_has_room(
    operations: list[tuple[int, bytes, int]], limit: int
) -> None:
    table = CounterTable(workers=3, slots=256)
    rows = [table.for_worker(index) for index in range(3)]
    model: dict[bytes, int] = {}
    for worker, key, count in operations:
        allowed = model.get(key, 0) + count <= limit
        assert rows[worker].add(key, WINDOW, count, limit) == allowed
        if allowed:
            model[key] = model.get(key, 0) + count
