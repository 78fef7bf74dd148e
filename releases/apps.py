from django.apps import AppConfig


class ReleasesConfig(AppConfig):
    name = "releases"
    verbose_name = "Releases"

    def ready(self) -> None:
        from . import readiness
        from .evidence import capture_on_deployment

        # Evidence is frozen the moment a release is deployed (in the same transaction).
        readiness.register_transition_listener(capture_on_deployment)
