"""Celery entry points of the core app: thin wrappers."""

from __future__ import annotations

from celery import shared_task

from .audit_checkpoints import checkpoint_periodic, sync_to_s3


@shared_task(name="core.audit_checkpoint", soft_time_limit=120, time_limit=180)
def audit_checkpoint() -> str:
    """Beat: a signed checkpoint of the audit chain heads that moved (exported to a file),
    then every exported file the S3 bucket (if one is configured) lacks, evidence packs'
    included. Idempotent: a second run with nothing new writes and copies nothing."""
    checkpoint = checkpoint_periodic()
    sync_to_s3()
    return checkpoint.name if checkpoint else ""
