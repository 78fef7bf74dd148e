"""Freeze windows and their exceptions. Whether a release is frozen is read by
governance.readiness; here are the writes, all audited."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import transaction
from django.forms.models import model_to_dict
from django.utils import timezone

from core.audit import audit_record
from core.errors import InvalidInput, NotFound, PermissionDenied, TransitionNotAllowed
from core.roles import Role, has_role
from releases.models import Release

from ..choices import ExceptionState
from ..domain import freeze as freeze_domain
from ..models import FreezeException, FreezeWindow
from ._common import lock_release, require_manager, require_person, require_text

FREEZE_FIELDS = (
    "name",
    "reason",
    "kind",
    "tz",
    "start",
    "end",
    "rrule",
    "cron",
    "duration",
    "end_time",
    "end_weekday",
    "is_active",
)
FREEZE_MANAGERS = (Role.OPERATIONS, Role.CAB_CHAIR, Role.ADMINISTRATOR)
EXCEPTION_APPROVERS = (Role.CAB_CHAIR, Role.OPERATIONS, Role.ADMINISTRATOR)


def _require_freeze_manager(actor) -> None:
    require_person(actor)
    if not has_role(actor, *FREEZE_MANAGERS):
        raise PermissionDenied("Only operations, the CAB chair or administrators manage freezes.")


def _validate(window: FreezeWindow) -> None:
    try:
        window.rule()
    except freeze_domain.FreezeRuleError as exc:
        raise InvalidInput(f"Invalid freeze window: {exc}", details={"rule": [str(exc)]}) from exc


def freeze_snapshot(window: FreezeWindow) -> dict[str, Any]:
    data = model_to_dict(window, fields=list(FREEZE_FIELDS))
    data["environments"] = sorted(window.environments.values_list("slug", flat=True))
    data["services"] = sorted(window.services.values_list("slug", flat=True))
    data["description"] = window.description
    return data


def freeze_window_create(*, actor, environments=(), services=(), **fields: Any) -> FreezeWindow:
    """Create a freeze window (one-off or recurring; no environments = all production
    environments, no services = all services). Permissions: operations, CAB chair,
    administrators. Side effects: ``freeze.create`` audit event."""
    _require_freeze_manager(actor)
    unknown = set(fields) - set(FREEZE_FIELDS)
    if unknown:
        raise InvalidInput(f"Unknown fields: {', '.join(sorted(unknown))}.")
    require_text(fields.get("name", ""), "A name", "name")
    window = FreezeWindow(created_by=actor, **fields)
    _validate(window)
    with transaction.atomic():
        window.save()
        window.environments.set(environments)
        window.services.set(services)
        audit_record(
            actor=actor, action="freeze.create", target=window, after=freeze_snapshot(window)
        )
    return window


def freeze_window_update(
    *, window: FreezeWindow | int, actor, changes: dict[str, Any]
) -> FreezeWindow:
    """Change a freeze window (fields, ``environments``, ``services``). Permissions as
    create. Side effects: ``freeze.update`` with before/after."""
    _require_freeze_manager(actor)
    unknown = set(changes) - set(FREEZE_FIELDS) - {"environments", "services"}
    if unknown:
        raise InvalidInput(f"Unknown fields: {', '.join(sorted(unknown))}.")
    with transaction.atomic():
        pk = window.pk if isinstance(window, FreezeWindow) else window
        window = FreezeWindow.objects.select_for_update().get(pk=pk)
        before = freeze_snapshot(window)
        changes = dict(changes)
        environments = changes.pop("environments", None)
        services = changes.pop("services", None)
        for key, value in changes.items():
            setattr(window, key, value)
        _validate(window)
        window.save()
        if environments is not None:
            window.environments.set(environments)
        if services is not None:
            window.services.set(services)
        after = freeze_snapshot(window)
        audit_record(
            actor=actor,
            action="freeze.update",
            target=window,
            before={k: v for k, v in before.items() if after.get(k) != v},
            after={k: v for k, v in after.items() if before.get(k) != v},
        )
    return window


def freeze_exception_request(
    *,
    freeze: FreezeWindow | int,
    release: Release | int,
    actor,
    justification: str,
    expires_at: datetime | None = None,
) -> FreezeException:
    """Ask to deploy a release during a freeze (justification required; expiry defaults to
    the end of the release's window). Permissions: release managers of the release.
    Side effects: ``freeze_exception.request``."""
    justification = require_text(justification, "A justification", "justification")
    with transaction.atomic():
        release = lock_release(release)
        require_manager(actor, release)
        try:
            window = FreezeWindow.objects.get(
                pk=freeze.pk if isinstance(freeze, FreezeWindow) else freeze
            )
        except FreezeWindow.DoesNotExist:
            raise NotFound("No such freeze window.") from None
        expires_at = expires_at or release.window_end
        if expires_at is None or expires_at <= timezone.now():
            raise InvalidInput(
                "An exception needs an expiry in the future.",
                details={"expires_at": ["Must be in the future."]},
            )
        exception = FreezeException.objects.create(
            freeze=window,
            release=release,
            justification=justification,
            requested_by=actor,
            expires_at=expires_at,
        )
        audit_record(
            actor=actor,
            action="freeze_exception.request",
            target=exception,
            release=release,
            reason=justification,
            to_state=exception.state,
            after={"freeze": str(window), "expires_at": expires_at},
        )
    return exception


def _decide(exception: FreezeException | int, actor, state: str, comment: str) -> FreezeException:
    with transaction.atomic():
        pk = exception.pk if isinstance(exception, FreezeException) else exception
        exception = (
            FreezeException.objects.select_for_update(of=("self",))
            .select_related("release")
            .get(pk=pk)
        )
        require_person(actor)
        if not has_role(actor, *EXCEPTION_APPROVERS):
            raise PermissionDenied(
                "Only the CAB chair, operations or administrators decide freeze exceptions."
            )
        if actor.pk in (exception.requested_by_id, exception.release.owner_id):
            raise PermissionDenied(
                "Separation of duties: you requested this exception or own the release, so "
                "you cannot decide it."
            )
        if exception.state != ExceptionState.REQUESTED:
            raise TransitionNotAllowed(
                f"The exception is already {exception.get_state_display().lower()}."
            )
        from_state = exception.state
        exception.state = state
        exception.approver = actor
        exception.decided_at = timezone.now()
        exception.decision_comment = comment
        exception.save()
        audit_record(
            actor=actor,
            action="freeze_exception."
            + ("approve" if state == ExceptionState.APPROVED else "reject"),
            target=exception,
            release=exception.release,
            from_state=from_state,
            to_state=state,
            reason=comment,
        )
        return exception


def freeze_exception_approve(
    *, exception: FreezeException | int, actor, comment: str = ""
) -> FreezeException:
    """requested → approved: the release may deploy during the freeze until the expiry.
    Permissions: CAB chair, operations, administrators — not the requester or release
    owner. Side effects: ``freeze_exception.approve``."""
    return _decide(exception, actor, ExceptionState.APPROVED, comment.strip())


def freeze_exception_reject(
    *, exception: FreezeException | int, actor, comment: str
) -> FreezeException:
    """requested → rejected, with a comment (required). Permissions as approve.
    Side effects: ``freeze_exception.reject``."""
    comment = require_text(comment, "A comment explaining the rejection")
    return _decide(exception, actor, ExceptionState.REJECTED, comment)
