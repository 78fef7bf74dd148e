"""The core app's configuration. Imports no project app."""

from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "core"
    verbose_name = "Core"

    def ready(self) -> None:
        from django.core.signals import request_finished, request_started

        from . import dbhealth

        # Connected after django.db's own close_old_connections, so they run after it.
        request_started.connect(dbhealth.skip_recent_health_checks, dispatch_uid="rg-db-health")
        request_finished.connect(dbhealth.note_connection_use, dispatch_uid="rg-db-last-use")
