"""Polling state of the integrations that cannot reach us (CI systems without webhooks).

Every worker that acts on a row first *claims* it with a conditional UPDATE (compare the
column it read, write the new value, go on only when one row changed), so two beat
schedulers or two workers never act twice on the same due row.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone


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
