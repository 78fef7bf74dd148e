"""Native webhooks: verified, deduplicated, mapped onto the same run upsert."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from core.models import AuditEvent
from pipelines.models import Incident, Integration, IntegrationSecret, PipelineRun, WebhookDelivery
from pipelines.services import integration_create, integration_secret_revoke
from releases.models import Deployment
from tests.factories import ServiceFactory

pytestmark = pytest.mark.django_db

FIXTURES = Path(__file__).parent / "fixtures"
SECRET = "It's a Secret to Everybody"


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def sign(body: bytes, secret: str = SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@pytest.fixture
def github(service):
    service.repository_url = "https://github.com/octo-org/payments-api"
    service.save()
    ServiceFactory(name="ledger", slug="ledger")
    return integration_create(
        actor=None,
        provider="github",
        name="octo-org",
        service_slugs=["payments-api", "ledger"],
        secret=SECRET,
    )


def post_github(payload, *, delivery="d-1", event="workflow_run", secret=SECRET, raw=None):
    body = raw if raw is not None else json.dumps(payload).encode()
    return Client().post(
        "/api/v1/webhooks/github/",
        body,
        content_type="application/json",
        HTTP_X_HUB_SIGNATURE_256=sign(body, secret),
        HTTP_X_GITHUB_EVENT=event,
        HTTP_X_GITHUB_DELIVERY=delivery,
    )


def test_a_signed_workflow_run_is_recorded_for_the_repository_service(github, service):
    response = post_github(fixture("github_workflow_run_completed"))
    assert response.status_code == 200, response.json()
    run = PipelineRun.objects.get()
    assert run.service == service and run.provider == "github_actions"
    assert (run.external_id, run.attempt, run.status) == ("11223344556", 1, "succeeded")
    assert run.repository == "octo-org/payments-api"
    assert response.json()["run"] == run.pk
    delivery = WebhookDelivery.objects.get()
    assert (delivery.delivery_id, delivery.run, delivery.integration) == ("d-1", run, github)
    assert run.reported_by_integration == github and run.reported_by_token is None


def test_a_status_change_by_webhook_is_audited_as_the_integration(github):
    post_github(fixture("github_workflow_run_in_progress"), delivery="1")
    post_github(fixture("github_workflow_run_completed"), delivery="2")
    update = AuditEvent.objects.get(action="pipeline_run.status")
    assert (update.from_state, update.to_state) == ("running", "succeeded")
    assert "octo-org" in update.reason and update.actor_label == "system"


def test_the_same_delivery_twice_is_processed_once(github):
    post_github(fixture("github_workflow_run_in_progress"))
    response = post_github(fixture("github_workflow_run_in_progress"))
    assert response.status_code == 200 and response.json()["duplicate"] is True
    assert WebhookDelivery.objects.count() == 1 and PipelineRun.objects.count() == 1


def test_out_of_order_deliveries_keep_the_run_finished(github):
    post_github(fixture("github_workflow_run_completed"), delivery="c")
    post_github(fixture("github_workflow_run_in_progress"), delivery="b")
    post_github(fixture("github_workflow_run_requested"), delivery="a")
    assert PipelineRun.objects.get().status == "succeeded"


@pytest.mark.parametrize("secret", ["wrong", ""])
def test_a_bad_signature_is_a_401_and_writes_nothing(github, secret):
    body = json.dumps(fixture("github_workflow_run_completed")).encode()
    headers = {"HTTP_X_GITHUB_EVENT": "workflow_run", "HTTP_X_GITHUB_DELIVERY": "x"}
    if secret:
        headers["HTTP_X_HUB_SIGNATURE_256"] = sign(body, secret)
    response = Client().post(
        "/api/v1/webhooks/github/", body, content_type="application/json", **headers
    )
    assert response.status_code == 401
    assert not PipelineRun.objects.exists() and not WebhookDelivery.objects.exists()


def test_a_tampered_body_is_a_401(github):
    body = json.dumps(fixture("github_workflow_run_completed")).encode()
    response = Client().post(
        "/api/v1/webhooks/github/",
        body.replace(b"success", b"failure"),
        content_type="application/json",
        HTTP_X_HUB_SIGNATURE_256=sign(body),
    )
    assert response.status_code == 401


def test_secrets_rotate_with_an_overlap(github):
    call_command(
        "create_integration",
        "--provider=github",
        "--name=octo-org",
        "--service=payments-api",
        "--secret=new-secret",
        stdout=StringIO(),
    )
    assert post_github(fixture("github_workflow_run_requested"), delivery="1").status_code == 200
    assert (
        post_github(fixture("github_workflow_run_requested"), delivery="2", secret="new-secret")
    ).status_code == 200
    old = IntegrationSecret.objects.get(secret=SECRET)
    integration_secret_revoke(actor=None, secret=old)
    assert post_github(fixture("github_workflow_run_requested"), delivery="3").status_code == 401
    assert (
        post_github(fixture("github_workflow_run_requested"), delivery="4", secret="new-secret")
    ).status_code == 200


def test_a_disabled_integration_is_refused(github):
    Integration.objects.filter(pk=github.pk).update(enabled=False)
    assert post_github(fixture("github_workflow_run_completed")).status_code == 401


def test_ping_and_other_events_are_acknowledged(github):
    assert post_github({"zen": "Keep it simple."}, event="ping").json()["detail"] == "pong"
    response = post_github({"ref": "refs/heads/main"}, event="push")
    assert response.status_code == 200 and "Ignored" in response.json()["detail"]
    assert not PipelineRun.objects.exists()


@pytest.mark.parametrize(
    "raw", [b"{", b"[]", b'{"workflow_run": {"status": "bogus"}}', b'{"workflow_run": 5}']
)
def test_a_signed_malformed_payload_is_a_400(github, raw):
    response = post_github(None, raw=raw)
    assert response.status_code == 400 and response.json()["detail"]
    assert not PipelineRun.objects.exists() and not WebhookDelivery.objects.exists()


def test_an_unmapped_repository_is_a_400(github):
    payload = fixture("github_workflow_run_completed")
    payload["repository"]["full_name"] = "octo-org/unknown"
    response = post_github(payload)
    assert response.status_code == 400
    assert "not mapped" in response.json()["detail"]


# --- GitLab -----------------------------------------------------------------------------------


@pytest.fixture
def gitlab(service):
    return integration_create(
        actor=None,
        provider="gitlab",
        name="gitlab-payments",
        service_slugs=["payments-api"],
        secret="glpat-hook",
    )


def post_gitlab(payload, token="glpat-hook", uuid="u-1"):
    return Client().post(
        "/api/v1/webhooks/gitlab/",
        json.dumps(payload),
        content_type="application/json",
        HTTP_X_GITLAB_TOKEN=token,
        HTTP_X_GITLAB_EVENT="Pipeline Hook",
        HTTP_X_GITLAB_EVENT_UUID=uuid,
    )


def test_a_gitlab_pipeline_hook_is_recorded(gitlab, service):
    assert post_gitlab(fixture("gitlab_pipeline_running"), uuid="1").status_code == 200
    assert post_gitlab(fixture("gitlab_pipeline_success"), uuid="2").status_code == 200
    run = PipelineRun.objects.get()
    assert (run.provider, run.external_id, run.status) == ("gitlab", "987654", "succeeded")
    assert run.service == service and run.finished_at is not None


def test_a_wrong_gitlab_token_is_a_401(gitlab):
    assert post_gitlab(fixture("gitlab_pipeline_success"), token="nope").status_code == 401
    assert not PipelineRun.objects.exists()


# --- Jenkins ----------------------------------------------------------------------------------


@pytest.fixture
def jenkins(service):
    return integration_create(
        actor=None, provider="jenkins", name="jenkins", service_slugs=["payments-api"], secret="j"
    )


def test_jenkins_notifications_are_recorded_with_a_header_token(jenkins):
    client = Client()
    started = json.dumps(fixture("jenkins_started"))
    finalized = json.dumps(fixture("jenkins_finalized"))
    response = client.post(
        "/api/v1/webhooks/jenkins/",
        started,
        content_type="application/json",
        HTTP_AUTHORIZATION="Bearer j",
    )
    assert response.status_code == 200
    response = client.post(
        "/api/v1/webhooks/jenkins/",
        finalized,
        content_type="application/json",
        HTTP_X_RELEASEGATE_TOKEN="j",
    )
    assert response.status_code == 200
    run = PipelineRun.objects.get()
    assert run.provider == "jenkins" and run.status in ("succeeded", "failed")
    bad = client.post(
        "/api/v1/webhooks/jenkins/",
        started,
        content_type="application/json",
        HTTP_X_RELEASEGATE_TOKEN="x",
    )
    assert bad.status_code == 401


@pytest.mark.parametrize("path", ["/api/v1/webhooks/jenkins/", "/api/v1/webhooks/alertmanager/"])
def test_a_secret_in_the_url_is_refused_even_when_it_is_right(jenkins, alertmanager, path):
    secret = "j" if "jenkins" in path else "am-secret"
    body = json.dumps(fixture("jenkins_started" if "jenkins" in path else "alertmanager_firing"))
    response = Client().post(f"{path}?token={secret}", body, content_type="application/json")
    assert response.status_code == 401
    assert "X-Releasegate-Token" in response.json()["detail"]
    assert not PipelineRun.objects.exists() and not Incident.objects.exists()


def _javascript_url(payload: dict, *path: str) -> dict:
    node = payload
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = "javascript:alert(document.cookie)"
    return payload


def test_webhook_links_that_are_not_http_are_not_stored_and_said_so(github, gitlab, jenkins):
    answers = [
        post_github(
            _javascript_url(fixture("github_workflow_run_completed"), "workflow_run", "html_url")
        ),
        post_gitlab(
            _javascript_url(fixture("gitlab_pipeline_success"), "object_attributes", "url")
        ),
        Client().post(
            "/api/v1/webhooks/jenkins/",
            json.dumps(_javascript_url(fixture("jenkins_finalized"), "build", "full_url")),
            content_type="application/json",
            HTTP_X_RELEASEGATE_TOKEN="j",
        ),
    ]
    for response in answers:
        assert response.status_code == 200, response.json()
        assert {"field": "url", "reason": "Only http(s) links are stored."} in response.json()[
            "ignored"
        ]
    assert sorted(PipelineRun.objects.values_list("url", flat=True)) == ["", "", ""]


def test_a_run_attempt_the_database_cannot_store_is_a_400(github):
    payload = fixture("github_workflow_run_completed")
    payload["workflow_run"]["run_attempt"] = 2147483648
    response = post_github(payload)
    assert response.status_code == 400
    assert "attempt" in response.json()["detail"]
    assert not PipelineRun.objects.exists() and not WebhookDelivery.objects.exists()


# --- Alertmanager -----------------------------------------------------------------------------


@pytest.fixture
def alertmanager(service):
    return integration_create(
        actor=None,
        provider="alertmanager",
        name="prometheus",
        service_slugs=["payments-api"],
        secret="am-secret",
    )


def post_alerts(payload, token="am-secret"):
    return Client().post(
        "/api/v1/webhooks/alertmanager/",
        json.dumps(payload),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )


@pytest.fixture
def production_deployment(service, production):
    deployment = Deployment.objects.create(
        service=service,
        environment=production,
        version="2.4.0",
        provider="argo-cd",
        external_id="d1",
        started_at=datetime(2026, 11, 20, 10, 0, tzinfo=UTC),
    )
    deployment.succeed()
    deployment.save()
    return deployment


def test_a_firing_alert_after_a_production_deployment_opens_an_incident(
    alertmanager, production_deployment
):
    response = post_alerts(fixture("alertmanager_firing"))
    assert response.status_code == 200 and response.json()["incidents_opened"] >= 1
    incident = Incident.objects.get(fingerprint="5f2a4c81b0d3e96a")
    assert incident.deployment == production_deployment and incident.status == "open"
    # The same notification again (Alertmanager repeats) opens nothing new.
    count = Incident.objects.count()
    assert post_alerts(fixture("alertmanager_firing")).json()["incidents_opened"] == 0
    assert Incident.objects.count() == count
    resolved = post_alerts(fixture("alertmanager_resolved"))
    assert resolved.json()["incidents_resolved"] >= 1
    incident.refresh_from_db()
    assert incident.status == "resolved" and incident.resolved_at is not None
    assert AuditEvent.objects.filter(action="incident.open").count() == count


def test_an_alert_without_a_production_deployment_is_ignored(alertmanager, production):
    response = post_alerts(fixture("alertmanager_firing"))
    assert response.status_code == 200 and response.json()["incidents_opened"] == 0
    assert not Incident.objects.exists()


def test_alertmanager_needs_its_secret_and_version_4(alertmanager, production_deployment):
    assert post_alerts(fixture("alertmanager_firing"), token="nope").status_code == 401
    payload = fixture("alertmanager_firing")
    payload["version"] = "3"
    assert post_alerts(payload).status_code == 400
    assert not Incident.objects.exists()


# --- create_integration -----------------------------------------------------------------------


def test_create_integration_command(service):
    out = StringIO()
    call_command(
        "create_integration",
        "--provider",
        "gitlab",
        "--name",
        "gl",
        "--service",
        "payments-api",
        "--secret",
        "s3cret",
        stdout=out,
    )
    integration = Integration.objects.get(name="gl")
    assert integration.provider == "gitlab" and list(integration.services.all()) == [service]
    assert "s3cret" not in str(AuditEvent.objects.values_list("after", flat=True))
    with pytest.raises(CommandError):
        call_command(
            "create_integration",
            "--provider=gitlab",
            "--name=x",
            "--service=nope",
            "--secret=s",
            stdout=out,
        )


def test_unstorable_text_in_a_signed_payload_is_a_400_not_a_500(github):
    payload = fixture("github_workflow_run_completed")
    payload["workflow_run"]["head_sha"] = "abc\u0000def"
    response = post_github(payload)
    assert response.status_code == 400 and "commit_sha" in response.json()["errors"]
    assert not PipelineRun.objects.exists() and not WebhookDelivery.objects.exists()


def test_a_long_workflow_name_is_shortened_not_refused(github):
    payload = fixture("github_workflow_run_completed")
    payload["workflow_run"]["name"] = "n" * 500
    assert post_github(payload).status_code == 200
    assert len(PipelineRun.objects.get().name) == 200


def test_nul_in_alert_labels_is_stored_cleanly(alertmanager, production_deployment):
    payload = fixture("alertmanager_firing")
    payload["alerts"][0]["labels"]["alertname"] = "High\u0000Errors"
    response = post_alerts(payload)
    assert response.status_code == 200
    assert Incident.objects.filter(alertname="HighErrors").exists()
    assert "alerts[0].labels.alertname" in {i["field"] for i in response.json()["ignored"]}


# --- what a delivery acknowledges it did not store ---------------------------------------------


def ignored_fields(response) -> set[str]:
    assert response.status_code == 200, response.json()
    return {i["field"] for i in response.json()["ignored"]}


def test_a_shortened_workflow_name_is_named_in_the_answer(github):
    payload = fixture("github_workflow_run_completed")
    payload["workflow_run"]["name"] = "n" * 500
    (ignored,) = post_github(payload).json()["ignored"]
    assert ignored == {"field": "name", "reason": "Shortened to 200 characters."}


def test_a_late_github_delivery_names_the_status_it_did_not_apply(github):
    assert ignored_fields(post_github(fixture("github_workflow_run_completed"), delivery="1")) == (
        set()
    )
    late = post_github(fixture("github_workflow_run_in_progress"), delivery="2")
    assert ignored_fields(late) >= {"status", "raw_status"}
    assert PipelineRun.objects.get().status == "succeeded"


def test_jenkins_names_the_evidence_and_parameters_it_does_not_record(jenkins):
    payload = fixture("jenkins_finalized")
    payload["build"]["parameters"]["VERSION"] = 240  # a hand-rolled sender's number
    response = Client().post(
        "/api/v1/webhooks/jenkins/",
        json.dumps(payload),
        content_type="application/json",
        HTTP_X_RELEASEGATE_TOKEN="j",
    )
    assert ignored_fields(response) == {
        "build.artifacts",
        "build.test_summary",
        "build.parameters.VERSION",
    }
    assert PipelineRun.objects.get().version == ""


def test_gitlab_names_its_jobs_and_a_version_variable_it_cannot_read(gitlab):
    payload = fixture("gitlab_pipeline_success")
    payload["object_attributes"]["variables"] = [{"key": "VERSION", "value": None}]
    assert ignored_fields(post_gitlab(payload)) == {"object_attributes.variables[0]", "builds"}


def test_alerts_that_change_nothing_are_named_with_the_reason(alertmanager, production):
    payload = fixture("alertmanager_firing")
    response = post_alerts(payload)
    assert response.status_code == 200 and response.json()["incidents_opened"] == 0
    ignored = response.json()["ignored"]
    assert [i["field"] for i in ignored] == [f"alerts[{n}]" for n in range(len(payload["alerts"]))]
    assert all("deployment" in i["reason"] or "service" in i["reason"] for i in ignored)


def test_an_alert_seen_before_is_named_as_already_recorded(alertmanager, production_deployment):
    post_alerts(fixture("alertmanager_firing"))
    again = post_alerts(fixture("alertmanager_firing")).json()["ignored"]
    assert any("already recorded" in i["reason"] for i in again)


def test_an_alert_flood_is_refused_whole_and_opens_nothing(alertmanager, settings):
    settings.ALERTMANAGER_MAX_ALERTS = 3
    payload = fixture("alertmanager_firing")
    alert = payload["alerts"][0]
    payload["alerts"] = [
        {**alert, "fingerprint": f"{i:016x}", "labels": {**alert["labels"], "n": str(i)}}
        for i in range(4)
    ]
    response = post_alerts(payload)
    assert response.status_code == 400
    assert "max_alerts: 3" in response.json()["detail"]
    assert not Incident.objects.exists()
    payload["alerts"] = payload["alerts"][:3]
    assert post_alerts(payload).status_code == 200
