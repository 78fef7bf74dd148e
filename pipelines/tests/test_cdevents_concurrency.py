"""CDEvents under concurrency (PostgreSQL): a delivery sent many times at once is stored
once, and an outbox row claimed by many workers at once is sent once."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest
from pytest_httpserver import HTTPServer

from pipelines import cdevents
from pipelines.models import CDEventDelivery, WebhookDelivery
from pipelines.services import cdevent_subscription_save, integration_create
from releases.models import Deployment
from tests import cdevents as spec
from tests.concurrency import race
from tests.factories import EnvironmentFactory

from .test_concurrency import post_concurrently

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

SECRET = "cdevents-shared-secret"


@pytest.fixture
def subscriber():
    server = HTTPServer(host="127.0.0.1", port=18132)
    server.start()
    yield server
    server.clear()
    if server.is_running():
        server.stop()


def test_twenty_concurrent_deliveries_of_one_cdevent_make_one_deployment_and_one_event(
    require_postgres, service, subscriber, settings
):
    settings.INGEST_RATE_LIMIT = 0
    EnvironmentFactory(name="test123", slug="test123", order=2)
    integration_create(
        actor=None, provider="cdevents", name="ce", service_slugs=[service.slug], secret=SECRET
    )
    cdevent_subscription_save(
        actor=None, name="sub", url=subscriber.url_for("/ce"), secret="sub-secret"
    )
    event = spec.example("service_deployed")
    event["subject"]["content"]["artifactId"] = "pkg:oci/myapp@sha256%3Aabc?tag=2.4.0"
    body = json.dumps(event).encode()
    context = event["context"]
    headers = {
        "HTTP_CE_SPECVERSION": "1.0",
        "HTTP_CE_ID": context["id"],
        "HTTP_CE_SOURCE": context["source"],
        "HTTP_CE_TYPE": context["type"],
        "HTTP_X_RELEASEGATE_SIGNATURE_256": "sha256="
        + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest(),
    }
    statuses = post_concurrently("/api/v1/webhooks/cdevents/", body, headers, n=20)
    assert statuses == [200] * 20
    assert Deployment.objects.count() == 1
    assert WebhookDelivery.objects.filter(provider="cdevents").count() == 1
    row = CDEventDelivery.objects.get()
    assert row.event_type == cdevents.SERVICE_DEPLOYED

    # Ten workers handed the same row (a redelivered message, an overlapping sweep): one send.
    subscriber.expect_request("/ce").respond_with_data("", status=202)
    results = race(10, lambda i: cdevents.deliver(row.pk))
    assert sorted(results) == ["delivered"] + ["skipped"] * 9
    assert len(subscriber.log) == 1
