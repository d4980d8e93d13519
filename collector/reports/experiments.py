"""A/B experiments: a property (the variant) plus a goal, with a two-proportion z-test.

Exposed to variant v: visitors with an event whose property equals v. Converted: exposed
visitors with a goal event at or after their first exposure. Each variant is compared with the
control: lift, the 95 % confidence interval of the difference of rates (unpooled standard
error) and the two-sided p-value of the pooled z-test, ``erfc(|z| / √2)``. No verdict is given
below :data:`MIN_EXPOSED` visitors in either arm.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

import msgspec

from collector.config import Config
from collector.errors import ReportParameterError
from collector.reports.core import period_out
from collector.reports.funnels import matches
from collector.reports.query import ReportQuery, resolve_scope
from collector.reports.results import PeriodOut, Result, ratio
from collector.storage.rows import PROP_NAME, Goal

if TYPE_CHECKING:
    from collector.storage.ports import ReportStore

MIN_EXPOSED = 100
Z_95 = 1.959963984540054
ALPHA = 0.05


class ZTest(msgspec.Struct, frozen=True):
    difference: float
    ci_low: float
    ci_high: float
    z: float
    p_value: float


class VariantResult(Result):
    variant: str
    exposed: int
    converted: int
    rate: float
    is_control: bool
    lift: float | None = None
    difference: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    p_value: float | None = None
    verdict: str | None = None
    no_verdict_reason: str | None = None


class ExperimentReport(Result):
    sites: tuple[str, ...]
    period: PeriodOut
    property: str
    goal: str
    control: str | None
    variants: list[VariantResult]
    note: str = (
        "a visitor exposed to several variants counts in each; conversions count at or after "
        "the visitor's first exposure to that variant"
    )


def two_proportion_test(
    converted_a: int, exposed_a: int, converted_b: int, exposed_b: int
) -> ZTest:
    """B against A: difference of rates, its 95 % CI and the two-sided p-value."""
    if exposed_a <= 0 or exposed_b <= 0:
        raise ValueError("both arms need exposed visitors")
    rate_a = converted_a / exposed_a
    rate_b = converted_b / exposed_b
    difference = rate_b - rate_a
    pooled = (converted_a + converted_b) / (exposed_a + exposed_b)
    pooled_se = math.sqrt(pooled * (1 - pooled) * (1 / exposed_a + 1 / exposed_b))
    if pooled_se == 0:
        z, p_value = 0.0, 1.0
    else:
        z = difference / pooled_se
        p_value = math.erfc(abs(z) / math.sqrt(2))
    se = math.sqrt(rate_a * (1 - rate_a) / exposed_a + rate_b * (1 - rate_b) / exposed_b)
    return ZTest(
        difference=difference,
        ci_low=difference - Z_95 * se,
        ci_high=difference + Z_95 * se,
        z=z,
        p_value=p_value,
    )


def compare_variant(row: VariantResult, control: VariantResult) -> None:
    """Fill ``row``'s comparison with ``control`` (in place)."""
    if control.exposed == 0 or row.exposed == 0:
        row.no_verdict_reason = "an arm has no exposed visitors"
        return
    test = two_proportion_test(control.converted, control.exposed, row.converted, row.exposed)
    row.lift = (row.rate - control.rate) / control.rate if control.rate else None
    row.difference, row.ci_low, row.ci_high = test.difference, test.ci_low, test.ci_high
    row.p_value = test.p_value
    small = [arm for arm in (control, row) if arm.exposed < MIN_EXPOSED]
    if small:
        row.no_verdict_reason = "; ".join(
            f"{arm.variant!r} has {arm.exposed} exposed visitors (a verdict needs "
            f"{MIN_EXPOSED} per arm)"
            for arm in small
        )
    elif test.p_value >= ALPHA:
        row.verdict = "no significant difference"
    else:
        row.verdict = "better than control" if test.difference > 0 else "worse than control"


def experiment(
    db: ReportStore,
    config: Config,
    query: ReportQuery,
    *,
    sites: Sequence[str],
    now: datetime,
    prop: str,
    goal: Goal,
    control: str | None = None,
) -> ExperimentReport:
    """Per variant of property ``prop``: exposed, converted, rate, and the test vs control
    (``control`` defaults to the variant named ``control``, else the first by name)."""
    if not PROP_NAME.match(prop):
        raise ReportParameterError(f"invalid property name {prop!r}", field="property")
    scope = resolve_scope(query, config, sites, now)
    first_exposure: dict[str, dict[tuple[str, bytes], int]] = {}
    goal_times: dict[tuple[str, bytes], list[int]] = {}
    for item in db.step_events(scope.ranges, query.filters, [goal], prop=prop):
        key = (item.site, item.visitor)
        if item.value is not None:
            first_exposure.setdefault(item.value, {}).setdefault(key, item.ts)
        if matches(goal, item):
            goal_times.setdefault(key, []).append(item.ts)
    rows: list[VariantResult] = []
    for variant in sorted(first_exposure):
        exposed = first_exposure[variant]
        converted = sum(
            1 for key, ts in exposed.items() if any(t >= ts for t in goal_times.get(key, ()))
        )
        rows.append(
            VariantResult(
                variant=variant,
                exposed=len(exposed),
                converted=converted,
                rate=ratio(converted, len(exposed)),
                is_control=False,
            )
        )
    names = [row.variant for row in rows]
    chosen = control if control is not None else ("control" if "control" in names else None)
    if chosen is None and names:
        chosen = names[0]
    control_row = next((row for row in rows if row.variant == chosen), None)
    for row in rows:
        if control_row is None:
            row.no_verdict_reason = f"control variant {chosen!r} has no exposed visitors"
        elif row is control_row:
            row.is_control = True
        else:
            compare_variant(row, control_row)
    return ExperimentReport(
        sites=tuple(sites),
        period=period_out(scope),
        property=prop,
        goal=goal.name,
        control=chosen,
        variants=rows,
    )
