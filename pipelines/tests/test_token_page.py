"""The CI token page: release managers create, see and revoke the tokens of their team's
services (administrators all), the secret is shown once, and nothing else leaks."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from core.models import AuditEvent
from pipelines.models import ApiToken
from pipelines.services import api_token_create

pytestmark = pytest.mark.django_db

URL = "/pipelines/tokens/"


def _create(client, **data):
    payload = {"name": "payments CI", "scopes": ["runs:write"], **data}
    return client.post(URL, payload)


def test_a_release_manager_creates_a_token_and_sees_its_secret_once(
    client, release_manager, service
):
    client.force_login(release_manager)
    response = _create(client, services=[service.pk])
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    token = ApiToken.objects.get(name="payments CI")
    page = response.content.decode()
    raw = page.split('id="new-token" class="feed-url" type="text" readonly value="')[1].split('"')[
        0
    ]
    assert raw.startswith("rg_") and raw.startswith(token.key_hint)
    assert list(token.services.all()) == [service] and token.scopes == ["runs:write"]
    assert AuditEvent.objects.filter(action="api_token.create", actor=release_manager).exists()
    # The secret works against the API, and the page never shows it again.
    api = client.get("/api/v1/pipeline-runs/", HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert api.status_code != 401
    assert raw not in client.get(URL).content.decode()


def test_tokens_of_other_teams_are_neither_listed_nor_grantable(
    client, release_manager, service, other_service
):
    api_token_create(actor=None, name="theirs", service_slugs=[other_service.slug])
    api_token_create(actor=None, name="ours", service_slugs=[service.slug])
    client.force_login(release_manager)
    page = client.get(URL).content.decode()
    assert "ours" in page and "theirs" not in page
    response = _create(client, name="sneaky", services=[other_service.pk])
    assert response.status_code == 400
    assert "Select a valid choice" in response.content.decode()
    assert not ApiToken.objects.filter(name="sneaky").exists()


def test_a_duplicate_name_is_a_field_error_and_keeps_the_input(client, release_manager, service):
    api_token_create(actor=None, name="payments CI", service_slugs=[service.slug])
    client.force_login(release_manager)
    response = _create(client, services=[service.pk])
    assert response.status_code == 400
    page = response.content.decode()
    assert "already exists" in page and 'value="payments CI"' in page
    assert ApiToken.objects.filter(name="payments CI").count() == 1


def test_revoking_shuts_the_pipeline_out_and_is_audited(client, release_manager, service):
    token, raw = api_token_create(actor=None, name="ours", service_slugs=[service.slug])
    client.force_login(release_manager)
    response = client.post(
        reverse("pipelines:token_revoke", args=[token.pk]), {"reason": "leaked in a log"}
    )
    assert response.status_code == 302
    token.refresh_from_db()
    assert token.revoked_at is not None
    event = AuditEvent.objects.get(action="api_token.revoke")
    assert event.reason == "leaked in a log" and event.actor == release_manager
    assert client.get("/api/v1/releases/", HTTP_AUTHORIZATION=f"Bearer {raw}").status_code == 401


def test_another_teams_token_cannot_be_revoked(client, release_manager, other_service):
    token, _ = api_token_create(actor=None, name="theirs", service_slugs=[other_service.slug])
    client.force_login(release_manager)
    response = client.post(reverse("pipelines:token_revoke", args=[token.pk]))
    assert response.status_code == 403
    token.refresh_from_db()
    assert token.revoked_at is None
    assert not AuditEvent.objects.filter(action="api_token.revoke").exists()


def test_people_without_the_role_get_403(client, viewer, qa_lead):
    for user in (viewer, qa_lead):
        client.force_login(user)
        assert client.get(URL).status_code == 403


def test_administrators_see_every_token(client, administrator, service, other_service):
    api_token_create(actor=None, name="theirs", service_slugs=[other_service.slug])
    api_token_create(actor=None, name="ours", service_slugs=[service.slug])
    client.force_login(administrator)
    page = client.get(URL).content.decode()
    assert "ours" in page and "theirs" in page


def test_the_page_reads_a_fixed_number_of_queries(client, release_manager, service):
    client.force_login(release_manager)

    def count() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert client.get(URL).status_code == 200
        return len(queries)

    api_token_create(actor=None, name="t0", service_slugs=[service.slug])
    few = count()
    for n in range(1, 8):
        api_token_create(actor=None, name=f"t{n}", service_slugs=[service.slug])
    assert count() == few


def test_the_nav_offers_tokens_only_to_those_who_manage_them(client, release_manager, viewer):
    client.force_login(release_manager)
    assert 'href="/pipelines/tokens/"' in client.get("/").content.decode()
    client.force_login(viewer)
    assert 'href="/pipelines/tokens/"' not in client.get("/").content.decode()


def test_the_service_refuses_a_person_outside_the_services_team(release_manager, other_service):
    from core.errors import PermissionDenied

    with pytest.raises(PermissionDenied, match="release manager of the service's team"):
        api_token_create(actor=release_manager, name="x", service_slugs=[other_service.slug])
    assert not ApiToken.objects.filter(name="x").exists()
