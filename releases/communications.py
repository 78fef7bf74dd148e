"""The communications plan of a release: scheduled messages to audiences, sent through the
notification outbox at the right moment (before the window, at its start, on completion,
on rollback). Services are transactional and audited like every other write.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator, validate_email
from django.db import transaction
from django.utils import timezone

from core import notifications
from core.audit import audit_record
from core.errors import InvalidInput, PermissionDenied, TransitionNotAllowed
from core.outbound import OutboundRefused, check_outbound_url

from .choices import TIMED_COMMS_TRIGGERS, CommsChannel, CommsStatus, CommsTrigger, ReleaseState
from .models import Communication, Release

# Transitions that fire (or void) event-triggered messages.
FIRES = {"mark_deployed": CommsTrigger.COMPLETED, "roll_back": CommsTrigger.ROLLED_BACK}
VOIDS = {"mark_deployed": CommsTrigger.ROLLED_BACK, "roll_back": CommsTrigger.COMPLETED}


def _due_at(release: Release, trigger: str, offset_hours: int) -> datetime | None:
    if release.window_start is None:
        return None
    if trigger == CommsTrigger.BEFORE_WINDOW:
        return release.window_start - timedelta(hours=offset_hours)
    if trigger == CommsTrigger.WINDOW_START:
        return release.window_start
    return None  # event-triggered: due when the event happens


def _validate_destination(channel: str, destination: str) -> str:
    destination = destination.strip()
    try:
        if channel == CommsChannel.EMAIL:
            addresses = [a.strip() for a in destination.split(",") if a.strip()]
            if not addresses:
                raise ValidationError("empty")
            for address in addresses:
                validate_email(address)
            return ", ".join(addresses)
        URLValidator(schemes=["https", "http"])(destination)
    except ValidationError:
        expected = (
            "email addresses, comma-separated"
            if channel == CommsChannel.EMAIL
            else "an http(s) webhook URL"
        )
        raise InvalidInput(
            f"The destination must be {expected}.",
            details={"destination": [f"Expected {expected}."]},
        ) from None
    try:
        check_outbound_url(destination)  # the worker will POST to it from inside the network
    except OutboundRefused as exc:
        raise InvalidInput(str(exc), details={"destination": [str(exc)]}) from None
    return destination


def communication_schedule(
    *,
    release: Release | int,
    actor,
    audience: str,
    channel: str,
    destination: str,
    trigger: str,
    subject: str,
    message: str,
    offset_hours: int = 24,
) -> Communication:
    """Add a message to the plan. Release managers of the release; not after it ended."""
    errors = {}
    if not subject.strip():
        errors["subject"] = ["Required."]
    if not message.strip():
        errors["message"] = ["Required."]
    if errors:
        raise InvalidInput("The message is incomplete.", details=errors)
    destination = _validate_destination(channel, destination)
    with transaction.atomic():
        pk = release.pk if isinstance(release, Release) else release
        release = Release.objects.select_for_update().get(pk=pk)
        if not actor.has_perm("releases.change_release", release):
            raise PermissionDenied("Only a release manager of the owning team can plan messages.")
        if release.state in (ReleaseState.CLOSED, ReleaseState.CANCELLED):
            raise TransitionNotAllowed("The release has ended; its communications plan is final.")
        comm = Communication.objects.create(
            release=release,
            audience=audience,
            channel=channel,
            destination=destination,
            trigger=trigger,
            offset_hours=offset_hours,
            subject=subject.strip(),
            message=message.strip(),
            due_at=_due_at(release, trigger, offset_hours),
            created_by=actor,
        )
        audit_record(
            actor=actor,
            action="comms.schedule",
            target=comm,
            release=release,
            after={
                "audience": audience,
                "channel": channel,
                "trigger": trigger,
                "due_at": comm.due_at,
            },
        )
    return comm


def communication_cancel(
    *, communication: Communication | int, actor, reason: str = ""
) -> Communication:
    with transaction.atomic():
        pk = communication.pk if isinstance(communication, Communication) else communication
        comm = Communication.objects.select_for_update().select_related("release").get(pk=pk)
        if not actor.has_perm("releases.change_release", comm.release):
            raise PermissionDenied("Only a release manager of the owning team can cancel messages.")
        if comm.status != CommsStatus.SCHEDULED:
            raise TransitionNotAllowed(
                f"This message is already {comm.get_status_display().lower()}."
            )
        comm.status = CommsStatus.CANCELLED
        comm.save(update_fields=["status"])
        audit_record(
            actor=actor,
            action="comms.cancel",
            target=comm,
            release=comm.release,
            from_state=CommsStatus.SCHEDULED,
            to_state=CommsStatus.CANCELLED,
            reason=reason,
        )
    return comm


def on_release_transition(*, release: Release, actor, name: str, from_state: str) -> None:
    """Transition listener: completion/rollback messages become due now (the other one is
    skipped); a cancelled release cancels its scheduled messages."""
    scheduled = Communication.objects.filter(release=release, status=CommsStatus.SCHEDULED)
    if name == "cancel":
        _void(scheduled, CommsStatus.CANCELLED, actor, f"{release} was cancelled.")
    elif name in FIRES:
        scheduled.filter(trigger=FIRES[name]).update(due_at=timezone.now())
        reason = (
            f"Not sent: {release} was {'deployed' if name == 'mark_deployed' else 'rolled back'}."
        )
        _void(scheduled.filter(trigger=VOIDS[name]), CommsStatus.SKIPPED, actor, reason)


def _void(messages, status: str, actor, reason: str) -> None:
    """Cancel or skip scheduled messages, each change audited (a message that will never go
    out is a decision the plan's readers should see)."""
    for comm in messages.select_related("release"):
        comm.status = status
        comm.save(update_fields=["status"])
        audit_record(
            actor=actor,
            action=f"comms.{status}",
            target=comm,
            release=comm.release,
            from_state=CommsStatus.SCHEDULED,
            to_state=status,
            reason=reason,
        )


def on_release_change(*, release: Release, actor, what: str, reason: str) -> None:
    """Change listener: a moved window moves the timed messages that are still scheduled."""
    if what != "window":
        return
    for comm in Communication.objects.filter(
        release=release, status=CommsStatus.SCHEDULED, trigger__in=TIMED_COMMS_TRIGGERS
    ):
        comm.due_at = _due_at(release, comm.trigger, comm.offset_hours)
        comm.save(update_fields=["due_at"])


def communications_send_due(*, now: datetime | None = None, limit: int = 100) -> int:
    """Send every message whose time has come, each exactly once.

    Each message is claimed by a conditional update (scheduled → sent) in the same
    transaction that writes its outbox row, so two workers, or a worker killed and
    restarted, send it once: either both writes committed or neither did.
    """
    now = now or timezone.now()
    due = list(
        Communication.objects.filter(status=CommsStatus.SCHEDULED, due_at__lte=now)
        .order_by("due_at", "id")
        .values_list("pk", flat=True)[:limit]
    )
    sent = 0
    for pk in due:
        with transaction.atomic():
            won = Communication.objects.filter(pk=pk, status=CommsStatus.SCHEDULED).update(
                status=CommsStatus.SENT, sent_at=now
            )
            if not won:
                continue  # another worker sent it, or it was cancelled meanwhile
            comm = Communication.objects.select_related("release").get(pk=pk)
            notifications.notification_enqueue_external(
                channel=comm.channel,
                destination=comm.destination,
                subject=comm.subject,
                body=comm.message,
                link=comm.release.get_absolute_url(),
                idempotency_key=comm.idempotency_key,
            )
            audit_record(
                actor=None,
                action="comms.send",
                target=comm,
                release=comm.release,
                from_state=CommsStatus.SCHEDULED,
                to_state=CommsStatus.SENT,
                reason=f"{comm.get_trigger_display()} to {comm.get_audience_display()}",
            )
            sent += 1
    return sent
