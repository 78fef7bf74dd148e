"""Metrics over time: the count metrics' counts, one metric as a series of buckets, and the
duration metrics' trends (whole buckets from ``TrendPoint``, cut ones ranked live)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import date, datetime, timedelta
from typing import Any

from django.db.models import Count, F, Q, QuerySet
from django.utils import timezone

from ...models import TrendPoint
from .definitions import MetricsScope
from .facts import delivery_facts, release_facts
from .percentiles import (
    as_date,
    bucket_column,
    bucket_dates,
    percentile_by,
    percentiles_by,
    to_date,
)

COUNTED = ("deployment_frequency", "change_failure_rate", "deployment_success_rate")


COUNT_COLUMNS = ("shipped", "failures", "production", "ok", "n")


def _count_rows(scope: MetricsScope, *groups: Any) -> list[tuple[Any, ...]]:
    """The count metrics' five counts (``COUNT_COLUMNS``) per combination of the group
    values, in one query over the period's facts (every environment; the production ones
    picked with FILTER): [(g0, g1, …, shipped, failures, production, ok, n)]."""
    names = [f"g{i}" for i in range(len(groups))]
    return list(
        delivery_facts(scope, production=False)
        .annotate(**dict(zip(names, groups, strict=True)))
        .order_by()
        .values(*names)
        .annotate(
            shipped=Count("pk", filter=Q(is_production=True, shipped=True)),
            failures=Count("pk", filter=Q(is_production=True, failed=True)),
            production=Count("pk", filter=Q(is_production=True)),
            ok=Count("pk", filter=Q(succeeded=True)),
            n=Count("pk"),
        )
        .values_list(*names, *COUNT_COLUMNS)
    )


def _counted(shipped: int, failures: int, production: int, ok: int, n: int) -> dict:
    """{metric: (value, count)} of the count metrics from their five counts, where count is
    the deployments the value is computed from."""
    return {
        "deployment_frequency": (float(shipped), shipped),
        "change_failure_rate": (failures / production if production else None, production),
        "deployment_success_rate": (ok / n if n else None, n),
    }


def counted_by(scope: MetricsScope, group: Any) -> dict[Any, dict[str, tuple[Any, int]]]:
    """The three count metrics per group value in one query over the period's facts:
    {group: {metric: (value, count)}}."""
    return {g: _counted(*counts) for g, *counts in _count_rows(scope, group)}


def counted_rollup(
    scope: MetricsScope, interval: str, key: str
) -> tuple[dict[Any, dict], dict[Any, dict], dict[Any, dict]]:
    """``counted_by`` for the whole period, per bucket of ``interval`` and per ``key``
    (service_id or team_id) from one query grouped by (bucket, key): its rows are
    aggregates (buckets × groups of them, whatever the number of facts), summed here.
    Returns (whole period, per bucket, per group), each like ``counted_by``'s answer."""
    rows = _count_rows(scope, bucket_column(interval), F(key))
    per_bucket: dict[Any, list[tuple[int, ...]]] = {}
    per_group: dict[Any, list[tuple[int, ...]]] = {}
    for row in rows:
        per_bucket.setdefault(row[0], []).append(row[2:])
        per_group.setdefault(row[1], []).append(row[2:])

    def summed(counts: list[tuple[int, ...]]) -> dict:
        return _counted(*(sum(column) for column in zip(*counts, strict=True)))

    return (
        {"all": summed([row[2:] for row in rows])} if rows else {},
        {b: summed(counts) for b, counts in per_bucket.items()},
        {g: summed(counts) for g, counts in per_group.items()},
    )


# --- one metric as a series ------------------------------------------------------------------


def metric_series(metric: str, scope: MetricsScope, interval: str) -> list[dict[str, Any]]:
    """``[{"date": date, "value": number | None}]`` for one metric: the API's answer and a
    chart's data. One or two queries whatever the data size."""
    bucket = bucket_column(interval)
    values: dict[Any, float | None]
    if metric in ("deployment_frequency", "change_failure_rate", "deployment_success_rate"):
        qs = delivery_facts(scope, production=metric != "deployment_success_rate")
        if metric == "deployment_frequency":
            qs, hit = qs.filter(shipped=True), None
        elif metric == "change_failure_rate":
            hit = Count("pk", filter=Q(failed=True))
        else:
            hit = Count("pk", filter=Q(succeeded=True))
        rows = (
            qs.annotate(b=bucket)
            .order_by()
            .values("b")
            .annotate(n=Count("pk"), hit=hit or Count("pk"))
            .values_list("b", "hit", "n")
        )
        if metric == "deployment_frequency":
            values = {to_date(b): float(n) for b, _, n in rows}
            default: float | None = 0.0
        else:
            values = {to_date(b): (h / n if n else None) for b, h, n in rows}
            default = None
    else:
        values = duration_trends([metric], scope, interval)[metric]
        default = None
    if interval == "all":
        only = next(iter(values.values()), default)
        return [{"date": scope.start_date, "value": only}]
    return [{"date": d, "value": values.get(d, default)} for d in bucket_dates(scope, interval)]


def _percentile(metric: str) -> float:
    """The percentile a duration metric reports: p90 for ``…_p90``, else the median."""
    return 0.9 if metric.endswith("_p90") else 0.5


def duration_source(metric: str, scope: MetricsScope) -> tuple[QuerySet, float]:
    """The facts carrying a metric's durations, as a ``duration`` column, and its percentile."""
    if metric in ("lead_time_for_changes", "lead_time_for_changes_p90"):
        qs = delivery_facts(scope).filter(lead_seconds__isnull=False)
        return qs.annotate(duration=F("lead_seconds")), _percentile(metric)
    if metric == "time_to_restore_service":
        qs = delivery_facts(scope).filter(failed=True, restore_seconds__isnull=False)
        return qs.annotate(duration=F("restore_seconds")), 0.5
    if metric == "release_cycle_time":
        qs = release_facts(scope, "deployed_at").filter(cycle_seconds__isnull=False)
        return qs.annotate(duration=F("cycle_seconds")), 0.5
    if metric == "approval_wait_time":
        qs = release_facts(scope, "approved_at").filter(approval_wait_seconds__isnull=False)
        return qs.annotate(duration=F("approval_wait_seconds")), 0.5
    raise ValueError(f"Unknown metric {metric!r}.")


# --- organisation-wide trends: whole buckets from TrendPoint, cut ones ranked live ------------

TREND_INTERVALS = ("daily", "weekly", "monthly")
DURATION_QUERIES: tuple[tuple[str, ...], ...] = (
    ("lead_time_for_changes", "lead_time_for_changes_p90"),  # one ranking, two percentiles
    ("time_to_restore_service",),
    ("release_cycle_time",),
    ("approval_wait_time",),
)


def _bucket_last_day(day: date, interval: str) -> date:
    if interval == "daily":
        return day
    if interval == "weekly":
        return day + timedelta(days=6)
    return (day.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)


def _split_buckets(scope: MetricsScope, interval: str) -> tuple[list[date], list[MetricsScope]]:
    """(the buckets the period covers whole, the periods it keeps of those it cuts): only the
    first and the last bucket can be cut."""
    whole: list[date] = []
    cut: list[MetricsScope] = []
    for day in bucket_dates(scope, interval):
        last = _bucket_last_day(day, interval)
        if day >= scope.start_date and last <= scope.end_date:
            whole.append(day)
        else:
            start, end = max(day, scope.start_date), min(last, scope.end_date)
            cut.append(replace(scope, start_date=start, end_date=end))
    return whole, cut


def duration_trends(
    metrics: Iterable[str], scope: MetricsScope, interval: str
) -> dict[str, dict[date, float]]:
    """{metric: {bucket: value}} of duration metrics' trends (buckets without facts absent).

    Organisation-wide (no service or team): the buckets the period covers whole are read
    from ``TrendPoint`` (one query for every metric: the facts refresh ranked them), the
    first and last buckets when the period cuts them are ranked live over the days it keeps
    (one query per metric, each day range its own index range). Narrowed to a service or
    team, or over the whole period: ranked live (``percentile_by``). Both give the figures
    of ranking the period's facts per bucket (tests hold them equal).
    """
    metrics = list(metrics)
    out: dict[str, dict[date, float]] = {metric: {} for metric in metrics}
    if scope.service or scope.team or interval not in TREND_INTERVALS:
        for metric in metrics:
            qs, p = duration_source(metric, scope)
            found = percentile_by(qs, bucket_column(interval), p)
            out[metric] = {to_date(k): v for k, v in found.items()}
        return out
    whole, cut = _split_buckets(scope, interval)
    if whole:
        points = TrendPoint.objects.filter(
            interval=interval, metric__in=metrics, bucket__gte=whole[0], bucket__lte=whole[-1]
        ).values_list("metric", "bucket", "value")
        for metric, bucket, value in points:
            out[metric][bucket] = value
    if cut:
        for metric in metrics:
            kept = [duration_source(metric, part)[0] for part in cut]
            found = percentile_by(kept, bucket_column(interval), _percentile(metric))
            out[metric].update({as_date(k): v for k, v in found.items()})
    return out


def trend_point_rows(*, since: datetime | None) -> tuple[dict[str, date | None], list[Any]]:
    """The ``TrendPoint`` rows of every duration metric and interval for the buckets from
    the one holding ``since`` on (every bucket when None), ranked over all their facts
    (3 intervals × 4 rankings, grouped by the stored bucket columns). Returns
    ({interval: first bucket ranked, None for all}, unsaved rows)."""
    firsts: dict[str, date | None] = {}
    rows: list[Any] = []
    for interval in TREND_INTERVALS:
        first = None
        if since is not None:
            day = timezone.localtime(since).date()
            first = bucket_dates(MetricsScope(day, day), interval)[0]
        firsts[interval] = first
        scope = MetricsScope(first or date(1970, 1, 1), date(2999, 12, 31))
        for metrics in DURATION_QUERIES:
            sources = [duration_source(metric, scope) for metric in metrics]
            found = percentiles_by(sources[0][0], bucket_column(interval), [p for _, p in sources])
            for metric, (_, p) in zip(metrics, sources, strict=True):
                rows += [
                    TrendPoint(metric=metric, interval=interval, bucket=as_date(b), value=v)
                    for b, v in found[p].items()
                ]
    return firsts, rows
