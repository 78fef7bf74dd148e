"""The notification outbox now belongs to core (core 0001): drop it from pipelines' state
only. The tables and their rows stay."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("pipelines", "0008_newest_first_indexes"),
        ("core", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.DeleteModel(name="NotificationAttempt"),
                migrations.DeleteModel(name="NotificationPreference"),
                migrations.DeleteModel(name="Notification"),
            ],
        ),
    ]
