"""Celery entry points of the governance app: thin wrappers over the reminder sweeps."""

from __future__ import annotations

from celery import shared_task
from django.db import transaction

from . import notify


@shared_task(name="governance.send_reminders", soft_time_limit=120, time_limit=180)
def send_reminders() -> int:
    """Beat sweep: overdue post-implementation reviews and freezes starting within a day.
    Idempotent: each occurrence has its own key, so a second run notifies nobody again."""
    with transaction.atomic():
        return notify.reviews_overdue() + notify.freezes_starting()
