"""Create the few fan-out beat entries of the workers in the database (editable in the admin).

One entry per kind of due work, never one per polled system: each entry runs a sweep that
selects the due rows (``next_poll_at``, ``next_sample_at``, ``next_attempt_at``) and claims
them with a conditional update. Existing entries (edited by an operator) are left alone.
"""

from django.db import migrations

SCHEDULES = [
    ("Poll due CI integrations", "pipelines.poll_due_integrations", 30),
    ("Verify deployments in their window", "pipelines.verify_running_deployments", 15),
    ("Deliver due notifications", "pipelines.deliver_due_notifications", 30),
]


def create(apps, schema_editor):
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    for name, task, seconds in SCHEDULES:
        interval, _ = IntervalSchedule.objects.get_or_create(every=seconds, period="seconds")
        PeriodicTask.objects.get_or_create(
            name=name,
            defaults={
                "task": task,
                "interval": interval,
                "enabled": True,
                # A sweep that was not picked up within one period is superseded by the next.
                "expire_seconds": seconds,
                "description": "Fan-out sweep over due rows (see docs/workers.md).",
            },
        )


def remove(apps, schema_editor):
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTask.objects.filter(name__in=[name for name, _, _ in SCHEDULES]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("pipelines", "0004_worker_models"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create, remove)]
