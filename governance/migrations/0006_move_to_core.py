"""The audit trail now belongs to core (core 0001): drop it from governance's state only.
The tables, rows and the append-only trigger stay."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("governance", "0005_reminders_schedule"),
        ("core", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.DeleteModel(name="AuditChainHead"),
                migrations.DeleteModel(name="AuditEvent"),
            ],
        ),
    ]
