"""Deployment verification against a stub Prometheus (pytest-httpserver answering
/api/v1/query in Prometheus' documented shape): samples, decisions, and what a failure does
to the deployment, the post-deployment gate, the rollback policy and the outbox."""

from __future__ import annotations

import json
import math
from datetime import timedelta

import pytest
from django.utils import timezone
from werkzeug import Response

from core.models import AuditEvent, Notification
from core.notifications import verify
from governance.models import GateCheck
from pipelines.models import (
    RollbackPolicy,
    RollbackRequest,
    VerificationQuery,
    VerificationRun,
    VerificationSample,
    VerificationSpec,
)
from pipelines.verification import (
    call_rollback_webhook,
    instant_value,
    parse_sample_value,
    verify_due,
)
from releases.models import Deployment
from tests.factories import ReleaseFactory, force_state

pytestmark = pytest.mark.django_db


def vector(*values: str) -> dict:
    return {
        "status": "success",
        "data": {
            "resultType": "vector",
            "result": [
                {"metric": {"job": "payments", "instance": f"i{n}"}, "value": [1795000000.1, v]}
                for n, v in enumerate(values)
            ],
        },
    }


class FakePrometheus:
    """Answers /api/v1/query with whatever value the test sets."""

    def __init__(self, httpserver):
        self.value: str | None = "0.001"
        self.queries: list[str] = []
        httpserver.expect_request("/api/v1/query").respond_with_handler(self.handle)
        self.url = httpserver.url_for("").rstrip("/")

    def handle(self, request):
        self.queries.append(request.args["query"])
        body = vector() if self.value is None else vector(self.value)
        return Response(json.dumps(body), content_type="application/json")


@pytest.fixture
def prometheus(httpserver):
    return FakePrometheus(httpserver)


@pytest.fixture
def setup(service, production, release_manager, prometheus):
    release = ReleaseFactory(services=[service], owner=release_manager)
    release = force_state(release, "deploying")
    deployment = Deployment.objects.create(
        release=release,
        service=service,
        environment=production,
        version=release.version,
        state="in_progress",
        provider="argo",
        external_id="d-1",
        started_at=timezone.now(),
    )
    spec = VerificationSpec.objects.create(
        service=service,
        environment=production,
        prometheus_url=prometheus.url,
        interval_seconds=10,
        window_seconds=60,
        consecutive_breaches=2,
    )
    VerificationQuery.objects.create(
        spec=spec,
        name="error ratio",
        promql='sum(rate(http_errors_total{job="payments"}[1m]))'
        " / sum(rate(http_requests_total[1m]))",
        comparator="lt",
        threshold=0.01,
    )
    gate = GateCheck.objects.create(
        release=release,
        policy_name="standard",
        policy_version=1,
        key="post-deploy-verified",
        stage="post_deployment",
        kind="staging_validated",
        label="Deployment verified",
        requirement={},
    )
    return {"release": release, "deployment": deployment, "spec": spec, "gate": gate}


def _tick(start, seconds):
    return start + timedelta(seconds=seconds)


def test_values_are_strings_and_nan_is_no_data():
    assert parse_sample_value("0.25") == 0.25
    assert parse_sample_value("NaN") is None
    assert parse_sample_value("+Inf") == math.inf
    assert parse_sample_value("garbage") is None
    assert instant_value(vector("0.1", "NaN", "0.3"), "lt") == 0.3  # worst series for "<"
    assert instant_value(vector("0.1", "0.3"), "gt") == 0.1  # worst series for ">"
    assert instant_value(vector(), "lt") is None
    assert instant_value(vector("NaN"), "lt") is None
    scalar = {"status": "success", "data": {"resultType": "scalar", "result": [1, "2"]}}
    assert instant_value(scalar, "lt") == 2.0


def test_healthy_deployment_passes_at_the_end_of_the_window(setup, prometheus):
    t0 = timezone.now()
    for second in range(0, 70, 10):
        verify_due(now=_tick(t0, second))
    run = VerificationRun.objects.get()
    assert run.status == "passed"
    assert VerificationSample.objects.filter(run=run).count() == 7
    assert prometheus.queries[0].startswith("sum(rate(http_errors_total")
    setup["gate"].refresh_from_db()
    assert setup["gate"].status == "passed"
    setup["deployment"].refresh_from_db()
    assert setup["deployment"].state == "in_progress"  # verification never succeeds it
    assert AuditEvent.objects.filter(action="verification.pass").count() == 1


def test_breach_in_consecutive_samples_fails_deployment_gate_and_notifies(setup, prometheus):
    RollbackPolicy.objects.create(environment=setup["deployment"].environment, action="notify")
    t0 = timezone.now()
    verify_due(now=t0)
    prometheus.value = "0.2"
    verify_due(now=_tick(t0, 10))
    run = VerificationRun.objects.get()
    assert run.status == "running"  # one breach is noise
    verify_due(now=_tick(t0, 20))
    run.refresh_from_db()
    assert run.status == "failed"
    assert "error ratio = 0.2 breached < 0.01" in run.detail
    setup["deployment"].refresh_from_db()
    assert setup["deployment"].state == "failed"
    setup["gate"].refresh_from_db()
    assert setup["gate"].status == "failed"
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {"verification.start", "verification.fail", "deployment.fail", "gate.result"} <= actions
    events = set(Notification.objects.values_list("event", "channel"))
    assert ("verification_failed", "in_app") in events
    assert ("deployment_failed", "email") in events
    assert not RollbackRequest.objects.exists()  # notify-only policy
    # Sampling again changes nothing.
    assert verify_due(now=_tick(t0, 30)) == 0


def test_succeeded_deployment_is_marked_rollback_required_and_webhook_is_signed(
    setup, prometheus, httpserver, monkeypatch
):
    monkeypatch.setenv("ROLLBACK_TEST_SECRET", "s3cret")
    Deployment.objects.filter(pk=setup["deployment"].pk).update(
        state="succeeded", finished_at=timezone.now()
    )
    received = []

    def hook(request):
        received.append(request)
        return Response("ok")

    httpserver.expect_request("/rollback", method="POST").respond_with_handler(hook)
    RollbackPolicy.objects.create(
        environment=setup["deployment"].environment,
        action="rollback_required",
        webhook_url=httpserver.url_for("/rollback"),
        webhook_secret_env="ROLLBACK_TEST_SECRET",
    )
    prometheus.value = "+Inf"  # errors / zero requests
    t0 = timezone.now()
    verify_due(now=t0)
    verify_due(now=_tick(t0, 10))
    setup["deployment"].refresh_from_db()
    assert setup["deployment"].state == "succeeded"  # the FSM cannot fail it; CD rolls back
    request = RollbackRequest.objects.get()
    assert request.release == setup["release"]
    assert AuditEvent.objects.filter(action="release.rollback_required").exists()

    assert call_rollback_webhook(request.pk) == "delivered"
    assert call_rollback_webhook(request.pk) == "skipped"  # done: never called again
    (hit,) = received
    body = hit.get_data()
    assert verify(
        "s3cret",
        hit.headers["X-Releasegate-Timestamp"],
        body,
        hit.headers["X-Releasegate-Signature"],
    )
    assert json.loads(body)["version"] == setup["deployment"].version
    assert hit.headers["X-Releasegate-Idempotency-Key"] == f"rollback:{request.pk}"
    assert AuditEvent.objects.filter(action="rollback.webhook").exists()


def test_no_data_for_the_whole_window_fails(setup, prometheus):
    prometheus.value = "NaN"
    t0 = timezone.now()
    for second in range(0, 70, 10):
        verify_due(now=_tick(t0, second))
    run = VerificationRun.objects.get()
    assert run.status == "failed" and run.detail == "No data for error ratio."
    assert not VerificationSample.objects.filter(breached=True).exists()


def test_prometheus_down_is_no_data_not_a_breach(setup, prometheus):
    VerificationSpec.objects.update(prometheus_url="http://127.0.0.1:9")
    t0 = timezone.now()
    verify_due(now=t0)
    verify_due(now=_tick(t0, 10))
    sample = VerificationSample.objects.first()
    assert sample.value is None and "Cannot reach" in sample.error
    assert VerificationRun.objects.get().status == "running"


def test_a_second_sweep_at_the_same_moment_samples_nothing(setup, prometheus):
    t0 = timezone.now()
    verify_due(now=t0)
    assert verify_due(now=t0) == 0
    assert VerificationRun.objects.count() == 1
    assert VerificationSample.objects.count() == 1


def test_old_deployments_are_not_verified(setup, prometheus):
    Deployment.objects.update(started_at=timezone.now() - timedelta(hours=2))
    verify_due()
    assert not VerificationRun.objects.exists()


def test_release_page_panel_shows_the_chart(setup, prometheus, client, release_manager):
    t0 = timezone.now()
    verify_due(now=t0)
    prometheus.value = "0.5"
    verify_due(now=_tick(t0, 10))
    client.force_login(release_manager)
    response = client.get(f"/pipelines/releases/{setup['release'].pk}/verification/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "<svg" in html and "<polyline" in html and "error ratio" in html


def test_release_page_panel_is_hidden_from_outsiders(setup, client, outsider):
    client.force_login(outsider)
    response = client.get(f"/pipelines/releases/{setup['release'].pk}/verification/")
    assert response.status_code == 404


def test_release_page_loads_the_panel_lazily(setup, client, release_manager):
    client.force_login(release_manager)
    html = client.get(f"/releases/{setup['release'].pk}/").content.decode()
    assert f'hx-get="/pipelines/releases/{setup["release"].pk}/verification/"' in html
