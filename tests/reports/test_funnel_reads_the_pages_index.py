"""Funnels read the identified pageviews of their pages from the pages index, without reading a
row: the same answers as the plain reading of every event of the period, on random visits with
ties in time, overlapping patterns, custom events, several sites and a previous period; and the
one-pass search of each visit's path agrees with trying every start of step 1."""

from __future__ import annotations

import random
import sqlite3
import statistics
from contextlib import closing
from datetime import UTC, datetime

import msgspec
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from collector.config import Config
from collector.reports import ReportQuery, funnel
from collector.reports.funnels import _matcher, compute_steps, deepest_path
from collector.storage.rows import Goal, StepEvent
from collector.storage.sqlite.reports import ReportsDatabase
from tests.reports.dataset import config_for, event, ms, opened, store
from tests.support import traced_plans

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
PATHS = ["/", "/a", "/b", "/b/1", "/b/2", "/c"]
NAMES = ["pageview", "pageview", "pageview", "buy", "engagement", "signup"]
FUNNELS = {
    "pages": [Goal(name="home", kind="page", match="/"), Goal(name="b", kind="page", match="/b*")],
    # A page matching two steps, then a custom event.
    "overlapping patterns and an event": [
        Goal(name="any b", kind="page", match="/b*"),
        Goal(name="b one", kind="page", match="/b/1"),
        Goal(name="buy", kind="event", match="buy"),
    ],
    "the same page twice": [
        Goal(name="a", kind="page", match="/a"),
        Goal(name="a again", kind="page", match="/a"),
        Goal(name="c", kind="page", match="/c"),
    ],
    "events only": [
        Goal(name="signup", kind="event", match="signup"),
        Goal(name="buy", kind="event", match="buy"),
    ],
    # A built-in name as an event step: read from the events themselves.
    "a built-in event": [
        Goal(name="home", kind="page", match="/"),
        Goal(name="engaged", kind="event", match="engagement"),
    ],
}


@pytest.fixture(scope="module")
def random_config(tmp_path_factory: pytest.TempPathFactory) -> Config:
    config = config_for(
        tmp_path_factory.mktemp("funnels"), {"example": "UTC", "paris": "Europe/Paris"}
    )
    rng = random.Random(20261207)
    events = []
    for number in range(300):
        site = rng.choice(["example", "paris"])
        who = None if number % 17 == 0 else f"V{rng.randrange(120)}"
        # Two weeks: the last seven days and the seven before (the previous period).
        ts = ms(2026, 2, 25) + rng.randrange(14 * 86_400) * 1000
        for _ in range(rng.randrange(1, 8)):
            events.append(event(ts, who, rng.choice(NAMES), rng.choice(PATHS), site=site))
            # Often the same millisecond: the order is then the order stored.
            ts += rng.choice([0, 0, 1000, 60_000, 40 * 60_000])
    store(config, events)
    return config


@pytest.mark.parametrize("name", list(FUNNELS))
def test_a_funnel_answers_as_the_plain_reading(random_config: Config, name: str) -> None:
    steps = FUNNELS[name]
    query = ReportQuery(period="7d", compare="previous_period")
    sites = ["example", "paris"]
    with opened(random_config) as db:
        indexed, plans = traced_plans(
            db,
            lambda: funnel(db, random_config, query, sites=sites, now=NOW, steps=steps),
            "scope",
        )
    with closing(sqlite3.connect(random_config.database_path)) as conn:
        plain = funnel(
            ReportsDatabase(conn, rollups=False),
            random_config,
            query,
            sites=sites,
            now=NOW,
            steps=steps,
        )
    assert msgspec.to_builtins(indexed) == msgspec.to_builtins(plain)
    assert indexed.steps[1].visitors > 0 and indexed.previous is not None
    assert indexed.previous[1].visitors > 0
    reads_rows = any("event_rows_by_time" in plan for plan in plans)
    if name == "a built-in event":
        assert reads_rows, plans
    else:
        assert not reads_rows, plans
    if any(step.kind == "page" for step in steps) and name != "a built-in event":
        assert all("event_rows_pages" in plan for plan in plans), plans


def _each_start(steps: list[Goal], events: list[StepEvent]) -> list[tuple[int, float | None]]:
    """The funnel as first written: every start of step 1 in each visit tried, each visitor's
    deepest path (the first of equal depth, visits in the order of their first event); per
    step, the visitors who reached it and the median time from the previous step."""
    tests = [_matcher(goal) for goal in steps]
    groups: dict[tuple[str, bytes, int | None], list[StepEvent]] = {}
    for item in events:
        groups.setdefault((item.site, item.visitor, item.visit), []).append(item)
    deepest: dict[tuple[str, bytes], list[int]] = {}
    for (site, who, _visit), group in groups.items():
        found = deepest_path(tests, group, None)
        if found and len(found) > len(deepest.get((site, who), ())):
            deepest[(site, who)] = found
    answer: list[tuple[int, float | None]] = []
    for index in range(len(steps)):
        paths = [path for path in deepest.values() if len(path) > index]
        gaps = [path[index] - path[index - 1] for path in paths] if index else []
        answer.append((len(paths), float(statistics.median(gaps)) if gaps else None))
    return answer


V1, V2 = b"V1".ljust(16, b"."), b"V2".ljust(16, b".")
_STEP_EVENTS = st.lists(
    st.tuples(
        st.sampled_from(["s1", "s1", "s1", "s2"]),
        st.sampled_from([V1, V1, V2]),
        st.integers(1, 2),
        st.integers(0, 5),
        st.sampled_from(["pageview", "pageview", "buy", "signup"]),
        st.sampled_from(["/", "/a", "/b", "/b/1", "/c"]),
    ),
    max_size=30,
)


@settings(max_examples=300, deadline=None)
@given(rows=_STEP_EVENTS, shape=st.sampled_from(list(FUNNELS)))
# A second start of step 1 before step 2: the path goes on from the first.
@example(
    rows=[("s1", V1, 1, t, "pageview", path) for t, path in enumerate(["/b", "/b", "/b/1"])],
    shape="overlapping patterns and an event",
)
def test_one_pass_per_visit_finds_the_deepest_path(
    rows: list[tuple[str, bytes, int, int, str, str]], shape: str
) -> None:
    steps = FUNNELS[shape]
    events = [StepEvent(*row) for row in sorted(rows, key=lambda row: row[3])]
    found = compute_steps(steps, events, None)
    expected = _each_start(steps, events)
    assert [(step.visitors, step.median_ms_from_previous) for step in found] == expected
