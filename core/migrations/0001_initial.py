"""The shared records move into core: the audit trail from governance, the notification
outbox from pipelines.

State only: the tables, their rows, indexes and constraints stay as they are (the models keep
their table names), so existing databases lose nothing; governance 0006 and pipelines 0009
drop the models from their own state afterwards. Two differences in the state only:
``AuditEvent.release`` and ``AuditEvent.actor_token`` become the plain indexed integers
``release_id`` and ``actor_token_id`` (the same columns; they never had a database
constraint), so core knows neither releases nor API tokens.

The append-only trigger on ``governance_auditevent`` (first created by governance 0002) is
core's from here on: re-installed idempotently, same function and trigger names.
"""

import django.core.serializers.json
import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models

TRIGGER = """
CREATE OR REPLACE FUNCTION governance_audit_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'audit events are append-only (% refused)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS governance_auditevent_no_update_delete ON governance_auditevent;
CREATE TRIGGER governance_auditevent_no_update_delete
    BEFORE UPDATE OR DELETE ON governance_auditevent
    FOR EACH ROW EXECUTE FUNCTION governance_audit_append_only();
DROP TRIGGER IF EXISTS governance_auditevent_no_truncate ON governance_auditevent;
CREATE TRIGGER governance_auditevent_no_truncate
    BEFORE TRUNCATE ON governance_auditevent
    FOR EACH STATEMENT EXECUTE FUNCTION governance_audit_append_only();
"""

MOVED = {
    "governance": ("auditevent", "auditchainhead"),
    "pipelines": ("notification", "notificationattempt", "notificationpreference"),
}


def append_only_trigger(apps, schema_editor):
    """On PostgreSQL, refuse UPDATE, DELETE and TRUNCATE of audit events in the database
    itself, so that raw SQL cannot rewrite history either. (SQLite relies on the ORM guard.)"""
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(TRIGGER, params=None)


def _relabel_content_types(apps, *, to_core: bool):
    """Keep admin history and permissions of the moved models: their content types follow
    them. Not one that an audit event targets (its label is part of the event's hash)."""
    ContentType = apps.get_model("contenttypes", "ContentType")
    AuditEvent = apps.get_model("core", "AuditEvent")
    for app_label, names in MOVED.items():
        old, new = (app_label, "core") if to_core else ("core", app_label)
        for model in names:
            row = ContentType.objects.filter(app_label=old, model=model).first()
            if (
                row is None
                or ContentType.objects.filter(app_label=new, model=model).exists()
                or AuditEvent.objects.filter(target_type_id=row.pk).exists()
            ):
                continue
            ContentType.objects.filter(pk=row.pk).update(app_label=new)


def content_types_to_core(apps, schema_editor):
    _relabel_content_types(apps, to_core=True)


def content_types_back(apps, schema_editor):
    _relabel_content_types(apps, to_core=False)


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('contenttypes', '0002_remove_content_type_name'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
        # The last migrations that shape the moved tables.
        ('governance', '0004_audit_hash_chain'),
        ('pipelines', '0007_notification_external_destination'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.CreateModel(
                    name='AuditChainHead',
                    fields=[
                        ('key', models.CharField(max_length=120, primary_key=True, serialize=False)),
                        ('seq', models.PositiveBigIntegerField(default=0)),
                        ('hash', models.CharField(blank=True, max_length=64)),
                    ],
                    options={
                        'db_table': 'governance_auditchainhead',
                    },
                ),
                migrations.CreateModel(
                    name='Notification',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('destination', models.CharField(blank=True, help_text='For messages without a recipient (release communications): email addresses, comma-separated, or a webhook URL.', max_length=500)),
                        ('event', models.CharField(choices=[('gate_waiting', 'A gate is waiting for you'), ('vote_requested', 'Your vote is requested'), ('decision_made', 'A decision was made'), ('freeze_starting', 'A freeze is starting'), ('deployment_failed', 'A deployment failed'), ('verification_failed', 'A deployment verification failed'), ('review_overdue', 'A post-implementation review is overdue'), ('release_communication', 'A release communication')], max_length=30)),
                        ('channel', models.CharField(choices=[('in_app', 'In the app'), ('email', 'Email'), ('slack', 'Slack webhook')], max_length=10)),
                        ('idempotency_key', models.CharField(max_length=200)),
                        ('subject', models.CharField(max_length=200)),
                        ('body', models.TextField(blank=True)),
                        ('link', models.CharField(blank=True, max_length=500)),
                        ('status', models.CharField(choices=[('pending', 'Pending'), ('sending', 'Sending'), ('delivered', 'Delivered'), ('dead', 'Gave up')], default='pending', max_length=10)),
                        ('attempts', models.PositiveIntegerField(default=0)),
                        ('next_attempt_at', models.DateTimeField(default=django.utils.timezone.now)),
                        ('last_error', models.CharField(blank=True, max_length=500)),
                        ('created_at', models.DateTimeField(default=django.utils.timezone.now)),
                        ('delivered_at', models.DateTimeField(blank=True, null=True)),
                        ('read_at', models.DateTimeField(blank=True, null=True)),
                        ('recipient', models.ForeignKey(blank=True, help_text='A person; empty for messages to an external destination.', null=True, on_delete=django.db.models.deletion.CASCADE, related_name='notifications', to=settings.AUTH_USER_MODEL)),
                    ],
                    options={
                        'db_table': 'pipelines_notification',
                        'ordering': ['-created_at', '-id'],
                    },
                ),
                migrations.CreateModel(
                    name='NotificationAttempt',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('attempt', models.PositiveIntegerField()),
                        ('at', models.DateTimeField(default=django.utils.timezone.now)),
                        ('ok', models.BooleanField(default=False)),
                        ('status_code', models.PositiveIntegerField(blank=True, null=True)),
                        ('error', models.CharField(blank=True, max_length=500)),
                        ('notification', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='delivery_attempts', to='core.notification')),
                    ],
                    options={
                        'db_table': 'pipelines_notificationattempt',
                        'ordering': ['notification', 'attempt'],
                    },
                ),
                migrations.CreateModel(
                    name='NotificationPreference',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('channels', models.JSONField(blank=True, default=dict)),
                        ('slack_webhook_url', models.URLField(blank=True, max_length=500)),
                        ('user', models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, related_name='notification_preference', to=settings.AUTH_USER_MODEL)),
                    ],
                    options={
                        'db_table': 'pipelines_notificationpreference',
                    },
                ),
                migrations.CreateModel(
                    name='AuditEvent',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('created_at', models.DateTimeField(db_index=True, default=django.utils.timezone.now)),
                        ('actor_token_id', models.BigIntegerField(blank=True, db_index=True, help_text='The API token that acted, if any.', null=True)),
                        ('actor_label', models.CharField(help_text='Who, as shown at the time.', max_length=150)),
                        ('action', models.CharField(db_index=True, max_length=80)),
                        ('target_id', models.CharField(max_length=64)),
                        ('target_repr', models.CharField(max_length=300)),
                        ('release_id', models.BigIntegerField(blank=True, db_index=True, help_text='The release this event belongs to, for its timeline.', null=True)),
                        ('from_state', models.CharField(blank=True, max_length=40)),
                        ('to_state', models.CharField(blank=True, max_length=40)),
                        ('reason', models.TextField(blank=True)),
                        ('before', models.JSONField(blank=True, encoder=django.core.serializers.json.DjangoJSONEncoder, null=True)),
                        ('after', models.JSONField(blank=True, encoder=django.core.serializers.json.DjangoJSONEncoder, null=True)),
                        ('ip_address', models.GenericIPAddressField(blank=True, null=True)),
                        ('user_agent', models.CharField(blank=True, max_length=300)),
                        ('chain_key', models.CharField(default='', editable=False, max_length=120)),
                        ('chain_seq', models.PositiveBigIntegerField(default=0, editable=False)),
                        ('prev_hash', models.CharField(blank=True, editable=False, max_length=64)),
                        ('hash', models.CharField(default='', editable=False, max_length=64)),
                        ('actor', models.ForeignKey(blank=True, db_constraint=False, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL)),
                        ('target_type', models.ForeignKey(db_constraint=False, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='contenttypes.contenttype')),
                    ],
                    options={
                        'db_table': 'governance_auditevent',
                        'ordering': ['created_at', 'id'],
                        'indexes': [models.Index(fields=['release_id', 'created_at'], name='governance__release_34fe39_idx'), models.Index(fields=['target_type', 'target_id'], name='governance__target__e63ea8_idx')],
                        'constraints': [models.UniqueConstraint(fields=('chain_key', 'chain_seq'), name='audit_chain_link')],
                    },
                ),
                migrations.AddIndex(
                    model_name='notification',
                    index=models.Index(fields=['status', 'next_attempt_at'], name='pipelines_n_status_489bd4_idx'),
                ),
                migrations.AddIndex(
                    model_name='notification',
                    index=models.Index(fields=['recipient', 'channel', 'read_at'], name='pipelines_n_recipie_557e71_idx'),
                ),
                migrations.AddConstraint(
                    model_name='notification',
                    constraint=models.UniqueConstraint(fields=('idempotency_key', 'recipient', 'channel'), name='notification_unique_key'),
                ),
                migrations.AddConstraint(
                    model_name='notification',
                    constraint=models.UniqueConstraint(condition=models.Q(('recipient__isnull', True)), fields=('idempotency_key', 'channel', 'destination'), name='notification_unique_external_key'),
                ),
                migrations.AddConstraint(
                    model_name='notification',
                    constraint=models.CheckConstraint(condition=models.Q(('recipient__isnull', False), models.Q(('destination', ''), _negated=True), _connector='OR'), name='notification_has_recipient_or_destination'),
                ),
            ],
        ),
        migrations.RunPython(append_only_trigger, migrations.RunPython.noop),
        migrations.RunPython(content_types_to_core, content_types_back),
    ]
