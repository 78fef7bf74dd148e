"""Incidents opened and resolved by Alertmanager deliveries."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from core.audit import audit_record
from core.errors import InvalidInput
from releases.choices import DeploymentState
from releases.models import Deployment, Environment

from .. import cdevents
from ..adapters.types import AlertEvent, Ignored
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
    # One entry per alert that changed nothing, with the reason (the answer lists them).
    ignored: list[Ignored] = field(default_factory=list)


def alerts_receive(*, integration: Integration, alerts: list[AlertEvent]) -> AlertsResult:
    """Turn Alertmanager alerts into incidents on production deployments.

    A firing alert for a service (of this integration) and a production environment opens an
    incident on the latest deployment of that service there that started before the alert
    (the alert fired during or after it); resolved closes it. One incident per alert
    occurrence (fingerprint + startsAt), so repeated notifications change nothing. An alert
    that changes nothing (no such service or deployment, already recorded, nothing open to
    resolve) is listed in ``ignored`` with the reason, as is a text stored shortened.
    Audited; incidents feed change failure rate and time to restore.
    """
    limit = settings.ALERTMANAGER_MAX_ALERTS
    if len(alerts) > limit:
        # One flood of alerts must not open hundreds of incidents: Alertmanager can cap a
        # delivery itself, and a refusal writes nothing (it retries the same group).
        raise InvalidInput(
            f"A delivery carries at most {limit} alerts ({len(alerts)} sent): set "
            f"max_alerts: {limit} in the receiver's webhook_config.",
            details={"alerts": [f"At most {limit} alerts per delivery."]},
        )
    result = AlertsResult()
    services = dict(integration.services.values_list("slug", "id"))
    environments = {e.slug: e for e in Environment.objects.filter(is_production=True)}
    for index, alert in enumerate(alerts):
        where = f"alerts[{index}]"
        service_id = services.get(alert.service)
        if alert.environment:
            environment = environments.get(alert.environment)
            env_ids = [environment.pk] if environment else []
        else:
            env_ids = [e.pk for e in environments.values()]
        if service_id is None:
            result.ignored.append(
                Ignored(
                    where,
                    f"Its service label ({alert.service!r}) names no service of integration "
                    f"{integration.name!r}.",
                )
            )
            continue
        if not env_ids:
            result.ignored.append(
                Ignored(where, f"{alert.environment!r} is not a production environment.")
            )
            continue
        with transaction.atomic():
            if alert.status == "firing":
                outcome = _incident_open(integration, service_id, env_ids, alert)
                result.opened += outcome is None
            else:
                outcome = _incident_resolve(integration, alert)
                result.resolved += outcome is None
        if outcome is not None:
            result.ignored.append(Ignored(where, outcome))
        result.ignored += _shortened(where, alert)
    return result


def _shortened(where: str, alert: AlertEvent) -> list[Ignored]:
    """The alert's texts not stored as sent: cut to their column, or cleaned of what the
    database cannot hold (NUL characters, lone surrogates)."""
    return [
        Ignored(
            f"{where}.{name}",
            f"Stored shortened to {limit} characters or without characters the database "
            "cannot hold (NUL, lone surrogates).",
        )
        for name, value, limit in (
            ("fingerprint", alert.fingerprint, 64),
            ("labels.alertname", alert.alertname, 200),
            ("annotations.summary", alert.annotations.get("summary", ""), 500),
            ("generatorURL", alert.generator_url, 500),
        )
        if _text(value, limit) != value
    ]


def _text(value: str, limit: int) -> str:
    """Alert labels are free text: drop what the database cannot store, cut to the column."""
    return value.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")[:limit]


def _incident_open(integration, service_id, env_ids, alert: AlertEvent) -> str | None:
    """Open the incident; None when opened, else why nothing changed."""
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
        return "No deployment of its service to production started before the alert."
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
        return "This occurrence (fingerprint and start) is already recorded."
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
    cdevents.incident_changed(incident)
    return None


def _incident_resolve(integration, alert: AlertEvent) -> str | None:
    """Resolve the incident; None when resolved, else why nothing changed."""
    incident = (
        Incident.objects.select_for_update()
        .select_related("deployment")
        .filter(fingerprint=_text(alert.fingerprint, 64), status=IncidentStatus.OPEN)
        .filter(**({"started_at": alert.starts_at} if alert.starts_at else {}))
        .first()
    )
    if incident is None:
        return "No open incident for this alert (never opened, or resolved already)."
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
    cdevents.incident_changed(incident)
    return None
