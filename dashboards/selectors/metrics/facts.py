"""The facts the metrics are read from (``dashboards.models.DeliveryFact`` / ``ReleaseFact``):
the durations computed from the raw rows when the facts are refreshed, the fact rows
written then, and the facts of a period as the rankings and counts read them."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, timedelta
from typing import Any

from django.db.models import (
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
)
from django.db.models.functions import Coalesce, Least
from django.utils import timezone

from core.models import AuditEvent
from pipelines.models import Incident, PipelineRun, RunDaySummary
from releases.choices import DeploymentState
from releases.models import Deployment, Release

from ...models import DeliveryFact, ReleaseFact
from ..calendar import ServiceLink
from .definitions import FAILED, FINISHED, SHIPPED, MetricsScope

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
    # Runs pruned by the retention policy left their earliest start in a day summary
    # (pipelines.services.retention): the first run is the earlier of the two.
    first_pruned = (
        RunDaySummary.objects.filter(
            service_id=OuterRef("service_id"),
            version=OuterRef("version"),
            first_started_at__isnull=False,
        )
        .order_by()
        .values("service_id")
        .annotate(first=Min("first_started_at"))
        .values("first")
    )
    live = Subquery(first_run, output_field=DateTimeField())
    pruned = Subquery(first_pruned, output_field=DateTimeField())
    return (
        _scoped_deployments(scope)
        .filter(state__in=SHIPPED)
        .annotate(
            _live_first=live,
            _pruned_first=pruned,
        )
        .annotate(
            # LEAST is NULL on SQLite as soon as one side is: each side falls back on the other.
            committed_at=Least(
                Coalesce(F("_live_first"), F("_pruned_first")),
                Coalesce(F("_pruned_first"), F("_live_first")),
            ),
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
