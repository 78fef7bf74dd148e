"""Governance fixtures: a policy with automated and manual gates, releases at each step."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from core.roles import Role
from governance.models import GatePolicy, QuorumPolicyRecord
from releases import services as release_services
from tests.factories import ReleaseFactory, UserFactory, force_state, make_ready

REQUIREMENTS = [
    {"stage": "pre_approval", "kind": "ci_green"},
    {"stage": "pre_approval", "kind": "tests_passed"},
    {"stage": "pre_approval", "kind": "no_critical_vulns"},
    {"stage": "pre_approval", "kind": "coverage_min", "threshold": 80},
    {"stage": "pre_approval", "kind": "manual", "role": "security_lead"},
    {"stage": "pre_approval", "kind": "manual", "role": "qa_lead"},
    {"stage": "pre_deployment", "kind": "rollback_rehearsed"},
    {"stage": "post_deployment", "kind": "manual", "role": "operations"},
]


@pytest.fixture
def policy(db):
    """Applies to every release; asks for a normal (CAB) change request."""
    return GatePolicy.objects.create(
        name="Standard", requirements=REQUIREMENTS, change_request="normal", priority=1
    )


@pytest.fixture
def quorum_policy(db):
    """Two votes, simple majority; the security lead is mandatory (veto) for high risk."""
    return QuorumPolicyRecord.objects.create(
        change_type="normal", min_votes=2, approval_share="0.5", mandatory_roles=["security_lead"]
    )


@pytest.fixture
def operations(db):
    """Signs off operations gates; manages freezes and decides freeze exceptions."""
    return UserFactory(username="omar", roles=[Role.OPERATIONS])


@pytest.fixture
def cab_member_2(db):
    """A second CAB member."""
    return UserFactory(username="cora", roles=[Role.CAB_MEMBER])


@pytest.fixture
def make_release(service, release_manager):
    """Build a ready release (window open now) and drive it to ``state`` through services."""

    def build(state: str = "planned", **kwargs):
        kwargs.setdefault("window_start", timezone.now() - timedelta(hours=1))
        release = make_ready(ReleaseFactory(services=[service], owner=release_manager, **kwargs))
        release = release_services.release_plan(release=release, actor=release_manager)
        if state == "planned":
            return release
        release = release_services.release_start_work(release=release, actor=release_manager)
        if state == "in_progress":
            return release
        return force_state(release, state)

    return build
