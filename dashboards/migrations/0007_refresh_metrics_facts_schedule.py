"""The beat entry that refreshes the metrics facts ahead of the readers (editable in the admin)."""

from django.db import migrations

NAME = "Metrics facts refresh"


def create(apps, schema_editor):
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    interval, _ = IntervalSchedule.objects.get_or_create(every=4, period="minutes")
    PeriodicTask.objects.get_or_create(
        name=NAME,
        defaults={
            "task": "dashboards.refresh_metrics_facts",
            "interval": interval,
            "enabled": True,
            "expire_seconds": 240,
            "description": "Projects deployments, runs, incidents and releases into the "
            "metrics facts and trend points, so metrics pages rarely refresh them themselves.",
        },
    )


def remove(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=NAME).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("dashboards", "0006_trend_points"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create, remove)]
