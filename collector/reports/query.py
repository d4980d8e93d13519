"""The report query model: sites, period, filters and comparison, resolved against the clock.

A :class:`ReportQuery` says what the caller asked for; :func:`resolve_scope` turns it into
exact UTC millisecond ranges per site, in each site's own time zone, for a ``now`` passed in.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

import msgspec

from collector.config import Config
from collector.errors import ReportParameterError
from collector.storage.rows import Filter, SiteRange

Period = Literal["today", "7d", "30d", "month", "year", "custom"]
Interval = Literal["hour", "day", "week", "month"]

MAX_CUSTOM_DAYS = 3660


class QueryStruct(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """Shared options of the query model."""


class ReportQuery(QueryStruct, frozen=True):
    """What every report takes.

    ``sites`` is what the caller asked for (empty: every site it may see); the report
    functions take the authorised list as their own ``sites`` argument, and the API records
    it here too.
    """

    sites: tuple[str, ...] = ()
    period: Period = "30d"
    date_from: date | None = msgspec.field(default=None, name="from")
    date_to: date | None = msgspec.field(default=None, name="to")
    filters: tuple[Filter, ...] = ()
    compare: Literal["previous_period"] | None = None

    def __post_init__(self) -> None:
        if self.period == "custom":
            if self.date_from is None or self.date_to is None:
                raise ReportParameterError(
                    "period=custom needs `from` and `to` (YYYY-MM-DD)",
                    field="from" if self.date_from is None else "to",
                )
            if self.date_to < self.date_from:
                raise ReportParameterError("`to` is before `from`", field="to")
            if (self.date_to - self.date_from).days >= MAX_CUSTOM_DAYS:
                raise ReportParameterError(
                    f"a custom period spans at most {MAX_CUSTOM_DAYS} days", field="to"
                )


class Scope(msgspec.Struct, frozen=True):
    """A resolved period: local dates ``[first_day, last_day]`` and each site's UTC range."""

    first_day: date
    last_day: date
    ranges: tuple[SiteRange, ...]

    @property
    def sites(self) -> tuple[str, ...]:
        return tuple(r.site for r in self.ranges)


def period_days(query: ReportQuery, today: date) -> tuple[date, date]:
    """The local dates ``(first, last)`` (inclusive) of ``query``'s period, ``today`` given."""
    if query.period == "today":
        return today, today
    if query.period == "7d":
        return today - timedelta(days=6), today
    if query.period == "30d":
        return today - timedelta(days=29), today
    if query.period == "month":
        first = today.replace(day=1)
        return first, _add_months(first, 1) - timedelta(days=1)
    if query.period == "year":
        return date(today.year, 1, 1), date(today.year, 12, 31)
    assert query.date_from is not None and query.date_to is not None  # checked at construction
    return query.date_from, query.date_to


def previous_days(query: ReportQuery, first: date, last: date) -> tuple[date, date]:
    """The period just before ``[first, last]``: the previous calendar month or year for
    ``month``/``year``, otherwise the same number of days immediately before."""
    if query.period == "month":
        start = _add_months(first, -1)
        return start, first - timedelta(days=1)
    if query.period == "year":
        return date(first.year - 1, 1, 1), date(first.year - 1, 12, 31)
    length = (last - first).days + 1
    return first - timedelta(days=length), first - timedelta(days=1)


def resolve_scope(
    query: ReportQuery,
    config: Config,
    sites: Sequence[str],
    now: datetime,
    *,
    previous: bool = False,
) -> Scope:
    """Each site's UTC range for ``query``'s period (or the period before it).

    The local dates come from the first site's time zone; each site's range is those dates in
    its own zone, so "today" means the same calendar day everywhere in a group view.
    """
    if not sites:
        raise ReportParameterError("no site to report on", field="site")
    first_zone = ZoneInfo(_timezone(config, sites[0]))
    first, last = period_days(query, now.astimezone(first_zone).date())
    if previous:
        first, last = previous_days(query, first, last)
    ranges = tuple(
        SiteRange(
            site=site,
            timezone=_timezone(config, site),
            start_ms=local_midnight_ms(first, ZoneInfo(_timezone(config, site))),
            end_ms=local_midnight_ms(last + timedelta(days=1), ZoneInfo(_timezone(config, site))),
        )
        for site in sites
    )
    return Scope(first_day=first, last_day=last, ranges=ranges)


def local_midnight_ms(day: date, zone: ZoneInfo) -> int:
    return to_ms(datetime.combine(day, time(0), tzinfo=zone))


def to_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _timezone(config: Config, site_id: str) -> str:
    site = config.site(site_id)
    if site is None:
        raise ReportParameterError(f"unknown site {site_id!r}", field="site")
    return site.timezone


def _add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def add_months(day: date, months: int) -> date:
    """The first day of the month ``months`` after ``day``'s month."""
    return _add_months(day, months)
