"""Queueing helpers shared by the workers: enqueue after commit without ever failing the
caller, a durable marker when the broker is down, and backoff with full jitter.
"""

from __future__ import annotations

import logging
import random
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

logger = logging.getLogger(__name__)


def backoff_seconds(attempt: int, *, base: float = 5.0, cap: float = 3600.0) -> float:
    """Exponential backoff with full jitter: uniform(0, min(cap, base * 2**attempt)).

    Full jitter spreads retries of many failing rows (a provider outage) over the whole
    window instead of synchronising them into waves that hit the provider together.
    """
    return random.uniform(0, min(cap, base * (2 ** max(0, attempt))))


def enqueue_now(task_name: str, *args) -> bool:
    """Send a task by name; on any broker error write a TaskOutbox marker and return False.

    Never raises: the caller's transaction has committed, the fact is in the database, and a
    broker outage must not turn an accepted request into an error. The beat sweep
    (``requeue_task_outbox``) re-sends the marker once the broker answers again.
    """
    from celery import current_app

    from .worker_models import TaskOutbox

    try:
        current_app.send_task(task_name, args=list(args))
        return True
    except Exception as exc:  # noqa: BLE001 - any broker/transport failure
        logger.warning("Could not queue %s%s: %s; recorded for the sweep.", task_name, args, exc)
        try:
            TaskOutbox.objects.create(task_name=task_name, args=list(args), error=str(exc)[:500])
        except Exception:  # noqa: BLE001 - the due-row sweeps still find the work
            logger.exception("Could not record the task marker either.")
        return False


def enqueue_on_commit(task_name: str, *args) -> None:
    """Queue a task once the current transaction commits (never inside one that may roll
    back), robustly: see ``enqueue_now``."""
    transaction.on_commit(lambda: enqueue_now(task_name, *args))


def requeue_task_outbox(limit: int = 500) -> int:
    """Re-send the tasks whose enqueue failed. Each marker is claimed by deleting it (only the
    sweep that deleted the row sends it); a send that fails again writes a new marker."""
    from .worker_models import TaskOutbox

    sent = 0
    for marker in TaskOutbox.objects.order_by("id")[:limit]:
        deleted, _ = TaskOutbox.objects.filter(pk=marker.pk).delete()
        if deleted and enqueue_now(marker.task_name, *marker.args):
            sent += 1
    return sent


def later(seconds: float):
    return timezone.now() + timedelta(seconds=seconds)
