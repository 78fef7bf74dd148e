"""The metrics page's figures: the summary with bands, the trends, and the per-service or
per-team table, sharing one grouped count of the period's facts."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.db.models import F, Value

from releases.models import Service, Team

from .definitions import METRICS, MetricInfo, MetricsScope, dora_band
from .percentiles import ByLink, bucket_column, bucket_dates, percentiles_by, to_date
from .series import (
    COUNTED,
    DURATION_QUERIES,
    counted_by,
    counted_rollup,
    duration_source,
    duration_trends,
    metric_series,
)

# --- the metrics page: summary, trends, and the per-service/team table ------------------------


@dataclass
class MetricValue:
    info: MetricInfo
    value: float | None
    band: str = ""
    count: int | None = None  # how many deployments/releases it is computed from


@dataclass
class GroupRow:
    key: int
    name: str
    team: str = ""
    values: dict[str, MetricValue] = field(default_factory=dict)


def _durations_by(scope: MetricsScope, group_for: Any) -> dict[str, dict[Any, float]]:
    """{metric: {group: value}} for every duration metric (four queries).
    ``group_for(metric)`` gives the partition expression for a metric's rows."""
    out: dict[str, dict[Any, float]] = {}
    for metrics in DURATION_QUERIES:
        sources = [duration_source(m, scope) for m in metrics]
        qs = sources[0][0]
        found = percentiles_by(qs, group_for(metrics[0]), [p for _, p in sources])
        for metric, (_, p) in zip(metrics, sources, strict=True):
            out[metric] = found[p]
    return out


def metrics_summary(
    scope: MetricsScope, *, counted: dict[Any, dict] | None = None
) -> dict[str, MetricValue]:
    """Every metric over the whole period, with its band (five queries; four when the count
    metrics are given, as ``counted_by(scope, Value("all"))`` answers)."""
    everything = Value("all")
    if counted is None:
        counted = counted_by(scope, everything)
    counts = counted.get("all", {})
    durations = _durations_by(scope, lambda metric: everything)
    out: dict[str, MetricValue] = {}
    for key, info in METRICS.items():
        if key in COUNTED:
            value, _ = counts.get(key, (0.0 if key == "deployment_frequency" else None, 0))
        else:
            value = durations[key].get("all")
        out[key] = MetricValue(info=info, value=value, band=dora_band(key, value, days=scope.days))
    return out


def metrics_by_group(
    scope: MetricsScope, *, by: str = "service", counted: dict[Any, dict] | None = None
) -> list[GroupRow]:
    """The table: every metric per service (or team), with its band. A fixed number of
    grouped queries (five, plus the groups; one fewer when the count metrics are given, as
    ``counted_by(scope, F("service_id" or "team_id"))`` answers), whatever the number of
    services or rows."""
    if by == "service":
        groups = Service.objects.select_related("team").order_by("name")
        if scope.service:
            groups = groups.filter(slug=scope.service)
        if scope.team:
            groups = groups.filter(team__slug=scope.team)
        rows = {s.pk: GroupRow(key=s.pk, name=s.name, team=s.team.name) for s in groups}
    else:
        teams = Team.objects.order_by("name")
        if scope.team:
            teams = teams.filter(slug=scope.team)
        if scope.service:
            teams = teams.filter(services__slug=scope.service)
        rows = {t.pk: GroupRow(key=t.pk, name=t.name) for t in teams}

    key = "service_id" if by == "service" else "team_id"
    counts = counted_by(scope, F(key)) if counted is None else counted
    durations = _durations_by(
        scope,
        lambda metric: (
            ByLink(by) if metric in ("release_cycle_time", "approval_wait_time") else F(key)
        ),
    )
    for group_id, row in rows.items():
        for metric, info in METRICS.items():
            count = None
            if metric in COUNTED:
                empty = 0.0 if metric == "deployment_frequency" else None
                value, count = counts.get(group_id, {}).get(metric, (empty, 0))
            else:
                value = durations[metric].get(group_id)
            row.values[metric] = MetricValue(
                info=info, value=value, band=dora_band(metric, value, days=scope.days), count=count
            )
    return list(rows.values())


def metrics_trends(
    scope: MetricsScope,
    interval: str,
    metrics: Iterable[str],
    *,
    counted: dict[Any, dict] | None = None,
) -> dict[str, list[dict[str, Any]]]:
    """``metric_series`` of each metric; the count metrics share one grouped query (none
    when given, as ``counted_by(scope, bucket_column(interval))`` answers)."""
    metrics = list(metrics)
    out: dict[str, list[dict[str, Any]]] = {}
    if any(m in COUNTED for m in metrics) and interval != "all":
        if counted is None:
            counted = counted_by(scope, bucket_column(interval))
        counts = {to_date(b): v for b, v in counted.items()}
        buckets = bucket_dates(scope, interval)
        for metric in metrics:
            if metric in COUNTED:
                empty = 0.0 if metric == "deployment_frequency" else None
                out[metric] = [
                    {"date": d, "value": counts.get(d, {}).get(metric, (empty, 0))[0]}
                    for d in buckets
                ]
    durations = [m for m in metrics if m not in out and m not in COUNTED]
    if durations and interval != "all":
        buckets = bucket_dates(scope, interval)
        for metric, values in duration_trends(durations, scope, interval).items():
            out[metric] = [{"date": d, "value": values.get(d)} for d in buckets]
    for metric in metrics:
        if metric not in out:
            out[metric] = metric_series(metric, scope, interval)
    return {m: out[m] for m in metrics}


@dataclass
class MetricsPage:
    summary: dict[str, MetricValue]
    trends: dict[str, list[dict[str, Any]]]
    groups: list[GroupRow]


def metrics_page(
    scope: MetricsScope, interval: str, metrics: Iterable[str], *, by: str = "service"
) -> MetricsPage:
    """The metrics page's figures: ``metrics_summary``, ``metrics_trends`` and
    ``metrics_by_group``, whose count metrics come from one scan of the period's facts
    grouped by (bucket, service or team) instead of three."""
    if interval == "all":  # one bucket: the trends are the summary's counts
        return MetricsPage(
            summary=metrics_summary(scope),
            trends=metrics_trends(scope, interval, metrics),
            groups=metrics_by_group(scope, by=by),
        )
    whole, per_bucket, per_group = counted_rollup(
        scope, interval, "service_id" if by == "service" else "team_id"
    )
    return MetricsPage(
        summary=metrics_summary(scope, counted=whole),
        trends=metrics_trends(scope, interval, metrics, counted=per_bucket),
        groups=metrics_by_group(scope, by=by, counted=per_group),
    )
