"""The whole REST API under schemathesis: every operation in the OpenAPI schema, with
generated valid and invalid input, answers no 5xx, only status codes the schema documents,
and bodies that match the schema. A bounded, derandomized example budget keeps it short."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis import checks

from config.wsgi import application

pytestmark = [pytest.mark.django_db, pytest.mark.schemathesis]

schema = schemathesis.openapi.from_wsgi("/api/schema/", application)


@pytest.fixture(autouse=True)
def keep_the_test_connection():
    """Schemathesis calls the WSGI application itself, which ends every request by closing
    old connections. Inside a test's transaction that closes PostgreSQL's connection (SQLite's
    in-memory one survives), so, as Django's own test client does, those handlers are
    disconnected while the test runs."""
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def bearer(db):
    from pipelines.models import TokenScope
    from pipelines.services import api_token_create
    from tests.factories import ServiceFactory

    service = ServiceFactory(slug="payments-api")
    _, raw = api_token_create(
        actor=None, name="schemathesis", service_slugs=[service.slug], scopes=TokenScope.values
    )
    return {"Authorization": f"Bearer {raw}"}


@schema.parametrize()
@settings(
    max_examples=6,
    deadline=None,
    derandomize=True,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
def test_api_conforms_to_its_schema(case, bearer):
    # Business rules a JSON schema cannot state (a meeting not in the past, dates within
    # 1970-2999, a release in the right state) refuse some schema-valid input with a
    # documented 4xx: that is not a violation, so the "positive data accepted" heuristic
    # is off. So is "negative data rejected": an empty filter (``?finished_to=``) means "no
    # filter", as django-filter reads it, not a malformed date. Everything else is checked:
    # no 5xx, documented status codes, content types and headers, response bodies that match
    # the schema.
    case.call_and_validate(
        headers=bearer,
        excluded_checks=[checks.positive_data_acceptance, checks.negative_data_rejection],
    )
