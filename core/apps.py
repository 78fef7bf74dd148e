"""The core app's configuration. Imports no project app."""

import logging

from django.apps import AppConfig
from django.conf import settings


class CoreConfig(AppConfig):
    name = "core"
    verbose_name = "Core"

    def ready(self) -> None:
        from allauth.mfa import signals as mfa_signals
        from django.contrib.auth.signals import user_logged_in
        from django.core.signals import request_finished, request_started

        from . import dbhealth, gauges, logs, metrics
        from .accounts import on_authenticator_added, on_authenticator_removed
        from .profiles import on_logged_in

        # Connected after django.db's own close_old_connections, so they run after it.
        request_started.connect(dbhealth.skip_recent_health_checks, dispatch_uid="rg-db-health")
        request_finished.connect(dbhealth.note_connection_use, dispatch_uid="rg-db-last-use")
        # The session carries the viewer's time zone from the moment they log in.
        user_logged_in.connect(on_logged_in, dispatch_uid="core.profiles.on_logged_in")
        # A second factor added or removed is a security event: it goes on the audit trail.
        mfa_signals.authenticator_added.connect(on_authenticator_added, dispatch_uid="rg-mfa+")
        mfa_signals.authenticator_removed.connect(on_authenticator_removed, dispatch_uid="rg-mfa-")

        # The outbox and the broker's queue on /metrics; Celery's failures counted.
        metrics.register_gauges("outbox", gauges.outbox_gauges)
        metrics.register_gauges("celery", gauges.queue_gauges)
        metrics.connect_celery_signals()
        # Request ids travel into the tasks a request enqueues, and onto their log lines.
        logs.connect_celery_signals()
        if getattr(settings, "LOG_FORMAT", "text") == "json":
            # Python's warnings too become log records (JSON), not bare lines on stderr.
            logging.captureWarnings(True)
