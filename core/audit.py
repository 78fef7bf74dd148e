"""The audit trail: the only writer of AuditEvent rows. Imports no project app: the acting
principal, the target and the release are taken as objects and stored by id and label."""

from __future__ import annotations

from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.db import connection, models, transaction
from django.utils import timezone

from . import audit_keys
from .context import current_request_meta
from .models import AuditChainHead, AuditEvent


def actor_parts(actor: Any) -> dict[str, Any]:
    """Split an acting principal (a user, an API token principal or None) into audit fields."""
    if actor is None:
        return {"actor": None, "actor_token_id": None, "actor_label": "system"}
    token = getattr(actor, "token", None)
    if getattr(actor, "is_machine", False) and token is not None:
        return {"actor": None, "actor_token_id": token.pk, "actor_label": f"token:{token.name}"}
    if getattr(actor, "is_machine", False):
        # A webhook integration (no token, no user): named by its label.
        return {"actor": None, "actor_token_id": None, "actor_label": actor.get_username()}
    return {"actor": actor, "actor_token_id": None, "actor_label": actor.get_username()}


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
    that the change and its record commit or roll back together. ``release`` is the release
    the event belongs to (any model instance; its pk is stored)."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("audit_record must be called inside the transaction of the change.")
    meta = current_request_meta()
    target_type = ContentType.objects.get_for_model(target)
    key = chain_key_for(target_type=target_type, target_id=target.pk, release=release)
    seq, prev_hash = _advance_chain(key)
    event = AuditEvent(
        **actor_parts(actor),
        created_at=timezone.now(),
        action=action,
        target_type=target_type,
        target_id=str(target.pk),
        target_repr=str(target)[:300],
        release_id=release.pk if release is not None else None,
        from_state=from_state,
        to_state=to_state,
        reason=reason,
        before=before,
        after=after,
        ip_address=meta.ip_address,
        user_agent=meta.user_agent[:300],
        chain_key=key,
        chain_seq=seq,
        prev_hash=prev_hash,
    )
    # Keyed (HMAC) with the current audit key: costs no query.
    event.key_id = audit_keys.current_key_id()
    event.hash = event.compute_hash()
    event.save()
    AuditChainHead.objects.filter(key=key).update(hash=event.hash)
    return event


def chain_key_for(*, target_type: ContentType, target_id: Any, release: models.Model | None) -> str:
    """One chain per release; events outside a release chain per object."""
    if release is not None:
        return f"release:{release.pk}"
    return f"{target_type.app_label}.{target_type.model}:{target_id}"[:120]


def _advance_chain(key: str) -> tuple[int, str]:
    """Take the next link of a chain: one upsert that creates or bumps the head row and
    returns the new sequence number with the previous hash. The head row stays locked until
    the transaction ends, so two writers of the same chain queue, others do not."""
    table = connection.ops.quote_name(AuditChainHead._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (key, seq, hash) VALUES (%s, 1, '') "
            f"ON CONFLICT (key) DO UPDATE SET seq = {table}.seq + 1 RETURNING seq, hash",
            [key],
        )
        seq, prev_hash = cursor.fetchone()
    return seq, prev_hash
