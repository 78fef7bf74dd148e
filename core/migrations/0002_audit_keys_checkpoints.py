"""The keyed audit trail: the key id of each event (empty for the unkeyed events written
before, which ``manage.py reanchor_audit`` anchors once), signed checkpoints of the chain
heads, and the beat entry that writes them (editable in the admin)."""

import django.utils.timezone
from django.db import migrations, models


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
            },
        ),
        migrations.AddField(
            model_name='auditevent',
            name='key_id',
            field=models.CharField(blank=True, default='', editable=False, max_length=16),
        ),
        migrations.RunPython(create_schedule, remove_schedule),
    ]
