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
