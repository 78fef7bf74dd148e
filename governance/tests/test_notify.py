"""Governance events reach people through the outbox, once per occurrence."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from core.models import Notification
from governance import notify, services
from governance.models import ChangeRequest, FreezeWindow, GateCheck
from releases import services as release_services

pytestmark = pytest.mark.django_db


def _pass_automated(release, actor):
    for gate in GateCheck.objects.filter(release=release, stage="pre_approval").exclude(
        kind="manual"
    ):
        services.gate_record_result(gate=gate, status="passed", actor=actor, detail="green")


def test_requesting_approval_tells_gate_approvers_and_the_cab(
    make_release, policy, quorum_policy, release_manager, security_approver, qa_lead, cab_member
):
    release = make_release("in_progress")
    _pass_automated(release, release_manager)
    release_services.release_request_approval(release=release, actor=release_manager)
    waiting = Notification.objects.filter(event="gate_waiting")
    assert {n.recipient.username for n in waiting} == {"sam", "quinn"}
    votes = Notification.objects.filter(event="vote_requested")
    assert {n.recipient.username for n in votes} == {"carla"}
    assert not Notification.objects.filter(recipient=release_manager).exists()


def test_producing_twice_notifies_once(make_release, policy, security_approver):
    release = make_release("in_progress")
    notify.gates_waiting(release=release)
    before = Notification.objects.count()
    assert before > 0
    assert notify.gates_waiting(release=release) == 0
    assert Notification.objects.count() == before


def test_overdue_review_reminds_owner_and_chair_once(release_manager, cab_chair):
    now = timezone.now()
    cr = services.change_request_create(
        actor=release_manager,
        title="Emergency key rotation",
        change_type="emergency",
        reason="Leak",
        impact="payments-api",
        implementation_plan="Rotate",
        backout_plan="Restore",
        test_plan="Smoke",
        window_start=now,
        window_end=now + timedelta(hours=1),
    )
    ChangeRequest.objects.filter(pk=cr.pk).update(
        state="implemented", review_due_at=now - timedelta(hours=1)
    )
    assert notify.reviews_overdue() >= 2
    people = set(
        Notification.objects.filter(event="review_overdue").values_list(
            "recipient__username", flat=True
        )
    )
    assert people == {"rita", "chris"}
    assert notify.reviews_overdue() == 0


def test_freeze_starting_within_a_day_warns_release_managers_once(release_manager):
    start = timezone.now() + timedelta(hours=3)
    FreezeWindow.objects.create(
        name="Year-end freeze",
        reason="Peak trading",
        kind="once",
        start=start,
        end=start + timedelta(days=2),
    )
    assert notify.freezes_starting() >= 1
    note = Notification.objects.get(event="freeze_starting", channel="in_app")
    assert note.recipient == release_manager and "Year-end freeze" in note.subject
    assert notify.freezes_starting() == 0
