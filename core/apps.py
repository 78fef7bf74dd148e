"""The core app's configuration. Imports no project app."""

from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "core"
    verbose_name = "Core"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_in

        from .profiles import on_logged_in

        # The session carries the viewer's time zone from the moment they log in.
        user_logged_in.connect(on_logged_in, dispatch_uid="core.profiles.on_logged_in")
