"""CDEvents in: the spec's own examples posted in both CloudEvents modes, verified like the
other webhooks, mapped onto runs, deployments and incidents, each delivery stored once."""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client
from django.utils import timezone

from core.models import AuditEvent
from pipelines.models import Incident, IncidentStatus, PipelineRun, WebhookDelivery
from pipelines.services import integration_create
from pipelines.tests.conftest import run_body
from releases.choices import ReleaseState
from releases.models import Deployment
from tests import cdevents
from tests.factories import DeploymentFactory, EnvironmentFactory, ReleaseFactory, force_state

pytestmark = pytest.mark.django_db

SECRET = "cdevents-shared-secret"
URL = "/api/v1/webhooks/cdevents/"
DIGEST = "sha256:0b31b1c02ff458ad9b7b81cbdf8f028bd54699fa151f221d1e8de6817db93427"
MODES = ["binary", "structured"]


@pytest.fixture
def integration(service):
    return integration_create(
        actor=None,
        provider="cdevents",
        name="argo-events",
        service_slugs=[service.slug],
        secret=SECRET,
    )


@pytest.fixture
def test123(db):
    """The environment the spec's service examples name."""
    return EnvironmentFactory(name="test123", slug="test123", order=2)


@pytest.fixture
def prod1(db):
    """The production environment the spec's incident examples name."""
    return EnvironmentFactory(name="prod1", slug="prod1", order=5, is_production=True)


@pytest.fixture
def artefact(ci):
    """The image the spec's examples name by digest, built as payments-api 2.4.0."""
    body = run_body(
        artefacts=[{"name": "myapp", "version": "2.4.0", "digest": DIGEST, "uri": "oci://myapp"}]
    )
    assert ci.run(body).status_code == 201


def post(event: dict, mode: str, *, auth: str = "signature", secret: str = SECRET, **extra):
    """POST a CDEvent as a CloudEvent: binary mode (ce-* headers, the CDEvent as the body) or
    structured mode (the CloudEvent as the body). Signed, or the secret as a bearer token."""
    context = event["context"]
    if mode == "binary":
        body = json.dumps(event).encode()
        headers = {
            "HTTP_CE_SPECVERSION": "1.0",
            "HTTP_CE_ID": context["id"],
            "HTTP_CE_SOURCE": context["source"],
            "HTTP_CE_TYPE": context["type"],
            "HTTP_CE_TIME": context["timestamp"],
            "HTTP_CE_SUBJECT": event["subject"]["id"],
        }
        content_type = "application/json; charset=utf-8"
    else:
        envelope = {
            "specversion": "1.0",
            "id": context["id"],
            "source": context["source"],
            "type": context["type"],
            "time": context["timestamp"],
            "subject": event["subject"]["id"],
            "datacontenttype": "application/json",
            "data": event,
        }
        body = json.dumps(envelope).encode()
        headers = {}
        content_type = "application/cloudevents+json"
    if auth == "signature":
        mac = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        headers["HTTP_X_RELEASEGATE_SIGNATURE_256"] = "sha256=" + mac
    elif auth == "bearer":
        headers["HTTP_AUTHORIZATION"] = f"Bearer {secret}"
    headers.update(extra)
    return Client().post(URL, body, content_type=content_type, **headers)


def example(name: str, **context) -> dict:
    event = copy.deepcopy(cdevents.example(name))
    event["context"].update(context)
    return event


# --- the spec's examples, both modes -----------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", ["service_deployed", "service_upgraded"])
def test_a_service_deployed_or_upgraded_event_records_a_succeeded_deployment(
    integration, test123, artefact, mode, name
):
    response = post(example(name), mode)
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["recorded"] and body["mode"] == mode
    assert body["type"] == f"dev.cdevents.{name.replace('_', '.')}.0.3.0"
    deployment = Deployment.objects.get()
    # The purl names the image by digest: the version is the one the build reported it under.
    assert (deployment.service.slug, deployment.environment.slug) == ("payments-api", "test123")
    assert (deployment.version, deployment.state, deployment.provider) == (
        "2.4.0",
        "succeeded",
        "cdevents",
    )
    assert deployment.finished_at == datetime(2023, 3, 20, 14, 27, 5, 315384, tzinfo=UTC)
    assert body["deployment"]["id"] == deployment.pk
    # What the event holds that no record keeps is named, never dropped silently.
    assert {"field": "context.links", "reason": "Links between events are not stored."} in body[
        "ignored"
    ]
    audit = AuditEvent.objects.get(action="deployment.report")
    assert "argo-events" in audit.reason


@pytest.mark.parametrize("mode", MODES)
def test_a_duplicate_delivery_is_stored_once(integration, test123, artefact, mode):
    first = post(example("service_deployed"), mode)
    again = post(example("service_deployed"), mode, auth="bearer")
    assert first.status_code == again.status_code == 200
    assert again.json()["duplicate"] is True
    assert Deployment.objects.count() == 1
    assert WebhookDelivery.objects.filter(provider="cdevents").count() == 1
    # Another event (another id) of the same source is another deployment.
    assert post(example("service_deployed", id="another-id"), mode).status_code == 200
    assert Deployment.objects.count() == 2


def test_the_same_event_in_the_other_mode_is_the_same_delivery(integration, test123, artefact):
    assert post(example("service_deployed"), "binary").status_code == 200
    assert post(example("service_deployed"), "structured").json()["duplicate"] is True
    assert Deployment.objects.count() == 1


@pytest.mark.parametrize("mode", MODES)
def test_a_rolledback_event_rolls_back_the_deployment_of_the_other_version(
    integration, ci, test123, artefact, mode
):
    # Nothing to roll back yet: accepted, nothing recorded, and the reason in the answer.
    early = post(example("service_rolledback"), mode)
    assert early.status_code == 202
    assert "nothing to roll back" in early.json()["ignored"][0]["reason"]
    assert not WebhookDelivery.objects.filter(provider="cdevents").exists()

    deployed = ci.deployment(
        {
            "service": "payments-api",
            "environment": "test123",
            "version": "2.5.0",
            "status": "succeeded",
            "provider": "argo-cd",
            "external_id": "deploy-77",
        }
    )
    assert deployed.status_code == 201
    # The redelivery is processed now: 2.5.0 is rolled back (the event names 2.4.0, the
    # version the service went back to).
    response = post(example("service_rolledback"), mode)
    assert response.status_code == 200, response.json()
    deployment = Deployment.objects.get(external_id="deploy-77")
    assert deployment.state == "rolled_back"
    assert response.json()["deployment"]["status"] == "rolled_back"


@pytest.mark.parametrize("mode", MODES)
def test_a_pipelinerun_finished_event_records_a_run(integration, mode):
    response = post(example("pipelinerun_finished"), mode)
    assert response.status_code == 200, response.json()
    run = PipelineRun.objects.get(provider="cdevents")
    assert run.status == "failed"  # outcome "failure"
    assert (run.name, run.url) == ("myPipeline", "https://www.example.com/mySubject123")
    assert run.external_id == "/event/source/123#mySubject123"
    assert run.raw_status == "finished/failure"
    fields = {i["field"] for i in response.json()["ignored"]}
    assert {"subject.content.errors", "context.links"} <= fields
    again = post(example("pipelinerun_finished"), mode)
    assert again.json()["duplicate"] is True
    assert PipelineRun.objects.count() == 1


@pytest.mark.parametrize("mode", MODES)
def test_incident_detected_then_resolved_opens_and_closes_an_incident(
    integration, service, prod1, mode
):
    deployment = DeploymentFactory(
        service=service,
        environment=prod1,
        version="2.4.0",
        started_at=datetime(2022, 11, 11, 12, 0, tzinfo=UTC),
    )
    detected = post(example("incident_detected"), mode)
    assert detected.status_code == 200, detected.json()
    assert detected.json()["incidents_opened"] == 1
    incident = Incident.objects.get()
    assert incident.deployment == deployment
    assert incident.status == IncidentStatus.OPEN
    assert incident.summary == "Response time above threshold of 100ms"
    assert incident.started_at == datetime(2022, 11, 11, 13, 52, 20, 79000, tzinfo=UTC)
    fields = {i["field"] for i in detected.json()["ignored"]}
    assert {"customData", "subject.content.artifactId"} <= fields

    # The spec's examples give both events one id and source: the type tells them apart.
    resolved = post(example("incident_resolved"), mode)
    assert resolved.status_code == 200, resolved.json()
    assert resolved.json()["incidents_resolved"] == 1
    incident.refresh_from_db()
    assert incident.status == IncidentStatus.RESOLVED
    # Delivered again: once.
    assert post(example("incident_resolved"), mode).json()["duplicate"] is True
    assert post(example("incident_detected"), mode).json()["duplicate"] is True
    assert Incident.objects.count() == 1


def test_an_incident_without_a_deployment_is_accepted_and_says_why(integration, prod1):
    response = post(example("incident_detected"), "binary")
    assert response.status_code == 202
    assert response.json()["recorded"] is False
    assert "No deployment" in response.json()["ignored"][0]["reason"]
    assert not Incident.objects.exists()


def test_a_production_deployment_moves_its_release(integration, service, production, artefact):
    now = timezone.now()
    release = force_state(
        ReleaseFactory(
            services=[service],
            version="2.4.0",
            window_start=now - timedelta(hours=1),
            window_end=now + timedelta(hours=1),
        ),
        "approved",
    )
    event = example("service_deployed")
    event["subject"]["content"]["environment"] = {"id": "production"}
    response = post(event, "structured")
    assert response.status_code == 200, response.json()
    release.refresh_from_db()
    assert release.state == ReleaseState.DEPLOYED
    moved = AuditEvent.objects.filter(release_id=release.pk, action__startswith="release.")
    assert moved and {e.actor_label for e in moved} == {"integration:argo-events"}

    # Rolled back to 2.3.0: the 2.4.0 deployment is rolled back, and its release with it.
    back = example("service_rolledback", id="rollback-1")
    back["subject"]["content"]["environment"] = {"id": "production"}
    back["subject"]["content"]["artifactId"] = "pkg:oci/myapp@sha256%3Aabc?tag=2.3.0"
    response = post(back, "binary")
    assert response.status_code == 200, response.json()
    release.refresh_from_db()
    assert release.state == ReleaseState.ROLLED_BACK
    assert Deployment.objects.get().state == "rolled_back"


def test_a_refused_release_move_is_a_409_again_on_redelivery(
    integration, service, production, artefact
):
    # The deployment window opens in two days: governance refuses to start deploying.
    release = force_state(ReleaseFactory(services=[service], version="2.4.0"), "approved")
    event = example("service_deployed")
    event["subject"]["content"]["environment"] = {"id": "production"}
    for _ in range(2):
        response = post(event, "binary")
        assert response.status_code == 409
        body = response.json()
        assert body["deployment"]["status"] == "succeeded"
        assert "window" in json.dumps(body["blockers"])
    assert Deployment.objects.count() == 1
    release.refresh_from_db()
    assert release.state == ReleaseState.APPROVED
    assert AuditEvent.objects.filter(action="deployment.release_refused").count() == 1


# --- types not read ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "event_type",
    [
        "dev.cdevents.artifact.published.0.3.0",
        "dev.cdevents.service.deployed.0.2.0",
        "dev.cdeventsx.mytool-resource.created.0.1.0",
    ],
)
def test_a_type_not_read_is_accepted_with_the_reason(integration, event_type):
    event = example("service_deployed", type=event_type)
    response = post(event, "binary")
    assert response.status_code == 202
    body = response.json()
    assert body["recorded"] is False and body["detail"].startswith("Ignored: ")
    assert body["ignored"][0]["field"] == "type"
    assert not Deployment.objects.exists()


def test_the_custom_example_is_accepted_and_ignored(integration):
    response = post(cdevents.example("custom"), "structured")
    assert response.status_code == 202


# --- refusals ------------------------------------------------------------------------------------


def test_a_wrong_signature_or_secret_is_a_401(integration, test123, artefact):
    assert post(example("service_deployed"), "binary", secret="wrong").status_code == 401
    assert (
        post(example("service_deployed"), "binary", auth="bearer", secret="wrong").status_code
        == 401
    )
    assert post(example("service_deployed"), "binary", auth="none").status_code == 401
    assert not Deployment.objects.exists()


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda e: e["context"].update(id="not-the-header-id"), "context.id"),
        (lambda e: e["subject"]["content"]["environment"].update(id="nowhere"), "environment"),
        (
            lambda e: e["subject"]["content"].update(artifactId=f"pkg:oci/x@sha256%3A{'a' * 64}"),
            "Unknown digest",
        ),
        (lambda e: e["subject"]["content"].update(artifactId="myapp:2.4.0"), "package URL"),
        (lambda e: e["subject"]["content"].pop("environment"), "environment is required"),
        (lambda e: e["context"].update(timestamp="yesterday"), "timestamp"),
    ],
    ids=["id-mismatch", "unknown-environment", "unknown-digest", "not-a-purl", "missing", "time"],
)
def test_a_malformed_event_is_a_400_naming_the_problem(
    integration, test123, artefact, change, field
):
    event = example("service_deployed")
    headers = {
        "HTTP_CE_ID": event["context"]["id"],
    }
    change(event)
    response = post(event, "binary", **headers)
    assert response.status_code == 400, response.json()
    assert field in json.dumps(response.json())
    assert not Deployment.objects.exists()
    assert not WebhookDelivery.objects.filter(provider="cdevents").exists()


def test_a_purl_with_a_version_needs_no_artefact(integration, test123):
    event = example("service_deployed")
    event["subject"]["content"]["artifactId"] = "pkg:oci/myapp@sha256%3Aabc?tag=3.1.0"
    assert post(event, "binary").status_code == 200
    event = example("service_deployed", id="second")
    event["subject"]["content"]["artifactId"] = "pkg:golang/example.com/org/payments-api@v3.2.0"
    assert post(event, "binary").status_code == 200
    assert sorted(Deployment.objects.values_list("version", flat=True)) == ["3.1.0", "v3.2.0"]


def test_cloudevents_envelope_problems(integration):
    event = example("service_deployed")
    assert post(event, "binary", HTTP_CE_SPECVERSION="0.3").status_code == 400
    body = json.dumps([event]).encode()
    batch = Client().post(
        URL,
        body,
        content_type="application/cloudevents-batch+json",
        HTTP_AUTHORIZATION=f"Bearer {SECRET}",
    )
    assert batch.status_code == 415
    text = Client().post(
        URL, b"not json", content_type="text/plain", HTTP_AUTHORIZATION=f"Bearer {SECRET}"
    )
    assert text.status_code == 415
    assert "application/cloudevents+json" in text.json()["detail"]
    plain = Client().post(
        URL,
        json.dumps(event).encode(),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {SECRET}",
    )
    assert plain.status_code == 400
    assert "ce-* headers" in plain.json()["errors"]["payload"][0]


def test_structured_mode_reads_base64_data(integration, test123, artefact):
    import base64

    event = example("service_deployed")
    context = event["context"]
    envelope = {
        "specversion": "1.0",
        "id": context["id"],
        "source": context["source"],
        "type": context["type"],
        "data_base64": base64.b64encode(json.dumps(event).encode()).decode(),
    }
    response = Client().post(
        URL,
        json.dumps(envelope).encode(),
        content_type="application/cloudevents+json",
        HTTP_AUTHORIZATION=f"Bearer {SECRET}",
    )
    assert response.status_code == 200, response.json()
    assert Deployment.objects.get().version == "2.4.0"
    envelope["data_base64"] = "not base64!"
    envelope["id"] = "other"
    bad = Client().post(
        URL,
        json.dumps(envelope).encode(),
        content_type="application/cloudevents+json",
        HTTP_AUTHORIZATION=f"Bearer {SECRET}",
    )
    assert bad.status_code == 400
    assert "data_base64" in bad.json()["errors"]["payload"][0]
