"""The core app's configuration. Imports no project app."""

import logging

from django.apps import AppConfig
from django.conf import settings


class CoreConfig(AppConfig):
    name = "core"
    verbose_name = "Core"

    def ready(self) -> None:
        from . import gauges, logs, metrics

        # The outbox and the broker's queue on /metrics; Celery's failures counted.
        metrics.register_gauges("outbox", gauges.outbox_gauges)
        metrics.register_gauges("celery", gauges.queue_gauges)
        metrics.connect_celery_signals()
        # Request ids travel into the tasks a request enqueues, and onto their log lines.
        logs.connect_celery_signals()
        if getattr(settings, "LOG_FORMAT", "text") == "json":
            # Python's warnings too become log records (JSON), not bare lines on stderr.
            logging.captureWarnings(True)
