"""Data retention of pipeline runs and webhook deliveries: what a pruned run leaves behind
(``RunDaySummary``) and the record of each pruning batch (``PruneBatch``).

Runs grow without limit (every CI job posts several); the retention policy
(``pipelines.services.retention``, docs/operations.md) deletes old ones in bounded batches.
The metrics read a run only through the earliest start of a service's version (lead time for
changes), so before a run is deleted its day is folded into a summary row that keeps that
earliest start and the counts: the DORA figures read the summaries beside the live runs and
do not move when runs are pruned.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class RunDaySummary(models.Model):
    """The pruned runs of one service, version and day (the day the run was reported, UTC):
    how many there were by outcome, and the earliest start among them.

    Written only by ``pipeline_data_prune``, in the transaction that deletes the runs it
    summarises, so a run is counted either live or here, never both and never neither."""

    service = models.ForeignKey("releases.Service", on_delete=models.PROTECT, related_name="+")
    day = models.DateField()
    version = models.CharField(max_length=64, blank=True)
    runs = models.PositiveIntegerField(default=0)
    succeeded = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    cancelled = models.PositiveIntegerField(default=0)
    first_started_at = models.DateTimeField(
        null=True, blank=True, help_text="Earliest start among the summarised runs."
    )
    last_finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-day", "service_id", "version"]
        verbose_name_plural = "run day summaries"
        constraints = [
            models.UniqueConstraint(
                fields=["service", "version", "day"], name="run_day_summary_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.version or '(no version)'}: {self.runs} runs"


class PruneBatch(models.Model):
    """One batch of the retention policy: the cut-offs it applied and what it removed. The
    target of the batch's audit event (``pipeline_data.pruned``)."""

    ran_at = models.DateTimeField(default=timezone.now)
    runs_before = models.DateTimeField(
        null=True, blank=True, help_text="Runs reported before this were eligible."
    )
    deliveries_before = models.DateTimeField(null=True, blank=True)
    keep_per_service = models.PositiveIntegerField(default=0)
    runs_deleted = models.PositiveIntegerField(default=0)
    checks_deleted = models.PositiveIntegerField(default=0)
    deliveries_deleted = models.PositiveIntegerField(default=0)
    summaries_touched = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-ran_at", "-id"]
        verbose_name_plural = "prune batches"

    def __str__(self) -> str:
        return (
            f"Pruned {self.runs_deleted} runs, {self.deliveries_deleted} deliveries "
            f"at {self.ran_at:%Y-%m-%d %H:%M}"
        )
