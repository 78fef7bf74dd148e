"""The application's database role is not the owner: it reads and writes rows, only appends
to the audit trail, and cannot disable the append-only trigger or rewrite an event."""

from __future__ import annotations

import uuid

import psycopg2
import pytest
from django.core.management import call_command
from django.db import connection

from core.audit import audit_record
from core.models import AuditEvent
from tests.factories import TeamFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def app_role(require_postgres):
    name = f"rg_app_{uuid.uuid4().hex[:8]}"
    with connection.cursor() as cursor:
        cursor.execute(f'CREATE ROLE "{name}" LOGIN')
    yield name
    with connection.cursor() as cursor:
        cursor.execute(f'DROP OWNED BY "{name}"')
        cursor.execute(f'DROP ROLE "{name}"')


def _connect_as(role):
    settings = connection.settings_dict
    return psycopg2.connect(
        dbname=settings["NAME"],
        user=role,
        host=settings["HOST"] or "127.0.0.1",
        port=settings["PORT"] or 5432,
    )


def test_the_app_role_appends_to_the_trail_and_cannot_rewrite_it(app_role):
    from django.db import transaction

    team = TeamFactory(name="Payments", slug="payments")
    with transaction.atomic():
        audit_record(actor=None, action="team.note", target=team, reason="first")
    call_command("grant_app_role", app_role)
    event = AuditEvent.objects.get(action="team.note")
    app = _connect_as(app_role)
    try:
        with app.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM governance_auditevent")
            assert cursor.fetchone()[0] == 1
            cursor.execute(
                "UPDATE releases_team SET name = 'Payments team' WHERE id = %s", [team.pk]
            )
        app.commit()
        refused = [
            ("UPDATE governance_auditevent SET reason = 'rewritten' WHERE id = %s", [event.pk]),
            ("DELETE FROM governance_auditevent WHERE id = %s", [event.pk]),
            ("TRUNCATE governance_auditevent", []),
            ("UPDATE core_auditcheckpoint SET signature = ''", []),
            ("DELETE FROM core_auditcheckpoint", []),
            ("ALTER TABLE governance_auditevent DISABLE TRIGGER ALL", []),
            ("DROP TRIGGER governance_auditevent_no_update_delete ON governance_auditevent", []),
        ]
        for statement, params in refused:
            with app.cursor() as cursor, pytest.raises(psycopg2.Error) as caught:
                cursor.execute(statement, params)
            app.rollback()
            assert caught.value.pgcode in ("42501", "42P01") or "owner" in str(caught.value)
    finally:
        app.close()
    event.refresh_from_db()
    assert event.reason == "first"
    call_command("grant_app_role", app_role)  # idempotent
