"""Enforcement through the source-control platforms: deployments waiting at a gate on GitHub
(custom deployment protection rules) or GitLab (deployment approvals) until Releasegate
answers, and the commit statuses that publish gate results back onto commits.

Workers act on these rows only after claiming them with a conditional UPDATE of
``next_attempt_at`` (the schedule is the claim, as for polling and rollback webhooks), so two
workers or a redelivered task never act on the same due row at once; a killed worker's claim
is a lease that runs out, and the beat sweep picks the row up again.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class GateRequestKind(models.TextChoices):
    GITHUB_PROTECTION_RULE = "github_protection_rule", "GitHub deployment protection rule"
    GITLAB_APPROVAL = "gitlab_approval", "GitLab deployment approval"


class GateRequestState(models.TextChoices):
    PENDING = "pending", "Pending"  # no answer delivered yet (deciding, or sending it)
    ANSWERED = "answered", "Answered"
    FAILED = "failed", "Failed"  # the platform refused the answer for good


class GateAnswer(models.TextChoices):
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"


class DeploymentGateRequest(models.Model):
    """A deployment the platform holds until Releasegate answers: one per workflow run (or
    GitLab deployment) and environment, so a delivery sent twice is answered once.

    ``answer`` is fixed (committed) before it is sent and never changes afterwards: a retry
    after a failed send, or after a worker died mid-send, sends the same answer. ``deadline``
    is when waiting ends: without ``allow`` by then the answer is ``rejected`` (fail closed).
    Written by ``pipelines.services.scm``; audited there.
    """

    integration = models.ForeignKey(
        "pipelines.Integration", on_delete=models.CASCADE, related_name="gate_requests"
    )
    kind = models.CharField(max_length=30, choices=GateRequestKind.choices)
    repository = models.CharField(
        max_length=255, help_text="GitHub owner/repo, or the GitLab project's path."
    )
    project_id = models.CharField(
        max_length=100, blank=True, help_text="GitLab project id (the API's :id)."
    )
    external_id = models.CharField(
        max_length=100, help_text="GitHub workflow run id, or GitLab deployment id."
    )
    environment_name = models.CharField(max_length=255)
    sha = models.CharField(max_length=64, blank=True)
    ref = models.CharField(max_length=255, blank=True)
    delivery_id = models.CharField(max_length=200, blank=True)
    installation_id = models.CharField(
        max_length=20, blank=True, help_text="The GitHub App installation the event came from."
    )
    service = models.ForeignKey(
        "releases.Service", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    version = models.CharField(max_length=64, blank=True)
    state = models.CharField(
        max_length=10, choices=GateRequestState.choices, default=GateRequestState.PENDING
    )
    answer = models.CharField(max_length=10, choices=GateAnswer.choices, blank=True)
    comment = models.TextField(blank=True)
    last_decision = models.CharField(max_length=5, blank=True)
    last_check = models.ForeignKey(
        "pipelines.DeploymentCheck",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    release = models.ForeignKey(
        "releases.Release",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    deadline = models.DateTimeField()
    # The schedule and the claim: due when <= now; a worker moves it forward (a lease) with a
    # conditional update before acting. Null once answered or failed.
    next_attempt_at = models.DateTimeField(null=True, blank=True, default=timezone.now)
    evaluations = models.PositiveIntegerField(default=0)
    send_attempts = models.PositiveIntegerField(default=0)
    last_error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    answered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["integration", "kind", "repository", "external_id", "environment_name"],
                name="deployment_gate_request_unique",
            )
        ]
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                condition=models.Q(state="pending"),
                name="gate_request_due",
            )
        ]

    def __str__(self) -> str:
        return f"{self.repository} {self.external_id} → {self.environment_name}: {self.state}"


class CommitStatusState(models.TextChoices):
    """Releasegate's words; each platform's are in ``pipelines.scm``."""

    PENDING = "pending", "Pending"
    SUCCESS = "success", "Success"
    FAILURE = "failure", "Failure"


class CommitStatus(models.Model):
    """One gate's status on one commit of one repository, as it should be (``state``,
    ``description``, ``target_url``) and as it was last published (``published_hash``).

    Unique per (integration, repository, sha, context): recording the same gate result
    again changes nothing, and a row is sent only while what it should say differs from
    what was published. Written by ``pipelines.services.scm.commit_statuses_sync``.
    """

    integration = models.ForeignKey(
        "pipelines.Integration", on_delete=models.CASCADE, related_name="commit_statuses"
    )
    repository = models.CharField(max_length=255)
    project_id = models.CharField(max_length=100, blank=True)
    sha = models.CharField(max_length=64)
    context = models.CharField(max_length=255)
    release = models.ForeignKey(
        "releases.Release", on_delete=models.CASCADE, related_name="+", null=True, blank=True
    )
    state = models.CharField(max_length=10, choices=CommitStatusState.choices)
    description = models.CharField(max_length=140, blank=True)
    target_url = models.URLField(max_length=500, blank=True)
    desired_hash = models.CharField(max_length=64)
    published_hash = models.CharField(max_length=64, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True, default=timezone.now)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.CharField(max_length=500, blank=True)
    published_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name_plural = "commit statuses"
        ordering = ["repository", "sha", "context"]
        constraints = [
            models.UniqueConstraint(
                fields=["integration", "repository", "sha", "context"],
                name="commit_status_unique",
            )
        ]
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                condition=models.Q(next_attempt_at__isnull=False),
                name="commit_status_due",
            )
        ]

    def __str__(self) -> str:
        return f"{self.repository}@{self.sha[:10]} {self.context}: {self.state}"
