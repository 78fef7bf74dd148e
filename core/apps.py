"""The core app's configuration. Imports no project app."""

from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "core"
    verbose_name = "Core"

    def ready(self) -> None:
        from allauth.mfa import signals as mfa_signals

        from .accounts import on_authenticator_added, on_authenticator_removed

        # A second factor added or removed is a security event: it goes on the audit trail.
        mfa_signals.authenticator_added.connect(on_authenticator_added, dispatch_uid="rg-mfa+")
        mfa_signals.authenticator_removed.connect(on_authenticator_removed, dispatch_uid="rg-mfa-")
