"""Nearest-rank percentiles of a duration per group, computed by the database (see the
package's docstring), and the time buckets the series are grouped by."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from django.db import connections
from django.db.models import F, QuerySet, Value
from django.utils import timezone

from releases.models import Service

from ..calendar import ServiceLink
from .definitions import MetricsScope

# --- aggregation helpers ---------------------------------------------------------------------


def bucket_column(interval: str) -> Any:
    """The facts' stored bucket column for an interval (see DeliveryFact.finished_day)."""
    if interval in ("daily", "weekly", "monthly"):
        return F(f"bucket_{interval}")
    return Value("all")


def percentile_by(qs: QuerySet, group: Any, p: float) -> dict[Any, float]:
    """{group value: nearest-rank p-percentile of the ``duration`` column (seconds)}: one
    query.

    ROW_NUMBER() and COUNT() over each group's partition, then keep the row whose rank is
    ceil(p·n) (rank ≥ p·n and rank < p·n + 1 selects exactly that one).
    """
    return percentiles_by(qs, group, (p,))[p]


@dataclass(frozen=True)
class ByLink:
    """Partition release facts by their releases' services (``"service"``) or those
    services' teams (``"team"``): the ranking joins the release–service link table to the
    facts directly (not through releases_release). A release of two services counts once
    for each, as before; a release without a service is in no group."""

    by: str


def percentiles_by(qs: QuerySet, group: Any, ps: Iterable[float]) -> dict[float, dict[Any, float]]:
    """``percentile_by`` for several percentiles of the same rows in one query (the median
    and p90 of lead time share their ranking): {p: {group value: percentile}}.

    The facts' own query (filters, a covering index range) is compiled by Django and
    ranked by one hand-written query around it. On PostgreSQL: percentile_disc(p) WITHIN
    GROUP (ORDER BY duration) per group, the nearest rank by definition (cheaper than the
    window query; docs/benchmarks-pages.md). On SQLite, which has no ordered-set aggregates: a
    window query, ROW_NUMBER() and COUNT() over each group's partition once, instead of
    Django's QUALIFY emulation, which repeats the COUNT window in every rank condition. Both
    give the same figures (tests and the old-vs-new comparisons). ``group`` is
    an expression of the facts (a bucket column, service_id, team_id; a ``Value`` for the
    whole period) or a ``ByLink`` for release facts per service or team.
    """
    ps = tuple(ps)
    link = group if isinstance(group, ByLink) else None
    # Several querysets (the periods a trend's cut buckets keep) are ranked as one UNION
    # ALL, each read through its own index range.
    sources = list(qs) if isinstance(qs, list | tuple) else [qs]
    # Ranked by duration alone: rows of equal duration may take either rank, but the value
    # at a rank is the same, so no tie-breaker (a smaller sort key).
    if link is None:
        parts = [q.order_by().annotate(g=group).values_list("g", "duration") for q in sources]
        rows = parts[0].union(*parts[1:], all=True) if len(parts) > 1 else parts[0]
    else:
        rows = sources[0].order_by().annotate(rank_key=F("pk")).values_list("duration", "rank_key")
    inner, params = rows.query.sql_with_params()
    qs = sources[0]
    connection = connections[qs.db]
    qn = connection.ops.quote_name
    if link is None:
        source, g = f"({inner}) s", "s.g"
    else:
        links = ServiceLink._meta.db_table
        source = f"({inner}) s INNER JOIN {qn(links)} l ON l.{qn('release_id')} = s.rank_key"
        g = f"l.{qn('service_id')}"
        if link.by == "team":
            services = Service._meta.db_table
            source += f" INNER JOIN {qn(services)} v ON v.{qn('id')} = l.{qn('service_id')}"
            g = f"v.{qn('team_id')}"
    out: dict[float, dict[Any, float]] = {p: {} for p in ps}
    if connection.vendor == "postgresql":
        # percentile_disc(p) is the nearest rank: the first value whose position is at least
        # p·n (rank ceil(p·n), the first for p = 0), an ordered-set aggregate that sorts each
        # group once in C instead of two windows and a filter over every ranked row.
        aggregates = ", ".join("percentile_disc(%s) WITHIN GROUP (ORDER BY s.duration)" for _ in ps)
        sql = f"SELECT {g} AS g, {aggregates} FROM {source} GROUP BY {g}"
        return _per_group(connection, sql, (*ps, *params), ps)
    if link is None and isinstance(group, Value) and len(sources) == 1:
        # One partition (the whole period): each percentile is the row at its rank of one
        # ORDER BY … LIMIT 1 OFFSET, for which SQLite's sorter keeps only the rows up to
        # that rank (counted from the nearer end: ceil(p·n) − 1 rows skipped from the
        # smallest, or n − ceil(p·n) from the largest), with n from one COUNT of the same
        # rows: less than half the cost of a window (docs/benchmarks-pages.md).
        rank = "(CAST(c.n * %s AS INTEGER) + (c.n * %s > CAST(c.n * %s AS INTEGER)))"
        columns, column_params = [], []
        for p in ps:
            order, skip = ("DESC", f"c.n - {rank}") if p > 0.5 else ("", f"{rank} - 1")
            columns.append(
                f"(SELECT s.duration FROM ({inner}) s ORDER BY s.duration {order} "
                f"LIMIT 1 OFFSET (SELECT {skip} FROM c))"
            )
            column_params += [*params, p, p, p]
        sql = f"WITH c AS (SELECT COUNT(*) AS n FROM ({inner}) s) SELECT {', '.join(columns)}"
        with connection.cursor() as cursor:
            cursor.execute(sql, (*params, *column_params))
            values = cursor.fetchone()
        for p, value in zip(ps, values, strict=True):
            if value is not None:
                out[p][group.value] = float(value)
        return out
    # Per group: the smallest duration whose CUME_DIST() (rows ≤ it over the group's n) is
    # at least p — the value at rank ceil(p·n), as percentile_disc defines it (k/n ≥ p ⟺
    # k ≥ ceil(p·n); k/n and p are ratios of small integers, far apart next to a double's
    # precision). One window pass, where ROW_NUMBER() and COUNT() took two (~15% less).
    # Only the rows at or past the smallest p reach the grouping's sort (~10% less a ranking).
    picks = ", ".join("MIN(CASE WHEN r.cd >= %s THEN r.duration END)" for _ in ps)
    sql = (
        f"SELECT r.g, {picks} FROM (SELECT {g} AS g, s.duration AS duration, "
        f"CUME_DIST() OVER (PARTITION BY {g} ORDER BY s.duration) AS cd FROM {source}) r "
        "WHERE r.cd >= %s GROUP BY r.g"
    )
    return _per_group(connection, sql, (*ps, *params, min(ps)), ps)


def _per_group(connection, sql: str, params: tuple, ps: tuple) -> dict[float, dict[Any, float]]:
    """Run a ranking that answers one row per group — (g, value at ps[0], value at ps[1], …)
    — as {p: {group value: percentile}} (a group with no value at p is left out)."""
    out: dict[float, dict[Any, float]] = {p: {} for p in ps}
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        found = cursor.fetchall()
    for g_value, *values in found:
        for p, value in zip(ps, values, strict=True):
            if value is not None:
                out[p][g_value] = float(value)
    return out


def to_date(value: Any) -> Any:
    if isinstance(value, datetime):
        return timezone.localtime(value).date() if timezone.is_aware(value) else value.date()
    return value


def bucket_dates(scope: MetricsScope, interval: str) -> list[date]:
    """Every bucket of the period, so a month with no deployments shows a zero, not a gap."""
    if interval == "all":
        return [scope.start_date]
    out: list[date] = []
    current = scope.start_date
    if interval == "weekly":
        current -= timedelta(days=current.weekday())
    if interval == "monthly":
        current = current.replace(day=1)
    while current <= scope.end_date:
        out.append(current)
        if interval == "daily":
            current += timedelta(days=1)
        elif interval == "weekly":
            current += timedelta(days=7)
        else:
            current = (current.replace(day=28) + timedelta(days=4)).replace(day=1)
    return out


def as_date(value: Any) -> Any:
    """A bucket as a date, whether the database answered a date, a datetime or ISO text."""
    if isinstance(value, str):
        return date.fromisoformat(value[:10])
    return to_date(value)
