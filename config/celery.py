"""The Celery app. Tasks live in each app's tasks.py and are discovered from INSTALLED_APPS."""

import os

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

app = Celery("releasegate")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@signals.setup_logging.connect
def _logging(loglevel=None, logfile=None, format=None, colorize=None, **_):
    """LOG_FORMAT=json: workers and beat log as the web does (settings.LOGGING, with the
    request and task ids). Text: Celery's own lines, as it sets them up when nobody handles
    this signal (people and scripts read its format). Either way at their ``-l`` level."""
    import logging
    import logging.config

    from django.conf import settings

    root = logging.getLogger()
    if settings.LOG_FORMAT == "json":
        logging.config.dictConfig(settings.LOGGING)
        if loglevel:
            root.setLevel(loglevel if isinstance(loglevel, int) else str(loglevel).upper())
        return
    if app.conf.worker_hijack_root_logger:
        for logger in (root, *map(logging.getLogger, ("celery", "celery.task"))):
            logger.handlers = []
    app.log._configure_logger(root, logfile, loglevel, format, colorize)
    app.log.setup_task_loggers(loglevel, logfile, colorize=colorize)


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
