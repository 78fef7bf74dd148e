"""Durable markers of Celery tasks whose enqueue failed while the broker was down; the beat
sweep sends them again (pipelines/queueing.py).
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class TaskOutbox(models.Model):
    """A durable marker for a task whose enqueue failed after commit (the broker was down):
    the beat sweep re-sends it, so nothing committed is left without its follow-up work."""

    task_name = models.CharField(max_length=200)
    args = models.JSONField(default=list)
    created_at = models.DateTimeField(default=timezone.now)
    error = models.CharField(max_length=500, blank=True)

    class Meta:
        verbose_name_plural = "task outbox entries"
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.task_name}{tuple(self.args)}"


class CDEventSubscription(models.Model):
    """A consumer of the CDEvents Releasegate emits (docs/cdevents.md): every event whose type
    starts with one of ``event_types`` (all when empty) is POSTed to ``url`` in CloudEvents
    binary mode, signed with ``secret`` like every outbound webhook (``X-Releasegate-Signature``).

    The secret is stored in clear, as integration secrets are: signing needs the raw key.
    """

    name = models.CharField(max_length=100, unique=True)
    url = models.URLField(max_length=500)
    secret = models.CharField(max_length=200, help_text="HMAC-SHA256 key of the signature.")
    event_types = models.JSONField(
        default=list,
        blank=True,
        help_text="Event type prefixes to send, e.g. dev.cdevents.service. (empty: all).",
    )
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = "CDEvents subscription"
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def wants(self, event_type: str) -> bool:
        return not self.event_types or any(event_type.startswith(p) for p in self.event_types)


class CDEventDeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SENDING = "sending", "Sending"
    DELIVERED = "delivered", "Delivered"
    DEAD = "dead", "Gave up"


class CDEventDelivery(models.Model):
    """One emitted CDEvent for one subscription: a row of the outbox, written in the
    transaction of the fact it announces (so it exists if and only if the fact committed)
    and delivered after commit, at least once, with the same event id every time.

    Unique on (subscription, key): ``key`` names the occurrence (``deployment:12:succeeded``),
    so producing twice (a retried task, a sweep that runs twice) emits once."""

    subscription = models.ForeignKey(
        CDEventSubscription, on_delete=models.CASCADE, related_name="deliveries"
    )
    key = models.CharField(max_length=200)
    event_id = models.CharField(max_length=64)
    event_type = models.CharField(max_length=120)
    payload = models.JSONField()
    status = models.CharField(
        max_length=10, choices=CDEventDeliveryStatus.choices, default=CDEventDeliveryStatus.PENDING
    )
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    last_error = models.CharField(max_length=500, blank=True)
    last_status_code = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "CDEvents delivery"
        verbose_name_plural = "CDEvents deliveries"
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["subscription", "key"], name="cdevent_delivery_unique")
        ]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="cdevent_delivery_due"),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} to {self.subscription_id} ({self.status})"
