"""Deployment verification against Prometheus (specs, queries, runs, samples) and the
rollback policies and requests a failed verification triggers.

Every worker that acts on a row first *claims* it with a conditional UPDATE (compare the
column it read, write the new value, go on only when one row changed), so two beat
schedulers or two workers never act twice on the same due row.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class Comparator(models.TextChoices):
    LT = "lt", "<"
    LE = "le", "≤"
    GT = "gt", ">"
    GE = "ge", "≥"


class VerificationSpec(models.Model):
    """What "healthy" means for a service in an environment after a deployment: PromQL queries
    that must hold their threshold for the verification window."""

    service = models.ForeignKey("releases.Service", on_delete=models.CASCADE, related_name="+")
    environment = models.ForeignKey(
        "releases.Environment", on_delete=models.CASCADE, related_name="+"
    )
    prometheus_url = models.URLField(max_length=300)
    interval_seconds = models.PositiveIntegerField(default=30, help_text="Between samples.")
    window_seconds = models.PositiveIntegerField(
        default=600, help_text="How long after the deployment the queries must hold."
    )
    consecutive_breaches = models.PositiveSmallIntegerField(
        default=2, help_text="Breaching samples in a row that fail the verification."
    )
    enabled = models.BooleanField(default=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["service", "environment"], name="verification_spec_unique"
            )
        ]

    def __str__(self) -> str:
        return f"Verification of {self.service} in {self.environment}"


class VerificationQuery(models.Model):
    """One PromQL query and the threshold its value must satisfy (value <comparator> threshold
    is healthy)."""

    spec = models.ForeignKey(VerificationSpec, on_delete=models.CASCADE, related_name="queries")
    name = models.CharField(max_length=100)
    promql = models.TextField()
    comparator = models.CharField(max_length=2, choices=Comparator.choices, default=Comparator.LT)
    threshold = models.FloatField()
    unit = models.CharField(max_length=20, blank=True)

    class Meta:
        verbose_name_plural = "verification queries"
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.name} {self.get_comparator_display()} {self.threshold:g}{self.unit}"

    def healthy(self, value: float) -> bool:
        return {
            Comparator.LT: value < self.threshold,
            Comparator.LE: value <= self.threshold,
            Comparator.GT: value > self.threshold,
            Comparator.GE: value >= self.threshold,
        }[self.comparator]


class VerificationStatus(models.TextChoices):
    RUNNING = "running", "Running"
    PASSED = "passed", "Passed"
    FAILED = "failed", "Failed"


class VerificationRun(models.Model):
    """The verification of one deployment; one per deployment (a second sweep finds it)."""

    deployment = models.OneToOneField(
        "releases.Deployment", on_delete=models.CASCADE, related_name="verification"
    )
    spec = models.ForeignKey(VerificationSpec, on_delete=models.PROTECT, related_name="runs")
    status = models.CharField(
        max_length=10, choices=VerificationStatus.choices, default=VerificationStatus.RUNNING
    )
    started_at = models.DateTimeField(default=timezone.now)
    ends_at = models.DateTimeField()
    next_sample_at = models.DateTimeField(default=timezone.now, db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    detail = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]

    def __str__(self) -> str:
        return f"Verification of {self.deployment} ({self.status})"


class VerificationSample(models.Model):
    """One reading of one query. ``value`` None means no data (empty result or NaN), which is
    neither healthy nor a breach. Unique per (run, query, seq): a repeated sampling task
    writes nothing twice."""

    run = models.ForeignKey(VerificationRun, on_delete=models.CASCADE, related_name="samples")
    query = models.ForeignKey(VerificationQuery, on_delete=models.CASCADE, related_name="+")
    seq = models.PositiveIntegerField()
    taken_at = models.DateTimeField(default=timezone.now)
    value = models.FloatField(null=True, blank=True)
    breached = models.BooleanField(default=False)
    error = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["run", "query", "seq"]
        constraints = [
            models.UniqueConstraint(
                fields=["run", "query", "seq"], name="verification_sample_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.query_id}#{self.seq} = {self.value}"


class RollbackAction(models.TextChoices):
    NOTIFY = "notify", "Notify only"
    ROLLBACK_REQUIRED = "rollback_required", "Mark rollback required and call the webhook"


class RollbackPolicy(models.Model):
    """What a failed verification does in an environment. Without a policy: notify only."""

    environment = models.OneToOneField(
        "releases.Environment", on_delete=models.CASCADE, related_name="rollback_policy"
    )
    action = models.CharField(
        max_length=20, choices=RollbackAction.choices, default=RollbackAction.NOTIFY
    )
    webhook_url = models.URLField(max_length=500, blank=True)
    webhook_secret_env = models.CharField(
        max_length=100,
        blank=True,
        help_text="Environment variable holding the HMAC key (else ROLLBACK_WEBHOOK_SECRET).",
    )

    class Meta:
        verbose_name_plural = "rollback policies"

    def __str__(self) -> str:
        return f"Rollback policy of {self.environment}: {self.get_action_display()}"


class RollbackRequest(models.Model):
    """ "Rollback required" on a release: a verification failed after the deployment had
    succeeded (the deployment FSM cannot fail a succeeded deployment; the CD system rolls back
    and reports ``rolled_back``). The webhook call is retried by the outbox worker until it
    answers 2xx."""

    release = models.ForeignKey(
        "releases.Release",
        on_delete=models.CASCADE,
        related_name="rollback_requests",
        null=True,
        blank=True,
    )
    deployment = models.OneToOneField(
        "releases.Deployment", on_delete=models.CASCADE, related_name="rollback_request"
    )
    verification = models.ForeignKey(
        VerificationRun, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    reason = models.CharField(max_length=500)
    webhook_url = models.URLField(max_length=500, blank=True)
    webhook_status = models.CharField(max_length=20, blank=True)
    webhook_attempts = models.PositiveIntegerField(default=0)
    webhook_next_attempt_at = models.DateTimeField(null=True, blank=True, db_index=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"Rollback required: {self.deployment}"
