"""The audit trail is append-only and written in the transaction of the change."""

from __future__ import annotations

import pytest
from django.db import DatabaseError, connection, transaction

from core.audit import audit_record
from core.errors import InvalidInput
from core.models import AppendOnlyError, AuditEvent
from releases import services
from tests.factories import ReleaseFactory, make_ready


@pytest.fixture
def event(service, release_manager):
    release = make_ready(ReleaseFactory(services=[service], owner=release_manager))
    services.release_plan(release=release, actor=release_manager)
    return AuditEvent.objects.get()


@pytest.mark.django_db
def test_orm_refuses_to_update_an_event(event):
    event.reason = "rewritten"
    with pytest.raises(AppendOnlyError):
        event.save()
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.filter(pk=event.pk).update(reason="rewritten")
    assert AuditEvent.objects.get().reason == ""


@pytest.mark.django_db
def test_orm_refuses_to_delete_an_event(event):
    with pytest.raises(AppendOnlyError):
        event.delete()
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.all().delete()
    assert AuditEvent.objects.count() == 1


@pytest.mark.postgres
@pytest.mark.django_db
@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE governance_auditevent SET reason = 'rewritten'",
        "DELETE FROM governance_auditevent",
        "TRUNCATE governance_auditevent",
    ],
)
def test_postgres_trigger_refuses_raw_sql(require_postgres, event, sql):
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(sql)
    assert AuditEvent.objects.get().reason == ""


@pytest.mark.django_db(transaction=True)
def test_audit_record_refuses_to_run_outside_a_transaction(service, release_manager):
    release = ReleaseFactory(services=[service])
    with pytest.raises(RuntimeError):
        audit_record(actor=release_manager, action="x", target=release)


@pytest.mark.django_db
def test_a_refused_change_leaves_no_audit_event(service, release_manager):
    release = ReleaseFactory(services=[service], owner=release_manager)
    with pytest.raises(InvalidInput):
        services.release_cancel(release=release, actor=release_manager, reason="")
    assert not AuditEvent.objects.exists()


@pytest.mark.django_db
def test_event_carries_request_ip_and_user_agent(client, service, release_manager):
    release = ReleaseFactory(services=[service], owner=release_manager)
    client.force_login(release_manager)
    resp = client.post(
        f"/api/v1/releases/{release.pk}/cancel/",
        {"reason": "superseded"},
        content_type="application/json",
        HTTP_USER_AGENT="pytest-agent/1.0",
        REMOTE_ADDR="10.1.2.3",
    )
    assert resp.status_code == 200, resp.content
    event = AuditEvent.objects.get()
    assert (event.ip_address, event.user_agent) == ("10.1.2.3", "pytest-agent/1.0")
    assert (event.from_state, event.to_state, event.reason) == ("draft", "cancelled", "superseded")
