"""Change requests, CAB meetings and votes.

Lock order, to stay deadlock-free: change request first, then its release. Votes are
serialised by the change request's row lock, and the (change request, voter) unique
constraint makes "one vote per member" hold even if a code path forgets the lock.
"""

from __future__ import annotations

import contextlib
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.forms.models import model_to_dict
from django.utils import timezone
from django_fsm import ConcurrentTransition, can_proceed

from releases import services as release_services
from releases.choices import ReleaseState
from releases.errors import (
    InvalidInput,
    NotFound,
    PermissionDenied,
    RequirementsNotMet,
    TransitionNotAllowed,
)
from releases.models import Release
from releases.roles import Role, has_role, user_roles

from ..choices import (
    VOTING_STATES,
    AgendaOutcome,
    ChangeState,
    ChangeType,
    MeetingKind,
    MeetingState,
    VoteChoice,
)
from ..domain import quorum
from ..models import AgendaItem, CABMeeting, ChangeRequest, QuorumPolicyRecord, Recusal, Vote
from ._common import is_chair, lock_release, require_manager, require_person, require_text
from .audit import audit_record

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
CAB_ROLES = (Role.CAB_MEMBER, Role.CAB_CHAIR)
DEFAULT_QUORUM = quorum.QuorumPolicy(
    min_votes=2, approval_share="0.5", mandatory_roles=frozenset({Role.SECURITY_LEAD.value})
)


def _lock_cr(cr: ChangeRequest | int) -> ChangeRequest:
    pk = cr.pk if isinstance(cr, ChangeRequest) else cr
    try:
        return ChangeRequest.objects.select_for_update().get(pk=pk)
    except ChangeRequest.DoesNotExist:
        raise NotFound("No such change request.") from None


def _next_number() -> int:
    return (ChangeRequest.objects.aggregate(n=Max("number"))["n"] or 1000) + 1


def _audit_cr(
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


def _transition(cr: ChangeRequest, method, *, actor, action: str, reason: str = "") -> None:
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
    _audit_cr(cr, actor=actor, action=action, from_state=from_state, reason=reason)


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


def quorum_policy_for(cr: ChangeRequest, *, records=None) -> quorum.QuorumPolicy:
    """The stored quorum policy of the change's type; an emergency change without its own
    policy uses the emergency variant of the normal one (smaller quorum)."""
    records = {
        r.change_type: r for r in (QuorumPolicyRecord.objects.all() if records is None else records)
    }
    if cr.change_type in records:
        return records[cr.change_type].as_domain()
    normal = (
        records[ChangeType.NORMAL].as_domain() if ChangeType.NORMAL in records else (DEFAULT_QUORUM)
    )
    if cr.change_type == ChangeType.EMERGENCY:
        return quorum.QuorumPolicy.emergency(normal)
    return normal


def tally(
    cr: ChangeRequest,
    votes: list[Vote] | None = None,
    *,
    closing: bool = False,
    policy: quorum.QuorumPolicy | None = None,
) -> quorum.Decision:
    """The quorum decision for the current votes (domain Decision)."""
    votes = list(cr.votes.all()) if votes is None else votes
    ballot = [
        quorum.Vote(voter_id=v.voter_id, choice=v.choice, roles=frozenset(v.roles)) for v in votes
    ]
    policy = policy or quorum_policy_for(cr)
    return quorum.evaluate(policy, ballot, cr.risk_level, closing=closing)


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
        _audit_cr(
            cr,
            actor=actor,
            action="change_request.create",
            after=model_to_dict(cr, fields=["title", "change_type", "risk_level"]),
        )
    return cr


def _release_risk(release: Release) -> str:
    from .risk import effective_risk_level

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
        cr = _lock_cr(change_request)
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
        _audit_cr(
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
        cr = _lock_cr(change_request)
        _require_editor(actor, cr)
        if cr.state != ChangeState.DRAFT:
            raise TransitionNotAllowed(
                f"CR-{cr.number} is {cr.get_state_display().lower()}: only drafts can be deleted."
            )
        _audit_cr(
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
    from ..choices import GATE_DONE, GateStage

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
        cr = _lock_cr(change_request)
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
        _transition(cr, cr.submit, actor=actor, action="change_request.submit")
        _record_recusals(cr)
        if cr.change_type == ChangeType.STANDARD and _pre_approved_ready(cr):
            cr.decision_reasons = ["standard change: pre-approved model, gates passed"]
            _transition(
                cr,
                cr.pre_approve,
                actor=actor,
                action="change_request.pre_approve",
                reason="Standard change: pre-approved model, no CAB needed.",
            )
        else:
            from .. import notify  # late: notify imports the outbox, which imports services

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
        cr = _lock_cr(change_request)
        _require_chair(actor, cr)
        _transition(
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
        cr = _lock_cr(change_request)
        if actor is not None:
            _require_editor(actor, cr)
        _transition(cr, cr.implement, actor=actor, action="change_request.implement", reason=note)
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
        cr = _lock_cr(change_request)
        require_person(actor)
        if not (_may_edit(actor, cr) or is_chair(actor)):
            raise PermissionDenied(
                "Only the requester, a release manager or the CAB chair can review."
            )
        cr.review_notes = notes
        _transition(cr, cr.review, actor=actor, action="change_request.review", reason=notes)
    return cr


def change_request_close(*, change_request: ChangeRequest | int, actor) -> ChangeRequest:
    """reviewed → closed. Permissions: requester, release managers, CAB chair.
    Side effects: ``change_request.close``."""
    with transaction.atomic():
        cr = _lock_cr(change_request)
        require_person(actor)
        if not (_may_edit(actor, cr) or is_chair(actor)):
            raise PermissionDenied(
                "Only the requester, a release manager or the CAB chair can close."
            )
        _transition(cr, cr.close, actor=actor, action="change_request.close")
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
        _audit_cr(
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
        cr = _lock_cr(change_request)
        _require_editor(actor, cr)
        _transition(cr, cr.withdraw, actor=actor, action="change_request.withdraw", reason=reason)
        AgendaItem.objects.filter(change_request=cr, outcome=AgendaOutcome.OPEN).delete()
    return cr


# --- decisions --------------------------------------------------------------------------------


def _apply_decision(cr: ChangeRequest, *, outcome: str, reasons: list[str], actor) -> None:
    """Move the change request (and its release) for a decision; the CR row is locked."""
    cr.decision_reasons = reasons
    cr.decided_by = actor
    reason = "; ".join(reasons)
    if cr.state == ChangeState.SUBMITTED and outcome != "pending":
        cr.start_review()  # decided straight from submitted (not yet on an agenda)
    if outcome == "approved":
        _transition(cr, cr.approve, actor=actor, action="change_request.approve", reason=reason)
    elif outcome == "rejected":
        _transition(cr, cr.reject, actor=actor, action="change_request.reject", reason=reason)
    else:
        return
    AgendaItem.objects.filter(change_request=cr, outcome=AgendaOutcome.OPEN).update(
        outcome=outcome, closed_at=timezone.now(), closed_by=actor
    )
    from .. import notify

    notify.decision_made(change_request=cr, outcome=outcome)
    if cr.release_id is None:
        return
    release = lock_release(cr.release_id)
    if release.state != ReleaseState.AWAITING_APPROVAL:
        return
    # The release moves through the one door for release transitions: the same guard,
    # audit event and listeners as a release manager's click. The chair's decision is the
    # authority here, so the release-manager permission check is skipped (system=True).
    if outcome == "rejected":
        release_services.release_transition(
            release=release,
            actor=actor,
            name="request_changes",
            reason=f"CAB rejected CR-{cr.number}: {reason}",
            system=True,
        )
    else:
        # When sign-offs are still missing the release stays awaiting approval.
        with contextlib.suppress(RequirementsNotMet):
            release_services.release_transition(
                release=release,
                actor=actor,
                name="approve",
                reason=f"CAB approved CR-{cr.number}: {reason}",
                system=True,
            )


def _require_voter(actor, cr: ChangeRequest) -> None:
    require_person(actor)
    policy = quorum_policy_for(cr)
    if not has_role(actor, *CAB_ROLES, *policy.mandatory_roles):
        raise PermissionDenied("Only CAB members vote on change requests.")
    recusal = cr.recusals.filter(user=actor).first()
    if (
        recusal is not None
        or cr.requested_by_id == actor.pk
        or (cr.release is not None and cr.release.owner_id == actor.pk)
    ):
        why = recusal.reason if recusal else "is involved in this change"
        raise PermissionDenied(
            f"Separation of duties: you {why}, so you cannot vote on CR-{cr.number} "
            "(your recusal is recorded)."
        )


def vote_cast(
    *, change_request: ChangeRequest | int, actor, choice: str, comment: str = ""
) -> Vote:
    """Cast or change the actor's vote (approve / reject / abstain, with a comment — required
    for a reject). When the quorum rule approves, the change request is approved and the
    release moves on; a veto or a shortfall is recorded by the chair closing the item.

    Permissions: CAB members and chairs (and holders of the policy's mandatory roles); never
    the requester or the release owner. Votes are refused once decided. Concurrency: the
    change request row lock serialises votes, so exactly one vote per member and one
    decision result. Side effects: ``vote.cast`` / ``vote.change`` audit event, and the
    decision's events.
    """
    if choice not in VoteChoice.values:
        raise InvalidInput(
            "A vote is approve, reject or abstain.", details={"choice": ["Invalid."]}
        )
    comment = (comment or "").strip()
    if choice == VoteChoice.REJECT and not comment:
        raise InvalidInput("A reject needs a comment.", details={"comment": ["Required."]})
    with transaction.atomic():
        cr = _lock_cr(change_request)
        _require_voter(actor, cr)
        if cr.state not in VOTING_STATES:
            raise TransitionNotAllowed(
                f"CR-{cr.number} is {cr.get_state_display().lower()}: votes can no longer change."
            )
        vote = Vote.objects.filter(change_request=cr, voter=actor).first()
        before = {"choice": vote.choice, "comment": vote.comment} if vote else None
        if vote is None:
            vote = Vote.objects.create(
                change_request=cr,
                voter=actor,
                choice=choice,
                comment=comment,
                roles=sorted(user_roles(actor)),
            )
        else:
            vote.choice, vote.comment = choice, comment
            vote.roles = sorted(user_roles(actor))
            vote.updated_at = timezone.now()
            vote.save()
        audit_record(
            actor=actor,
            action="vote.change" if before else "vote.cast",
            target=cr,
            release=cr.release,
            reason=comment,
            before=before,
            after={"choice": choice, "comment": comment},
        )
        decision = tally(cr)
        if decision.outcome == "approved":
            _apply_decision(cr, outcome="approved", reasons=decision.reasons, actor=actor)
    return vote


def vote_withdraw(*, change_request: ChangeRequest | int, actor) -> None:
    """Withdraw the actor's vote before the decision. Side effects: ``vote.withdraw``."""
    with transaction.atomic():
        cr = _lock_cr(change_request)
        require_person(actor)
        if cr.state not in VOTING_STATES:
            raise TransitionNotAllowed(f"CR-{cr.number} is decided: votes can no longer change.")
        vote = Vote.objects.filter(change_request=cr, voter=actor).first()
        if vote is None:
            raise InvalidInput("You have not voted on this change request.")
        before = {"choice": vote.choice, "comment": vote.comment}
        vote.delete()
        audit_record(
            actor=actor, action="vote.withdraw", target=cr, release=cr.release, before=before
        )


# --- meetings and agenda ----------------------------------------------------------------------


def _require_chair(actor, cr: ChangeRequest | None = None) -> None:
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


def meeting_create(
    *,
    actor,
    title: str,
    scheduled_at: datetime,
    kind: str = MeetingKind.REGULAR,
    duration: timedelta = timedelta(hours=1),
    attendees=None,
) -> CABMeeting:
    """Schedule a CAB meeting chaired by the actor; attendees default to the CAB group.
    Permissions: CAB chair, administrators. Side effects: ``meeting.create``."""
    _require_chair(actor)
    title = require_text(title, "A title", "title")
    with transaction.atomic():
        meeting = CABMeeting.objects.create(
            title=title, kind=kind, scheduled_at=scheduled_at, duration=duration, chair=actor
        )
        if attendees is None:
            attendees = get_user_model().objects.filter(groups__name__in=CAB_ROLES).distinct()
        meeting.attendees.set(attendees)
        audit_record(
            actor=actor,
            action="meeting.create",
            target=meeting,
            after={"title": title, "scheduled_at": scheduled_at, "kind": kind},
        )
    return meeting


def _lock_meeting(meeting: CABMeeting | int) -> CABMeeting:
    pk = meeting.pk if isinstance(meeting, CABMeeting) else meeting
    meeting = CABMeeting.objects.select_for_update().get(pk=pk)
    if meeting.state == MeetingState.CLOSED:
        raise TransitionNotAllowed("The meeting is closed.")
    return meeting


def _add_item(meeting: CABMeeting, cr: ChangeRequest, actor) -> AgendaItem:
    if cr.state == ChangeState.SUBMITTED:
        _transition(
            cr,
            cr.start_review,
            actor=actor,
            action="change_request.start_review",
            reason=f"On the agenda of {meeting}",
        )
    position = (meeting.items.aggregate(p=Max("position"))["p"] or 0) + 1
    item, _ = AgendaItem.objects.get_or_create(
        meeting=meeting, change_request=cr, defaults={"position": position}
    )
    audit_record(
        actor=actor, action="agenda.add", target=meeting, release=cr.release, reason=str(cr)
    )
    return item


def meeting_build_agenda(*, meeting: CABMeeting | int, actor) -> list[AgendaItem]:
    """Add to the agenda every submitted or in-review change request (of the meeting's kind:
    emergency for an emergency CAB) not already on an open agenda whose planned window
    starts before the next meeting after this one (so it must be decided now).
    Permissions: CAB chair. Side effects: ``agenda.add`` (and ``change_request.start_review``)
    per item."""
    with transaction.atomic():
        meeting = _lock_meeting(meeting)
        _require_chair(actor)
        types = (
            [ChangeType.EMERGENCY]
            if meeting.kind == MeetingKind.EMERGENCY
            else [ChangeType.NORMAL, ChangeType.EMERGENCY]
        )
        later = (
            CABMeeting.objects.filter(
                state=MeetingState.SCHEDULED,
                kind=meeting.kind,
                scheduled_at__gt=meeting.scheduled_at,
            )
            .order_by("scheduled_at")
            .first()
        )
        candidates = ChangeRequest.objects.filter(
            state__in=VOTING_STATES, change_type__in=types
        ).exclude(agenda_items__meeting__state=MeetingState.SCHEDULED, agenda_items__outcome="")
        if later is not None:
            candidates = candidates.filter(window_start__lt=later.scheduled_at)
        added = []
        for cr in candidates.select_for_update().order_by("window_start", "id"):
            added.append(_add_item(meeting, cr, actor))
        return added


def agenda_item_add(
    *, meeting: CABMeeting | int, change_request: ChangeRequest | int, actor
) -> AgendaItem:
    """Put a change request (submitted or in review) on the agenda. Permissions: CAB chair.
    Side effects: ``agenda.add``."""
    with transaction.atomic():
        meeting = _lock_meeting(meeting)
        _require_chair(actor)
        cr = _lock_cr(change_request)
        if cr.state not in VOTING_STATES:
            raise TransitionNotAllowed(
                f"CR-{cr.number} is {cr.get_state_display().lower()}; only submitted changes "
                "go on an agenda."
            )
        return _add_item(meeting, cr, actor)


def agenda_item_move(*, item: AgendaItem | int, actor, position: int) -> AgendaItem:
    """Move an item to ``position`` (1-based) and renumber the rest. Permissions: CAB chair.
    Side effects: ``agenda.move``."""
    with transaction.atomic():
        item = AgendaItem.objects.select_related("meeting").get(
            pk=item.pk if isinstance(item, AgendaItem) else item
        )
        meeting = _lock_meeting(item.meeting_id)
        _require_chair(actor)
        items = [i for i in meeting.items.order_by("position", "id") if i.pk != item.pk]
        position = max(1, min(position, len(items) + 1))
        items.insert(position - 1, item)
        for index, each in enumerate(items, start=1):
            if each.position != index:
                each.position = index
                each.save(update_fields=["position"])
        audit_record(
            actor=actor,
            action="agenda.move",
            target=meeting,
            reason=f"{item.change_request_id} → {position}",
        )
        item.refresh_from_db()
        return item


def agenda_item_close(
    *, item: AgendaItem | int, actor, outcome: str = "", comment: str = ""
) -> AgendaItem:
    """The chair closes an item: the quorum rule is evaluated as closing (what is still
    missing becomes a rejection), or the chair sends it back for information
    (``outcome="needs_info"``, comment required). Moves the change request and the release.
    Permissions: CAB chair, not involved in the change. Side effects: the decision's events
    and ``agenda.close``."""
    with transaction.atomic():
        item = AgendaItem.objects.get(pk=item.pk if isinstance(item, AgendaItem) else item)
        meeting = _lock_meeting(item.meeting_id)
        cr = _lock_cr(item.change_request_id)
        _require_chair(actor, cr)
        if outcome == AgendaOutcome.NEEDS_INFO:
            comment = require_text(comment, "What information is needed")
            if cr.state == ChangeState.SUBMITTED:
                cr.start_review()
            _transition(
                cr,
                cr.request_info,
                actor=actor,
                action="change_request.request_info",
                reason=comment,
            )
            final = AgendaOutcome.NEEDS_INFO
        elif cr.state in VOTING_STATES:
            decision = tally(cr, closing=True)
            reasons = decision.reasons + ([f"chair: {comment}"] if comment else [])
            _apply_decision(cr, outcome=decision.outcome, reasons=reasons, actor=actor)
            final = decision.outcome
        else:
            final = cr.state if cr.state in AgendaOutcome.values else item.outcome
        AgendaItem.objects.filter(pk=item.pk).update(
            outcome=final or AgendaOutcome.REJECTED, closed_at=timezone.now(), closed_by=actor
        )
        audit_record(
            actor=actor,
            action="agenda.close",
            target=meeting,
            release=cr.release,
            reason=f"CR-{cr.number}: {final}",
        )
        item.refresh_from_db()
        return item


def meeting_close(*, meeting: CABMeeting | int, actor) -> CABMeeting:
    """Close every open item (as agenda_item_close) and the meeting. Permissions: CAB chair.
    Items of changes the chair is involved in are left open for another chair.
    Side effects: the items' events and ``meeting.close``."""
    with transaction.atomic():
        meeting = _lock_meeting(meeting)
        _require_chair(actor)
        for item in meeting.items.filter(outcome=AgendaOutcome.OPEN).select_related(
            "change_request__release"
        ):
            cr = item.change_request
            if cr.requested_by_id == actor.pk or (cr.release and cr.release.owner_id == actor.pk):
                continue
            agenda_item_close(item=item, actor=actor)
        meeting.state = MeetingState.CLOSED
        meeting.closed_at = timezone.now()
        meeting.save(update_fields=["state", "closed_at"])
        audit_record(actor=actor, action="meeting.close", target=meeting)
        return meeting
