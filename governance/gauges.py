"""Governance's scrape-time gauges (core.metrics), registered in GovernanceConfig.ready()."""

from __future__ import annotations

from django.db.models import Count, Min
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily

from releases.choices import TERMINAL_STATES, ReleaseState

from .choices import ExceptionState, GateKind, GateStatus
from .models import FreezeException, GateCheck


def approval_gauges():
    """Sign-offs waiting (manual gates still pending on releases in flight) by approver role,
    with the age of the oldest; freeze exceptions by state. Two aggregate queries."""
    now = timezone.now()
    waiting = (
        GateCheck.objects.filter(kind=GateKind.MANUAL, status=GateStatus.PENDING)
        .exclude(release__state__in=[*TERMINAL_STATES, ReleaseState.DRAFT])
        .values("role")
        .annotate(n=Count("id"), oldest=Min("pending_since"))
        .order_by()
    )
    count = GaugeMetricFamily(
        "releasegate_approvals_waiting",
        "Sign-offs (manual gates) pending on releases in flight, by approver role.",
        labels=["role"],
    )
    age = GaugeMetricFamily(
        "releasegate_approvals_waiting_oldest_age_seconds",
        "How long the oldest pending sign-off has waited, by approver role.",
        labels=["role"],
    )
    for row in waiting:
        role = row["role"] or "any"
        count.add_metric([role], row["n"])
        age.add_metric([role], max(0.0, (now - row["oldest"]).total_seconds()))
    exceptions = dict(
        FreezeException.objects.values_list("state").annotate(n=Count("id")).order_by()
    )
    freeze = GaugeMetricFamily(
        "releasegate_freeze_exceptions",
        "Freeze exceptions by state (requested ones wait for a decision).",
        labels=["state"],
    )
    for state in ExceptionState:
        freeze.add_metric([state.value], exceptions.get(state.value, 0))
    return [count, age, freeze]
