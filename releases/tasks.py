"""Celery entry points of the releases app: thin wrappers over services."""

from __future__ import annotations

from celery import shared_task

from .communications import communications_send_due


@shared_task(name="releases.send_due_communications", soft_time_limit=240, time_limit=300)
def send_due_communications() -> int:
    """Beat sweep: send the release communications whose moment has come (each once)."""
    return communications_send_due()
