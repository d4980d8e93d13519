"""Reports: exact analytics computed from the stored events (docs/metrics.md).

Every report is a function ``report(db, config, query, *, sites, now, …)`` returning a
``msgspec.Struct``; the JSON API and the dashboard both call these functions directly, with a
:class:`~collector.storage.ports.ReportStore` from ``collector.storage.reports_for(config)``.
"""

from __future__ import annotations

from collector.reports.consent_report import attribution, consent_report
from collector.reports.core import aggregate, breakdown, realtime, timeseries
from collector.reports.experiments import experiment, two_proportion_test
from collector.reports.funnels import funnel
from collector.reports.goals import goals_report, resolve_goal, stored_goals
from collector.reports.query import ReportQuery
from collector.reports.retention import retention
from collector.reports.rfm import rfm
from collector.storage.rows import Filter, Goal

__all__ = [
    "Filter",
    "Goal",
    "ReportQuery",
    "aggregate",
    "attribution",
    "breakdown",
    "consent_report",
    "experiment",
    "funnel",
    "goals_report",
    "realtime",
    "resolve_goal",
    "retention",
    "rfm",
    "stored_goals",
    "timeseries",
    "two_proportion_test",
]
