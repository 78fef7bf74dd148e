"""Governance events people care about, written to the notification outbox in the same
transaction as the event (``core.notifications.notification_enqueue``).

Each producer names the event occurrence in its idempotency key, so producing twice (a
retried task, a sweep that runs twice) notifies once.
"""

from __future__ import annotations

from datetime import timedelta

from django.contrib.auth import get_user_model
from django.utils import timezone

from core.notifications import notification_enqueue
from releases.models import Release

from .choices import ChangeState, GateStatus
from .domain.freeze import describe, occurrences
from .models import ChangeRequest, GateCheck
from .selectors import active_freeze_rules

CAB_GROUPS = ("cab_member", "cab_chair")


def _holders(*roles: str, exclude: tuple = ()):
    users = get_user_model().objects.filter(is_active=True, groups__name__in=roles).distinct()
    return users.exclude(pk__in=[pk for pk in exclude if pk])


def gates_waiting(*, release: Release) -> int:
    """Manual gates of the release now pending: tell the people holding each gate's role
    (not the release owner, who may not sign their own release)."""
    sent = 0
    gates = GateCheck.objects.filter(
        release=release, kind="manual", status=GateStatus.PENDING
    ).exclude(role="")
    for gate in gates:
        sent += len(
            notification_enqueue(
                event="gate_waiting",
                recipients=_holders(gate.role, exclude=(release.owner_id,)),
                subject=f"Sign-off waiting: {gate.label} for {release}",
                body=f"{release} needs your sign-off ({gate.get_stage_display().lower()}).",
                link="/governance/inbox/",
                idempotency_key=f"gate_waiting:{gate.pk}:{gate.pending_since:%Y%m%d%H%M%S}",
            )
        )
    return sent


def vote_requested(*, change_request: ChangeRequest) -> int:
    """A change request went to the CAB: ask its members (not the requester or the owner)."""
    cr = change_request
    owner_id = cr.release.owner_id if cr.release_id else None
    stamp = f"{cr.submitted_at:%Y%m%d%H%M%S}" if cr.submitted_at else "0"
    return len(
        notification_enqueue(
            event="vote_requested",
            recipients=_holders(*CAB_GROUPS, exclude=(cr.requested_by_id, owner_id)),
            subject=f"Your vote: CR-{cr.number} {cr.title}",
            body=f"A {cr.get_change_type_display().lower()} change waits for the CAB.",
            link="/governance/inbox/",
            idempotency_key=f"vote_requested:{cr.pk}:{stamp}",
        )
    )


def decision_made(*, change_request: ChangeRequest, outcome: str) -> int:
    """Tell the requester and the release owner what the CAB decided."""
    cr = change_request
    recipients = [cr.requested_by]
    if cr.release_id and cr.release.owner_id:
        recipients.append(cr.release.owner)
    return len(
        notification_enqueue(
            event="decision_made",
            recipients=recipients,
            subject=f"CR-{cr.number} {outcome}: {cr.title}",
            body="; ".join(cr.decision_reasons or []),
            link=cr.release.get_absolute_url() if cr.release_id else "/governance/cab/",
            idempotency_key=f"decision_made:{cr.pk}:{outcome}:{timezone.now():%Y%m%d%H%M}",
        )
    )


def reviews_overdue(*, now=None) -> int:
    """Sweep: overdue post-implementation reviews, to the change's owner and the CAB chairs
    (once per change)."""
    now = now or timezone.now()
    sent = 0
    overdue = ChangeRequest.objects.filter(
        state=ChangeState.IMPLEMENTED, reviewed_at__isnull=True, review_due_at__lt=now
    ).select_related("requested_by", "release__owner")
    chairs = list(_holders("cab_chair"))
    for cr in overdue:
        recipients = [cr.requested_by, *chairs]
        if cr.release_id and cr.release.owner_id:
            recipients.append(cr.release.owner)
        sent += len(
            notification_enqueue(
                event="review_overdue",
                recipients=recipients,
                subject=f"Post-implementation review overdue: CR-{cr.number} {cr.title}",
                body=f"The review was due {cr.review_due_at:%d %b %Y %H:%M %Z}.",
                link="/governance/inbox/",
                idempotency_key=f"review_overdue:{cr.pk}",
            )
        )
    return sent


def freezes_starting(*, now=None, horizon: timedelta = timedelta(hours=24)) -> int:
    """Sweep: freeze windows starting within the horizon, to release managers and operations
    (once per occurrence)."""

    now = now or timezone.now()
    people = list(_holders("release_manager", "operations"))
    sent = 0
    for window, rule, _services, _production in active_freeze_rules():
        for start, _end in occurrences(rule, now, now + horizon):
            if start < now:
                continue  # already running: too late to warn
            sent += len(
                notification_enqueue(
                    event="freeze_starting",
                    recipients=people,
                    subject=f"Freeze starting {start:%a %d %b %H:%M} UTC: {window.name}",
                    body=window.reason or describe(rule),
                    link="/dashboards/calendar/",
                    idempotency_key=f"freeze_starting:{window.pk}:{start:%Y%m%dT%H%M}",
                )
            )
    return sent
