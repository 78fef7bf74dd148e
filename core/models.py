"""The shared records every app writes: the append-only, hash-chained audit trail and the
notification outbox (messages, delivery attempts, preferences).

The models keep the tables they had when they lived in governance and pipelines
(``governance_auditevent``, ``pipelines_notification``, …): the move was state-only (see
``core/migrations/0001_initial.py``). This module imports no project app: an audit event
names its release and its API token by id (with ``actor_label`` saying who, as shown at
the time), never by a foreign key into a higher app.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC

from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.utils import timezone

from . import audit_keys
from .dates import is_time_zone

# --- the audit trail ---------------------------------------------------------------------------


class AppendOnlyError(Exception):
    """Raised when code tries to change or remove an audit event."""


class AuditEventQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise AppendOnlyError("Audit events are append-only: they cannot be updated.")

    def delete(self):
        raise AppendOnlyError("Audit events are append-only: they cannot be deleted.")

    # bulk_update would bypass save(); refuse it as well.
    def bulk_update(self, objs, fields, batch_size=None):
        raise AppendOnlyError("Audit events are append-only: they cannot be updated.")


class AuditEvent(models.Model):
    """One decision or change: who did what to which object, why, and what it looked like.

    Written only by ``core.audit.audit_record`` inside the transaction of the change it
    records. The ORM refuses update and delete; on PostgreSQL a trigger refuses them too
    (``core/migrations/0001_initial.py``), so raw SQL cannot rewrite history either.

    ``release_id`` and ``actor_token_id`` are plain indexed integers, not foreign keys: the
    trail is append-only, so it is never cascaded or nulled, and the ground-floor app knows
    neither releases nor API tokens.
    """

    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        db_constraint=False,
    )
    actor_token_id = models.BigIntegerField(
        null=True, blank=True, db_index=True, help_text="The API token that acted, if any."
    )
    actor_label = models.CharField(max_length=150, help_text="Who, as shown at the time.")
    action = models.CharField(max_length=80, db_index=True)
    target_type = models.ForeignKey(
        ContentType, on_delete=models.PROTECT, related_name="+", db_constraint=False
    )
    target_id = models.CharField(max_length=64)
    target_repr = models.CharField(max_length=300)
    release_id = models.BigIntegerField(
        null=True,
        blank=True,
        db_index=True,
        help_text="The release this event belongs to, for its timeline.",
    )
    from_state = models.CharField(max_length=40, blank=True)
    to_state = models.CharField(max_length=40, blank=True)
    reason = models.TextField(blank=True)
    before = models.JSONField(null=True, blank=True, encoder=DjangoJSONEncoder)
    after = models.JSONField(null=True, blank=True, encoder=DjangoJSONEncoder)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)
    # Tamper evidence: each event carries the hash of the previous event of its chain (one
    # chain per release, or per object for events outside a release), so rewriting or
    # removing any row breaks the links after it. Per-release chains keep unrelated writes
    # from queueing on one global "last hash".
    chain_key = models.CharField(max_length=120, default="", editable=False)
    chain_seq = models.PositiveBigIntegerField(default=0, editable=False)
    prev_hash = models.CharField(max_length=64, blank=True, editable=False)
    hash = models.CharField(max_length=64, default="", editable=False)
    # The HMAC key the hash was made with (core.audit_keys); empty for the events written
    # before the trail was keyed (plain SHA-256), which only a re-anchoring checkpoint covers.
    # db_default: the release still running during an upgrade inserts events without it.
    key_id = models.CharField(max_length=16, blank=True, default="", db_default="", editable=False)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        db_table = "governance_auditevent"
        ordering = ["created_at", "id"]
        indexes = [
            models.Index(
                fields=["release_id", "created_at"], name="governance__release_34fe39_idx"
            ),
            models.Index(
                fields=["target_type", "target_id"], name="governance__target__e63ea8_idx"
            ),
        ]
        constraints = [
            models.UniqueConstraint(fields=["chain_key", "chain_seq"], name="audit_chain_link")
        ]

    def __str__(self) -> str:
        return (
            f"{self.created_at:%Y-%m-%d %H:%M} {self.actor_label} {self.action} {self.target_repr}"
        )

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise AppendOnlyError("Audit events are append-only: they cannot be updated.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AppendOnlyError("Audit events are append-only: they cannot be deleted.")

    def compute_hash(self) -> str:
        return audit_event_hash(self)


def audit_event_hash(event, *, secret: bytes | None = None) -> str:
    """The hash of an event's fields in canonical JSON, in a form that survives a database
    round trip: HMAC-SHA256 with the key its ``key_id`` names (core.audit_keys; ``secret``
    overrides the lookup), or, for the events written before the trail was keyed (no
    ``key_id``), plain SHA-256. A plain function so that migrations can hash historical
    model instances (which may have no ``key_id`` at all)."""
    created = event.created_at.astimezone(UTC).isoformat(timespec="microseconds")
    payload = {
        "chain": event.chain_key,
        "seq": event.chain_seq,
        "prev": event.prev_hash,
        "created_at": created,
        "actor": event.actor_id,
        "actor_token": event.actor_token_id,
        "actor_label": event.actor_label,
        "action": event.action,
        "target_type": f"{event.target_type.app_label}.{event.target_type.model}",
        "target_id": event.target_id,
        "target_repr": event.target_repr,
        "release": event.release_id,
        "from_state": event.from_state,
        "to_state": event.to_state,
        "reason": event.reason,
        "before": json.loads(json.dumps(event.before, cls=DjangoJSONEncoder)),
        "after": json.loads(json.dumps(event.after, cls=DjangoJSONEncoder)),
        "ip_address": event.ip_address,
        "user_agent": event.user_agent,
    }
    key_id = getattr(event, "key_id", "")
    if key_id:
        payload["key"] = key_id
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
    if not key_id:
        return hashlib.sha256(canonical).hexdigest()
    if secret is None:
        secret = audit_keys.secret(key_id)
    return hmac.new(secret, canonical, hashlib.sha256).hexdigest()


class AuditChainHead(models.Model):
    """The last link of each audit chain: lets verification notice events removed from the
    end of a chain, and serialises writers of the same chain only."""

    key = models.CharField(max_length=120, primary_key=True)
    seq = models.PositiveBigIntegerField(default=0)
    hash = models.CharField(max_length=64, blank=True)

    class Meta:
        db_table = "governance_auditchainhead"

    def __str__(self) -> str:
        return f"{self.key} #{self.seq}"


class CheckpointKind(models.TextChoices):
    PERIODIC = "periodic", "Periodic"
    EVIDENCE = "evidence", "Evidence pack"
    ANCHOR = "anchor", "Re-anchoring of the unkeyed trail"


class AuditCheckpoint(models.Model):
    """A signed statement of chain heads at one moment: ``heads`` maps a chain key to
    ``[seq, hash]``. Written by ``core.audit_checkpoints`` (periodically by beat, into every
    evidence pack, and once by ``reanchor_audit``), HMAC-signed with an audit key and also
    exported as a file outside the database, so that rewriting the trail and its heads, and
    even these rows, still disagrees with a copy the database's owner cannot reach.

    An ``anchor`` checkpoint vouches for the unkeyed (pre-HMAC) prefix of each chain it
    names: the events up to its ``seq``."""

    name = models.CharField(max_length=64, unique=True, help_text="Also the exported file's name.")
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    kind = models.CharField(max_length=10, choices=CheckpointKind.choices)
    heads = models.JSONField(help_text="Chain key -> [seq, hash] at the time of the checkpoint.")
    key_id = models.CharField(max_length=16)
    signature = models.CharField(max_length=64)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        db_table = "core_auditcheckpoint"
        ordering = ["created_at", "id"]
        constraints = [
            # The unkeyed trail is re-anchored once, even by two concurrent runs.
            models.UniqueConstraint(
                fields=["kind"], condition=models.Q(kind="anchor"), name="audit_one_anchor"
            )
        ]

    def __str__(self) -> str:
        return f"Audit checkpoint {self.name} ({self.kind}, {len(self.heads)} chains)"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise AppendOnlyError("Audit checkpoints are append-only: they cannot be updated.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AppendOnlyError("Audit checkpoints are append-only: they cannot be deleted.")


# --- notification outbox -----------------------------------------------------------------------


class NotificationEvent(models.TextChoices):
    GATE_WAITING = "gate_waiting", "A gate is waiting for you"
    VOTE_REQUESTED = "vote_requested", "Your vote is requested"
    DECISION_MADE = "decision_made", "A decision was made"
    FREEZE_STARTING = "freeze_starting", "A freeze is starting"
    DEPLOYMENT_FAILED = "deployment_failed", "A deployment failed"
    VERIFICATION_FAILED = "verification_failed", "A deployment verification failed"
    REVIEW_OVERDUE = "review_overdue", "A post-implementation review is overdue"
    RELEASE_COMMUNICATION = "release_communication", "A release communication"


class NotificationChannel(models.TextChoices):
    IN_APP = "in_app", "In the app"
    EMAIL = "email", "Email"
    SLACK = "slack", "Slack webhook"


class NotificationStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SENDING = "sending", "Sending"
    DELIVERED = "delivered", "Delivered"
    DEAD = "dead", "Gave up"


class Notification(models.Model):
    """One message to one person on one channel: a row of the outbox.

    Written in the transaction of the event it announces, so it exists if and only if the
    event committed. Unique on (idempotency_key, recipient, channel): the producer passes a
    key naming the event (``verification_failed:42``), so producing twice writes once. The
    key is sent with every delivery, so a receiver can drop the duplicates that at-least-once
    delivery allows.
    """

    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="notifications",
        null=True,
        blank=True,
        help_text="A person; empty for messages to an external destination.",
    )
    destination = models.CharField(
        max_length=500,
        blank=True,
        help_text="For messages without a recipient (release communications): email "
        "addresses, comma-separated, or a webhook URL.",
    )
    event = models.CharField(max_length=30, choices=NotificationEvent.choices)
    channel = models.CharField(max_length=10, choices=NotificationChannel.choices)
    idempotency_key = models.CharField(max_length=200)
    subject = models.CharField(max_length=200)
    body = models.TextField(blank=True)
    link = models.CharField(max_length=500, blank=True)
    status = models.CharField(
        max_length=10, choices=NotificationStatus.choices, default=NotificationStatus.PENDING
    )
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    last_error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    delivered_at = models.DateTimeField(null=True, blank=True)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "pipelines_notification"
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["idempotency_key", "recipient", "channel"],
                name="notification_unique_key",
            ),
            # NULL recipients are distinct to a unique index: external messages get their own.
            models.UniqueConstraint(
                fields=["idempotency_key", "channel", "destination"],
                condition=models.Q(recipient__isnull=True),
                name="notification_unique_external_key",
            ),
            models.CheckConstraint(
                condition=models.Q(recipient__isnull=False) | ~models.Q(destination=""),
                name="notification_has_recipient_or_destination",
            ),
        ]
        indexes = [
            models.Index(
                fields=["status", "next_attempt_at"], name="pipelines_n_status_489bd4_idx"
            ),
            models.Index(
                fields=["recipient", "channel", "read_at"], name="pipelines_n_recipie_557e71_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.channel} to {self.recipient_id or self.destination}: {self.subject}"

    @property
    def delivery_key(self) -> str:
        """The key sent to receivers: one per (event, recipient, channel)."""
        return f"{self.idempotency_key}:{self.recipient_id or 'external'}:{self.channel}"


class NotificationAttempt(models.Model):
    """One delivery attempt (the delivery record): when, how it went, what the other side said."""

    notification = models.ForeignKey(
        Notification, on_delete=models.CASCADE, related_name="delivery_attempts"
    )
    attempt = models.PositiveIntegerField()
    at = models.DateTimeField(default=timezone.now)
    ok = models.BooleanField(default=False)
    status_code = models.PositiveIntegerField(null=True, blank=True)
    error = models.CharField(max_length=500, blank=True)

    class Meta:
        db_table = "pipelines_notificationattempt"
        ordering = ["notification", "attempt"]

    def __str__(self) -> str:
        return f"Attempt {self.attempt} of {self.notification_id}: {'ok' if self.ok else 'failed'}"


class NotificationPreference(models.Model):
    """What one person wants to receive and where. ``channels`` maps an event to the channels
    chosen for it; an event missing from the map gets the default (in-app and email)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notification_preference"
    )
    channels = models.JSONField(default=dict, blank=True)
    slack_webhook_url = models.URLField(max_length=500, blank=True)

    class Meta:
        db_table = "pipelines_notificationpreference"

    def __str__(self) -> str:
        return f"Notification preferences of {self.user_id}"


# --- people's preferences ----------------------------------------------------------------------


def _default_time_zone() -> str:
    return settings.TIME_ZONE


class Profile(models.Model):
    """What a person chose for how pages show things to them: the time zone every date and
    time is shown in (the site's TIME_ZONE until they choose). Written only by
    ``core.profiles.profile_update``."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="profile"
    )
    time_zone = models.CharField(
        max_length=64,
        default=_default_time_zone,
        validators=[is_time_zone],
        help_text="An IANA time zone, e.g. Europe/Paris: pages show dates and times in it.",
    )

    def __str__(self) -> str:
        return f"Profile of {self.user_id}"
