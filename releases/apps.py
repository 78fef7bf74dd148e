from django.apps import AppConfig


class ReleasesConfig(AppConfig):
    name = "releases"
    verbose_name = "Releases"

    def ready(self) -> None:
        from core.audit_chain import register_head_source
        from core.sso import register_login_listener

        from . import communications, readiness
        from .evidence import capture_on_deployment, frozen_heads
        from .postrelease import services as postrelease
        from .services import team_memberships_sync

        # A deployed release gets its default validation checklist ...
        readiness.register_transition_listener(postrelease.on_release_transition)
        # ... and its evidence is frozen in the same transaction, checklist included.
        readiness.register_transition_listener(capture_on_deployment)
        # Completion/rollback messages fall due with their transition; timed ones follow
        # the window when it moves.
        readiness.register_transition_listener(communications.on_release_transition)
        readiness.register_change_listener(communications.on_release_change)
        # verify_audit compares the audit trail with the chain heads frozen into packs.
        register_head_source("releases.evidence_pack", frozen_heads)
        # Single sign-on maps IdP groups to teams as well as roles.
        register_login_listener(team_memberships_sync)
        # Releases by state on /metrics.
        from core.metrics import register_gauges

        from .gauges import release_gauges

        register_gauges("releases", release_gauges)
