"""API tokens: hashed at rest, shown once, scoped to services and actions, revocable."""

from __future__ import annotations

import hashlib
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from core.models import AuditEvent
from pipelines.models import ApiToken
from tests.factories import ReleaseFactory


def create_token(*args) -> str:
    out = StringIO()
    call_command("create_api_token", *args, stdout=out)
    return out.getvalue().strip().splitlines()[-1]


@pytest.mark.django_db
def test_command_prints_the_token_once_on_its_last_line_and_stores_only_a_hash(service):
    raw = create_token("--name", "github-ci", "--service", "payments-api")
    token = ApiToken.objects.get(name="github-ci")
    assert raw.startswith("rg_") and len(raw) > 40
    assert token.key_hash == hashlib.sha256(raw.encode()).hexdigest()
    assert raw not in str(ApiToken.objects.values().get())
    assert sorted(token.scopes) == ["deployments:write", "runs:write"]
    assert list(token.services.values_list("slug", flat=True)) == ["payments-api"]
    assert AuditEvent.objects.filter(action="api_token.create").count() == 1


@pytest.mark.django_db
def test_command_refuses_unknown_service_and_duplicate_names(service):
    with pytest.raises(CommandError, match="Unknown service"):
        create_token("--name", "x", "--service", "nope")
    create_token("--name", "x", "--service", "payments-api")
    with pytest.raises(CommandError, match="already exists"):
        create_token("--name", "x", "--service", "payments-api")


@pytest.mark.django_db
def test_bearer_token_authenticates_and_records_last_use(service):
    ReleaseFactory(services=[service])
    raw = create_token("--name", "ci", "--service", "payments-api", "--scope", "releases:read")
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert api.get("/api/v1/releases/").json()["count"] == 1
    assert ApiToken.objects.get(name="ci").last_used_at is not None


@pytest.mark.django_db
def test_token_without_read_scope_sees_nothing(service):
    ReleaseFactory(services=[service])
    raw = create_token("--name", "ci", "--service", "payments-api", "--scope", "runs:write")
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert api.get("/api/v1/releases/").json()["count"] == 0


@pytest.mark.django_db
def test_token_cannot_transition_releases(service):
    release = ReleaseFactory(services=[service])
    raw = create_token("--name", "ci", "--service", "payments-api", "--scope", "releases:read")
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    resp = api.post(f"/api/v1/releases/{release.pk}/cancel/", {"reason": "x"}, format="json")
    assert resp.status_code == 403


@pytest.mark.django_db
@pytest.mark.parametrize("header", ["Bearer rg_wrong", "Bearer", "Bearer a b", "Bearer \xe9"])
def test_bad_tokens_are_401(service, header):
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=header)
    resp = api.get("/api/v1/releases/")
    assert resp.status_code == 401
    assert "detail" in resp.json()


@pytest.mark.django_db
def test_revoked_token_is_refused(service):
    raw = create_token("--name", "ci", "--service", "payments-api", "--scope", "releases:read")
    out = StringIO()
    call_command("revoke_api_token", "ci", stdout=out)
    assert "revoked" in out.getvalue()
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert api.get("/api/v1/releases/").status_code == 401
    assert AuditEvent.objects.filter(action="api_token.revoke").count() == 1
    with pytest.raises(CommandError, match="No token"):
        call_command("revoke_api_token", "missing", stdout=StringIO())
