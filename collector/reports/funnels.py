"""Funnels: ordered steps reached within one visit, or within N days for the same visitor.

A visitor reaches step k when they have events matching steps 1…k in that order (an event
counts for one step only; events out of order do not count). Matching is greedy from each
occurrence of step 1, which finds the deepest step reachable.
"""

from __future__ import annotations

import gc
import statistics
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING

from collector.config import Config
from collector.errors import ReportParameterError
from collector.reports.core import period_out
from collector.reports.query import ReportQuery, resolve_scope
from collector.reports.results import PeriodOut, Result, ratio
from collector.storage.rows import Goal, StepEvent

if TYPE_CHECKING:
    from collector.storage.ports import ReportStore

MAX_STEPS = 10
DAY_MS = 86_400_000


class FunnelStep(Result):
    step: int
    name: str
    visitors: int
    dropped: int
    #: Share of the visitors of step 1 who reached this step.
    conversion: float
    #: Share of the visitors of the previous step who reached this one.
    step_conversion: float
    #: Median time from the previous step, over the visitors who reached this one.
    median_ms_from_previous: float | None


class FunnelReport(Result):
    sites: tuple[str, ...]
    period: PeriodOut
    within: str
    steps: list[FunnelStep]
    previous_period: PeriodOut | None = None
    previous: list[FunnelStep] | None = None


def matches(goal: Goal, item: StepEvent) -> bool:
    if goal.kind == "event":
        return item.name == goal.match
    return item.name == "pageview" and _glob(goal.match, item.path)


def _glob(pattern: str, path: str) -> bool:
    """``*`` matches any run of characters; everything else is literal."""
    parts = pattern.split("*")
    if len(parts) == 1:
        return path == pattern
    if not path.startswith(parts[0]) or not path.endswith(parts[-1]):
        return False
    position = len(parts[0])
    end = len(path) - len(parts[-1])
    for middle in parts[1:-1]:
        found = path.find(middle, position, end)
        if found < 0:
            return False
        position = found + len(middle)
    return position <= end


Matcher = Callable[[StepEvent], bool]


def _matcher(goal: Goal) -> Matcher:
    """``matches(goal, ·)`` as one closure: a funnel tests every step event, often twice."""
    pattern = goal.match
    if goal.kind == "event":
        return lambda item: item.name == pattern
    if "*" not in pattern:
        return lambda item: item.name == "pageview" and item.path == pattern
    return lambda item: item.name == "pageview" and _glob(pattern, item.path)


def deepest_path(
    steps: Sequence[Matcher], events: Sequence[StepEvent], window_ms: int | None
) -> list[int]:
    """The step timestamps of the deepest ordered match in ``events`` (time-ordered); with a
    window, every step must fall within ``window_ms`` of the first one."""
    best: list[int] = []
    first = steps[0]
    for start, head in enumerate(events):
        if not first(head):
            continue
        times = [head.ts]
        for index in range(start + 1, len(events)):
            if len(times) == len(steps):
                break
            item = events[index]
            if window_ms is not None and item.ts - head.ts > window_ms:
                break
            if steps[len(times)](item):
                times.append(item.ts)
        if len(times) > len(best):
            best = times
        if len(best) == len(steps):
            break
    return best


def compute_steps(
    steps: Sequence[Goal], events: Sequence[StepEvent], within_days: int | None
) -> list[FunnelStep]:
    """Per-step visitors, drop-off, conversion and median time from ``events``."""
    tests = [_matcher(goal) for goal in steps]
    if within_days is None:
        deepest = _deepest_in_visits(tests, events)
    else:
        deepest = _deepest_within(tests, events, within_days * DAY_MS)
    reached = [0] * len(steps)
    gaps: list[list[int]] = [[] for _ in steps]
    for best in deepest.values():
        for index, ts in enumerate(best):
            reached[index] += 1
            if index:
                gaps[index].append(ts - best[index - 1])
    return [
        FunnelStep(
            step=index + 1,
            name=goal.name,
            visitors=reached[index],
            dropped=(reached[index - 1] - reached[index]) if index else 0,
            conversion=ratio(reached[index], reached[0]),
            step_conversion=ratio(reached[index], reached[index - 1]) if index else 1.0,
            median_ms_from_previous=float(statistics.median(gaps[index])) if gaps[index] else None,
        )
        for index, goal in enumerate(steps)
    ]


Deepest = dict[tuple[str, bytes], list[int]]


def _deepest_in_visits(tests: Sequence[Matcher], events: Sequence[StepEvent]) -> Deepest:
    """Each visitor's deepest path over their visits (the first of equal depth, visits in the
    order of their first event), each visit's as :func:`deepest_path` finds it but in one pass
    over the events: without a window, the match from a visit's first step-1 event is the
    deepest (a later start can only match later events), and the first of equal depth."""
    last = len(tests)
    # Which steps an event matches depends on its page for a pageview, on its name otherwise:
    # each is tested once.
    page_masks: dict[str, int] = {}
    name_masks: dict[str, int] = {}
    visits: dict[tuple[str, bytes, int | None], list[int]] = {}
    for item in events:
        if item.name == "pageview":
            masks, kind = page_masks, item.path
        else:
            masks, kind = name_masks, item.name
        mask = masks.get(kind)
        if mask is None:
            mask = masks[kind] = sum(1 << index for index, test in enumerate(tests) if test(item))
        key = (item.site, item.visitor, item.visit)
        times = visits.get(key)
        if times is None:
            times = visits[key] = []
        depth = len(times)
        if depth < last and mask >> depth & 1:
            times.append(item.ts)
    deepest: Deepest = {}
    for (site, visitor, _visit), times in visits.items():
        if times and len(times) > len(deepest.get((site, visitor), ())):
            deepest[(site, visitor)] = times
    return deepest


def _deepest_within(tests: Sequence[Matcher], events: Sequence[StepEvent], window: int) -> Deepest:
    """Each visitor's deepest path within ``window`` of its first step: a later start may fit
    the window where an earlier one does not, so :func:`deepest_path` tries each."""
    groups: dict[tuple[str, bytes], list[StepEvent]] = {}
    for item in events:
        key = (item.site, item.visitor)
        group = groups.get(key)
        if group is None:
            groups[key] = [item]
        else:
            group.append(item)
    deepest: Deepest = {}
    for key, group in groups.items():
        found = deepest_path(tests, group, window)
        if found:
            deepest[key] = found
    return deepest


def funnel(
    db: ReportStore,
    config: Config,
    query: ReportQuery,
    *,
    sites: Sequence[str],
    now: datetime,
    steps: Sequence[Goal],
    within_days: int | None = None,
) -> FunnelReport:
    """``within_days=None``: the steps must happen in one visit."""
    if not 2 <= len(steps) <= MAX_STEPS:
        raise ReportParameterError(f"a funnel has 2 to {MAX_STEPS} steps", field="step")
    if within_days is not None and not 1 <= within_days <= 366:
        raise ReportParameterError("within must be `visit` or 1 to 366 days", field="within")
    scope = resolve_scope(query, config, sites, now)
    within = "visit" if within_days is None else f"{within_days}d"
    with _collector_paused():
        events = db.step_events(scope.ranges, query.filters, steps)
        report = FunnelReport(
            sites=tuple(sites),
            period=period_out(scope),
            within=within,
            steps=compute_steps(steps, events, within_days),
        )
        if query.compare == "previous_period":
            before = resolve_scope(query, config, sites, now, previous=True)
            report.previous_period = period_out(before)
            earlier = db.step_events(before.ranges, query.filters, steps)
            report.previous = compute_steps(steps, earlier, within_days)
    return report


@contextmanager
def _collector_paused() -> Iterator[None]:
    """A month of a busy site is ~10^5 step events, each a few small objects that never form
    cycles: the cyclic garbage collector would rescan the growing heap many times while they
    are built and grouped (half the report's time on 10 M events). Reference counting still
    frees everything; the collector resumes afterwards (if it was on)."""
    was_on = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_on:
            gc.enable()
