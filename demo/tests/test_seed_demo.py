"""seed_demo loads a realistic portfolio through the services and is idempotent."""

from __future__ import annotations

import io

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db.models import Count
from django.utils import timezone

from core.models import AuditEvent
from core.roles import Role, has_role
from demo import delivery, portfolio
from demo import governance as demo_governance
from demo.seed import seed
from demo.users import DEMO_PASSWORD, DEMO_USERS
from releases.choices import ReleaseState
from releases.models import Environment, Release, ReleaseRisk, RollbackPlan, ScopeItem, Service

pytestmark = pytest.mark.django_db


def _counts() -> dict[str, int]:
    return {
        "users": get_user_model().objects.count(),
        "services": Service.objects.count(),
        "environments": Environment.objects.count(),
        "releases": Release.objects.count(),
        "scope": ScopeItem.objects.count(),
        "risks": ReleaseRisk.objects.count(),
        "plans": RollbackPlan.objects.count(),
        "audit": AuditEvent.objects.count(),
    }


def test_seed_demo_twice_changes_nothing_and_covers_every_state():
    out = io.StringIO()
    call_command("seed_demo", stdout=out)
    first = _counts()
    call_command("seed_demo", stdout=io.StringIO())
    assert _counts() == first

    assert first["services"] == 8 and first["environments"] == 4
    assert 35 <= first["releases"] <= 45
    states = set(Release.objects.values_list("state", flat=True))
    assert states == set(ReleaseState.values)
    assert Environment.objects.get(is_production=True).slug == "production"
    assert set(Service.objects.values_list("team__name", flat=True)) == {
        "Payments",
        "Platform",
        "Identity",
    }

    # The history is genuine: one audit event per transition, at its historical moment.
    closed = Release.objects.filter(state=ReleaseState.CLOSED).first()
    actions = list(AuditEvent.objects.filter(release_id=closed.pk).values_list("action", flat=True))
    assert actions[0] == "release.create" and actions[-1] == "release.close"
    for name in ("plan", "start_work", "request_approval", "approve", "start_deployment"):
        assert f"release.{name}" in actions
    times = list(
        AuditEvent.objects.filter(release_id=closed.pk).values_list("created_at", flat=True)
    )
    assert times == sorted(times)
    assert times[0] < timezone.now() - timezone.timedelta(days=20)
    assert not AuditEvent.objects.filter(created_at__gt=timezone.now()).exists()
    oldest = Release.objects.order_by("window_start").first().window_start
    newest = Release.objects.order_by("-window_start").first().window_start
    assert oldest < timezone.now() - timezone.timedelta(days=150)
    assert newest > timezone.now() + timezone.timedelta(days=60)

    # Releases that were planned carry what planning needs.
    planned_or_later = Release.objects.exclude(state=ReleaseState.DRAFT).filter(
        planned_at__isnull=False
    )
    assert not planned_or_later.filter(rollback_plan__isnull=True).exists()
    assert not planned_or_later.annotate(n=Count("scope_items")).filter(n=0).exists()
    assert ScopeItem.objects.filter(external_key__regex=r"^(PAY|PLAT|IAM)-\d+$").exists()

    # One login per role, all with the documented password.
    users = {u.username: u for u in get_user_model().objects.all()}
    assert users["admin"].is_superuser
    assert has_role(users["rita"], Role.RELEASE_MANAGER)
    assert users["rita"].teams.get().name == "Payments"
    assert has_role(users["chris"], Role.CAB_CHAIR) and has_role(users["chris"], Role.CAB_MEMBER)
    for username, *_ in DEMO_USERS:
        assert users[username].check_password(DEMO_PASSWORD), username
    assert "releasegate-demo" in out.getvalue() and "stella" in out.getvalue()


def test_governance_is_resolved_before_governed_transitions(monkeypatch):
    calls: list[tuple[str, str]] = []
    promote = demo_governance._promote

    def resolve(release, name):
        calls.append((release.name, name))
        if name == "start_deployment":
            # What CD reports before production (promotion order), not governance.
            promote(release)

    monkeypatch.setattr(demo_governance, "resolve", resolve)
    monkeypatch.setattr(
        portfolio, "PORTFOLIO", [p for p in portfolio.PORTFOLIO if p.name == "Gateway mTLS"]
    )
    # Without the governance reference data (gate policies…) nothing else blocks the
    # transitions, and the parts that follow the releases are not under test here.
    monkeypatch.setattr(demo_governance, "ensure_reference_data", lambda: None)
    monkeypatch.setattr(demo_governance, "after_seed", lambda: None)
    monkeypatch.setattr(delivery, "delivery_history", lambda: None)
    result = seed()
    assert (result.created, result.skipped) == (1, 0)
    assert [name for _, name in calls] == ["request_approval", "approve", "start_deployment"]
