"""The Celery app. Tasks live in each app's tasks.py and are discovered from INSTALLED_APPS."""

import os

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

app = Celery("releasegate")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@signals.setup_logging.connect
def _django_logging(loglevel=None, **_):
    """Workers and beat log as the web does (settings.LOGGING: LOG_FORMAT, the request and
    task ids), instead of Celery's own root handler; at the level of their ``-l`` option."""
    import logging
    import logging.config

    from django.conf import settings

    logging.config.dictConfig(settings.LOGGING)
    if loglevel:
        logging.getLogger().setLevel(
            loglevel if isinstance(loglevel, int) else str(loglevel).upper()
        )


@signals.worker_init.connect
def _worker_metrics(**_):
    """CELERY_METRICS_PORT: this worker serves its own /metrics (gate verdicts and their
    latency, task failures and retries; docs/operations.md, "Metrics")."""
    from django.conf import settings

    from core import metrics

    metrics.clear_multiprocess_dir()  # with PROMETHEUS_MULTIPROC_DIR: created, emptied
    if settings.CELERY_METRICS_PORT:
        metrics.serve_worker_metrics(settings.CELERY_METRICS_ADDRESS, settings.CELERY_METRICS_PORT)


@signals.worker_process_shutdown.connect
def _worker_process_gone(**_):
    # A prefork pool process that exits: its counters stay in the sum, its gauges go.
    from core import metrics

    metrics.mark_this_process_dead()
