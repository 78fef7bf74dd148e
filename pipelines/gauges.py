"""Pipelines' scrape-time gauges (core.metrics), registered in PipelinesConfig.ready()."""

from __future__ import annotations

from django.db.models import Count, Max, Min, Q
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily

from .models import IntegrationPollState, PipelineRun


def poller_gauges():
    """Health of the polled integrations (one aggregate over their few rows) and the runs
    still waiting for gate evaluation (the partial index on gates_pending)."""
    now = timezone.now()
    polls = IntegrationPollState.objects.filter(enabled=True).aggregate(
        total=Count("id"),
        failing=Count("id", filter=Q(consecutive_failures__gt=0)),
        never=Count("id", filter=Q(last_success_at__isnull=True)),
        oldest_due=Min("next_poll_at"),
        worst_failures=Max("consecutive_failures"),
        oldest_success=Min("last_success_at"),
    )
    pending = PipelineRun.objects.filter(gates_pending=True).aggregate(
        n=Count("id"), oldest=Min("updated_at")
    )

    def age(moment) -> float:
        return max(0.0, (now - moment).total_seconds()) if moment else 0.0

    integrations = GaugeMetricFamily(
        "releasegate_poller_integrations",
        "Enabled polled integrations: all, failing (their last poll failed), never succeeded.",
        labels=["health"],
    )
    integrations.add_metric(["all"], polls["total"])
    integrations.add_metric(["failing"], polls["failing"])
    integrations.add_metric(["never_succeeded"], polls["never"])
    return [
        integrations,
        GaugeMetricFamily(
            "releasegate_poller_overdue_seconds",
            "How far behind its schedule the most overdue integration is (0 when none is due): "
            "grows steadily when beat or the workers do not poll.",
            value=age(polls["oldest_due"]),
        ),
        GaugeMetricFamily(
            "releasegate_poller_consecutive_failures_max",
            "The most consecutive failed polls of any integration.",
            value=polls["worst_failures"] or 0,
        ),
        GaugeMetricFamily(
            "releasegate_poller_last_success_oldest_age_seconds",
            "Age of the oldest last successful poll among integrations that succeeded once.",
            value=age(polls["oldest_success"]),
        ),
        GaugeMetricFamily(
            "releasegate_gate_evaluations_pending",
            "Pipeline runs whose gate evaluation has not run yet.",
            value=pending["n"],
        ),
        GaugeMetricFamily(
            "releasegate_gate_evaluations_pending_oldest_age_seconds",
            "Age of the oldest run change still waiting for gate evaluation (0 when none).",
            value=age(pending["oldest"]),
        ),
    ]
