from django.apps import AppConfig


class DashboardsConfig(AppConfig):
    name = "dashboards"
    verbose_name = "Dashboards"

    def ready(self) -> None:
        # seed_demo gets the delivery history the metrics charts need (dashboards/demo.py).
        from . import demo

        demo.register()
