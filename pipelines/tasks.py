"""Celery entry points of the pipelines app: thin, idempotent wrappers that take ids and call
one service — gate evaluation for runs and deployments, polling, deployment verification and
notification delivery.

Registered by name (``pipelines.<task>``) where beat entries in the database or
``queueing.enqueue_now`` refer to them. Every task is safe to run twice (claims by
conditional update, unique keys), which is what makes late acknowledgement and redelivery
after a lost worker correct. Retries are bounded and spaced with exponential backoff and
full jitter (``retry_jitter`` draws the countdown uniformly in [0, backoff]).
"""

from __future__ import annotations

from celery import shared_task


@shared_task(
    acks_late=True,
    autoretry_for=(Exception,),
    retry_backoff=True,
    retry_jitter=True,
    max_retries=5,
)
def evaluate_gates_for_run(run_id: int) -> int:
    """Re-evaluate the automated gates of the releases a pipeline run concerns. Safe to run
    twice: evaluation reads the latest runs and only records changes."""
    from . import verdicts

    return verdicts.gates_evaluate_for_run(run_id=run_id)


@shared_task(
    acks_late=True,
    autoretry_for=(Exception,),
    retry_backoff=True,
    retry_jitter=True,
    max_retries=5,
)
def evaluate_gates_for_deployment(deployment_id: int) -> int:
    """Re-evaluate gates after a deployment report: the release's own evidence (staging
    validated) and the verdicts of the latest run of that service and version."""
    from . import verdicts

    return verdicts.gates_evaluate_for_deployment(deployment_id=deployment_id)


@shared_task(
    name="pipelines.evaluate_gates_for_runs",
    acks_late=True,
    autoretry_for=(Exception,),
    retry_backoff=True,
    retry_jitter=True,
    max_retries=5,
)
def evaluate_gates_for_runs(run_ids: list[int]) -> int:
    """Re-evaluate gates for a batch of runs (from the gate dispatcher or the sweep), then
    clear each run's gates_pending flag unless the run changed meanwhile (its own dispatch
    follows). Idempotent: evaluation only records changes."""
    from . import verdicts
    from .models import PipelineRun

    changed = 0
    pending = PipelineRun.objects.filter(pk__in=run_ids, gates_pending=True).values_list(
        "pk", "updated_at"
    )
    for run_id, updated_at in pending:
        changed += verdicts.gates_evaluate_for_run(run_id=run_id)
        PipelineRun.objects.filter(pk=run_id, updated_at=updated_at).update(gates_pending=False)
    return changed


@shared_task(name="pipelines.evaluate_pending_gates", acks_late=True)
def evaluate_pending_gates(
    older_than_seconds: int = 30, limit: int = 1000, horizon_hours: int = 48
) -> int:
    """The beat sweep behind the dispatcher: runs still flagged some time after their change
    (their process died before publishing, or the task failed for good) are evaluated now.
    Every minute it reads the runs created within ``horizon_hours`` (a range of the
    newest-first index: the flag has no index, so that clearing it is a HOT update); once a
    day ``horizon_hours=0`` reads them all, for an old run changed and left pending."""
    from datetime import timedelta

    from django.utils import timezone

    from .models import PipelineRun

    now = timezone.now()
    pending = PipelineRun.objects.filter(
        gates_pending=True, updated_at__lt=now - timedelta(seconds=older_than_seconds)
    )
    if horizon_hours:
        pending = pending.filter(created_at__gte=now - timedelta(hours=horizon_hours))
    run_ids = list(pending.order_by("-created_at", "-id").values_list("pk", flat=True)[:limit])
    return evaluate_gates_for_runs(run_ids) if run_ids else 0


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
    """Beat fan-out: due notification rows, due rollback webhooks, freeze starts and ends to
    announce and due CDEvents deliveries, and re-sending tasks whose enqueue failed while the
    broker was down."""
    from core.notifications import deliver_due_notifications as sweep

    from . import cdevents
    from .queueing import requeue_task_outbox
    from .verification import call_due_rollback_webhooks

    requeue_task_outbox()
    call_due_rollback_webhooks()
    cdevents.freezes_sweep()
    cdevents.deliver_due()
    return sweep()


@shared_task(
    name="pipelines.deliver_cdevent",
    autoretry_for=(ConnectionError, OSError),
    soft_time_limit=60,
    time_limit=90,
    **_RETRYING,
)
def deliver_cdevent(delivery_id: int) -> str:
    """Deliver one emitted CDEvent (a failed send is rescheduled on the row, not retried)."""
    from .cdevents import deliver

    return deliver(delivery_id)


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


@shared_task(name="pipelines.prune_pipeline_data", soft_time_limit=540, time_limit=600)
def prune_pipeline_data() -> int:
    """Beat: apply the retention policy to runs and webhook deliveries (bounded batches,
    each audited; what is left waits for the next run). Returns the rows deleted."""
    from .services.retention import pipeline_data_prune

    report = pipeline_data_prune()
    return report.runs + report.deliveries


# --- enforcement through GitHub and GitLab (pipelines/services/scm.py) -----------------------


@shared_task(
    name="pipelines.answer_deployment_gate",
    autoretry_for=(ConnectionError,),
    soft_time_limit=60,
    time_limit=90,
    **_RETRYING,
)
def answer_deployment_gate(request_id: int) -> str:
    """Decide and answer one held deployment (claimed by lease; the sweep takes over what a
    killed worker left)."""
    from .services.scm import deployment_gate_answer

    return deployment_gate_answer(request_id)


@shared_task(
    name="pipelines.publish_commit_statuses",
    autoretry_for=(ConnectionError,),
    soft_time_limit=120,
    time_limit=150,
    **_RETRYING,
)
def publish_commit_statuses(release_id: int) -> int:
    """Write the release's gates as commit statuses and send the changed ones."""
    from .services.scm import commit_statuses_publish_for_release

    return commit_statuses_publish_for_release(release_id)


@shared_task(name="pipelines.scm_sweep", soft_time_limit=240, time_limit=300)
def scm_sweep() -> int:
    """Beat fan-out: held deployments due for another look or another send (waiting, a
    failed send, a killed worker's lease run out) and commit statuses due for a retry."""
    from .services.scm import (
        commit_status_publish,
        deployment_gate_answer,
        due_commit_statuses,
        due_deployment_gates,
    )

    done = sum(deployment_gate_answer(pk) == "answered" for pk in due_deployment_gates())
    return done + sum(commit_status_publish(pk) == "published" for pk in due_commit_statuses())
