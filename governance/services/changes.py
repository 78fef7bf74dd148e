"""Change requests: their lifecycle, and the quorum rules that votes and the CAB apply.

Votes and decisions live in votes.py, meetings and their agenda in cab.py.

Lock order, to stay deadlock-free: change request first, then its release. Votes are
serialised by the change request's row lock, and the (change request, voter) unique
constraint makes "one vote per member" hold even if a code path forgets the lock.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.forms.models import model_to_dict
from django.utils import timezone
from django_fsm import ConcurrentTransition, can_proceed

from core.audit import audit_record
from core.errors import InvalidInput, NotFound, PermissionDenied, TransitionNotAllowed
from core.roles import Role, has_role
from releases.models import Release

from .. import notify
from ..choices import (
    GATE_DONE,
    AgendaOutcome,
    ChangeState,
    ChangeType,
    GateStage,
)
from ..models import AgendaItem, ChangeRequest, Recusal
from ._common import is_chair, require_manager, require_person, require_text
from .risk import effective_risk_level

CR_FIELDS = (
    "title",
    "change_type",
    "risk_level",
    "reason",
    "impact",
    "implementation_plan",
    "backout_plan",
    "test_plan",
    "window_start",
    "window_end",
)
# Hours within which an emergency change's post-implementation review must be done.
DEFAULT_EMERGENCY_REVIEW_HOURS = 72


def lock_cr(cr: ChangeRequest | int) -> ChangeRequest:
    pk = cr.pk if isinstance(cr, ChangeRequest) else cr
    try:
        return ChangeRequest.objects.select_for_update().get(pk=pk)
    except ChangeRequest.DoesNotExist:
        raise NotFound("No such change request.") from None


def _next_number() -> int:
    return (ChangeRequest.objects.aggregate(n=Max("number"))["n"] or 1000) + 1


def audit_cr(
    cr: ChangeRequest, *, actor, action: str, from_state: str = "", reason: str = "", **kw
):
    audit_record(
        actor=actor,
        action=action,
        target=cr,
        release=cr.release,
        from_state=from_state,
        to_state=cr.state if from_state else "",
        reason=reason,
        **kw,
    )


def cr_transition(cr: ChangeRequest, method, *, actor, action: str, reason: str = "") -> None:
    if not can_proceed(method):
        label = action.split(".")[-1].replace("_", " ")
        raise TransitionNotAllowed(
            f"Cannot {label} CR-{cr.number}: it is {cr.get_state_display().lower()}."
        )
    from_state = cr.state
    method()
    try:
        cr.save()
    except ConcurrentTransition:
        raise TransitionNotAllowed(
            f"CR-{cr.number} was changed by someone else at the same time; reload."
        ) from None
    audit_cr(cr, actor=actor, action=action, from_state=from_state, reason=reason)


def _may_edit(actor, cr: ChangeRequest) -> bool:
    if cr.requested_by_id == actor.pk or has_role(actor, Role.ADMINISTRATOR):
        return True
    return cr.release is not None and actor.has_perm("releases.transition_release", cr.release)


def _require_editor(actor, cr: ChangeRequest) -> None:
    require_person(actor)
    if not _may_edit(actor, cr):
        raise PermissionDenied(
            "Only the requester or a release manager of the release can change this request."
        )


def require_chair(actor, cr: ChangeRequest | None = None) -> None:
    require_person(actor)
    if not is_chair(actor):
        raise PermissionDenied("Only the CAB chair can do this.")
    if cr is not None and (
        cr.requested_by_id == actor.pk
        or (cr.release is not None and cr.release.owner_id == actor.pk)
    ):
        raise PermissionDenied(
            f"Separation of duties: you are involved in CR-{cr.number}, so you cannot decide it."
        )


# --- change requests --------------------------------------------------------------------------


def _validate_window(start: datetime | None, end: datetime | None) -> None:
    if start and end and end <= start:
        raise InvalidInput(
            "The planned window must end after it starts.",
            details={"window_end": ["Must be after the window start."]},
        )


def change_request_create(
    *,
    actor,
    title: str,
    change_type: str = ChangeType.NORMAL,
    release: Release | None = None,
    **fields: Any,
) -> ChangeRequest:
    """Create a draft change request (fields of CR_FIELDS; the linked release's window,
    risk and rollback plan are copied when not given).

    Permissions: release managers (of the release when one is linked) and administrators.
    Side effects: ``change_request.create`` audit event.
    """
    require_person(actor)
    unknown = set(fields) - set(CR_FIELDS)
    if unknown:
        raise InvalidInput(f"Unknown fields: {', '.join(sorted(unknown))}.")
    title = require_text(title, "A title", "title")
    if change_type not in ChangeType.values:
        raise InvalidInput("Unknown change type.", details={"change_type": ["Unknown."]})
    if release is not None:
        require_manager(actor, release)
    elif not has_role(actor, Role.RELEASE_MANAGER, Role.ADMINISTRATOR):
        raise PermissionDenied("Only release managers can request changes.")
    if release is not None:
        fields.setdefault("window_start", release.window_start)
        fields.setdefault("window_end", release.window_end)
        fields.setdefault("risk_level", _release_risk(release))
        plan = getattr(release, "rollback_plan", None)
        if plan is not None:
            fields.setdefault("backout_plan", plan.steps)
    _validate_window(fields.get("window_start"), fields.get("window_end"))
    with transaction.atomic():
        for attempt in range(3):
            try:
                with transaction.atomic():
                    cr = ChangeRequest.objects.create(
                        number=_next_number(),
                        title=title,
                        change_type=change_type,
                        release=release,
                        requested_by=actor,
                        **fields,
                    )
                break
            except IntegrityError:  # two creations raced for the same number
                if attempt == 2:
                    raise
        audit_cr(
            cr,
            actor=actor,
            action="change_request.create",
            after=model_to_dict(cr, fields=["title", "change_type", "risk_level"]),
        )
    return cr


def _release_risk(release: Release) -> str:
    return effective_risk_level(release)


def change_request_update(
    *, change_request: ChangeRequest | int, actor, changes: dict[str, Any]
) -> ChangeRequest:
    """Edit a draft (or needs-info) change request. Permissions: requester, release managers
    of the release, administrators. Side effects: ``change_request.update`` with a diff."""
    unknown = set(changes) - set(CR_FIELDS)
    if unknown:
        raise InvalidInput(f"These fields cannot be edited: {', '.join(sorted(unknown))}.")
    with transaction.atomic():
        cr = lock_cr(change_request)
        _require_editor(actor, cr)
        if cr.state not in (ChangeState.DRAFT, ChangeState.NEEDS_INFO):
            raise TransitionNotAllowed(
                f"CR-{cr.number} is {cr.get_state_display().lower()}; it can no longer be edited."
            )
        before = model_to_dict(cr, fields=list(changes))
        for key, value in changes.items():
            setattr(cr, key, value)
        _validate_window(cr.window_start, cr.window_end)
        cr.save()
        audit_cr(
            cr,
            actor=actor,
            action="change_request.update",
            before=before,
            after=model_to_dict(cr, fields=list(changes)),
        )
    return cr


def change_request_delete(*, change_request: ChangeRequest | int, actor) -> None:
    """Delete a draft change request (never submitted, so nobody has acted on it).
    Permissions: requester, release managers of the release, administrators.
    Side effects: ``change_request.delete`` audit event with the draft's fields."""
    with transaction.atomic():
        cr = lock_cr(change_request)
        _require_editor(actor, cr)
        if cr.state != ChangeState.DRAFT:
            raise TransitionNotAllowed(
                f"CR-{cr.number} is {cr.get_state_display().lower()}: only drafts can be deleted."
            )
        audit_cr(
            cr,
            actor=actor,
            action="change_request.delete",
            before=model_to_dict(cr, fields=list(CR_FIELDS)),
        )
        cr.delete()


def _record_recusals(cr: ChangeRequest) -> None:
    people = {cr.requested_by_id: "requested this change"}
    if cr.release is not None and cr.release.owner_id:
        people.setdefault(cr.release.owner_id, "owns the release")
    for user_id, reason in people.items():
        Recusal.objects.get_or_create(
            change_request=cr, user_id=user_id, defaults={"reason": reason}
        )


def _pre_approved_ready(cr: ChangeRequest) -> bool:
    if cr.release is None:
        return True

    return (
        not cr.release.gate_checks.filter(stage=GateStage.PRE_APPROVAL)
        .exclude(status__in=GATE_DONE)
        .exists()
    )


def change_request_submit(*, change_request: ChangeRequest | int, actor) -> ChangeRequest:
    """draft | needs_info → submitted. Needs a reason, an implementation plan, a backout
    plan and a planned window. Records the recusals of the requester and the release owner.
    A standard (pre-approved) change whose pre-approval gates are done is approved at once.

    Permissions: requester, release managers of the release, administrators. Side effects:
    ``change_request.submit`` (and ``change_request.pre_approve`` for a standard change).
    """
    with transaction.atomic():
        cr = lock_cr(change_request)
        _require_editor(actor, cr)
        missing = {
            f: ["Required."]
            for f in ("reason", "implementation_plan", "backout_plan")
            if not getattr(cr, f).strip()
        }
        if not (cr.window_start and cr.window_end):
            missing["window_start"] = ["A planned window is required."]
        if missing and cr.state in (ChangeState.DRAFT, ChangeState.NEEDS_INFO):
            raise InvalidInput(
                "Cannot submit: " + ", ".join(f.replace("_", " ") for f in missing) + " missing.",
                details=missing,
            )
        cr_transition(cr, cr.submit, actor=actor, action="change_request.submit")
        _record_recusals(cr)
        if cr.change_type == ChangeType.STANDARD and _pre_approved_ready(cr):
            cr.decision_reasons = ["standard change: pre-approved model, gates passed"]
            cr_transition(
                cr,
                cr.pre_approve,
                actor=actor,
                action="change_request.pre_approve",
                reason="Standard change: pre-approved model, no CAB needed.",
            )
        else:
            notify.vote_requested(change_request=cr)
    return cr


def change_request_open_for_release(*, release: Release, actor, change_type: str) -> ChangeRequest:
    """Open (create and submit) the change request a release's policy asks for, when
    approval is requested. Called by the transition listener inside the transition's
    transaction; reuses an open change request of the release if there is one."""
    open_cr = release.change_requests.exclude(
        state__in=[ChangeState.REJECTED, ChangeState.CLOSED]
    ).first()
    if open_cr is not None:
        if open_cr.state in (ChangeState.DRAFT, ChangeState.NEEDS_INFO):
            return change_request_submit(change_request=open_cr, actor=actor)
        return open_cr
    plan = getattr(release, "rollback_plan", None)
    cr = change_request_create(
        actor=actor,
        title=f"Deploy {release}",
        change_type=change_type,
        release=release,
        reason=release.description or f"Release {release} to production.",
        impact=", ".join(s.name for s in release.services.all()),
        implementation_plan=f"Deploy {release} in its window following the runbook.",
        backout_plan=plan.steps if plan else "",
        test_plan="Automated gates (CI, tests, security scan) and the sign-offs of the policy.",
    )
    return change_request_submit(change_request=cr, actor=actor)


def change_request_request_info(
    *, change_request: ChangeRequest | int, actor, comment: str
) -> ChangeRequest:
    """in_review → needs_info, with what is missing (required). Permissions: CAB chair.
    Side effects: ``change_request.request_info``; votes stay and may change."""
    comment = require_text(comment, "What information is needed")
    with transaction.atomic():
        cr = lock_cr(change_request)
        require_chair(actor, cr)
        cr_transition(
            cr, cr.request_info, actor=actor, action="change_request.request_info", reason=comment
        )
        AgendaItem.objects.filter(change_request=cr, outcome=AgendaOutcome.OPEN).update(
            outcome=AgendaOutcome.NEEDS_INFO, closed_at=timezone.now(), closed_by=actor
        )
    return cr


def change_request_implement(
    *, change_request: ChangeRequest | int, actor, note: str = ""
) -> ChangeRequest:
    """approved → implemented; an emergency change gets its review due time. Permissions:
    requester, release managers of the release. (Done automatically when the release is
    marked deployed.) Side effects: ``change_request.implement``."""
    with transaction.atomic():
        cr = lock_cr(change_request)
        if actor is not None:
            _require_editor(actor, cr)
        cr_transition(cr, cr.implement, actor=actor, action="change_request.implement", reason=note)
        if cr.change_type == ChangeType.EMERGENCY:
            hours = getattr(
                settings, "GOVERNANCE_EMERGENCY_REVIEW_HOURS", DEFAULT_EMERGENCY_REVIEW_HOURS
            )
            cr.review_due_at = cr.implemented_at + timedelta(hours=hours)
            cr.save(update_fields=["review_due_at"])
    return cr


def change_request_review(
    *, change_request: ChangeRequest | int, actor, notes: str
) -> ChangeRequest:
    """implemented → reviewed: the post-implementation review (notes required).
    Permissions: requester, release managers of the release, CAB chair.
    Side effects: ``change_request.review``."""
    notes = require_text(notes, "Review notes", "notes")
    with transaction.atomic():
        cr = lock_cr(change_request)
        require_person(actor)
        if not (_may_edit(actor, cr) or is_chair(actor)):
            raise PermissionDenied(
                "Only the requester, a release manager or the CAB chair can review."
            )
        cr.review_notes = notes
        cr_transition(cr, cr.review, actor=actor, action="change_request.review", reason=notes)
    return cr


def change_request_close(*, change_request: ChangeRequest | int, actor) -> ChangeRequest:
    """reviewed → closed. Permissions: requester, release managers, CAB chair.
    Side effects: ``change_request.close``."""
    with transaction.atomic():
        cr = lock_cr(change_request)
        require_person(actor)
        if not (_may_edit(actor, cr) or is_chair(actor)):
            raise PermissionDenied(
                "Only the requester, a release manager or the CAB chair can close."
            )
        cr_transition(cr, cr.close, actor=actor, action="change_request.close")
    return cr


def change_requests_withdraw_approval(*, release: Release, actor, reason: str) -> int:
    """approved → needs_info for the release's approved (not yet implemented) change
    requests, clearing their votes so that the CAB decides again on what will really ship.
    Runs inside the invalidating edit's transaction (release locked; taking the change
    request lock after it is safe: no vote is cast on an approved request).
    Side effects: ``change_request.withdraw_approval`` per request, recording the cleared
    votes. Returns how many requests were sent back."""
    count = 0
    for cr in ChangeRequest.objects.select_for_update().filter(
        release=release, state=ChangeState.APPROVED
    ):
        votes = [
            {"voter": v.voter.get_username(), "choice": v.choice, "comment": v.comment}
            for v in cr.votes.select_related("voter")
        ]
        cr.votes.all().delete()
        reasons, cr.decision_reasons = cr.decision_reasons, []
        from_state = cr.state
        cr.withdraw_approval()
        cr.save()
        audit_cr(
            cr,
            actor=actor,
            action="change_request.withdraw_approval",
            from_state=from_state,
            reason=f"Approval withdrawn: {reason}",
            before={"votes": votes, "decision_reasons": reasons},
        )
        count += 1
    return count


def change_request_withdraw(
    *, change_request: ChangeRequest | int, actor, reason: str
) -> ChangeRequest:
    """draft | submitted | in_review | needs_info → closed: the change will not happen
    (reason required). Open agenda items are closed with it. Done automatically when the
    release is cancelled. Permissions: requester, release managers of the release.
    Side effects: ``change_request.withdraw``."""
    reason = require_text(reason, "A reason", "reason")
    with transaction.atomic():
        cr = lock_cr(change_request)
        _require_editor(actor, cr)
        cr_transition(cr, cr.withdraw, actor=actor, action="change_request.withdraw", reason=reason)
        AgendaItem.objects.filter(change_request=cr, outcome=AgendaOutcome.OPEN).delete()
    return cr
