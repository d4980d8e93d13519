"""CSV download of a breakdown, safe to open in a spreadsheet."""

from __future__ import annotations

import csv
import io

import msgspec

from collector.csv_cells import defuse
from collector.reports.results import BreakdownReport

COLUMNS = (
    "visitors",
    "visits",
    "pageviews",
    "views_per_visit",
    "bounce_rate",
    "visit_duration_ms",
    "events",
    "conversions",
    "conversion_rate",
)


def breakdown_csv(report: BreakdownReport) -> str:
    """One header row (the dimension, then the metrics) and one row per breakdown value."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([report.by, *COLUMNS])
    for row in report.rows:
        values = msgspec.structs.asdict(row.metrics)
        writer.writerow(
            [_cell(row.value), *("" if values[c] is None else values[c] for c in COLUMNS)]
        )
    return buffer.getvalue()


def csv_name(report: BreakdownReport) -> str:
    return "breakdown-" + "".join(c if c.isalnum() else "-" for c in report.by) + ".csv"


def _cell(value: str | None) -> str:
    return "" if value is None else defuse(value)
