"""The audit trail: the only writer of AuditEvent rows."""

from __future__ import annotations

from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.db import models, transaction

from ..context import current_request_meta
from ..models import AuditEvent


def actor_parts(actor: Any) -> dict[str, Any]:
    """Split an acting principal (a user, an API token principal or None) into audit fields."""
    if actor is None:
        return {"actor": None, "actor_token": None, "actor_label": "system"}
    token = getattr(actor, "token", None)
    if getattr(actor, "is_machine", False) and token is not None:
        return {"actor": None, "actor_token": token, "actor_label": f"token:{token.name}"}
    return {"actor": actor, "actor_token": None, "actor_label": actor.get_username()}


def audit_record(
    *,
    actor: Any,
    action: str,
    target: models.Model,
    release: models.Model | None = None,
    from_state: str = "",
    to_state: str = "",
    reason: str = "",
    before: dict | None = None,
    after: dict | None = None,
) -> AuditEvent:
    """Append one audit event. Must run inside the transaction of the change it records, so
    that the change and its record commit or roll back together."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("audit_record must be called inside the transaction of the change.")
    meta = current_request_meta()
    return AuditEvent.objects.create(
        **actor_parts(actor),
        action=action,
        target_type=ContentType.objects.get_for_model(target),
        target_id=str(target.pk),
        target_repr=str(target)[:300],
        release=release,
        from_state=from_state,
        to_state=to_state,
        reason=reason,
        before=before,
        after=after,
        ip_address=meta.ip_address,
        user_agent=meta.user_agent,
    )
