"""The machine path (config/middleware.py): a cookieless call under /api/v1/ skips the browser's
middleware, and keeps every rule that protects the API."""

from __future__ import annotations

import pytest
from django.test import Client

from pipelines.models import PipelineRun

from .conftest import CI, make_token, run_body

pytestmark = pytest.mark.django_db


def test_a_ci_post_takes_the_machine_path_and_keeps_the_api_headers(ci):
    response = ci.run(run_body())
    assert response.status_code == 201, response.content
    assert response.wsgi_request.machine_call is True
    # No session, no browser policy headers, but the API's own and the security ones.
    assert "sessionid" not in response.cookies and "csrftoken" not in response.cookies
    assert "Content-Security-Policy" not in response.headers
    assert "no-store" in response.headers["Cache-Control"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert PipelineRun.objects.filter(external_id="9001").count() == 1


def test_the_machine_path_keeps_token_scope_and_validation_rules(service):
    anonymous = CI(None).run(run_body())
    assert anonymous.status_code == 401 and anonymous.wsgi_request.machine_call
    checker = CI(make_token("cd-check", [service], scopes=["deployments:check"]))
    refused = checker.run(run_body())
    assert refused.status_code == 403, refused.content
    invalid = CI(make_token("ci", [service])).run(run_body(status="sideways"))
    assert invalid.status_code == 400 and "status" in invalid.json()["errors"]
    assert not PipelineRun.objects.exists()


def test_a_browser_call_to_the_api_keeps_the_full_stack_and_its_csrf_check(release_manager):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(release_manager)
    read = browser.get("/api/v1/releases/")
    assert read.status_code == 200 and read.wsgi_request.machine_call is False
    # A session-authenticated write without the CSRF token is refused, as before.
    write = browser.post("/api/v1/releases/", {}, content_type="application/json")
    assert write.status_code == 403
    assert "CSRF" in write.json()["detail"]


def test_pages_are_never_on_the_machine_path(client):
    response = client.get("/accounts/login/")
    assert response.wsgi_request.machine_call is False
    assert "Content-Security-Policy" in response.headers


@pytest.mark.postgres
def test_the_create_statement_is_prepared_once_per_connection(require_postgres, ci, settings):
    from django.db import connection

    for n in range(3):
        assert (
            ci.run(run_body(external_id=f"p{n}", version=f"2.4.{n}", artefacts=[])).status_code
            == 201
        )
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_prepared_statements WHERE name LIKE 'releasegate_ingest_%%'"
        )
        assert cursor.fetchone()[0] >= 1
    # Switched off (a pooler in transaction mode), the same statement runs unprepared.
    settings.INGEST_PREPARED_STATEMENTS = False
    assert ci.run(run_body(external_id="p9", version="2.4.9")).status_code == 201
    assert PipelineRun.objects.filter(external_id__startswith="p").count() == 4
