"""Celery entry points of the dashboards app: thin wrappers over services."""

from __future__ import annotations

from celery import shared_task

from .services import FACTS_BEAT_MAX_AGE, metrics_facts_refresh


@shared_task(name="dashboards.refresh_metrics_facts", soft_time_limit=240, time_limit=300)
def refresh_metrics_facts() -> int:
    """Beat: refresh the metrics facts and trend points ahead of the readers, so a page view
    rarely finds them older than FACTS_MAX_AGE and pays for the refresh itself. Skipped when
    a reader refreshed them moments ago. Returns the deployment facts written."""
    return metrics_facts_refresh(max_age=FACTS_BEAT_MAX_AGE)
