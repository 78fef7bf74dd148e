"""Freeze windows (one-off, RRULE or cron in a time zone) and the exceptions to them.

Lifecycle fields are protected FSM fields changed only by governance.services."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone

from ..choices import (
    ExceptionState,
    FreezeKind,
)
from ..domain import freeze


class FreezeWindow(models.Model):
    """A one-off or recurring period in which production deployments of the covered services
    and environments are refused (unless an approved exception exists). No environments =
    every production environment; no services = every service. Recurrence is evaluated in
    local wall time of ``tz`` (governance/domain/freeze/), so it is right across DST."""

    name = models.CharField(max_length=200)
    reason = models.TextField(blank=True)
    kind = models.CharField(max_length=5, choices=FreezeKind.choices, default=FreezeKind.ONCE)
    tz = models.CharField(max_length=64, default="UTC", help_text="IANA time zone.")
    start = models.DateTimeField(null=True, blank=True, help_text="One-off: start.")
    end = models.DateTimeField(null=True, blank=True, help_text="One-off: end.")
    rrule = models.CharField(
        max_length=300, blank=True, help_text="e.g. FREQ=WEEKLY;BYDAY=FR;BYHOUR=16;BYMINUTE=0"
    )
    cron = models.CharField(max_length=100, blank=True, help_text="e.g. 0 16 * * FRI")
    duration = models.DurationField(null=True, blank=True)
    end_time = models.TimeField(
        null=True, blank=True, help_text="Local end time of each occurrence."
    )
    end_weekday = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="0 = Monday … 6 = Sunday"
    )
    environments = models.ManyToManyField("releases.Environment", blank=True, related_name="+")
    services = models.ManyToManyField("releases.Service", blank=True, related_name="+")
    is_active = models.BooleanField(default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name

    def rule(self) -> freeze.FreezeRule:
        """The pure rule; raises FreezeRuleError when the row is inconsistent."""
        return freeze.parse_rule(
            self.kind,
            self.tz,
            start=self.start if self.kind == FreezeKind.ONCE else None,
            end=self.end if self.kind == FreezeKind.ONCE else None,
            rrule=self.rrule or None,
            cron=self.cron or None,
            duration=self.duration,
            end_time=self.end_time,
            end_weekday=self.end_weekday,
        )

    def clean(self) -> None:
        try:
            self.rule()
        except freeze.FreezeRuleError as exc:
            raise ValidationError(str(exc)) from exc

    @property
    def description(self) -> str:
        try:
            return freeze.describe(self.rule())
        except freeze.FreezeRuleError as exc:
            return f"Invalid rule: {exc}"


class FreezeException(models.Model):
    """Permission for one release to deploy during one freeze window: requested with a
    justification, approved by someone other than the requester and the release owner,
    valid until ``expires_at``."""

    freeze = models.ForeignKey(FreezeWindow, on_delete=models.CASCADE, related_name="exceptions")
    release = models.ForeignKey(
        "releases.Release", on_delete=models.CASCADE, related_name="freeze_exceptions"
    )
    justification = models.TextField()
    state = models.CharField(
        max_length=10, choices=ExceptionState.choices, default=ExceptionState.REQUESTED
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    approver = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_comment = models.TextField(blank=True)
    expires_at = models.DateTimeField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"Exception for {self.release} from {self.freeze}"

    def is_valid_at(self, at) -> bool:
        return self.state == ExceptionState.APPROVED and at < self.expires_at
