"""The keyed audit trail: the key id of each event (empty for the unkeyed events written
before, which ``manage.py reanchor_audit`` anchors once), signed checkpoints of the chain
heads, and the beat entry that writes them (editable in the admin)."""

import django.utils.timezone
from django.db import migrations, models


# Rows of the checkpoint table are refused UPDATE and DELETE like the events (the function
# is core 0001's). No TRUNCATE trigger: the application role has no TRUNCATE right, and the
# test suite's flush truncates.
TRIGGER = """
DROP TRIGGER IF EXISTS core_auditcheckpoint_no_update_delete ON core_auditcheckpoint;
CREATE TRIGGER core_auditcheckpoint_no_update_delete
    BEFORE UPDATE OR DELETE ON core_auditcheckpoint
    FOR EACH ROW EXECUTE FUNCTION governance_audit_append_only();
"""


def append_only_trigger(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(TRIGGER, params=None)


CHECKPOINT_TASK = "Audit trail checkpoint (signed chain heads, exported)"


def create_schedule(apps, schema_editor):
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    interval, _ = IntervalSchedule.objects.get_or_create(every=60, period="minutes")
    PeriodicTask.objects.get_or_create(
        name=CHECKPOINT_TASK,
        defaults={
            "task": "core.audit_checkpoint",
            "interval": interval,
            "enabled": True,
            "expire_seconds": 3600,
            "description": "Signs the audit chain heads that moved and exports them to "
            "AUDIT_CHECKPOINT_DIR.",
        },
    )


def remove_schedule(apps, schema_editor):
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTask.objects.filter(name=CHECKPOINT_TASK).delete()


class Migration(migrations.Migration):

    dependencies = [
        ('core', '0001_initial'),
        ('django_celery_beat', '0019_alter_periodictasks_options'),
    ]

    operations = [
        migrations.CreateModel(
            name='AuditCheckpoint',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('name', models.CharField(help_text="Also the exported file's name.", max_length=64, unique=True)),
                ('created_at', models.DateTimeField(db_index=True, default=django.utils.timezone.now)),
                ('kind', models.CharField(choices=[('periodic', 'Periodic'), ('evidence', 'Evidence pack'), ('anchor', 'Re-anchoring of the unkeyed trail')], max_length=10)),
                ('heads', models.JSONField(help_text='Chain key -> [seq, hash] at the time of the checkpoint.')),
                ('key_id', models.CharField(max_length=16)),
                ('signature', models.CharField(max_length=64)),
            ],
            options={
                'db_table': 'core_auditcheckpoint',
                'ordering': ['created_at', 'id'],
                'constraints': [models.UniqueConstraint(condition=models.Q(('kind', 'anchor')), fields=('kind',), name='audit_one_anchor')],
            },
        ),
        migrations.AddField(
            model_name='auditevent',
            name='key_id',
            field=models.CharField(blank=True, db_default='', default='', editable=False, max_length=16),
        ),
        migrations.RunPython(append_only_trigger, migrations.RunPython.noop),
        migrations.RunPython(create_schedule, remove_schedule),
    ]
