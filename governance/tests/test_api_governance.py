"""Governance over REST: the same services behind JSON endpoints, refusals as clear 4xx."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from core.roles import Role
from governance import services
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def api(user) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


def test_gate_checks_are_listed_and_filtered(policy, make_release, viewer):
    release = make_release("in_progress")
    body = api(viewer).get(f"/api/v1/gate-checks/?release={release.pk}&kind=manual").json()
    assert body["count"] == 3
    assert {g["role"] for g in body["results"]} == {"security_lead", "qa_lead", "operations"}
    assert api(UserFactory(username="nobody")).get("/api/v1/gate-checks/").json()["count"] == 0


def test_sign_off_over_the_api(policy, make_release, security_approver):
    gate = make_release("in_progress").gate_checks.get(role="security_lead")
    response = api(security_approver).post(
        f"/api/v1/gate-checks/{gate.pk}/sign-off/", {"comment": "Scan clean"}, format="json"
    )
    assert response.status_code == 200, response.json()
    assert response.json()["status"] == "passed"
    assert response.json()["decided_by"] == "sam"
    again = api(UserFactory(username="sue", roles=[Role.SECURITY_LEAD])).post(
        f"/api/v1/gate-checks/{gate.pk}/sign-off/", {}, format="json"
    )
    assert again.status_code == 409
    assert "already signed off by sam" in again.json()["detail"]


def test_separation_of_duties_is_refused_over_the_api(policy, make_release, release_manager):
    release_manager.groups.add(*UserFactory(roles=[Role.SECURITY_LEAD]).groups.all())
    gate = make_release("in_progress").gate_checks.get(role="security_lead")
    response = api(release_manager).post(
        f"/api/v1/gate-checks/{gate.pk}/sign-off/", {}, format="json"
    )
    assert response.status_code == 403
    assert "Separation of duties" in response.json()["detail"]


def test_waive_needs_a_justification(policy, make_release, cab_chair):
    gate = make_release("in_progress").gate_checks.get(role="qa_lead")
    response = api(cab_chair).post(f"/api/v1/gate-checks/{gate.pk}/waive/", {}, format="json")
    assert response.status_code == 400
    assert "justification" in response.json()["errors"]
    ok = api(cab_chair).post(
        f"/api/v1/gate-checks/{gate.pk}/waive/", {"justification": "QA on leave"}, format="json"
    )
    assert ok.json()["status"] == "waived"


def test_change_request_lifecycle_and_votes_over_the_api(
    quorum_policy, release_manager, cab_member, cab_chair
):
    now = timezone.now()
    created = api(release_manager).post(
        "/api/v1/change-requests/",
        {
            "title": "Rotate keys",
            "reason": "Expiry",
            "implementation_plan": "Rotate",
            "backout_plan": "Restore",
            "window_start": (now + timedelta(days=1)).isoformat(),
            "window_end": (now + timedelta(days=1, hours=1)).isoformat(),
        },
        format="json",
    )
    assert created.status_code == 201, created.json()
    pk = created.json()["id"]
    assert api(release_manager).post(f"/api/v1/change-requests/{pk}/submit/").json()["state"] == (
        "submitted"
    )
    own = api(release_manager).post(
        f"/api/v1/change-requests/{pk}/vote/", {"choice": "approve"}, format="json"
    )
    assert own.status_code == 403
    api(cab_member).post(
        f"/api/v1/change-requests/{pk}/vote/", {"choice": "approve"}, format="json"
    )
    tally = api(cab_member).get(f"/api/v1/change-requests/{pk}/tally/").json()
    assert tally["outcome"] == "pending" and tally["approves"] == 1
    api(cab_chair).post(f"/api/v1/change-requests/{pk}/vote/", {"choice": "approve"}, format="json")
    assert api(cab_member).get(f"/api/v1/change-requests/{pk}/").json()["state"] == "approved"
    votes = api(cab_member).get(f"/api/v1/votes/?change_request={pk}").json()
    assert votes["count"] == 2


def test_meetings_over_the_api(quorum_policy, cab_chair, cab_member):
    when = (timezone.now() + timedelta(days=1)).isoformat()
    created = api(cab_chair).post(
        "/api/v1/cab-meetings/", {"title": "Weekly CAB", "scheduled_at": when}, format="json"
    )
    assert created.status_code == 201
    assert (
        api(cab_member)
        .post("/api/v1/cab-meetings/", {"title": "x", "scheduled_at": when}, format="json")
        .status_code
        == 403
    )
    pk = created.json()["id"]
    assert api(cab_chair).post(f"/api/v1/cab-meetings/{pk}/build-agenda/").status_code == 200
    assert api(cab_chair).post(f"/api/v1/cab-meetings/{pk}/close/").json()["state"] == "closed"


def test_freeze_windows_and_exceptions_over_the_api(
    operations, production, make_release, release_manager, cab_chair
):
    response = api(operations).post(
        "/api/v1/freeze-windows/",
        {
            "name": "Now",
            "kind": "once",
            "tz": "Europe/Berlin",
            "start": (timezone.now() - timedelta(hours=1)).isoformat(),
            "end": (timezone.now() + timedelta(hours=4)).isoformat(),
            "environments": ["production"],
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    assert response.json()["description"].startswith("Once:")
    release = make_release("in_progress")
    blocked = api(release_manager).get(f"/api/v1/releases/{release.pk}/why-blocked/").json()
    assert blocked["transitions"][0]["transition"] == "request_approval"
    exception = api(release_manager).post(
        "/api/v1/freeze-exceptions/",
        {"freeze": response.json()["id"], "release": release.pk, "justification": "Outage fix"},
        format="json",
    )
    assert exception.status_code == 201, exception.json()
    decided = api(cab_chair).post(
        f"/api/v1/freeze-exceptions/{exception.json()['id']}/approve/", {}, format="json"
    )
    assert decided.json()["state"] == "approved"


def test_bad_freeze_rule_is_a_400_not_a_500(operations):
    response = api(operations).post(
        "/api/v1/freeze-windows/",
        {
            "name": "Bad",
            "kind": "cron",
            "tz": "Mars/Olympus",
            "cron": "0 16 * * FRI",
            "duration": "10:00:00",
        },
        format="json",
    )
    assert response.status_code == 400
    assert "time zone" in response.json()["detail"]


def test_risk_endpoints(make_release, release_manager, viewer):
    release = make_release("planned")
    body = api(viewer).get(f"/api/v1/releases/{release.pk}/risk/").json()
    assert len(body["factors"]) == 7 and body["score"] == sum(
        f["contribution"] for f in body["factors"]
    )
    response = api(release_manager).post(
        f"/api/v1/releases/{release.pk}/risk/override/",
        {"level": "high", "justification": "Black Friday"},
        format="json",
    )
    assert response.json()["level"] == "high"


def test_schema_documents_the_governance_endpoints(viewer):
    schema = api(viewer).get("/api/schema/?format=json").json()
    paths = schema["paths"]
    for path in [
        "/api/v1/gate-checks/{id}/sign-off/",
        "/api/v1/gate-checks/{id}/waive/",
        "/api/v1/change-requests/{id}/vote/",
        "/api/v1/cab-meetings/{id}/close/",
        "/api/v1/freeze-windows/",
        "/api/v1/freeze-exceptions/{id}/approve/",
        "/api/v1/releases/{id}/why-blocked/",
    ]:
        assert path.replace("{id}", "{pk}") in paths or path in paths, path


def test_drafts_can_be_deleted_and_votes_withdrawn(quorum_policy, release_manager, cab_member):
    now = timezone.now()
    body = {
        "title": "Draft",
        "reason": "r",
        "implementation_plan": "i",
        "backout_plan": "b",
        "window_start": (now + timedelta(days=1)).isoformat(),
        "window_end": (now + timedelta(days=1, hours=1)).isoformat(),
    }
    draft = api(release_manager).post("/api/v1/change-requests/", body, format="json").json()
    assert api(release_manager).delete(f"/api/v1/change-requests/{draft['id']}/").status_code == 204
    pk = api(release_manager).post("/api/v1/change-requests/", body, format="json").json()["id"]
    api(release_manager).post(f"/api/v1/change-requests/{pk}/submit/")
    assert api(release_manager).delete(f"/api/v1/change-requests/{pk}/").status_code == 409
    api(cab_member).post(
        f"/api/v1/change-requests/{pk}/vote/", {"choice": "abstain"}, format="json"
    )
    assert api(cab_member).post(f"/api/v1/change-requests/{pk}/withdraw-vote/").status_code == 204
    assert api(cab_member).get(f"/api/v1/votes/?change_request={pk}").json()["count"] == 0


def test_withdraw_over_the_api(quorum_policy, release_manager):
    pk = (
        api(release_manager)
        .post("/api/v1/change-requests/", {"title": "x"}, format="json")
        .json()["id"]
    )  # noqa: E501
    assert (
        api(release_manager)
        .post(f"/api/v1/change-requests/{pk}/withdraw/", {}, format="json")
        .status_code
        == 400
    )  # noqa: E501
    response = api(release_manager).post(
        f"/api/v1/change-requests/{pk}/withdraw/", {"reason": "Not needed"}, format="json"
    )
    assert response.json()["state"] == "closed"


def _token_client(service, scopes) -> APIClient:
    from pipelines.services import api_token_create

    _, raw = api_token_create(
        actor=None, name=f"t-{'-'.join(scopes)}", service_slugs=[service.slug], scopes=scopes
    )
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


def test_governance_configuration_is_read_by_roles_and_reading_tokens_only(
    policy, service, viewer, outsider
):
    from governance.models import FreezeWindow

    FreezeWindow.objects.create(
        name="Year end", start=timezone.now(), end=timezone.now() + timedelta(days=1)
    )
    paths = ["/api/v1/gate-policies/", "/api/v1/freeze-windows/"]
    readers = [api(viewer), _token_client(service, ["releases:read"])]
    others = [api(outsider), _token_client(service, ["runs:write", "deployments:write"])]
    for path in paths:
        for client in readers:
            assert client.get(path).json()["count"] == 1, path
        for client in others:
            assert client.get(path).json()["count"] == 0, path


FAR = "9999-12-31T12:00:00Z"


@pytest.mark.parametrize(
    ("url", "payload", "field"),
    [
        ("/api/v1/change-requests/", {"title": "x", "window_end": FAR}, "window_end"),
        ("/api/v1/cab-meetings/", {"title": "x", "scheduled_at": FAR}, "scheduled_at"),
        (
            "/api/v1/freeze-windows/",
            {"name": "x", "kind": "once", "tz": "UTC", "start": FAR, "end": FAR},
            "end",
        ),
    ],
)
def test_dates_outside_1970_to_2999_are_a_400(url, payload, field, operations, cab_chair):
    user = cab_chair if "cab" in url or "change" in url else operations
    response = api(user).post(url, payload, format="json")
    assert response.status_code == 400, response.json()
    assert "between 1970-01-01 and 2999-12-31" in str(response.json()["errors"][field])


def test_a_freeze_exception_expiring_in_9999_is_a_400(
    operations, production, make_release, release_manager
):
    window = services.freeze_window_create(
        actor=operations,
        name="Now",
        kind="once",
        tz="UTC",
        start=timezone.now() - timedelta(hours=1),
        end=timezone.now() + timedelta(hours=4),
    )
    release = make_release("in_progress")
    response = api(release_manager).post(
        "/api/v1/freeze-exceptions/",
        {"freeze": window.pk, "release": release.pk, "justification": "x", "expires_at": FAR},
        format="json",
    )
    assert response.status_code == 400
    assert "expires_at" in response.json()["errors"]


def test_a_meeting_in_the_past_is_a_400(cab_chair):
    when = (timezone.now() - timedelta(days=1)).isoformat()
    response = api(cab_chair).post(
        "/api/v1/cab-meetings/", {"title": "Weekly CAB", "scheduled_at": when}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["errors"]["scheduled_at"] == ["Must not be in the past."]
