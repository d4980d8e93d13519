"""RFM segmentation of granted users with revenue, and the customer retention rate.

Per user id (its keyed hash; granted only) over the period: recency = whole days from the last
revenue event to the end of the period (or now, if earlier), frequency = revenue events,
monetary = revenue sum in one currency. Each is scored 1–5 by quintile of rank: score =
1 + ⌊5 · (users strictly worse) ÷ users⌋, so ties share a score. Segments come from (R, F).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from collector.config import Config
from collector.reports.core import period_out
from collector.reports.query import ReportQuery, resolve_scope, to_ms
from collector.reports.results import PeriodOut, Result

if TYPE_CHECKING:
    from collector.storage.ports import ReportStore

DAY_MS = 86_400_000


def segment(recency: int, frequency: int) -> str:
    """The usual named segment of an (R, F) score pair."""
    if recency == 1 and frequency == 1:
        return "lost"
    if recency <= 2:
        if frequency == 5:
            return "cannot lose them"
        return "at risk" if frequency >= 3 else "hibernating"
    if recency == 3:
        if frequency >= 4:
            return "loyal"
        return "need attention" if frequency == 3 else "about to sleep"
    if frequency >= 4:
        return "champions" if recency == 5 else "loyal"
    if frequency >= 2:
        return "potential loyalists"
    return "new customers" if recency == 5 else "promising"


def quintile_scores(values: Sequence[Decimal | int], *, higher_is_better: bool) -> list[int]:
    """Score 1–5 of each value: 1 + ⌊5 · (values strictly worse) ÷ count⌋."""
    count = len(values)
    ordered = sorted(values)
    scores: list[int] = []
    for value in values:
        if higher_is_better:
            worse = _count_below(ordered, value)
        else:
            worse = count - _count_below(ordered, value) - ordered.count(value)
        scores.append(1 + (5 * worse) // count)
    return scores


def _count_below(ordered: Sequence[Decimal | int], value: Decimal | int) -> int:
    return sum(1 for item in ordered if item < value)


class Customer(Result):
    recency_days: int
    frequency: int
    monetary: str
    r: int
    f: int
    m: int
    segment: str


class SegmentSize(Result):
    segment: str
    customers: int
    revenue: str


class RFMReport(Result):
    sites: tuple[str, ...]
    period: PeriodOut
    currency: str | None
    customers: int
    segments: list[SegmentSize]
    #: One row per customer (pseudonymous: no identifier is returned), best first.
    scores: list[Customer]
    customers_at_start: int
    customers_at_end: int
    new_customers: int
    #: (customers at end − new customers) ÷ customers at start; ``None`` without any at start.
    customer_retention_rate: float | None
    excluded_other_currency: int
    note: str = (
        "customers at start: users with revenue in the previous period of the same length; "
        "at end: users with revenue in this period; new: their first revenue is in this period"
    )


def rfm(
    db: ReportStore,
    config: Config,
    query: ReportQuery,
    *,
    sites: Sequence[str],
    now: datetime,
    currency: str | None = None,
) -> RFMReport:
    scope = resolve_scope(query, config, sites, now)
    before = resolve_scope(query, config, sites, now, previous=True)
    ranges = {r.site: r for r in scope.ranges}
    previous = {r.site: r for r in before.ranges}
    rows = db.revenue_events_where(sites, max(r.end_ms for r in scope.ranges), query.filters)
    in_period = [row for row in rows if ranges[row[0]].start_ms <= row[2] < ranges[row[0]].end_ms]
    if currency is None and in_period:
        tally: dict[str, int] = {}
        for row in in_period:
            tally[row[4]] = tally.get(row[4], 0) + 1
        currency = min(tally, key=lambda code: (-tally[code], code))
    first_revenue: dict[tuple[str, bytes], int] = {}
    at_start: set[tuple[str, bytes]] = set()
    for site, user, ts, _amount, _code in rows:
        first_revenue.setdefault((site, user), ts)
        if previous[site].start_ms <= ts < previous[site].end_ms:
            at_start.add((site, user))
    per_user: dict[tuple[str, bytes], tuple[int, int, Decimal]] = {}
    excluded = 0
    for site, user, ts, amount, code in in_period:
        if code != currency:
            excluded += 1
            continue
        last, count, total = per_user.get((site, user), (ts, 0, Decimal(0)))
        per_user[(site, user)] = (max(last, ts), count + 1, total + Decimal(amount))
    reference = min(to_ms(now), max(r.end_ms for r in scope.ranges))
    keys = list(per_user)
    recency = [max(0, (reference - per_user[k][0]) // DAY_MS) for k in keys]
    frequency = [per_user[k][1] for k in keys]
    monetary = [per_user[k][2] for k in keys]
    r_scores = quintile_scores(recency, higher_is_better=False)
    f_scores = quintile_scores(frequency, higher_is_better=True)
    m_scores = quintile_scores(monetary, higher_is_better=True)
    customers = [
        Customer(
            recency_days=recency[i],
            frequency=frequency[i],
            monetary=str(monetary[i]),
            r=r_scores[i],
            f=f_scores[i],
            m=m_scores[i],
            segment=segment(r_scores[i], f_scores[i]),
        )
        for i in range(len(keys))
    ]
    customers.sort(key=lambda c: (-(c.r + c.f + c.m), -Decimal(c.monetary)))
    sizes: dict[str, tuple[int, Decimal]] = {}
    for customer in customers:
        count, revenue = sizes.get(customer.segment, (0, Decimal(0)))
        sizes[customer.segment] = (count + 1, revenue + Decimal(customer.monetary))
    active = {(s, u) for s, u, _ts, _a, _c in in_period}
    new = {k for k in active if ranges[k[0]].start_ms <= first_revenue[k]}
    return RFMReport(
        sites=tuple(sites),
        period=period_out(scope),
        currency=currency,
        customers=len(customers),
        segments=[
            SegmentSize(segment=name, customers=count, revenue=str(revenue))
            for name, (count, revenue) in sorted(sizes.items(), key=lambda i: (-i[1][0], i[0]))
        ],
        scores=customers,
        customers_at_start=len(at_start),
        customers_at_end=len(active),
        new_customers=len(new),
        customer_retention_rate=(len(active) - len(new)) / len(at_start) if at_start else None,
        excluded_other_currency=excluded,
    )
