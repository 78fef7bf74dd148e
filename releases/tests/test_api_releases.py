"""The releases API: reads, writes, transitions, errors and visibility."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from core.models import AuditEvent
from pipelines.services import api_token_create
from releases.choices import ReleaseState
from releases.models import Release
from tests.factories import ReleaseFactory, force_state, make_ready


@pytest.fixture
def api():
    return APIClient()


def as_user(api, user):
    api.force_login(user)
    return api


@pytest.fixture
def release(service, release_manager):
    return make_ready(ReleaseFactory(services=[service], owner=release_manager))


@pytest.mark.django_db
def test_list_filters_by_state_service_and_window(api, service, other_service, viewer):
    now = timezone.now()
    a = ReleaseFactory(services=[service], window_start=now + timedelta(days=1))
    b = ReleaseFactory(services=[other_service], window_start=now + timedelta(days=40))
    force_state(b, ReleaseState.PLANNED)
    as_user(api, viewer)
    ids = lambda resp: {r["id"] for r in resp.json()["results"]}  # noqa: E731
    assert ids(api.get("/api/v1/releases/")) == {a.id, b.id}
    assert ids(api.get("/api/v1/releases/?state=planned")) == {b.id}
    assert ids(api.get("/api/v1/releases/?service=payments-api")) == {a.id}
    to = (now + timedelta(days=10)).isoformat()
    assert ids(api.get("/api/v1/releases/", {"window_to": to})) == {a.id}
    assert api.get("/api/v1/releases/?state=nonsense").status_code == 400


@pytest.mark.django_db
def test_list_query_count_does_not_grow_with_releases(
    api, service, viewer, django_assert_max_num_queries
):
    as_user(api, viewer)
    ReleaseFactory.create_batch(3, services=[service])
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as small:
        assert api.get("/api/v1/releases/").status_code == 200
    ReleaseFactory.create_batch(30, services=[service])
    with CaptureQueriesContext(connection) as large:
        body = api.get("/api/v1/releases/").json()
    assert body["count"] == 33
    assert len(large.captured_queries) == len(small.captured_queries)


@pytest.mark.django_db
def test_create_release_returns_201_and_audits(api, service, release_manager):
    as_user(api, release_manager)
    start = timezone.now() + timedelta(days=3)
    resp = api.post(
        "/api/v1/releases/",
        {
            "name": "Payments spring",
            "version": "2.4.0",
            "release_type": "minor",
            "services": ["payments-api"],
            "window_start": start.isoformat(),
            "window_end": (start + timedelta(hours=2)).isoformat(),
        },
        format="json",
    )
    assert resp.status_code == 201, resp.json()
    body = resp.json()
    assert body["state"] == "draft" and body["owner"] == "rita"
    assert AuditEvent.objects.get(action="release.create").after["services"] == ["payments-api"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"version": "1"}, "name"),
        ({"name": "x", "version": "1", "release_type": "huge"}, "release_type"),
        ({"name": "x", "version": "1", "release_type": "minor", "services": ["nope"]}, "services"),
        (
            {
                "name": "x",
                "version": "1",
                "release_type": "minor",
                "services": ["payments-api"],
                "window_start": "2026-12-01T10:00:00Z",
                "window_end": "2026-12-01T09:00:00Z",
            },
            "window_end",
        ),
        (
            {
                "name": "x",
                "version": "1",
                "release_type": "minor",
                "services": ["payments-api"],
                "window_start": "not a date",
            },
            "window_start",
        ),
    ],
)
def test_bad_input_gets_field_errors_and_writes_nothing(
    api, service, release_manager, payload, field
):
    as_user(api, release_manager)
    resp = api.post("/api/v1/releases/", payload, format="json")
    assert resp.status_code == 400
    body = resp.json()
    assert field in body["errors"] and body["detail"].startswith("Invalid input")
    assert not Release.objects.exists() and not AuditEvent.objects.exists()


@pytest.mark.django_db
def test_malformed_json_is_a_400_not_a_500(api, release_manager):
    as_user(api, release_manager)
    resp = api.post("/api/v1/releases/", "{not json", content_type="application/json")
    assert resp.status_code == 400
    assert "detail" in resp.json()


@pytest.mark.django_db
def test_release_manager_cannot_create_for_another_teams_service(
    api, other_service, release_manager
):
    as_user(api, release_manager)
    resp = api.post(
        "/api/v1/releases/",
        {"name": "x", "version": "1", "release_type": "minor", "services": ["identity-api"]},
        format="json",
    )
    assert resp.status_code == 403
    assert "team owns" in resp.json()["detail"]


@pytest.mark.django_db
def test_transition_endpoint_moves_the_release(api, release, release_manager):
    as_user(api, release_manager)
    resp = api.post(f"/api/v1/releases/{release.pk}/plan/", {}, format="json")
    assert resp.status_code == 200, resp.json()
    assert resp.json()["state"] == "planned"
    assert "start_work" in resp.json()["available_transitions"]


@pytest.mark.django_db
def test_transition_from_wrong_state_is_409_with_message(api, release, release_manager):
    as_user(api, release_manager)
    resp = api.post(f"/api/v1/releases/{release.pk}/close/", {}, format="json")
    assert resp.status_code == 409
    assert resp.json()["code"] == "transition_not_allowed"
    assert "draft" in resp.json()["detail"]


@pytest.mark.django_db
def test_unmet_requirements_are_409_with_blockers(api, service, release_manager):
    release = ReleaseFactory(services=[service], owner=release_manager)
    as_user(api, release_manager)
    resp = api.post(f"/api/v1/releases/{release.pk}/plan/", {}, format="json")
    assert resp.status_code == 409
    assert {b["code"] for b in resp.json()["blockers"]} == {"no_scope", "no_rollback_plan"}


@pytest.mark.django_db
def test_cancel_without_reason_is_400(api, release, release_manager):
    as_user(api, release_manager)
    resp = api.post(f"/api/v1/releases/{release.pk}/cancel/", {"reason": ""}, format="json")
    assert resp.status_code == 400
    assert "reason" in resp.json()["detail"]


@pytest.mark.django_db
def test_viewer_reads_but_cannot_transition(api, release, viewer):
    as_user(api, viewer)
    assert api.get(f"/api/v1/releases/{release.pk}/").status_code == 200
    resp = api.post(f"/api/v1/releases/{release.pk}/plan/", {}, format="json")
    assert resp.status_code == 403


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("method", "suffix"),
    [("get", ""), ("get", "audit-events/"), ("get", "blockers/"), ("post", "plan/")],
)
def test_outsider_gets_404(api, release, outsider, method, suffix):
    as_user(api, outsider)
    resp = getattr(api, method)(f"/api/v1/releases/{release.pk}/{suffix}", {}, format="json")
    assert resp.status_code == 404
    assert api.get("/api/v1/releases/").json()["count"] == 0


@pytest.mark.django_db
def test_anonymous_gets_401(api, release):
    assert api.get("/api/v1/releases/").status_code in (401, 403)


@pytest.mark.django_db
def test_audit_events_endpoint_lists_the_timeline(api, release, release_manager):
    as_user(api, release_manager)
    api.post(f"/api/v1/releases/{release.pk}/plan/", {}, format="json")
    api.patch(f"/api/v1/releases/{release.pk}/", {"name": "Renamed"}, format="json")
    events = api.get(f"/api/v1/releases/{release.pk}/audit-events/").json()["results"]
    assert [e["action"] for e in events] == ["release.plan", "release.update"]
    assert events[1]["before"] == {"name": release.name}
    assert events[1]["after"] == {"name": "Renamed"}
    assert events[0]["actor"] == "rita"


@pytest.mark.django_db
def test_token_with_read_scope_sees_only_its_services(api, service, other_service):
    mine = ReleaseFactory(services=[service])
    ReleaseFactory(services=[other_service])
    _, raw = api_token_create(
        actor=None, name="ci", service_slugs=["payments-api"], scopes=["releases:read"]
    )
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    body = api.get("/api/v1/releases/").json()
    assert [r["id"] for r in body["results"]] == [mine.id]


@pytest.mark.django_db
def test_schema_and_docs_are_served(api, viewer):
    as_user(api, viewer)
    schema = api.get("/api/schema/")
    assert schema.status_code == 200
    assert b"/api/v1/releases/{id}/plan/" in schema.content
    docs = api.get("/api/docs/")
    assert docs.status_code == 200
    assert b"swagger-ui" in docs.content and b"cdn" not in docs.content.lower()


@pytest.mark.django_db
@pytest.mark.parametrize("field", ["window_end", "code_freeze_at", "target_date"])
def test_dates_outside_1970_to_2999_are_a_400(api, service, release_manager, field):
    as_user(api, release_manager)
    payload = {
        "name": "Far",
        "version": "1",
        "release_type": "minor",
        "services": ["payments-api"],
        field: "9999-12-31" if field == "target_date" else "9999-12-31T12:00:00Z",
    }
    resp = api.post("/api/v1/releases/", payload, format="json")
    assert resp.status_code == 400
    assert "between 1970-01-01 and 2999-12-31" in str(resp.json()["errors"][field])
