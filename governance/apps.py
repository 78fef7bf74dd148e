from django.apps import AppConfig


class GovernanceConfig(AppConfig):
    name = "governance"
    verbose_name = "Governance"

    def ready(self) -> None:
        # Governance plugs into the releases app's seams: requirements before transitions,
        # work after transitions, and invalidation after edits.
        from releases import readiness

        from . import listeners
        from .readiness import governance_blockers

        readiness.register(governance_blockers)
        readiness.register_transition_listener(listeners.on_release_transition)
        readiness.register_change_listener(listeners.on_release_change)

        # The risk that governs a release, and governance's sections of its evidence pack.
        from releases.risk import register_risk_source

        from . import evidence
        from .risk_source import RISK_SOURCE

        register_risk_source(RISK_SOURCE)
        evidence.register()
        # Sign-offs waiting and freeze exceptions on /metrics.
        from core.metrics import register_gauges

        from .gauges import approval_gauges

        register_gauges("governance", approval_gauges)
