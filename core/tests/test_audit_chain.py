"""Tamper evidence: the audit trail's hash chains and `manage.py verify_audit`."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from core.audit_chain import verify_chains
from core.models import AuditChainHead, AuditEvent
from releases import services
from tests.factories import ReleaseFactory, make_ready


@pytest.fixture
def history(service, release_manager):
    """Two releases with a few events each (two chains)."""
    releases = []
    for _ in range(2):
        release = make_ready(ReleaseFactory(services=[service], owner=release_manager))
        services.release_plan(release=release, actor=release_manager)
        services.release_update(release=release, actor=release_manager, changes={"name": "X"})
        services.release_start_work(release=release, actor=release_manager)
        releases.append(release)
    return releases


def _raw(sql: str, params=()) -> None:
    """Tamper as someone with the table owner's rights would: around the append-only trigger."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "ALTER TABLE governance_auditevent "
                "DISABLE TRIGGER governance_auditevent_no_update_delete"
            )
        cursor.execute(sql, params)
        if connection.vendor == "postgresql":
            cursor.execute(
                "ALTER TABLE governance_auditevent "
                "ENABLE TRIGGER governance_auditevent_no_update_delete"
            )


@pytest.mark.django_db
def test_events_are_chained_per_release(history):
    first = AuditEvent.objects.filter(release_id=history[0].pk).order_by("chain_seq")
    assert [e.chain_seq for e in first] == [1, 2, 3]
    assert first[0].prev_hash == "" and first[1].prev_hash == first[0].hash
    head = AuditChainHead.objects.get(key=f"release:{history[0].pk}")
    assert (head.seq, head.hash) == (3, first[2].hash)


@pytest.mark.django_db
def test_an_intact_trail_verifies(history):
    out = StringIO()
    call_command("verify_audit", stdout=out)
    assert "OK: 6 audit events in 2 chains verified." in out.getvalue()


@pytest.mark.django_db
def test_a_row_changed_by_raw_sql_is_named(history):
    victim = AuditEvent.objects.filter(release_id=history[1].pk).order_by("chain_seq")[1]
    _raw("UPDATE governance_auditevent SET reason = %s WHERE id = %s", ["covered up", victim.pk])
    err = StringIO()
    with pytest.raises(CommandError):
        call_command("verify_audit", stdout=StringIO(), stderr=err)
    message = err.getvalue()
    assert f"audit event #{victim.pk}" in message and "was changed" in message


@pytest.mark.django_db
def test_a_removed_row_is_detected(history):
    victim = AuditEvent.objects.filter(release_id=history[0].pk).order_by("chain_seq")[1]
    _raw("DELETE FROM governance_auditevent WHERE id = %s", [victim.pk])
    report = verify_chains()
    assert not report.ok
    assert "link 2 is missing" in str(report.problems[0])


@pytest.mark.django_db
def test_removing_the_last_event_is_detected_by_the_head(history):
    last = AuditEvent.objects.filter(release_id=history[0].pk).order_by("-chain_seq")[0]
    _raw("DELETE FROM governance_auditevent WHERE id = %s", [last.pk])
    report = verify_chains(chain=f"release:{history[0].pk}")
    assert "removed from the end" in str(report.problems[0])


@pytest.mark.django_db
def test_rehashing_a_changed_row_still_breaks_the_next_link(history):
    events = list(AuditEvent.objects.filter(release_id=history[0].pk).order_by("chain_seq"))
    forged = events[0]
    forged.reason = "forged"
    new_hash = forged.compute_hash()
    _raw(
        "UPDATE governance_auditevent SET reason = %s, hash = %s WHERE id = %s",
        ["forged", new_hash, forged.pk],
    )
    report = verify_chains()
    assert report.problems[0].event_id == events[1].pk
    assert "previous event's hash" in report.problems[0].message
