"""A rollback during a freeze, end to end over HTTP: the deployment check and the CD report are
refused without break-glass, allowed with it, refused again after its expiry; closing the
release waits for the post-implementation review, which the requester cannot approve."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from core.models import AuditEvent
from governance import services as governance
from governance.models import BreakGlass
from releases.models import Release
from releases.postrelease import services as postrelease
from tests.concurrency import race
from tests.factories import ReleaseFactory, force_state

from .conftest import CI, make_token

pytestmark = pytest.mark.django_db

CHECKS = "/api/v1/deployment-checks/"
REASON = "Roll back to 2.3.1: checkout 500s for 12% of EU customers"


@pytest.fixture
def freeze(operations, production):
    now = timezone.now()
    return governance.freeze_window_create(
        actor=operations,
        name="Year-end freeze",
        kind="once",
        tz="UTC",
        start=now - timedelta(hours=1),
        end=now + timedelta(days=2),
        environments=[production],
    )


@pytest.fixture
def operations(db):
    from core.roles import Role
    from tests.factories import UserFactory

    return UserFactory(username="omar", roles=[Role.OPERATIONS])


@pytest.fixture
def rollback(service, release_manager):
    """The rollback release: 2.3.1 (the last good build), approved, window open."""
    now = timezone.now()
    release = ReleaseFactory(
        services=[service],
        owner=release_manager,
        name="Rollback checkout",
        version="2.3.1",
        window_start=now - timedelta(hours=1),
        window_end=now + timedelta(hours=6),
    )
    return force_state(release, "approved")


@pytest.fixture
def cd(service):
    """The CD job: asks before it deploys, reports what it deployed."""
    return CI(make_token("argo", [service], scopes=["deployments:check", "deployments:write"]))


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def ask(cd) -> dict:
    response = cd.post(
        CHECKS, {"service": "payments-api", "version": "2.3.1", "environment": "production"}
    )
    assert response.status_code == 201, response.json()
    return response.json()


def report(cd, external_id: str, status: str = "succeeded"):
    return cd.deployment(
        {
            "service": "payments-api",
            "environment": "production",
            "version": "2.3.1",
            "status": status,
            "provider": "argo-cd",
            "external_id": external_id,
        }
    )


def break_glass(user, release, **overrides):
    body = {
        "kind": "rollback",
        "reason": REASON,
        "expires_at": (timezone.now() + timedelta(minutes=30)).isoformat(),
    }
    body.update(overrides)
    return client_for(user).post(f"/api/v1/releases/{release.pk}/break-glass/", body, format="json")


def test_a_rollback_during_a_freeze_with_break_glass_then_closing_waits_for_the_review(
    freeze, rollback, production, cd, release_manager, administrator, time_machine
):
    start = timezone.now()
    time_machine.move_to(start, tick=False)

    # Without break-glass: the freeze refuses the rollback, on the check and the report.
    answer = ask(cd)
    assert answer["decision"] != "allow"
    assert [b["code"] for b in answer["blockers"]] == ["freeze"]
    assert answer["break_glass"] == []
    assert report(cd, "rb-1", "in_progress").status_code == 409

    # With it: the check allows (and says why), the page agrees.
    created = break_glass(release_manager, rollback)
    assert created.status_code == 201, created.json()
    glass = created.json()
    assert glass["active"] and glass["review_state"] == "pending"
    answer = ask(cd)
    assert answer["decision"] == "allow" and answer["blockers"] == []
    (note,) = answer["break_glass"]
    assert note["id"] == glass["id"] and note["lifts"] == ["Year-end freeze"]
    read_back = client_for(administrator).get(f"{CHECKS}{answer['id']}/").json()
    assert read_back["break_glass"] == answer["break_glass"]
    page = client_for(administrator).get(f"/api/v1/releases/{rollback.pk}/why-blocked/").json()
    assert page["blocked"] is False and page["break_glass"][0]["id"] == glass["id"]

    # After its expiry: refused again.
    time_machine.move_to(start + timedelta(minutes=31), tick=False)
    answer = ask(cd)
    assert [b["code"] for b in answer["blockers"]] == ["freeze"]
    assert answer["break_glass"] == []
    assert report(cd, "rb-2", "in_progress").status_code == 409
    # The check answered while it was in force still reads back as answered.
    assert (
        client_for(administrator).get(f"{CHECKS}{read_back['id']}/").json()["break_glass"]
        == (read_back["break_glass"])
    )

    # A new break-glass (the expired one is closed first, audited); the CD report is accepted.
    assert break_glass(release_manager, rollback).status_code == 201
    assert ask(cd)["decision"] == "allow"
    accepted = report(cd, "rb-3")
    assert accepted.status_code in (200, 201), accepted.json()
    rollback.refresh_from_db()
    assert rollback.state == "deployed"
    assert AuditEvent.objects.filter(action="break_glass.expire").count() == 1

    # Closing waits for both reviews; the requester cannot approve their own.
    governance.risk_override(
        release=rollback, actor=administrator, level="low", justification="A plain rollback."
    )
    close = f"/api/v1/releases/{rollback.pk}/close/"
    refused = client_for(release_manager).post(close, {}, format="json")
    assert refused.status_code == 409
    assert "break_glass_review" in {b["code"] for b in refused.json()["blockers"]}
    for item in rollback.validation_items.all():  # the checklist the deployment opened
        postrelease.validation_item_complete(item=item, actor=release_manager)
    for pk in BreakGlass.objects.values_list("pk", flat=True):
        url = f"/api/v1/releases/{rollback.pk}/break-glass/{pk}/review/"
        own = client_for(release_manager).post(url, {"note": "Fine by me"}, format="json")
        assert own.status_code == 403 and "Separation of duties" in own.json()["detail"]
        done = client_for(administrator).post(
            url, {"note": "Rollback was right; PAY-88 fixed forward."}, format="json"
        )
        assert done.status_code == 200 and done.json()["review_state"] == "approved"
    closed = client_for(release_manager).post(close, {}, format="json")
    assert closed.status_code == 200, closed.json()
    assert Release.objects.get(pk=rollback.pk).state == "closed"


@pytest.mark.parametrize("persona", ["qa_lead", "viewer", "operations"])
def test_a_role_without_permission_gets_403_and_nothing_is_written(
    freeze, rollback, request, persona
):
    response = break_glass(request.getfixturevalue(persona), rollback)
    assert response.status_code == 403
    assert "release manager or an administrator" in response.json()["detail"]
    assert not BreakGlass.objects.exists()
    assert not AuditEvent.objects.filter(action__startswith="break_glass").exists()


def test_a_token_cannot_break_the_glass(freeze, rollback, service):
    token = make_token("reader", [service], scopes=["releases:read"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    response = client.post(
        f"/api/v1/releases/{rollback.pk}/break-glass/",
        {
            "kind": "hotfix",
            "reason": REASON,
            "expires_at": (timezone.now() + timedelta(hours=1)).isoformat(),
        },
        format="json",
    )
    assert response.status_code == 403
    assert not BreakGlass.objects.exists()


def test_bad_input_names_the_field(rollback, release_manager):
    response = break_glass(
        release_manager,
        rollback,
        reason="oops",
        expires_at=(timezone.now() + timedelta(hours=9)).isoformat(),
    )
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert "reason" in errors and "expires_at" in errors
    response = break_glass(release_manager, rollback, environment="moon")
    assert response.status_code == 400 and "environment" in response.json()["errors"]


def test_an_outsider_sees_no_release(rollback, outsider):
    assert break_glass(outsider, rollback).status_code == 404
    assert client_for(outsider).get(f"/api/v1/releases/{rollback.pk}/break-glass/").status_code == (
        404
    )


def test_the_reads_list_and_show_it(rollback, release_manager, viewer):
    glass = break_glass(release_manager, rollback).json()
    listed = client_for(viewer).get(f"/api/v1/releases/{rollback.pk}/break-glass/").json()
    assert [g["id"] for g in listed["results"]] == [glass["id"]]
    one = client_for(viewer).get(f"/api/v1/releases/{rollback.pk}/break-glass/{glass['id']}/")
    assert one.json()["reason"] == REASON and one.json()["requested_by"] == "rita"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_concurrent_double_submit_creates_one(require_postgres, service, release_manager):
    now = timezone.now()
    release = force_state(
        ReleaseFactory(
            services=[service],
            owner=release_manager,
            version="2.3.1",
            window_start=now - timedelta(hours=1),
            window_end=now + timedelta(hours=6),
        ),
        "approved",
    )

    def submit(_):
        return break_glass(release_manager, release).status_code

    codes = race(8, submit)
    assert sorted(codes) == [201] + [409] * 7
    assert BreakGlass.objects.filter(release=release).count() == 1
    assert AuditEvent.objects.filter(action="break_glass.create").count() == 1


def test_an_environment_bound_break_glass_allows_only_that_environment(
    freeze, rollback, production, service, release_manager
):
    from tests.factories import EnvironmentFactory

    EnvironmentFactory(name="production-us", slug="production-us", is_production=True)
    created = break_glass(release_manager, rollback, environment="production")
    assert created.status_code == 201 and created.json()["environment"] == "production"
    cd = CI(make_token("cd2", [service], scopes=["deployments:check"]))
    assert ask(cd)["decision"] == "allow"
    response = cd.post(
        CHECKS, {"service": "payments-api", "version": "2.3.1", "environment": "production-us"}
    )
    answer = response.json()
    assert [b["code"] for b in answer["blockers"]] == ["freeze"]
    assert answer["break_glass"] == []
    # The CD report agrees: production-us is refused, production accepted.
    writer = CI(make_token("cd3", [service], scopes=["deployments:write"]))
    body = {
        "service": "payments-api",
        "version": "2.3.1",
        "status": "in_progress",
        "provider": "argo-cd",
    }
    refused = writer.deployment({**body, "environment": "production-us", "external_id": "us-1"})
    assert refused.status_code == 409
    assert [b["code"] for b in refused.json()["blockers"]] == ["freeze"]
    accepted = writer.deployment({**body, "environment": "production", "external_id": "eu-1"})
    assert accepted.status_code in (200, 201), accepted.json()
    assert Release.objects.get(pk=rollback.pk).state == "deploying"


def test_the_freeze_windows_api_shows_what_lifts_them(
    freeze, rollback, release_manager, administrator
):
    glass = break_glass(release_manager, rollback).json()
    client = client_for(administrator)
    (window,) = client.get("/api/v1/freeze-windows/").json()["results"]
    (lifted,) = window["break_glass"]
    assert lifted["id"] == glass["id"] and lifted["release"] == rollback.pk
    assert lifted["release_name"] == "Rollback checkout 2.3.1" and lifted["requested_by"] == "rita"
    one = client.get(f"/api/v1/freeze-windows/{freeze.pk}/").json()
    assert one["break_glass"] == window["break_glass"]


def _queries(client, url: str) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return len(captured)


def test_the_lists_query_count_does_not_grow_with_the_rows(
    freeze, rollback, service, release_manager, administrator, operations
):
    client = client_for(administrator)
    now = timezone.now()

    def more(n: int) -> None:
        for i in range(n):
            window = governance.freeze_window_create(
                actor=operations,
                name=f"Freeze {i}",
                kind="once",
                tz="UTC",
                start=now - timedelta(hours=1),
                end=now + timedelta(hours=5),
                services=[service],
            )
            assert window.pk
            glass = governance.break_glass_create(
                release=rollback,
                actor=release_manager,
                kind="hotfix",
                reason=REASON,
                expires_at=now + timedelta(hours=1),
            )
            governance.break_glass_revoke(glass=glass, actor=release_manager, reason="next")

    assert break_glass(release_manager, rollback).status_code == 201
    lists = ["/api/v1/freeze-windows/", f"/api/v1/releases/{rollback.pk}/break-glass/"]
    for url in lists:  # warm the per-process caches (content types, roles)
        _queries(client, url)
    before = [_queries(client, url) for url in lists]
    BreakGlass.objects.filter(state="active").update(state="revoked", ended_at=now)
    more(4)
    assert break_glass(release_manager, rollback).status_code == 201
    assert [_queries(client, url) for url in lists] == before
