"""Incidents opened and resolved by Alertmanager deliveries."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.utils import timezone

from core.audit import audit_record
from releases.choices import DeploymentState
from releases.models import Deployment, Environment

from ..adapters.types import AlertEvent
from ..models import (
    Incident,
    IncidentStatus,
    Integration,
)
from ._common import via_integration


@dataclass
class AlertsResult:
    opened: int = 0
    resolved: int = 0
    ignored: int = 0


def alerts_receive(*, integration: Integration, alerts: list[AlertEvent]) -> AlertsResult:
    """Turn Alertmanager alerts into incidents on production deployments.

    A firing alert for a service (of this integration) and a production environment opens an
    incident on the latest deployment of that service there that started before the alert
    (the alert fired during or after it); resolved closes it. One incident per alert
    occurrence (fingerprint + startsAt), so repeated notifications change nothing. Alerts
    without such a deployment are ignored (counted). Audited; incidents feed change failure
    rate and time to restore.
    """
    result = AlertsResult()
    services = dict(integration.services.values_list("slug", "id"))
    environments = {e.slug: e for e in Environment.objects.filter(is_production=True)}
    for alert in alerts:
        service_id = services.get(alert.service)
        if alert.environment:
            environment = environments.get(alert.environment)
            env_ids = [environment.pk] if environment else []
        else:
            env_ids = [e.pk for e in environments.values()]
        if service_id is None or not env_ids:
            result.ignored += 1
            continue
        with transaction.atomic():
            if alert.status == "firing":
                opened = _incident_open(integration, service_id, env_ids, alert)
                result.opened += opened
                result.ignored += 1 - opened
            else:
                resolved = _incident_resolve(integration, alert)
                result.resolved += resolved
                result.ignored += 1 - resolved
    return result


def _text(value: str, limit: int) -> str:
    """Alert labels are free text: drop what the database cannot store, cut to the column."""
    return value.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")[:limit]


def _incident_open(integration, service_id, env_ids, alert: AlertEvent) -> int:
    started = alert.starts_at or timezone.now()
    deployment = (
        Deployment.objects.filter(
            service_id=service_id,
            environment_id__in=env_ids,
            started_at__lte=started,
            state__in=[
                DeploymentState.IN_PROGRESS,
                DeploymentState.SUCCEEDED,
                DeploymentState.ROLLED_BACK,
            ],
        )
        .order_by("-started_at", "-id")
        .first()
    )
    if deployment is None:
        return 0
    try:
        with transaction.atomic():
            incident = Incident.objects.create(
                deployment=deployment,
                service_id=service_id,
                fingerprint=_text(alert.fingerprint, 64),
                alertname=_text(alert.alertname, 200),
                summary=_text(alert.annotations.get("summary", ""), 500),
                url=_text(alert.generator_url, 500),
                started_at=started,
            )
    except IntegrityError:
        return 0  # this occurrence is already open (or resolved)
    audit_record(
        actor=None,
        action="incident.open",
        target=incident,
        release=deployment.release,
        to_state=incident.status,
        reason=f"Alert {_text(alert.alertname or alert.fingerprint, 200)} fired. "
        f"{via_integration(integration)}",
        after={"fingerprint": incident.fingerprint, "deployment": deployment.pk},
    )
    return 1


def _incident_resolve(integration, alert: AlertEvent) -> int:
    incident = (
        Incident.objects.select_for_update()
        .select_related("deployment")
        .filter(fingerprint=_text(alert.fingerprint, 64), status=IncidentStatus.OPEN)
        .filter(**({"started_at": alert.starts_at} if alert.starts_at else {}))
        .first()
    )
    if incident is None:
        return 0
    incident.status = IncidentStatus.RESOLVED
    incident.resolved_at = alert.ends_at or timezone.now()
    incident.save(update_fields=["status", "resolved_at"])
    audit_record(
        actor=None,
        action="incident.resolve",
        target=incident,
        release=incident.deployment.release,
        from_state=IncidentStatus.OPEN,
        to_state=IncidentStatus.RESOLVED,
        reason=f"Alert {_text(alert.alertname or alert.fingerprint, 200)} resolved. "
        f"{via_integration(integration)}",
    )
    return 1
