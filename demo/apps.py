from django.apps import AppConfig


class DemoConfig(AppConfig):
    """Demo data and ``seed_demo``; installed by the local and test settings only."""

    name = "demo"
    verbose_name = "Demo data"
