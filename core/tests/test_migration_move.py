"""The move of the audit trail and the notification outbox into core is state-only: a trail
written at the old layout (governance.AuditEvent, pipelines.Notification) keeps every row,
chain head and link, and still verifies after migrating forward (core 0001, governance 0006,
pipelines 0009). Runs on SQLite and PostgreSQL; the trigger check on PostgreSQL only."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from core.models import AuditEvent, Notification, audit_event_hash

TABLES = (
    "governance_auditevent",
    "governance_auditchainhead",
    "pipelines_notification",
)


def _migrate(targets) -> None:
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)


def _old_apps():
    """The app registry at the old layout (the state before core 0001)."""
    executor = MigrationExecutor(connection)
    return executor.loader.project_state(
        [("governance", "0005_reminders_schedule"), ("pipelines", "0008_newest_first_indexes")]
    ).apps


def _rows(table: str) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {table} ORDER BY 1")  # noqa: S608 - fixed names
        return cursor.fetchall()


def _write_old_trail(apps, user) -> None:
    """Two chains written through the old state's models, linked as audit_record links."""
    OldEvent = apps.get_model("governance", "AuditEvent")
    OldHead = apps.get_model("governance", "AuditChainHead")
    ContentType = apps.get_model("contenttypes", "ContentType")
    release_type, _ = ContentType.objects.get_or_create(app_label="releases", model="release")
    for key, release_id, count in (("release:41", 41, 3), ("releases.release:7", None, 2)):
        prev = ""
        for seq in range(1, count + 1):
            event = OldEvent(
                created_at=timezone.now(),
                actor_id=user.pk,
                actor_token_id=5 if seq == 2 else None,
                actor_label="token:ci" if seq == 2 else user.username,
                action=f"release.step{seq}",
                target_type=release_type,
                target_id=str(release_id or 7),
                target_repr=f"release {release_id or 7}",
                release_id=release_id,
                before={"n": seq},
                chain_key=key,
                chain_seq=seq,
                prev_hash=prev,
            )
            event.hash = audit_event_hash(event)
            event.save()
            prev = event.hash
        OldHead.objects.create(key=key, seq=count, hash=prev)
    OldNotification = apps.get_model("pipelines", "Notification")
    OldNotification.objects.create(
        recipient_id=user.pk,
        event="gate_waiting",
        channel="in_app",
        idempotency_key="gate_waiting:1",
        subject="A gate waits",
        status="delivered",
    )


@pytest.mark.django_db(transaction=True)
def test_a_trail_written_at_the_old_layout_survives_the_move(django_user_model):
    user = django_user_model.objects.create_user("auditor")
    latest = MigrationExecutor(connection).loader.graph.leaf_nodes()
    try:
        _migrate([("core", None)])  # back to the old layout (and governance/pipelines before)
        _write_old_trail(_old_apps(), user)
        before = {t: _rows(t) for t in TABLES}

        _migrate(latest)

        after = {t: _rows(t) for t in TABLES}
        # core 0002 adds the key id last: empty, for these unkeyed events.
        assert {row[-1] for row in after["governance_auditevent"]} == {""}
        after["governance_auditevent"] = [row[:-1] for row in after["governance_auditevent"]]
        assert after == before
        # Unkeyed and not yet re-anchored: verify_audit refuses to vouch for it.
        with pytest.raises(CommandError):
            call_command("verify_audit", stdout=StringIO(), stderr=StringIO())
        out = StringIO()
        call_command("reanchor_audit", stdout=out)
        assert "Re-anchored 2 chains (5 unkeyed events)" in out.getvalue()
        out = StringIO()
        call_command("verify_audit", stdout=out)
        assert "OK: 5 audit events in 2 chains verified." in out.getvalue()
        token_event = AuditEvent.objects.get(chain_key="release:41", chain_seq=2)
        assert (token_event.release_id, token_event.actor_token_id) == (41, 5)
        assert Notification.objects.get().recipient == user
    finally:
        _migrate(latest)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_append_only_trigger_survives_the_move_back_and_forth(require_postgres):
    latest = MigrationExecutor(connection).loader.graph.leaf_nodes()
    try:
        _migrate([("core", None)])
        _migrate(latest)
    finally:
        _migrate(latest)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tgname FROM pg_trigger WHERE tgrelid = 'governance_auditevent'::regclass "
            "AND NOT tgisinternal ORDER BY tgname"
        )
        names = [row[0] for row in cursor.fetchall()]
    assert names == ["governance_auditevent_no_truncate", "governance_auditevent_no_update_delete"]
