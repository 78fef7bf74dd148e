"""A release's explained risk assessment, with its override.

Lifecycle fields are protected FSM fields changed only by governance.services."""

from __future__ import annotations

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.utils import timezone

from releases.choices import RiskLevel


class RiskAssessment(models.Model):
    """The explained risk of one release: score, level, the factors behind them, and an
    optional override (level + justification, by whom). The effective level is the
    override when there is one, else the higher of the computed and declared levels."""

    release = models.OneToOneField(
        "releases.Release", on_delete=models.CASCADE, related_name="risk_assessment"
    )
    score = models.PositiveSmallIntegerField()
    computed_level = models.CharField(max_length=10, choices=RiskLevel.choices)
    factors = models.JSONField(default=list)
    inputs = models.JSONField(default=dict, encoder=DjangoJSONEncoder)
    data_migration = models.BooleanField(
        default=False, help_text="Declared by the release manager (also detected from scope)."
    )
    override_level = models.CharField(max_length=10, choices=RiskLevel.choices, blank=True)
    override_justification = models.TextField(blank=True)
    overridden_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    overridden_at = models.DateTimeField(null=True, blank=True)
    assessed_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"Risk of {self.release}: {self.level} ({self.score})"

    @property
    def level(self) -> str:
        return self.override_level or self.computed_level
