"""KPI and DORA metrics, computed by the database.

Definitions (production = an environment with ``is_production``; a period is
[start_date 00:00, end_date + 1 day 00:00) in the current time zone, and a deployment
belongs to the period of its ``finished_at``):

- deployment frequency: successful production deployments (state succeeded, or rolled back
  later — the deployment itself succeeded), per bucket; the band uses deployments per day.
- lead time for changes: for each successful production deployment, from the start of the
  earliest pipeline run that built that service's version (the commit entering CI: runs
  carry no commit timestamp) to the deployment's finish; median and p90.
- change failure rate: production deployments that failed, were rolled back or had an
  incident, over all finished production deployments.
- time to restore: for each such failure, from the failure (first incident start, else the
  deployment's finish) to its restoration (last incident resolution, else the next
  successful production deployment of the service); median.
- deployment success rate: finished deployments in every environment still succeeded, over
  all finished deployments.
- release cycle time: releases deployed in the period, planned_at → deployed_at; median.
- time waiting for approval: releases approved in the period, from the last "request
  approval" audit event to approved_at; median (reported apart from cycle time).

Percentiles are nearest-rank (the value at rank ceil(p·n)): on PostgreSQL the ordered-set
aggregate percentile_disc, which is that definition; on SQLite window functions (ROW_NUMBER
and COUNT over a partition, keeping the row whose rank is ceil(p·n)). Both give the same
figures; there is no Python fallback and no loop over rows (PostgreSQL's percentile_cont
would interpolate between two rows instead). Python only reshapes the aggregated rows (one
per bucket or group).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from typing import Any

from django.db import connections
from django.db.models import (
    Count,
    DateTimeField,
    DurationField,
    Exists,
    ExpressionWrapper,
    F,
    Max,
    Min,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
)
from django.db.models.functions import Coalesce
from django.utils import timezone

from governance.models import AuditEvent
from pipelines.models import PipelineRun
from releases.choices import DeploymentState
from releases.models import Deployment, Release, Service, Team

from .calendar import ServiceLink

INTERVALS = ("daily", "weekly", "monthly", "all")
FINISHED = [DeploymentState.SUCCEEDED, DeploymentState.FAILED, DeploymentState.ROLLED_BACK]
SHIPPED = [DeploymentState.SUCCEEDED, DeploymentState.ROLLED_BACK]
FAILED = [DeploymentState.FAILED, DeploymentState.ROLLED_BACK]

DAY = 86400.0


@dataclass(frozen=True)
class MetricInfo:
    key: str
    label: str
    unit: str  # "count" | "seconds" | "ratio"
    help: str
    lower_is_better: bool = False


METRICS: dict[str, MetricInfo] = {
    m.key: m
    for m in (
        MetricInfo(
            "deployment_frequency",
            "Deployment frequency",
            "count",
            "Successful production deployments.",
        ),
        MetricInfo(
            "lead_time_for_changes",
            "Lead time for changes (median)",
            "seconds",
            "From the first CI run of a version to its production deployment.",
            lower_is_better=True,
        ),
        MetricInfo(
            "lead_time_for_changes_p90",
            "Lead time for changes (p90)",
            "seconds",
            "90% of changes reach production within this time.",
            lower_is_better=True,
        ),
        MetricInfo(
            "change_failure_rate",
            "Change failure rate",
            "ratio",
            "Production deployments failed, rolled back or followed by an incident.",
            lower_is_better=True,
        ),
        MetricInfo(
            "time_to_restore_service",
            "Time to restore (median)",
            "seconds",
            "From a production failure to the fix deployed or the incident resolved.",
            lower_is_better=True,
        ),
        MetricInfo(
            "deployment_success_rate",
            "Deployment success rate",
            "ratio",
            "Deployments in every environment that succeeded and stayed.",
        ),
        MetricInfo(
            "release_cycle_time",
            "Release cycle time (median)",
            "seconds",
            "From planned to deployed.",
            lower_is_better=True,
        ),
        MetricInfo(
            "approval_wait_time",
            "Time waiting for approval (median)",
            "seconds",
            "From requesting approval to approved.",
            lower_is_better=True,
        ),
    )
}


@dataclass(frozen=True)
class MetricsScope:
    """The period (inclusive dates) and the service or team the metrics are about."""

    start_date: date
    end_date: date
    service: str = ""
    team: str = ""

    @property
    def start(self) -> datetime:
        return datetime.combine(self.start_date, time.min, tzinfo=timezone.get_current_timezone())

    @property
    def end(self) -> datetime:
        return datetime.combine(
            self.end_date + timedelta(days=1), time.min, tzinfo=timezone.get_current_timezone()
        )

    @property
    def days(self) -> int:
        return (self.end_date - self.start_date).days + 1


# --- DORA performance bands (State of DevOps 2023 thresholds) ---------------------------------

BANDS = ("elite", "high", "medium", "low")


def dora_band(metric: str, value: float | None, *, days: int = 1) -> str:
    """Elite / high / medium / low for the four DORA metrics; "" when not a DORA metric or
    there is no data. ``value`` is the period total for frequency (divided by ``days``)."""
    if value is None:
        return ""
    if metric == "deployment_frequency":
        per_day = value / max(days, 1)
        return _band(per_day, [1.0, 1 / 7, 1 / 30], higher_is_better=True)
    if metric in ("lead_time_for_changes", "lead_time_for_changes_p90"):
        return _band(value, [DAY, 7 * DAY, 30 * DAY])
    if metric == "change_failure_rate":
        return _band(value, [0.05, 0.10, 0.15], inclusive=True)
    if metric == "time_to_restore_service":
        return _band(value, [3600.0, DAY, 7 * DAY])
    return ""


def _band(
    value: float, limits: list[float], *, higher_is_better: bool = False, inclusive: bool = False
) -> str:
    for band, limit in zip(BANDS, limits, strict=False):
        if higher_is_better and value >= limit:
            return band
        if not higher_is_better and (value <= limit if inclusive else value < limit):
            return band
    return "low"


# --- base querysets --------------------------------------------------------------------------


def _scoped_deployments(scope: MetricsScope, *, production: bool = True) -> QuerySet[Deployment]:
    qs = Deployment.objects.filter(finished_at__gte=scope.start, finished_at__lt=scope.end)
    if production:
        qs = qs.filter(environment__is_production=True)
    if scope.service:
        qs = qs.filter(service__slug=scope.service)
    if scope.team:
        qs = qs.filter(service__team__slug=scope.team)
    return qs


def _scoped_releases(scope: MetricsScope, time_field: str) -> QuerySet[Release]:
    qs = Release.objects.filter(
        **{f"{time_field}__gte": scope.start, f"{time_field}__lt": scope.end}
    )
    links = ServiceLink.objects.filter(release_id=OuterRef("pk"))
    if scope.service:
        qs = qs.filter(Exists(links.filter(service__slug=scope.service)))
    if scope.team:
        qs = qs.filter(Exists(links.filter(service__team__slug=scope.team)))
    return qs


def _has_incident() -> Exists:
    from pipelines.models import Incident

    return Exists(Incident.objects.filter(deployment_id=OuterRef("pk")))


def _failure_q() -> Q:
    return Q(state__in=FAILED) | Q(_incident=True)


def lead_time_rows(scope: MetricsScope) -> QuerySet[Deployment]:
    """Successful production deployments annotated with ``duration`` (lead time)."""
    first_run = (
        PipelineRun.objects.filter(
            service_id=OuterRef("service_id"),
            version=OuterRef("version"),
            started_at__isnull=False,
        )
        .order_by()
        .values("service_id")
        .annotate(first=Min("started_at"))
        .values("first")
    )
    return (
        _scoped_deployments(scope)
        .filter(state__in=SHIPPED)
        .annotate(
            committed_at=Subquery(first_run, output_field=DateTimeField()),
        )
        .filter(committed_at__isnull=False)
        .annotate(
            duration=ExpressionWrapper(
                F("finished_at") - F("committed_at"), output_field=DurationField()
            ),
            moment=F("finished_at"),
        )
    )


def restore_rows(scope: MetricsScope) -> QuerySet[Deployment]:
    """Failed production deployments annotated with ``duration`` (time to restore)."""
    from pipelines.models import Incident

    incidents = (
        Incident.objects.filter(deployment_id=OuterRef("pk")).order_by().values("deployment_id")
    )
    first_incident = incidents.annotate(t=Min("started_at")).values("t")
    last_resolution = (
        incidents.filter(resolved_at__isnull=False).annotate(t=Max("resolved_at")).values("t")
    )
    next_success = (
        Deployment.objects.filter(
            service_id=OuterRef("service_id"),
            environment__is_production=True,
            state=DeploymentState.SUCCEEDED,
            finished_at__gt=OuterRef("finished_at"),
        )
        .order_by("finished_at")
        .values("finished_at")[:1]
    )
    return (
        _scoped_deployments(scope)
        .filter(state__in=FINISHED)
        .annotate(_incident=_has_incident())
        .filter(_failure_q())
        .annotate(
            failed_at=Coalesce(
                Subquery(first_incident, output_field=DateTimeField()), F("finished_at")
            ),
            restored_at=Coalesce(
                Subquery(last_resolution, output_field=DateTimeField()),
                Subquery(next_success, output_field=DateTimeField()),
            ),
        )
        .filter(restored_at__isnull=False)
        .annotate(
            duration=ExpressionWrapper(
                F("restored_at") - F("failed_at"), output_field=DurationField()
            ),
            moment=F("finished_at"),
        )
    )


def cycle_time_rows(scope: MetricsScope) -> QuerySet[Release]:
    return (
        _scoped_releases(scope, "deployed_at")
        .filter(planned_at__isnull=False)
        .annotate(
            duration=ExpressionWrapper(
                F("deployed_at") - F("planned_at"), output_field=DurationField()
            ),
            moment=F("deployed_at"),
        )
    )


def approval_wait_rows(scope: MetricsScope) -> QuerySet[Release]:
    requested = (
        AuditEvent.objects.filter(
            release_id=OuterRef("pk"),
            action="release.request_approval",
            created_at__lte=OuterRef("approved_at"),
        )
        .order_by("-created_at")
        .values("created_at")[:1]
    )
    return (
        _scoped_releases(scope, "approved_at")
        .annotate(requested_at=Subquery(requested, output_field=DateTimeField()))
        .filter(requested_at__isnull=False)
        .annotate(
            duration=ExpressionWrapper(
                F("approved_at") - F("requested_at"), output_field=DurationField()
            ),
            moment=F("approved_at"),
        )
    )


# --- the facts (dashboards.models.DeliveryFact / ReleaseFact) -----------------------------------
#
# The querysets above compute each duration from the raw rows with correlated look-ups; they
# are evaluated once per deployment or release when the facts are refreshed
# (dashboards.services.metrics_facts_refresh), not on every page view.

FACT_BATCH = 2000


def _buckets(moment: Any, prefix: str) -> dict[str, date | None]:
    """{prefix_day, prefix_week, prefix_month} of an instant, in the current time zone."""
    if moment is None:
        return {f"{prefix}_day": None, f"{prefix}_week": None, f"{prefix}_month": None}
    day = timezone.localtime(moment).date()
    return {
        f"{prefix}_day": day,
        f"{prefix}_week": day - timedelta(days=day.weekday()),
        f"{prefix}_month": day.replace(day=1),
    }


def _span(start: Any, end: Any) -> float | None:
    if start is None or end is None:
        return None
    return max((end - start).total_seconds(), 0.0)


def delivery_fact_rows(*, since: datetime | None) -> Iterator[list[Any]]:
    """DeliveryFact rows (unsaved, in batches) for deployments finished since ``since``."""
    from ..models import DeliveryFact

    scope = MetricsScope(date(1970, 1, 1), date(2999, 12, 31))
    base = Deployment.objects.filter(state__in=FINISHED, finished_at__isnull=False)
    if since is not None:
        base = base.filter(finished_at__gte=since)
        scope = MetricsScope(timezone.localtime(since).date(), date(2999, 12, 31))
    lead = dict(
        lead_time_rows(scope)
        .filter(finished_at__gte=since or scope.start)
        .values_list("pk", "committed_at")
    )
    restore = {
        pk: (failed_at, restored_at)
        for pk, failed_at, restored_at in restore_rows(scope)
        .filter(finished_at__gte=since or scope.start)
        .values_list("pk", "failed_at", "restored_at")
    }
    rows = (
        base.annotate(_incident=_has_incident())
        .values_list(
            "pk",
            "service_id",
            "service__team_id",
            "environment__is_production",
            "finished_at",
            "state",
            "_incident",
        )
        .order_by("pk")
    )
    batch: list[Any] = []
    for pk, service_id, team_id, production, finished_at, state, incident in rows.iterator(
        chunk_size=FACT_BATCH
    ):
        failed_at, restored_at = restore.get(pk, (None, None))
        batch.append(
            DeliveryFact(
                deployment_id=pk,
                service_id=service_id,
                team_id=team_id,
                is_production=production,
                finished_at=finished_at,
                succeeded=state == DeploymentState.SUCCEEDED,
                shipped=state in SHIPPED,
                failed=state in FAILED or bool(incident),
                lead_seconds=_span(lead.get(pk), finished_at) if production else None,
                restore_seconds=_span(failed_at, restored_at) if production else None,
                **_buckets(finished_at, "finished"),
            )
        )
        if len(batch) >= FACT_BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def release_fact_rows(*, since: datetime | None) -> Iterator[list[Any]]:
    """ReleaseFact rows for releases deployed or approved since ``since``."""
    from ..models import ReleaseFact

    requested = (
        AuditEvent.objects.filter(
            release_id=OuterRef("pk"),
            action="release.request_approval",
            created_at__lte=OuterRef("approved_at"),
        )
        .order_by("-created_at")
        .values("created_at")[:1]
    )
    qs = Release.objects.filter(Q(deployed_at__isnull=False) | Q(approved_at__isnull=False))
    if since is not None:
        qs = qs.filter(Q(deployed_at__gte=since) | Q(approved_at__gte=since))
    rows = (
        qs.annotate(requested_at=Subquery(requested, output_field=DateTimeField()))
        .values_list("pk", "planned_at", "approved_at", "deployed_at", "requested_at")
        .order_by("pk")
    )
    batch: list[Any] = []
    for pk, planned_at, approved_at, deployed_at, requested_at in rows.iterator(
        chunk_size=FACT_BATCH
    ):
        batch.append(
            ReleaseFact(
                release_id=pk,
                deployed_at=deployed_at,
                approved_at=approved_at,
                cycle_seconds=_span(planned_at, deployed_at),
                approval_wait_seconds=_span(requested_at, approved_at),
                **_buckets(deployed_at, "deployed"),
                **_buckets(approved_at, "approved"),
            )
        )
        if len(batch) >= FACT_BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def delivery_facts(scope: MetricsScope, *, production: bool = True) -> QuerySet:
    """Deployment facts of the period (finished_at), narrowed to a service or team."""
    from ..models import DeliveryFact

    qs = DeliveryFact.objects.filter(finished_at__gte=scope.start, finished_at__lt=scope.end)
    if production:
        qs = qs.filter(is_production=True)
    if scope.service:
        qs = qs.filter(service__slug=scope.service)
    if scope.team:
        qs = qs.filter(team__slug=scope.team)
    return qs.annotate(
        moment=F("finished_at"),
        bucket_daily=F("finished_day"),
        bucket_weekly=F("finished_week"),
        bucket_monthly=F("finished_month"),
    )


def release_facts(scope: MetricsScope, time_field: str) -> QuerySet:
    from ..models import ReleaseFact

    qs = ReleaseFact.objects.filter(
        **{f"{time_field}__gte": scope.start, f"{time_field}__lt": scope.end}
    )
    links = ServiceLink.objects.filter(release_id=OuterRef("release_id"))
    if scope.service:
        qs = qs.filter(Exists(links.filter(service__slug=scope.service)))
    if scope.team:
        qs = qs.filter(Exists(links.filter(service__team__slug=scope.team)))
    prefix = time_field.removesuffix("_at")
    return qs.annotate(
        moment=F(time_field),
        bucket_daily=F(f"{prefix}_day"),
        bucket_weekly=F(f"{prefix}_week"),
        bucket_monthly=F(f"{prefix}_month"),
    )


# --- aggregation helpers ---------------------------------------------------------------------


def _bucket(interval: str) -> Any:
    """The facts' stored bucket column for an interval (see DeliveryFact.finished_day)."""
    if interval in ("daily", "weekly", "monthly"):
        return F(f"bucket_{interval}")
    return Value("all")


def _group(key: str) -> Any:
    """Partition expressions: a time bucket, or a service/team for the per-group table."""
    return F(key)


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
    GROUP (ORDER BY duration) per group, the nearest rank by definition (at 100× ~6 ms
    less a page than the window query). On SQLite, which has no ordered-set aggregates: a
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
        # rows. At 100× ~0.3 ms for the median of ~1,000 facts, ~0.75 ms as a window.
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


def _to_date(value: Any) -> Any:
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


def _counted_rollup(
    scope: MetricsScope, interval: str, key: str
) -> tuple[dict[Any, dict], dict[Any, dict], dict[Any, dict]]:
    """``counted_by`` for the whole period, per bucket of ``interval`` and per ``key``
    (service_id or team_id) from one query grouped by (bucket, key): its rows are
    aggregates (buckets × groups of them, whatever the number of facts), summed here.
    Returns (whole period, per bucket, per group), each like ``counted_by``'s answer."""
    rows = _count_rows(scope, _bucket(interval), F(key))
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
    bucket = _bucket(interval)
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
            values = {_to_date(b): float(n) for b, _, n in rows}
            default: float | None = 0.0
        else:
            values = {_to_date(b): (h / n if n else None) for b, h, n in rows}
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


def _duration_source(metric: str, scope: MetricsScope) -> tuple[QuerySet, float]:
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
    from ..models import TrendPoint

    metrics = list(metrics)
    out: dict[str, dict[date, float]] = {metric: {} for metric in metrics}
    if scope.service or scope.team or interval not in TREND_INTERVALS:
        for metric in metrics:
            qs, p = _duration_source(metric, scope)
            found = percentile_by(qs, _bucket(interval), p)
            out[metric] = {_to_date(k): v for k, v in found.items()}
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
            kept = [_duration_source(metric, part)[0] for part in cut]
            found = percentile_by(kept, _bucket(interval), _percentile(metric))
            out[metric].update({_as_date(k): v for k, v in found.items()})
    return out


def _as_date(value: Any) -> Any:
    """A bucket as a date, whether the database answered a date, a datetime or ISO text."""
    if isinstance(value, str):
        return date.fromisoformat(value[:10])
    return _to_date(value)


def trend_point_rows(*, since: datetime | None) -> tuple[dict[str, date | None], list[Any]]:
    """The ``TrendPoint`` rows of every duration metric and interval for the buckets from
    the one holding ``since`` on (every bucket when None), ranked over all their facts
    (3 intervals × 4 rankings, grouped by the stored bucket columns). Returns
    ({interval: first bucket ranked, None for all}, unsaved rows)."""
    from ..models import TrendPoint

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
            sources = [_duration_source(metric, scope) for metric in metrics]
            found = percentiles_by(sources[0][0], _bucket(interval), [p for _, p in sources])
            for metric, (_, p) in zip(metrics, sources, strict=True):
                rows += [
                    TrendPoint(metric=metric, interval=interval, bucket=_as_date(b), value=v)
                    for b, v in found[p].items()
                ]
    return firsts, rows


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


DURATION_QUERIES: tuple[tuple[str, ...], ...] = (
    ("lead_time_for_changes", "lead_time_for_changes_p90"),  # one ranking, two percentiles
    ("time_to_restore_service",),
    ("release_cycle_time",),
    ("approval_wait_time",),
)


def _durations_by(scope: MetricsScope, group_for: Any) -> dict[str, dict[Any, float]]:
    """{metric: {group: value}} for every duration metric (four queries).
    ``group_for(metric)`` gives the partition expression for a metric's rows."""
    out: dict[str, dict[Any, float]] = {}
    for metrics in DURATION_QUERIES:
        sources = [_duration_source(m, scope) for m in metrics]
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
    when given, as ``counted_by(scope, _bucket(interval))`` answers)."""
    metrics = list(metrics)
    out: dict[str, list[dict[str, Any]]] = {}
    if any(m in COUNTED for m in metrics) and interval != "all":
        if counted is None:
            counted = counted_by(scope, _bucket(interval))
        counts = {_to_date(b): v for b, v in counted.items()}
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
    whole, per_bucket, per_group = _counted_rollup(
        scope, interval, "service_id" if by == "service" else "team_id"
    )
    return MetricsPage(
        summary=metrics_summary(scope, counted=whole),
        trends=metrics_trends(scope, interval, metrics, counted=per_bucket),
        groups=metrics_by_group(scope, by=by, counted=per_group),
    )
