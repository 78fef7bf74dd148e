"""Models of the background workers: polling state of integrations, deployment verification
against Prometheus with rollback policies, and durable markers of tasks whose enqueue failed.
(The notification outbox lives in core.models.)

Imported at the end of pipelines/models.py so that they belong to the pipelines app and its
migrations, while living in a module of their own.

Every worker that acts on a row first *claims* it with a conditional UPDATE (compare the
column it read, write the new value, go on only when one row changed), so two beat
schedulers or two workers never act twice on the same due row.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone

__all__ = [
    "Comparator",
    "IntegrationPollState",
    "RollbackAction",
    "RollbackPolicy",
    "RollbackRequest",
    "TaskOutbox",
    "VerificationQuery",
    "VerificationRun",
    "VerificationSample",
    "VerificationSpec",
    "VerificationStatus",
]


# --- polling ----------------------------------------------------------------------------------


class IntegrationPollState(models.Model):
    """How and when to poll one integration (a CI system that cannot reach us), and its health.

    ``next_poll_at`` is both the schedule and the claim: the sweep moves it forward with a
    conditional update before polling, so a second sweep sees the row as not due.
    Credentials: ``token`` set in the admin, or the name of an environment variable in
    ``token_env`` (preferred: the secret then never enters the database); never in code.
    """

    integration = models.OneToOneField(
        "pipelines.Integration", on_delete=models.CASCADE, related_name="poll_state"
    )
    service = models.ForeignKey(
        "releases.Service",
        on_delete=models.CASCADE,
        related_name="+",
        help_text="The service the polled runs are recorded for.",
    )
    enabled = models.BooleanField(default=True)
    base_url = models.URLField(
        max_length=300,
        help_text="https://api.github.com, https://gitlab.example.com, https://jenkins.example.com",
    )
    target = models.CharField(
        max_length=300,
        help_text="GitHub owner/repo, GitLab project path or id, Jenkins job (folder/job).",
    )
    branch = models.CharField(max_length=255, blank=True, help_text="Only runs of this branch.")
    username = models.CharField(max_length=150, blank=True, help_text="Jenkins user (basic auth).")
    token = models.CharField(max_length=300, blank=True, help_text="API token (prefer token_env).")
    token_env = models.CharField(
        max_length=100, blank=True, help_text="Name of the environment variable holding the token."
    )
    interval_seconds = models.PositiveIntegerField(default=300)
    next_poll_at = models.DateTimeField(default=timezone.now, db_index=True)
    cursor = models.CharField(
        max_length=64,
        blank=True,
        help_text="ISO time: GitHub created>= / GitLab updated_after of the next poll.",
    )
    last_polled_at = models.DateTimeField(null=True, blank=True)
    last_success_at = models.DateTimeField(null=True, blank=True)
    last_error_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    consecutive_failures = models.PositiveIntegerField(default=0)
    last_duration_ms = models.PositiveIntegerField(null=True, blank=True)
    last_run_count = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["next_poll_at", "id"]

    def __str__(self) -> str:
        return f"Polling of {self.integration_id}"

    @property
    def healthy(self) -> bool:
        return self.consecutive_failures == 0 and self.last_success_at is not None


# --- deployment verification -------------------------------------------------------------------


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


# --- durable task markers ---------------------------------------------------------------------


class TaskOutbox(models.Model):
    """A durable marker for a task whose enqueue failed after commit (the broker was down):
    the beat sweep re-sends it, so nothing committed is left without its follow-up work."""

    task_name = models.CharField(max_length=200)
    args = models.JSONField(default=list)
    created_at = models.DateTimeField(default=timezone.now)
    error = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.task_name}{tuple(self.args)}"
