"""A/B experiment: exposure and conversion rules on stored events, and the two-proportion test
checked against an independent computation (Pearson's chi-square on the 2×2 table, with the
normal tail integrated numerically rather than through ``math.erfc``)."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from collector.config import Config
from collector.reports import ReportQuery, experiment, two_proportion_test
from collector.reports.experiments import ExperimentReport
from collector.storage.ports import ReportStore
from collector.storage.rows import Event, Goal
from tests.reports.dataset import config_for, event, ms, opened, store
from tests.support import traced_plans

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
SIGNUP = Goal(name="signup", kind="event", match="signup")


def today_experiment(db: ReportStore, config: Config, **extra: Any) -> ExperimentReport:
    """The experiment on property ``exp`` with goal ``signup``, for today (``NOW``)."""
    return experiment(
        db,
        config,
        ReportQuery(period="today"),
        sites=["example"],
        now=NOW,
        prop="exp",
        goal=SIGNUP,
        **extra,
    )


def normal_two_sided_p(z: float) -> float:
    """2 · (1 − Φ(|z|)), with Φ by Simpson's rule on the density from 0 to |z|."""
    steps = 20_000
    width = abs(z) / steps
    density = [math.exp(-((i * width) ** 2) / 2) / math.sqrt(2 * math.pi) for i in range(steps + 1)]
    area = density[0] + density[-1]
    area += 4 * sum(density[1:-1:2]) + 2 * sum(density[2:-1:2])
    return 2 * (0.5 - area * width / 3)


def chi_square_p(converted_a: int, exposed_a: int, converted_b: int, exposed_b: int) -> float:
    a, b = converted_a, exposed_a - converted_a
    c, d = converted_b, exposed_b - converted_b
    n = a + b + c + d
    chi2 = n * (a * d - b * c) ** 2 / ((a + b) * (c + d) * (a + c) * (b + d))
    return normal_two_sided_p(math.sqrt(chi2))  # one degree of freedom: χ² = z²


@pytest.mark.parametrize(
    "counts",
    [(20, 200, 36, 200), (120, 1000, 150, 1000), (5, 100, 5, 100), (30, 150, 12, 160)],
    ids=["lift", "large", "equal", "worse"],
)
def test_p_value_matches_chi_square(counts: tuple[int, int, int, int]) -> None:
    result = two_proportion_test(*counts)
    assert result.p_value == pytest.approx(chi_square_p(*counts), abs=1e-9)


def test_confidence_interval_by_hand() -> None:
    result = two_proportion_test(20, 200, 36, 200)
    se = math.sqrt(0.1 * 0.9 / 200 + 0.18 * 0.82 / 200)
    assert result.difference == pytest.approx(0.08)
    assert result.ci_low == pytest.approx(0.08 - 1.959964 * se, abs=1e-6)
    assert result.ci_high == pytest.approx(0.08 + 1.959964 * se, abs=1e-6)
    assert result.p_value == pytest.approx(0.02114, abs=5e-5)


def test_no_conversions_anywhere_is_no_difference() -> None:
    assert two_proportion_test(0, 120, 0, 130).p_value == 1.0


def _arm(variant: str, exposed: int, converted: int, start: int) -> list[Event]:
    rows: list[Event] = []
    for i in range(exposed):
        who = f"{variant}{i}"
        at = start + i * 1000
        rows.append(event(at, who, path="/landing", props={"exp": variant}))
        if i < converted:
            rows.append(event(at + 60_000, who, "signup", path="/thanks"))
    return rows


def test_experiment_report(tmp_path: Path) -> None:
    config = config_for(tmp_path)
    start = ms(2026, 3, 10, 8)
    rows = [
        *_arm("control", 200, 20, start),
        *_arm("b", 199, 35, start),
        *_arm("tiny", 50, 10, start),
        # b199 is exposed by the signup event itself: converted (at its first exposure).
        event(start + 500_000, "b199", "signup", path="/thanks", props={"exp": "b"}),
    ]
    # control200…204 signed up *before* their exposure: exposed, not converted.
    for i in range(200, 205):
        who = f"control{i}"
        rows.append(event(start + 3_000_000 + i, who, "signup", path="/thanks"))
        rows.append(event(start + 3_060_000 + i, who, path="/landing", props={"exp": "control"}))
    store(config, rows)
    with opened(config) as db:
        report = today_experiment(db, config)
    arms = {row.variant: row for row in report.variants}
    assert report.control == "control"
    control, b, tiny = arms["control"], arms["b"], arms["tiny"]
    assert (control.exposed, control.converted, control.is_control) == (205, 20, True)
    assert (b.exposed, b.converted, b.rate) == (200, 36, 0.18)
    assert b.lift == pytest.approx((0.18 - 20 / 205) / (20 / 205))
    assert b.p_value == pytest.approx(chi_square_p(20, 205, 36, 200), abs=1e-9)
    assert b.p_value is not None and b.p_value < 0.05
    assert b.verdict == "better than control"
    assert b.ci_low is not None and b.ci_low > 0
    assert tiny.verdict is None
    assert tiny.no_verdict_reason is not None and "'tiny' has 50 exposed" in tiny.no_verdict_reason


def test_experiment_reads_the_goal_and_property_events_through_their_indexes(
    tmp_path: Path,
) -> None:
    """Neither the goal's events nor the property's are found by reading every event of the
    period (361 ms at 10 M events): each through the index that holds them, and an event that is
    both (a signup carrying the property) is read once."""
    config = config_for(tmp_path)
    start = ms(2026, 3, 10, 8)
    pageviews = [event(start + i * 1000, f"x{i}", path="/other") for i in range(20)]
    both = event(start + 500_000, "a1", "signup", path="/thanks", props={"exp": "a"})
    store(config, [*_arm("a", 4, 1, start), *pageviews, both])
    with opened(config) as db:
        report, (plan,) = traced_plans(
            db,
            lambda: today_experiment(db, config),
            "props IS NOT NULL",
        )
    assert "event_rows_props" in plan and "event_rows_custom" in plan, plan
    assert "event_rows_by_time" not in plan, plan
    (arm,) = report.variants
    assert (arm.exposed, arm.converted) == (4, 2)


def test_experiment_without_the_control_variant(tmp_path: Path) -> None:
    config = config_for(tmp_path)
    store(config, _arm("a", 3, 1, ms(2026, 3, 10, 8)))
    with opened(config) as db:
        report = today_experiment(db, config, control="missing")
    (only,) = report.variants
    assert only.no_verdict_reason == "control variant 'missing' has no exposed visitors"
