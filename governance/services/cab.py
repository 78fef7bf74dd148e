"""CAB meetings and their agenda: the chair builds, orders and closes items; closing an
item records the decision (votes.apply_decision).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from core.audit import audit_record
from core.errors import Conflict, InvalidInput, TransitionNotAllowed

from ..choices import (
    VOTING_STATES,
    AgendaOutcome,
    ChangeState,
    ChangeType,
    MeetingKind,
    MeetingState,
)
from ..models import AgendaItem, CABMeeting, ChangeRequest
from ..selectors import ATTENDANCE_ACTION, CAB_ROLES, meeting_presence, tally
from ._common import require_text
from .changes import cr_transition, lock_cr, require_chair
from .votes import apply_decision

# --- meetings and agenda ----------------------------------------------------------------------


#: How far in the past a meeting may start when scheduled (the minutes it takes to type it).
MEETING_SCHEDULE_GRACE = timedelta(minutes=5)


def meeting_create(
    *,
    actor,
    title: str,
    scheduled_at: datetime,
    kind: str = MeetingKind.REGULAR,
    duration: timedelta = timedelta(hours=1),
    attendees=None,
    backdated: bool = False,
) -> CABMeeting:
    """Schedule a CAB meeting chaired by the actor; attendees default to the CAB group.
    A meeting is scheduled from now on (a few minutes' grace for the time it takes to type
    it); ``backdated=True`` records one that already took place (the demo's history).
    Permissions: CAB chair, administrators. Side effects: ``meeting.create``."""
    require_chair(actor)
    title = require_text(title, "A title", "title")
    if not backdated and scheduled_at < timezone.now() - MEETING_SCHEDULE_GRACE:
        raise InvalidInput(
            "A meeting cannot be scheduled in the past.",
            details={"scheduled_at": ["Must not be in the past."]},
        )
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
        cr_transition(
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
        require_chair(actor)
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
        require_chair(actor)
        cr = lock_cr(change_request)
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
        require_chair(actor)
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
    *,
    item: AgendaItem | int,
    actor,
    outcome: str = "",
    comment: str = "",
    expected_outcome: str = "",
) -> AgendaItem:
    """The chair closes an item: the quorum rule is evaluated as closing (what is still
    missing becomes a rejection), or the chair sends it back for information
    (``outcome="needs_info"``, comment required). Moves the change request and the release.
    ``expected_outcome`` is the decision the chair was shown (the workbench's preview): when
    a vote cast since then changed it, nothing is recorded (Conflict) and the chair sees the
    new outcome first. Permissions: CAB chair, not involved in the change. Side effects: the
    decision's events and ``agenda.close``."""
    with transaction.atomic():
        item = AgendaItem.objects.get(pk=item.pk if isinstance(item, AgendaItem) else item)
        meeting = _lock_meeting(item.meeting_id)
        cr = lock_cr(item.change_request_id)
        require_chair(actor, cr)
        if outcome == AgendaOutcome.NEEDS_INFO:
            comment = require_text(comment, "What information is needed")
            if cr.state == ChangeState.SUBMITTED:
                cr.start_review()
            cr_transition(
                cr,
                cr.request_info,
                actor=actor,
                action="change_request.request_info",
                reason=comment,
            )
            final = AgendaOutcome.NEEDS_INFO
        elif cr.state in VOTING_STATES:
            decision = tally(cr, closing=True)
            if expected_outcome and decision.outcome != expected_outcome:
                raise Conflict(
                    f"The votes changed: closing now records {decision.outcome}, not "
                    f"{expected_outcome}. Nothing was recorded; check the new outcome."
                )
            reasons = decision.reasons + ([f"chair: {comment}"] if comment else [])
            apply_decision(cr, outcome=decision.outcome, reasons=reasons, actor=actor)
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
        require_chair(actor)
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


# --- attendance -------------------------------------------------------------------------------


def meeting_mark_attendance(*, meeting: CABMeeting | int, actor, attendee, present: bool) -> bool:
    """Mark an invited attendee present or absent at a scheduled meeting. Marking again
    with the same answer changes nothing (two clicks, one event); changing it is a new
    event, so the trail shows every correction. Returns whether anything was recorded.

    Attendance lives in the audit trail itself (``selectors.meeting_presence`` reads the
    latest mark of each attendee): who marked whom present, when, is the record.
    Permissions: CAB chair, administrators. Side effects: one ``meeting.attendance`` event.
    """
    with transaction.atomic():
        # The meeting's row lock orders concurrent marks, so "unchanged" is read truly.
        meeting = _lock_meeting(meeting)
        require_chair(actor)
        if not meeting.attendees.filter(pk=attendee.pk).exists():
            raise InvalidInput(
                f"{attendee.get_username()} is not invited to this meeting.",
                details={"attendee": ["Not an attendee of this meeting."]},
            )
        before = meeting_presence(meeting).get(attendee.pk)
        if before is present:
            return False
        audit_record(
            actor=actor,
            action=ATTENDANCE_ACTION,
            target=meeting,
            before={"user_id": attendee.pk, "present": before},
            after={
                "user_id": attendee.pk,
                "username": attendee.get_username(),
                "present": present,
            },
        )
    return True
