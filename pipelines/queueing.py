"""Queueing helpers shared by the workers: enqueue after commit without ever failing the
caller, and a durable marker when the broker is down. (Backoff with full jitter is
core.backoff.)
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from .models import TaskOutbox

logger = logging.getLogger(__name__)


def enqueue_now(task_name: str, *args) -> bool:
    """Send a task by name; on any broker error write a TaskOutbox marker and return False.

    Never raises: the caller's transaction has committed, the fact is in the database, and a
    broker outage must not turn an accepted request into an error. The beat sweep
    (``requeue_task_outbox``) re-sends the marker once the broker answers again.
    """
    from celery import current_app

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


def queue_notification_delivery(notification_id: int) -> None:
    """How core's notification outbox hands a new row to a worker (registered in
    ``PipelinesConfig.ready``): the ``pipelines.deliver_notification`` task, after commit."""
    enqueue_on_commit("pipelines.deliver_notification", notification_id)


def requeue_task_outbox(limit: int = 500) -> int:
    """Re-send the tasks whose enqueue failed. Each marker is claimed by deleting it (only the
    sweep that deleted the row sends it); a send that fails again writes a new marker."""
    sent = 0
    for marker in TaskOutbox.objects.order_by("id")[:limit]:
        deleted, _ = TaskOutbox.objects.filter(pk=marker.pk).delete()
        if deleted and enqueue_now(marker.task_name, *marker.args):
            sent += 1
    return sent


def later(seconds: float):
    return timezone.now() + timedelta(seconds=seconds)
