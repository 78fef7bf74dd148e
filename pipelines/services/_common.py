"""What the pipelines services share: who may report for a service, and how the
reporting machine or integration is named in the audit trail."""

from __future__ import annotations

from django.db import transaction

from core.errors import PermissionDenied
from releases.models import Service

from .. import tasks


def service_id_of(service: Service | int) -> int:
    return service if isinstance(service, int) else service.pk


def authorise_report(actor, service_id: int, scope: str, service_label: str = "") -> None:
    """Machines report only for their services and within their scopes; the system (pollers,
    ``actor=None``) and superusers may report for any service."""
    if actor is None:
        return
    if getattr(actor, "is_machine", False):
        if not actor.has_scope(scope):
            raise PermissionDenied(f"This token lacks the {scope!r} scope.")
        if service_id not in actor.service_ids:
            raise PermissionDenied(
                f"This token may not report for service {service_label or service_id!r}."
            )
        return
    if getattr(actor, "is_superuser", False):
        return
    raise PermissionDenied("Only CI/CD tokens and integrations report pipeline activity.")


def audit_actor(actor):
    """The actor to write in the audit trail: integrations are recorded as the system, with
    the integration named in the reason (the trail's actor is a user or a token)."""
    return None if getattr(actor, "integration", None) is not None else actor


def via(actor) -> str:
    integration = getattr(actor, "integration", None)
    return via_integration(integration) if integration is not None else ""


def via_integration(integration) -> str:
    return f"Reported by the {integration.provider} integration {integration.name!r}."


def on_commit_enqueue(task_name: str, object_id: int) -> None:
    """Queue a task after commit. Robust: the record is committed whatever happens to the
    broker; a failed enqueue is logged and must not turn an accepted post into a 500."""

    def enqueue() -> None:
        getattr(tasks, task_name).delay(object_id)

    transaction.on_commit(enqueue, robust=True)
