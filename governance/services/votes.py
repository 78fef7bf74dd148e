"""Votes on change requests, and the decisions that follow them (a quorum reached by
votes, or the chair closing an agenda item): the change request moves, and its release
moves through the one door for release transitions.

Lock order as in changes.py: change request first, then its release.
"""

from __future__ import annotations

import contextlib

from django.db import transaction
from django.utils import timezone

from core.audit import audit_record
from core.errors import InvalidInput, PermissionDenied, RequirementsNotMet, TransitionNotAllowed
from core.roles import user_roles
from releases import services as release_services
from releases.choices import ReleaseState

from .. import notify
from ..choices import (
    VOTING_STATES,
    AgendaOutcome,
    ChangeState,
    VoteChoice,
)
from ..models import AgendaItem, ChangeRequest, Vote
from ..selectors import may_vote, quorum_policy_for, tally
from ._common import lock_release, require_person
from .changes import cr_transition, lock_cr

# --- decisions --------------------------------------------------------------------------------


def apply_decision(cr: ChangeRequest, *, outcome: str, reasons: list[str], actor) -> None:
    """Move the change request (and its release) for a decision; the CR row is locked."""
    cr.decision_reasons = reasons
    cr.decided_by = actor
    reason = "; ".join(reasons)
    if cr.state == ChangeState.SUBMITTED and outcome != "pending":
        cr.start_review()  # decided straight from submitted (not yet on an agenda)
    if outcome == "approved":
        cr_transition(cr, cr.approve, actor=actor, action="change_request.approve", reason=reason)
    elif outcome == "rejected":
        cr_transition(cr, cr.reject, actor=actor, action="change_request.reject", reason=reason)
    else:
        return
    AgendaItem.objects.filter(change_request=cr, outcome=AgendaOutcome.OPEN).update(
        outcome=outcome, closed_at=timezone.now(), closed_by=actor
    )

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
    if not may_vote(actor, policy):
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
        cr = lock_cr(change_request)
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
            apply_decision(cr, outcome="approved", reasons=decision.reasons, actor=actor)
    return vote


def vote_withdraw(*, change_request: ChangeRequest | int, actor) -> None:
    """Withdraw the actor's vote before the decision. Side effects: ``vote.withdraw``."""
    with transaction.atomic():
        cr = lock_cr(change_request)
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
