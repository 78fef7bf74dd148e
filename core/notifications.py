"""The notification outbox: producers write rows in their own transaction; workers deliver.

Producers (any app) call ``notification_enqueue`` inside the transaction of the event, so the
notification exists if and only if the event committed. Delivery happens after commit:
``deliver_notification`` (queued on commit) and the beat sweep ``deliver_due_notifications``
(which catches anything whose enqueue was lost, e.g. while Redis was down).

This module imports no project app. Which worker delivers a new row is registered by the app
that owns the task queue (``register_delivery``; pipelines registers its Celery task in
``PipelinesConfig.ready``); without one, the beat sweep still delivers every due row.

Delivery is at least once: a row is claimed (pending → sending, with a lease) by a
conditional update, sent, then marked delivered. A worker killed between send and mark
leaves the row "sending"; once the lease expires it is sent again with the same
``X-Releasegate-Idempotency-Key``, which receivers use to drop the duplicate.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta

import httpx
from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.utils import timezone

from .backoff import backoff_seconds
from .errors import InvalidInput
from .models import (
    Notification,
    NotificationAttempt,
    NotificationChannel,
    NotificationEvent,
    NotificationPreference,
    NotificationStatus,
)
from .outbound import OutboundRefused, check_outbound_url, outbound_client

logger = logging.getLogger(__name__)

DEFAULT_CHANNELS = (NotificationChannel.IN_APP, NotificationChannel.EMAIL)
MAX_ATTEMPTS = 8
SIGNATURE_HEADER = "X-Releasegate-Signature"
TIMESTAMP_HEADER = "X-Releasegate-Timestamp"
KEY_HEADER = "X-Releasegate-Idempotency-Key"


def _lease_seconds() -> int:
    """How long a claimed ("sending") row is left alone before another worker may send it
    again. Longer than one send (HTTP timeout), so two workers never send concurrently."""
    return int(getattr(settings, "NOTIFICATION_SEND_LEASE_SECONDS", 120))


def _webhook_timeout() -> float:
    return float(getattr(settings, "NOTIFICATION_WEBHOOK_TIMEOUT", 10.0))


# --- handing rows to a worker ------------------------------------------------------------------

_delivery: Callable[[int], None] | None = None


def register_delivery(queue: Callable[[int], None]) -> None:
    """Set how a new outbox row (by id) is queued for delivery once the producer's
    transaction commits. Called by the app that owns the workers, in its ``AppConfig.ready``."""
    global _delivery
    _delivery = queue


def _queue_delivery(notification_id: int) -> None:
    if _delivery is not None:
        _delivery(notification_id)


# --- preferences -------------------------------------------------------------------------------


def channels_for(user, event: str) -> list[str]:
    """The channels ``user`` chose for ``event`` (default: in-app and email). Slack only when
    the user has a webhook URL; email only when the user has an address."""
    pref = NotificationPreference.objects.filter(user=user).first()
    chosen = list(DEFAULT_CHANNELS)
    if pref is not None and event in (pref.channels or {}):
        chosen = [c for c in pref.channels[event] if c in NotificationChannel.values]
    if NotificationChannel.SLACK in chosen and not (pref and pref.slack_webhook_url):
        chosen.remove(NotificationChannel.SLACK)
    if NotificationChannel.EMAIL in chosen and not user.email:
        chosen.remove(NotificationChannel.EMAIL)
    return chosen


def preferences_update(
    *, actor, channels: dict[str, list[str]], slack_webhook_url: str = ""
) -> NotificationPreference:
    """Save what ``actor`` wants to receive (their own preferences only). A webhook URL the
    workers may not call (a private address) is refused with ``InvalidInput``."""
    clean = {
        event: sorted({c for c in chosen if c in NotificationChannel.values})
        for event, chosen in channels.items()
        if event in NotificationEvent.values
    }
    if slack_webhook_url:
        try:
            check_outbound_url(slack_webhook_url)
        except OutboundRefused as exc:
            raise InvalidInput(str(exc), details={"slack_webhook_url": [str(exc)]}) from None
    with transaction.atomic():
        pref, _ = NotificationPreference.objects.select_for_update().get_or_create(user=actor)
        pref.channels = clean
        pref.slack_webhook_url = slack_webhook_url
        pref.save()
    return pref


# --- producing ---------------------------------------------------------------------------------


def notification_enqueue(
    *,
    event: str,
    recipients: Iterable,
    subject: str,
    body: str = "",
    link: str = "",
    idempotency_key: str,
) -> list[Notification]:
    """Write one outbox row per recipient and chosen channel, in the caller's transaction.

    ``idempotency_key`` names the event occurrence (``verification_failed:<run id>``): the
    same key for the same recipient and channel is written once, so a producer that runs
    twice (a retried task) notifies once. Delivery is queued on commit; the in-app row is
    delivered by being written. Returns the rows created now (not those already there).
    """
    if event not in NotificationEvent.values:
        raise ValueError(f"Unknown notification event {event!r}.")
    now = timezone.now()
    created: list[Notification] = []
    seen: set[int] = set()
    for user in recipients:
        if user is None or user.pk in seen or not user.is_active:
            continue
        seen.add(user.pk)
        for channel in channels_for(user, event):
            in_app = channel == NotificationChannel.IN_APP
            row = Notification(
                recipient=user,
                event=event,
                channel=channel,
                idempotency_key=idempotency_key[:200],
                subject=subject[:200],
                body=body,
                link=link[:500],
                status=NotificationStatus.DELIVERED if in_app else NotificationStatus.PENDING,
                delivered_at=now if in_app else None,
                next_attempt_at=now,
            )
            try:
                # A savepoint, so a duplicate does not break the caller's transaction.
                with transaction.atomic():
                    row.save()
            except IntegrityError:
                continue
            created.append(row)
            if not in_app:
                _queue_delivery(row.pk)
    return created


def notification_enqueue_external(
    *,
    channel: str,
    destination: str,
    subject: str,
    body: str = "",
    link: str = "",
    idempotency_key: str,
    event: str = NotificationEvent.RELEASE_COMMUNICATION,
) -> Notification | None:
    """Write one outbox row for an external destination (a mailing list, a channel's
    webhook) in the caller's transaction; the same key, channel and destination is written
    once. Returns the row created now, or None when it was already there."""
    if channel not in (NotificationChannel.EMAIL, NotificationChannel.SLACK):
        raise ValueError(f"External messages go by email or webhook, not {channel!r}.")
    row = Notification(
        recipient=None,
        destination=destination[:500],
        event=event,
        channel=channel,
        idempotency_key=idempotency_key[:200],
        subject=subject[:200],
        body=body,
        link=link[:500],
        next_attempt_at=timezone.now(),
    )
    try:
        with transaction.atomic():  # a savepoint: a duplicate leaves the caller's work intact
            row.save()
    except IntegrityError:
        return None
    _queue_delivery(row.pk)
    return row


# --- delivering --------------------------------------------------------------------------------


@dataclass
class DeliveryOutcome:
    ok: bool
    status_code: int | None = None
    error: str = ""
    # A failure that sending again cannot fix (the destination is refused): not retried.
    permanent: bool = False


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """``v1=<hex HMAC-SHA256(secret, "<timestamp>." + body)>``: the timestamp is signed with
    the body so a captured request cannot be replayed later with a fresh timestamp."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "v1=" + mac.hexdigest()


def verify(secret: str, timestamp: str, body: bytes, header: str, *, tolerance: int = 300) -> bool:
    """Receiver side of ``sign`` (used by tests and documented for receivers)."""
    try:
        if abs(time.time() - int(timestamp)) > tolerance:
            return False
    except ValueError:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), header or "")


def webhook_secret() -> str:
    return os.environ.get("NOTIFICATION_WEBHOOK_SECRET") or getattr(
        settings, "NOTIFICATION_WEBHOOK_SECRET", settings.SECRET_KEY
    )


def post_signed(
    url: str, payload: dict, *, secret: str, key: str, headers: dict[str, str] | None = None
) -> DeliveryOutcome:
    """POST JSON signed with HMAC-SHA256 and timestamped; 2xx is success. Through the
    outbound guard: a destination that is (or now resolves to) a private address is a
    permanent failure, with the reason, and nothing is sent. ``headers`` are sent as well
    (the CloudEvents ``ce-*`` attributes of a CDEvent); they cannot replace the signature."""
    body = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
    ts = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        **(headers or {}),
        TIMESTAMP_HEADER: ts,
        SIGNATURE_HEADER: sign(secret, ts, body),
        KEY_HEADER: key,
    }
    try:
        with outbound_client(timeout=_webhook_timeout()) as client:
            response = client.post(url, content=body, headers=headers)
    except OutboundRefused as exc:
        return DeliveryOutcome(False, None, f"Refused: {exc}"[:500], permanent=True)
    except httpx.HTTPError as exc:
        return DeliveryOutcome(False, None, f"{type(exc).__name__}: {exc}"[:500])
    if 200 <= response.status_code < 300:
        return DeliveryOutcome(True, response.status_code)
    return DeliveryOutcome(False, response.status_code, f"HTTP {response.status_code}")


def _send(notification: Notification) -> DeliveryOutcome:
    recipient = notification.recipient
    link = notification.link
    if link.startswith("/"):
        link = getattr(settings, "SITE_URL", "").rstrip("/") + link
    if notification.channel == NotificationChannel.EMAIL:
        try:
            send_mail(
                subject=notification.subject,
                message=f"{notification.body}\n\n{link}".strip(),
                from_email=settings.DEFAULT_FROM_EMAIL,
                recipient_list=(
                    [recipient.email]
                    if recipient
                    else [a.strip() for a in notification.destination.split(",") if a.strip()]
                ),
                fail_silently=False,
            )
        except Exception as exc:  # noqa: BLE001 - SMTP errors come in many classes
            return DeliveryOutcome(False, None, f"{type(exc).__name__}: {exc}"[:500])
        return DeliveryOutcome(True)
    if notification.channel == NotificationChannel.SLACK:
        url = notification.destination
        if recipient is not None:
            pref = NotificationPreference.objects.filter(user=recipient).first()
            url = pref.slack_webhook_url if pref else ""
        if not url:
            return DeliveryOutcome(False, None, "No Slack webhook URL configured.")
        text = f"*{notification.subject}*\n{notification.body}"
        if link:
            text += f"\n<{link}|Open in Releasegate>"
        payload = {
            "text": text,
            "event": notification.event,
            "idempotency_key": notification.delivery_key,
        }
        return post_signed(url, payload, secret=webhook_secret(), key=notification.delivery_key)
    return DeliveryOutcome(True)  # in-app: written is delivered


def _claim(pk: int) -> Notification | None:
    """pending (due) or sending with an expired lease → sending, leased; None if we lost."""
    now = timezone.now()
    row = Notification.objects.filter(pk=pk).first()
    if row is None or row.status in (NotificationStatus.DELIVERED, NotificationStatus.DEAD):
        return None
    if row.next_attempt_at > now:
        return None
    won = Notification.objects.filter(
        pk=pk, status=row.status, next_attempt_at=row.next_attempt_at, attempts=row.attempts
    ).update(
        status=NotificationStatus.SENDING,
        attempts=row.attempts + 1,
        next_attempt_at=now + timedelta(seconds=_lease_seconds()),
    )
    if not won:
        return None
    row.refresh_from_db()
    return row


def deliver_notification(notification_id: int) -> str:
    """Deliver one notification if it is due and we win the claim. Idempotent: a delivered
    row is never sent again; a row another worker holds is left to it. Returns what happened
    ("delivered", "retry", "dead", "skipped")."""
    row = _claim(notification_id)
    if row is None:
        return "skipped"
    outcome = _send(row)
    now = timezone.now()
    with transaction.atomic():
        NotificationAttempt.objects.create(
            notification=row,
            attempt=row.attempts,
            ok=outcome.ok,
            status_code=outcome.status_code,
            error=outcome.error,
        )
        claimed = Notification.objects.filter(pk=row.pk, status=NotificationStatus.SENDING)
        if outcome.ok:
            claimed.update(status=NotificationStatus.DELIVERED, delivered_at=now, last_error="")
            return "delivered"
        if row.attempts >= MAX_ATTEMPTS or outcome.permanent:
            claimed.update(status=NotificationStatus.DEAD, last_error=outcome.error)
            return "dead"
        claimed.update(
            status=NotificationStatus.PENDING,
            last_error=outcome.error,
            next_attempt_at=now + timedelta(seconds=backoff_seconds(row.attempts, base=10)),
        )
    return "retry"


def due_notification_ids(limit: int = 200) -> list[int]:
    """Rows to (re)send: pending and due, or sending with an expired lease (a worker died)."""
    now = timezone.now()
    return list(
        Notification.objects.filter(
            status__in=[NotificationStatus.PENDING, NotificationStatus.SENDING],
            next_attempt_at__lte=now,
        )
        .order_by("next_attempt_at")
        .values_list("id", flat=True)[:limit]
    )


def deliver_due_notifications(limit: int = 200) -> int:
    """The beat sweep: deliver every due row in this worker (claims make it safe to overlap
    with deliver_notification tasks and with a second sweep)."""
    delivered = 0
    for pk in due_notification_ids(limit):
        delivered += deliver_notification(pk) == "delivered"
    return delivered


# --- in-app ------------------------------------------------------------------------------------


def inbox(user):
    return Notification.objects.filter(recipient=user, channel=NotificationChannel.IN_APP)


def notifications_mark_read(*, actor, ids: Iterable[int] | None = None) -> int:
    """Mark the actor's own in-app notifications read (all unread ones when ids is None)."""
    qs = inbox(actor).filter(read_at__isnull=True)
    if ids is not None:
        qs = qs.filter(pk__in=list(ids))
    return qs.update(read_at=timezone.now())
