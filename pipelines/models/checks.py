"""Deployment checks: a CD system asking, before it deploys, whether a version of a service
may go to an environment now (``pipelines.services.checks.evaluate_deployment_check``)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class CheckDecision(models.TextChoices):
    ALLOW = "allow", "Allow"
    DENY = "deny", "Deny"
    WAIT = "wait", "Wait"


class DeploymentCheck(models.Model):
    """One question asked at the deploy boundary and the answer given, kept as asked: the
    slugs and version as the caller sent them (the service, environment and release are
    linked when they were found), the decision with its blockers in the words of "why is
    this blocked?", and who asked. Written once by ``evaluate_deployment_check``, never
    edited; audited."""

    service = models.ForeignKey(
        "releases.Service", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    service_slug = models.CharField(max_length=100)
    environment = models.ForeignKey(
        "releases.Environment", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    environment_slug = models.CharField(max_length=50)
    version = models.CharField(max_length=64)
    commit_sha = models.CharField(max_length=64, blank=True)
    external_id = models.CharField(max_length=200, blank=True)
    decision = models.CharField(max_length=5, choices=CheckDecision.choices)
    blockers = models.JSONField(default=list, blank=True)
    resume_at = models.DateTimeField(null=True, blank=True)
    release = models.ForeignKey(
        "releases.Release",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="deployment_checks",
    )
    change_request = models.ForeignKey(
        "governance.ChangeRequest",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    token = models.ForeignKey(
        "pipelines.ApiToken", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    source = models.CharField(
        max_length=40, default="api", help_text="Who asked: api, github, gitlab, cli…"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # The release page's latest checks.
            models.Index(fields=["release", "-created_at"], name="deployment_check_release"),
        ]

    def __str__(self) -> str:
        return f"{self.service_slug} {self.version} → {self.environment_slug}: {self.decision}"
