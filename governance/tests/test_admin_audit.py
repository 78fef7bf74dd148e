"""Governance configuration edited in the admin is audited like the app's own services:
gate policies, quorum policies and freeze windows, on create, change and delete."""

from __future__ import annotations

import pytest

from core.models import AuditEvent
from governance.models import FreezeWindow, GatePolicy, QuorumPolicyRecord
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client):
    client.force_login(UserFactory(username="ada", is_staff=True, is_superuser=True))
    return client


def _events(action):
    return list(AuditEvent.objects.filter(action=action).order_by("id"))


def test_a_gate_policy_changed_in_the_admin_is_audited_with_what_changed(admin_client):
    policy = GatePolicy.objects.create(name="Standard", requirements=[], priority=0)
    response = admin_client.post(
        f"/admin/governance/gatepolicy/{policy.pk}/change/",
        {
            "name": "Standard",
            "description": "Now with a priority",
            "is_active": "on",
            "priority": "5",
            "release_types": "[]",
            "risk_levels": "[]",
            "change_request": policy.change_request,
            "requirements": "[]",
        },
    )
    assert response.status_code == 302, response.content[:2000]
    (event,) = _events("gate_policy.update")
    assert event.actor.username == "ada"
    assert event.before == {"description": "", "priority": 0}
    assert event.after == {"description": "Now with a priority", "priority": 5}
    assert "priority" in event.reason


def test_a_freeze_window_added_and_deleted_in_the_admin_is_audited(admin_client):
    response = admin_client.post(
        "/admin/governance/freezewindow/add/",
        {
            "name": "Year end",
            "reason": "Books close",
            "kind": "once",
            "tz": "UTC",
            "start_0": "2031-12-20",
            "start_1": "00:00:00",
            "end_0": "2032-01-03",
            "end_1": "00:00:00",
            "is_active": "on",
        },
    )
    assert response.status_code == 302, response.content[:3000]
    window = FreezeWindow.objects.get(name="Year end")
    (created,) = _events("freeze.create")
    assert created.after["name"] == "Year end" and created.target_id == str(window.pk)
    assert window.created_by.username == "ada"
    response = admin_client.post(
        f"/admin/governance/freezewindow/{window.pk}/delete/", {"post": "yes"}
    )
    assert response.status_code == 302
    (deleted,) = _events("freeze.delete")
    assert deleted.before["name"] == "Year end"


def test_quorum_policies_deleted_in_bulk_are_audited_one_by_one(admin_client):
    rows = [
        QuorumPolicyRecord.objects.create(change_type=kind, min_votes=2)
        for kind in ("normal", "emergency")
    ]
    response = admin_client.post(
        "/admin/governance/quorumpolicyrecord/",
        {
            "action": "delete_selected",
            "_selected_action": [r.pk for r in rows],
            "post": "yes",
        },
    )
    assert response.status_code == 302
    assert len(_events("quorum_policy.delete")) == 2


def test_saving_without_a_change_writes_no_event(admin_client):
    record = QuorumPolicyRecord.objects.create(change_type="normal", min_votes=2)
    response = admin_client.post(
        f"/admin/governance/quorumpolicyrecord/{record.pk}/change/",
        {
            "change_type": "normal",
            "min_votes": "2",
            "approval_share": str(record.approval_share),
            "mandatory_roles": "[]",
            "veto": "on",
        },
    )
    assert response.status_code == 302, response.content[:2000]
    assert _events("quorum_policy.update") == []
