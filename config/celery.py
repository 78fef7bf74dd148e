"""The Celery app. Tasks live in each app's tasks.py and are discovered from INSTALLED_APPS."""

import os

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

app = Celery("releasegate")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@signals.setup_logging.connect
def _django_logging(**_):
    """Workers and beat log as the web does (settings.LOGGING: LOG_FORMAT, the request and
    task ids), instead of Celery's own root handler."""
    import logging.config

    from django.conf import settings

    logging.config.dictConfig(settings.LOGGING)
