"""Property-based run over the ingestion endpoints' OpenAPI schema (Schemathesis, in-process
against the WSGI app): no input gives a 5xx, and every response conforms to the schema
(status code documented, content type, body shape)."""

from __future__ import annotations

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from config.wsgi import application
from pipelines.services import integration_create

from .conftest import make_token

INGESTION = (
    r"^/api/v1/(pipeline-runs|deployments|deployment-checks"
    r"|webhooks/(github|gitlab|jenkins|alertmanager|cdevents))/$"
)
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


schema = schemathesis.openapi.from_wsgi("/api/schema/", application).include(path_regex=INGESTION)


@pytest.fixture
def token(service, production, settings):
    settings.INGEST_RATE_LIMIT = 0
    raw = make_token(
        "schemathesis",
        [service],
        scopes=["runs:write", "deployments:write", "deployments:check"],
    )
    # The CDEvents receiver takes its integration's secret as a bearer token: the same
    # value, so the generated deliveries get past authentication to the parsing.
    integration_create(
        actor=None,
        provider="cdevents",
        name="schemathesis",
        service_slugs=[service.slug],
        secret=raw,
    )
    return raw


@pytest.fixture(autouse=True)
def _keep_the_test_connection():
    """Schemathesis calls the WSGI app directly, which (unlike Django's test client) sends
    request_started/finished and so closes the test's database connection on PostgreSQL."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@schema.parametrize()
@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@pytest.mark.django_db
def test_ingestion_endpoints_conform_and_never_fail(case, token):
    case.call_and_validate(headers={"Authorization": f"Bearer {token}"}, checks=CHECKS)
