from django.apps import AppConfig


class PipelinesConfig(AppConfig):
    name = "pipelines"
    verbose_name = "Pipelines"

    def ready(self) -> None:
        # Pipelines' facts about a release where the releases app shows them: its evidence
        # pack (artefacts, incidents, verification) and the post-release panel (incidents).
        from releases.postrelease import panel

        from . import (
            evidence,
            schema,  # noqa: F401  (registers the OpenAPI auth extension)
        )
        from .postrelease import release_incidents

        evidence.register()
        # Ordered promotion and soak time before a release deploys to production.
        from releases import readiness

        from .promotion import promotion_provider

        readiness.register(promotion_provider)
        # Approval events to CDEvents subscribers (pipelines/cdevents.py).
        from . import cdevents

        readiness.register_transition_listener(cdevents.release_transitioned)
        panel.register("incidents", release_incidents)

        # Core's notification outbox hands new rows to pipelines' delivery task.
        from core import notifications

        from .queueing import queue_notification_delivery

        notifications.register_delivery(queue_notification_delivery)

        # Gate results become commit statuses on GitHub and GitLab.
        from governance import gate_listeners

        from .services.scm import on_gate_changed

        gate_listeners.register(on_gate_changed)
        # Poller health and the gate evaluation backlog on /metrics.
        from core.metrics import register_gauges

        from .gauges import poller_gauges

        register_gauges("pipelines", poller_gauges)
