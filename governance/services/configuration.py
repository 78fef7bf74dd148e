"""Governance configuration edited in the Django admin (gate policies, quorum policies,
freeze windows): every save and delete is audited like the app's own services.

The admin writes the row itself (it is the configuration UI); these services record what
it changed, inside the admin's transaction, so the change and its audit event commit or
roll back together. Freeze windows use the same ``freeze.*`` actions and snapshot as the
API's ``freeze_window_create`` / ``freeze_window_update``.
"""

from __future__ import annotations

from typing import Any

from django.db import models
from django.forms.models import model_to_dict

from core.audit import audit_record

from ..models import FreezeWindow, GatePolicy, QuorumPolicyRecord
from .freezes import freeze_snapshot

ACTIONS = {GatePolicy: "gate_policy", QuorumPolicyRecord: "quorum_policy", FreezeWindow: "freeze"}


def configuration_snapshot(obj: models.Model) -> dict[str, Any]:
    """The audited state of a configuration row (freeze windows with their scope by slug)."""
    if isinstance(obj, FreezeWindow):
        return freeze_snapshot(obj)
    return model_to_dict(obj, exclude=["id"])


def configuration_saved(
    *, actor, obj: models.Model, created: bool, before: dict[str, Any] | None
) -> None:
    """Audit an admin save: ``<kind>.create`` with the new state, or ``<kind>.update`` with
    the fields that changed (nothing is written when none did)."""
    kind = ACTIONS[type(obj)]
    after = configuration_snapshot(obj)
    if created:
        audit_record(
            actor=actor,
            action=f"{kind}.create",
            target=obj,
            reason="Added in the admin.",
            after=after,
        )
        return
    changed = sorted(k for k in after if (before or {}).get(k) != after[k])
    if not changed:
        return
    audit_record(
        actor=actor,
        action=f"{kind}.update",
        target=obj,
        reason="Changed in the admin: " + ", ".join(changed),
        before={k: (before or {}).get(k) for k in changed},
        after={k: after[k] for k in changed},
    )


def configuration_deleted(*, actor, obj: models.Model) -> None:
    """Audit an admin delete, with the state the row had."""
    kind = ACTIONS[type(obj)]
    audit_record(
        actor=actor,
        action=f"{kind}.delete",
        target=obj,
        reason="Deleted in the admin.",
        before=configuration_snapshot(obj),
    )
