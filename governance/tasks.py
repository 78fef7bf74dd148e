"""Celery entry points of the governance app: thin wrappers over the reminder sweeps."""

from __future__ import annotations

from celery import shared_task
from django.db import transaction

from . import notify
from .services import break_glass_expire_due


@shared_task(name="governance.send_reminders", soft_time_limit=120, time_limit=180)
def send_reminders() -> int:
    """Beat sweep: overdue post-implementation reviews and freezes starting within a day.
    Idempotent: each occurrence has its own key, so a second run notifies nobody again."""
    with transaction.atomic():
        return notify.reviews_overdue() + notify.freezes_starting()


@shared_task(name="governance.expire_break_glass", soft_time_limit=120, time_limit=180)
def expire_break_glass() -> int:
    """Beat sweep: record the end of every break-glass past its expiry (audited). Safe to run
    twice: a row already expired is skipped."""
    return break_glass_expire_due()
