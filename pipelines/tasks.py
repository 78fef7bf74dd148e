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
    from governance.services import gates_evaluate_for_run

    return gates_evaluate_for_run(run_id=run_id)


@shared_task(
    acks_late=True,
    autoretry_for=(Exception,),
    retry_backoff=True,
    retry_jitter=True,
    max_retries=5,
)
def evaluate_gates_for_deployment(deployment_id: int) -> int:
    """Re-evaluate gates after a deployment report: through the governance service for
    deployments when it exists, else through the latest run of that service and version."""
    from governance import services as governance

    evaluate = getattr(governance, "gates_evaluate_for_deployment", None)
    if evaluate is not None:
        return evaluate(deployment_id=deployment_id)
    from releases.models import Deployment

    from .models import PipelineRun

    deployment = Deployment.objects.filter(pk=deployment_id).only("service_id", "version").first()
    if deployment is None:
        return 0
    run_id = (
        PipelineRun.objects.filter(service_id=deployment.service_id, version=deployment.version)
        .order_by("-created_at", "-id")
        .values_list("id", flat=True)
        .first()
    )
    return governance.gates_evaluate_for_run(run_id=run_id) if run_id else 0


from .worker_tasks import *  # noqa: E402, F403  (polling, verification, notifications)
