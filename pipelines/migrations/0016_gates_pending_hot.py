"""Clearing ``gates_pending`` becomes a HOT update: no index holds the flag any more, and the
runs table keeps 10% of each page free for the new row version (PostgreSQL). The minute sweep
looks at recent runs through the newest-first index; a daily sweep looks at all of them."""

from django.db import migrations

DAILY = (
    "Re-evaluate gates of any run left pending (daily, all runs)",
    "pipelines.evaluate_pending_gates",
    86400,
)


def fillfactor(value):
    def apply(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            table = schema_editor.quote_name(apps.get_model("pipelines", "PipelineRun")._meta.db_table)
            schema_editor.execute(f"ALTER TABLE {table} SET (fillfactor = {int(value)})")

    return apply


def create_daily_sweep(apps, schema_editor):
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    name, task, seconds = DAILY
    interval, _ = IntervalSchedule.objects.get_or_create(every=seconds, period="seconds")
    PeriodicTask.objects.get_or_create(
        name=name,
        defaults={
            "task": task,
            "interval": interval,
            "kwargs": '{"horizon_hours": 0}',
            "enabled": True,
            "expire_seconds": 3600,
            "description": "Backstop of the minute sweep, which looks only at recent runs: "
            "an old run changed and left pending is found here.",
        },
    )


def remove_daily_sweep(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=DAILY[0]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("pipelines", "0015_cdevents_subscriptions_outbox"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [
        migrations.RemoveIndex(model_name="pipelinerun", name="pipeline_run_gates_pending"),
        migrations.RunPython(fillfactor(90), fillfactor(100)),
        migrations.RunPython(create_daily_sweep, remove_daily_sweep),
    ]
