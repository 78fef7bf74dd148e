"""Celery tasks of the workers: thin, idempotent wrappers that take ids and call one service.

Registered by name (``pipelines.<task>``) so beat entries in the database and
``worker_queue.enqueue_now`` refer to them without importing this module. Imported from
pipelines/tasks.py so Celery's autodiscovery finds them.

Every task is safe to run twice (claims by conditional update, unique keys), which is what
makes late acknowledgement and redelivery after a lost worker correct. Retries are bounded
and spaced with exponential backoff and full jitter (``retry_jitter`` draws the countdown
uniformly in [0, backoff]).
"""

from __future__ import annotations

from celery import shared_task

__all__ = [
    "call_rollback_webhook",
    "deliver_due_notifications",
    "deliver_notification",
    "poll_due_integrations",
    "poll_integration",
    "verify_running_deployments",
]

_RETRYING = {
    "acks_late": True,
    "reject_on_worker_lost": True,
    "retry_backoff": 5,
    "retry_backoff_max": 600,
    "retry_jitter": True,
    "max_retries": 5,
}


@shared_task(
    name="pipelines.deliver_notification",
    autoretry_for=(ConnectionError, OSError),
    soft_time_limit=60,
    time_limit=90,
    **_RETRYING,
)
def deliver_notification(notification_id: int) -> str:
    """Deliver one outbox row (a failed send is rescheduled on the row, not retried here)."""
    from core.notifications import deliver_notification as deliver

    return deliver(notification_id)


@shared_task(name="pipelines.deliver_due_notifications", soft_time_limit=240, time_limit=300)
def deliver_due_notifications() -> int:
    """Beat fan-out: due notification rows, due rollback webhooks, and re-sending tasks whose
    enqueue failed while the broker was down."""
    from core.notifications import deliver_due_notifications as sweep

    from .verification import call_due_rollback_webhooks
    from .worker_queue import requeue_task_outbox

    requeue_task_outbox()
    call_due_rollback_webhooks()
    return sweep()


@shared_task(name="pipelines.poll_due_integrations", soft_time_limit=240, time_limit=300)
def poll_due_integrations() -> int:
    """Beat fan-out: claim the due integrations and poll them concurrently."""
    from .polling.sweep import poll_due

    return len(poll_due())


@shared_task(
    name="pipelines.poll_integration",
    autoretry_for=(ConnectionError,),
    soft_time_limit=120,
    time_limit=150,
    **_RETRYING,
)
def poll_integration(integration_id: int) -> str:
    """Poll one integration now (admin "poll now"); claims like the sweep does."""
    from .polling.sweep import poll_one_now

    return poll_one_now(integration_id)


@shared_task(name="pipelines.verify_running_deployments", soft_time_limit=240, time_limit=300)
def verify_running_deployments() -> int:
    """Beat fan-out: start verifications of new deployments and take due samples."""
    from .verification import verify_due

    return verify_due()


@shared_task(
    name="pipelines.call_rollback_webhook",
    soft_time_limit=60,
    time_limit=90,
    **_RETRYING,
)
def call_rollback_webhook(rollback_request_id: int) -> str:
    """Call the environment's rollback webhook for one rollback request (claimed, idempotent)."""
    from .verification import call_rollback_webhook as call

    return call(rollback_request_id)
