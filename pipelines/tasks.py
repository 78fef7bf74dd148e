"""Celery entry points of the pipelines app: thin, idempotent wrappers over services."""

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
def evaluate_pending_gates(older_than_seconds: int = 30, limit: int = 1000) -> int:
    """The beat sweep behind the dispatcher: runs still flagged some time after their change
    (their process died before publishing, or the task failed for good) are evaluated now."""
    from datetime import timedelta

    from django.utils import timezone

    from .models import PipelineRun

    cutoff = timezone.now() - timedelta(seconds=older_than_seconds)
    run_ids = list(
        PipelineRun.objects.filter(gates_pending=True, updated_at__lt=cutoff)
        .order_by("updated_at")
        .values_list("pk", flat=True)[:limit]
    )
    return evaluate_gates_for_runs(run_ids) if run_ids else 0


from .worker_tasks import *  # noqa: E402, F403  (polling, verification, notifications)
