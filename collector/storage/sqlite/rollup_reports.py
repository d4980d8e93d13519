"""The rollup form of the reports' queries (see :mod:`collector.storage.sqlite.rollups` for
what the tables hold).

Distinct visitors in a range of whole UTC hours are the chain rows in the range whose
predecessor ended before it. When the range reaches past the newest row (every period that ends
today), that count is a plain sum of ``firsts`` (+1 at a row's hour, -1 at its predecessor's):
each row in the range whose predecessor is in the range too cancels out, and no row after the
range can have one in it. Ranges that end earlier (comparisons, a time series' past buckets)
count the rows. Sums come from ``key_days`` for the range's whole UTC days and ``key_hours``
for the hours at either end, so a year reads a few hundred rows per value, not thousands.
"""

from __future__ import annotations

from collections.abc import Iterable

from collector.storage.sqlite.rollups import HOUR_MS, ROLLUP_DIMENSIONS, VISIT_LEVEL


def answers(
    dimension: str | None,
    has_filters: bool,
    has_goal: bool,
    edges: Iterable[tuple[int, int]],
) -> bool:
    """Whether the rollups answer a metrics query exactly: no filter, no goal, a rolled-up
    dimension (or none), and every range on whole UTC hours (``anon_hours``' grain) and at
    least 30 minutes long."""
    if has_filters or has_goal:
        return False
    if dimension is not None and (dimension == "*" or dimension not in ROLLUP_DIMENSIONS):
        return False
    return all(
        lo % HOUR_MS == 0 and hi % HOUR_MS == 0 and hi - lo >= HOUR_MS // 2 for lo, hi in edges
    )


def _pieces(bucketed: bool) -> list[str]:
    """CTEs cutting each range of ``b`` (``scope`` itself when not ``bucketed``) into its whole
    UTC days and the hours before and after them: ``pieces(i, site, grain, a, z, cur, lo)``, with
    ``a``/``z`` in days or hours. ``cur``: no chain row at or after the range's end, so its
    visitors are a sum of ``firsts``."""
    ctes = []
    if not bucketed:
        ctes.append("b(i, site, lo, hi) AS MATERIALIZED (SELECT NULL, site, lo, hi FROM scope)")
    ctes.append(
        f"bh(i, site, lo, hi, fh, th, fd, td, cur) AS MATERIALIZED (SELECT i, site, lo, hi, "
        f"lo / {HOUR_MS}, hi / {HOUR_MS}, (lo / {HOUR_MS} + 23) / 24, hi / {HOUR_MS} / 24, "
        f"hi / {HOUR_MS} > coalesce((SELECT max(x.hour) FROM visit_keys x WHERE x.site = b.site "
        "AND x.dim = '*' AND x.key IS NULL), -1) FROM b)"
    )
    ctes.append(
        "pieces(i, site, grain, a, z, cur, lo) AS MATERIALIZED ("
        "SELECT i, site, 'h', fh, CASE WHEN fd < td THEN fd * 24 ELSE th END, cur, lo FROM bh "
        "UNION ALL SELECT i, site, 'd', fd, td, cur, lo FROM bh WHERE fd < td "
        "UNION ALL SELECT i, site, 'h', td * 24, th, cur, lo FROM bh "
        "WHERE fd < td AND td * 24 < th)"
    )
    return ctes


def _piece_rows(columns: str, anon: str | None, where: str = "") -> str:
    """``columns`` of the site's rows (``t``: ``key_hours``/``key_days``, ``*`` only) and
    ``anon`` columns of ``anon_hours``/``anon_days`` (``a``) in every piece, as one UNION."""
    parts = []
    for table, anon_table, unit, grain in (
        ("key_hours", "anon_hours", "hour", "h"),
        ("key_days", "anon_days", "day", "d"),
    ):
        parts.append(
            f"SELECT {columns} FROM pieces p JOIN {table} t ON t.site = p.site AND t.dim = '*' "
            f"AND t.key IS NULL AND t.{unit} >= p.a AND t.{unit} < p.z "
            f"WHERE p.grain = '{grain}'{where}"
        )
        if anon is not None:
            parts.append(
                f"SELECT {anon} FROM pieces p JOIN {anon_table} a ON a.site = p.site "
                f"AND a.dim = '*' AND a.{unit} >= p.a AND a.{unit} < p.z "
                f"WHERE p.grain = '{grain}'{where}"
            )
    return " UNION ALL ".join(parts)


def engaged_sql(scope_cte: str) -> str:
    """Total engaged time of the period: the ``*`` sums and the unidentified events'."""
    ctes = [scope_cte, *_pieces(False)]
    rows = _piece_rows("t.engaged AS engaged", "a.engaged AS engaged")
    return "WITH " + ",\n".join(ctes) + f" SELECT coalesce(SUM(engaged), 0) FROM ({rows})"


def visitor_kinds_sql(scope_cte: str) -> str:
    """Distinct visitors of the period by kind: counts of the two kinds, and of rows of any
    other kind (then the caller asks the events instead). Ranges that end before the newest
    row count the chain rows."""
    ctes = [scope_cte, *_pieces(False)]
    counted = "(x.prev_last IS NULL OR x.prev_last < bh.lo)"
    rows = (
        f"SELECT {counted} AND x.kind = 'client' AS c, {counted} AND x.kind = 'cookieless' AS k, "
        "coalesce(x.kind NOT IN ('client', 'cookieless'), 1) AS o FROM bh "
        "CROSS JOIN visit_keys x ON x.site = bh.site AND x.dim = '*' AND x.key IS NULL "
        "AND x.hour >= bh.fh AND x.hour < bh.th WHERE NOT bh.cur"
    )
    sums = _piece_rows(
        "t.firsts_client AS c, t.firsts_cookieless AS k, t.rows_other AS o", None, " AND p.cur"
    )
    return (
        "WITH " + ",\n".join(ctes) + " SELECT coalesce(SUM(c), 0), coalesce(SUM(k), 0), "
        f"coalesce(SUM(o), 0) FROM ({sums} UNION ALL {rows})"
    )


def _past_visitors(dim: str, bucketed: bool, by_value: bool) -> str:
    """``vis``: the visitors of the ranges that end before the newest row, whose rows in the
    range count when their predecessor ended before it. Per value: one index range per value.
    Without a dimension, whole UTC days come from ``visitor_links`` (rows per day and
    predecessor's day), plus the rows whose predecessor ended on the range's first day but
    before the range began; the hours at either end count their rows."""
    if by_value:
        key = "bh.i" if bucketed else "rk.key"
        return (
            f"vis AS (SELECT k, SUM(visitors) AS visitors FROM (SELECT {key} AS k, "
            "(SELECT SUM(x.prev_last IS NULL OR x.prev_last < bh.lo) FROM visit_keys x "
            f"WHERE x.site = bh.site AND x.dim = '{dim}' AND x.key IS rk.key "
            "AND x.hour >= bh.fh AND x.hour < bh.th) AS visitors FROM bh CROSS JOIN rollup_keys rk "
            f"ON rk.site = bh.site AND rk.dim = '{dim}' WHERE NOT bh.cur) "
            "WHERE visitors IS NOT NULL GROUP BY k)"
        )
    key = "p.i" if bucketed else "NULL"
    day_ms = 24 * HOUR_MS
    return (
        f"vis AS (SELECT k, SUM(n) AS visitors FROM ("
        f"SELECT {key} AS k, (x.prev_last IS NULL OR x.prev_last < p.lo) AS n FROM pieces p "
        "CROSS JOIN visit_keys x ON x.site = p.site AND x.dim = '*' AND x.key IS NULL "
        "AND x.hour >= p.a AND x.hour < p.z WHERE p.grain = 'h' AND NOT p.cur UNION ALL "
        f"SELECT {key}, l.rows FROM pieces p CROSS JOIN visitor_links l ON l.site = p.site "
        f"AND l.day >= p.a AND l.day < p.z AND l.prev_day < p.lo / {day_ms} "
        "WHERE p.grain = 'd' AND NOT p.cur UNION ALL "
        f"SELECT {key}, 1 FROM pieces p CROSS JOIN visit_keys x INDEXED BY visit_keys_by_prev "
        f"ON x.site = p.site AND x.dim = '*' AND x.prev_last >= p.lo / {day_ms} * {day_ms} "
        "AND x.prev_last < p.lo AND x.hour >= p.a * 24 AND x.hour < p.z * 24 "
        "WHERE p.grain = 'd' AND NOT p.cur) GROUP BY k HAVING SUM(n) > 0)"
    )


def metrics_sql(dimension: str | None, ctes: list[str], bucketed: bool, page: str) -> str:
    """The rollup form of ``ReportsDatabase.metrics`` (same columns, same order).

    ``ctes`` holds ``scope`` and, when ``bucketed``, ``b``. Each range is cut into ``pieces``:
    its whole UTC days (``key_days``) and the hours before and after them (``key_hours``). A
    visit that started in the period but shows the value only after it is taken back out
    (``fix``); unidentified events come from ``anon_hours`` and ``anon_days``.
    """
    dim = dimension or "*"
    ranges = [*ctes, *_pieces(bucketed)]
    key = "p.i" if bucketed else ("rk.key" if dimension else "NULL")
    # CROSS JOIN fixes the loop order: each piece, each value, then that value's range in the
    # index (the planner would otherwise scan the whole dimension).
    per_value = (
        f"FROM pieces p CROSS JOIN rollup_keys rk ON rk.site = p.site AND rk.dim = '{dim}' "
        "CROSS JOIN {table} t ON t.site = p.site AND t.dim = '{dim}' AND t.key IS rk.key "
        "AND t.{unit} >= p.a AND t.{unit} < p.z WHERE p.grain = '{grain}'"
    )
    columns = (
        f"{key} AS k, t.pageviews, t.events, t.visits, t.bounces, t.duration, "
        "t.visit_pageviews, CASE WHEN p.cur THEN t.firsts ELSE 0 END AS firsts"
    )
    ranges.append(
        "sums AS (SELECT k, SUM(pageviews) AS pageviews, SUM(events) AS events, "
        "SUM(visits) AS visits, SUM(bounces) AS bounces, SUM(duration) AS duration, "
        "SUM(visit_pageviews) AS visit_pageviews, SUM(firsts) AS firsts FROM ("
        f"SELECT {columns} "
        + per_value.format(table="key_hours", unit="hour", grain="h", dim=dim)
        + f" UNION ALL SELECT {columns} "
        + per_value.format(table="key_days", unit="day", grain="d", dim=dim)
        + ") GROUP BY k)"
    )
    ranges.append(_past_visitors(dim, bucketed, dimension is not None))
    # Visits that started in the period, counted at their start hour in ``key_hours``, whose
    # first event with the value comes after the period's end: not visits of that value here.
    fix_key = "bv.i" if bucketed else ("rk.key" if dimension else "NULL")
    fix_bucket = (
        "JOIN b bv ON bv.site = s.site AND x.v_start >= bv.lo AND x.v_start < bv.hi "
        if bucketed
        else ""
    )
    ranges.append(
        f"fix AS (SELECT {fix_key} AS k, COUNT(*) AS visits, SUM(x.v_bounced) AS bounces, "
        "SUM(CASE WHEN x.v_bounced THEN 0 ELSE x.v_span END) AS duration, "
        "SUM(x.v_pageviews) AS visit_pageviews FROM scope s "
        f"CROSS JOIN rollup_keys rk ON rk.site = s.site AND rk.dim = '{dim}' "
        f"CROSS JOIN visit_keys x ON x.site = s.site AND x.dim = '{dim}' AND x.key IS rk.key "
        f"AND x.hour >= s.hi / {HOUR_MS} AND x.hour <= (s.hi + coalesce((SELECT span "
        f"FROM rollup_spans WHERE rollup_spans.site = s.site), 0)) / {HOUR_MS} "
        f"{fix_bucket}WHERE x.lead AND x.v_start >= s.lo AND x.v_start < s.hi GROUP BY 1)"
    )
    if dim in VISIT_LEVEL:
        ranges.append("an AS (SELECT NULL AS k, 0 AS pageviews, 0 AS events WHERE 0)")
    else:
        anon_key = "p.i" if bucketed else ("a.key" if dimension else "NULL")
        anon = (
            f"SELECT {anon_key} AS k, a.pageviews, a.events FROM pieces p JOIN {{table}} a "
            f"ON a.site = p.site AND a.dim = '{dim}' AND a.{{unit}} >= p.a AND a.{{unit}} < p.z "
            "WHERE p.grain = '{grain}'"
        )
        ranges.append(
            "an AS (SELECT k, SUM(pageviews) AS pageviews, SUM(events) AS events FROM ("
            + anon.format(table="anon_hours", unit="hour", grain="h")
            + " UNION ALL "
            + anon.format(table="anon_days", unit="day", grain="d")
            + ") GROUP BY k)"
        )
    ranges.append(
        "keys AS (SELECT k FROM sums WHERE firsts > 0 UNION SELECT k FROM vis "
        "UNION SELECT k FROM an)"
    )
    return (
        "WITH " + ",\n".join(ranges) + " SELECT keys.k, "
        "coalesce(sums.firsts, 0) + coalesce(vis.visitors, 0), "
        "coalesce(sums.pageviews, 0) + coalesce(an.pageviews, 0), "
        "coalesce(sums.events, 0) + coalesce(an.events, 0), "
        "coalesce(sums.visits, 0) - coalesce(fix.visits, 0), "
        "coalesce(sums.bounces, 0) - coalesce(fix.bounces, 0), "
        "coalesce(sums.duration, 0) - coalesce(fix.duration, 0), "
        "coalesce(sums.visit_pageviews, 0) - coalesce(fix.visit_pageviews, 0), "
        "0, coalesce(an.pageviews, 0) FROM keys LEFT JOIN vis ON vis.k IS keys.k "
        "LEFT JOIN sums ON sums.k IS keys.k LEFT JOIN fix ON fix.k IS keys.k "
        "LEFT JOIN an ON an.k IS keys.k ORDER BY 2 DESC, 3 DESC, 1" + page
    )
