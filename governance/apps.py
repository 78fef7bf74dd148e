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
