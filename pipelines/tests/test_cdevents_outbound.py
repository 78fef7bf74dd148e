"""CDEvents out: every event Releasegate emits conforms to the vendored v0.5.1 schema (custom
events to the spec's custom-event schema), one chain links a release's approval, deployment
and incidents, and the outbox delivers them signed, in CloudEvents binary mode, to a real
HTTP subscriber on loopback."""

from __future__ import annotations

import json
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone
from pytest_httpserver import HTTPServer
from werkzeug import Response

from core.models import AuditEvent
from core.notifications import verify
from governance.models import FreezeWindow
from pipelines import cdevents
from pipelines.adapters.types import AlertEvent
from pipelines.models import (
    CDEventDelivery,
    CDEventDeliveryStatus,
    CDEventSubscription,
    Integration,
)
from pipelines.services import alerts_receive, cdevent_subscription_save, integration_create
from pipelines.tests.conftest import run_body
from releases import services as release_services
from releases.choices import ReleaseState
from releases.models import Deployment
from tests import cdevents as spec
from tests.factories import ReleaseFactory, force_state, make_ready

pytestmark = pytest.mark.django_db

SECRET = "subscriber-secret"
PORT = 18131  # this worktree's range: 18130-18139
DIGEST = "sha256:" + "ab" * 32


@pytest.fixture
def subscriber():
    server = HTTPServer(host="127.0.0.1", port=PORT)
    server.start()
    yield server
    server.clear()
    if server.is_running():
        server.stop()


@pytest.fixture
def subscription(subscriber):
    return cdevent_subscription_save(
        actor=None, name="keptn", url=subscriber.url_for("/cdevents"), secret=SECRET
    )


def emitted(**filters) -> list[dict]:
    return [
        d.payload for d in CDEventDelivery.objects.filter(**filters).order_by("created_at", "id")
    ]


def types_of(events) -> list[str]:
    return [e["context"]["type"] for e in events]


def approved_release(service, release_manager):
    """A release of payments-api 2.4.0 taken through approval by its services (its deployment
    window open now)."""
    now = timezone.now()
    release = make_ready(
        ReleaseFactory(
            services=[service],
            version="2.4.0",
            owner=release_manager,
            window_start=now - timedelta(hours=1),
            window_end=now + timedelta(hours=1),
        )
    )
    release = force_state(release, ReleaseState.IN_PROGRESS)
    release_services.release_request_approval(release=release, actor=release_manager)
    return release_services.release_approve(release=release.pk, actor=release_manager)


def deploy(ci, status: str, version: str = "2.4.0", external_id: str = "deploy-1"):
    response = ci.deployment(
        {
            "service": "payments-api",
            "environment": "production",
            "version": version,
            "status": status,
            "provider": "argo-cd",
            "external_id": external_id,
            "started_at": (timezone.now() - timedelta(minutes=5)).isoformat(),
        }
    )
    assert response.status_code in (200, 201), response.json()
    return response


def alert(status: str, starts_at):
    return AlertEvent(
        fingerprint="f00d",
        status=status,
        alertname="HighErrorRate",
        labels={},
        annotations={"summary": "5xx above 2%"},
        starts_at=starts_at,
        ends_at=None if status == "firing" else starts_at + timedelta(minutes=9),
        generator_url="",
        service="payments-api",
        environment="production",
    )


def test_a_release_emits_one_chain_from_approval_to_incident_and_every_event_conforms(
    subscription, ci, service, production, release_manager
):
    assert ci.run(
        run_body(artefacts=[{"name": "payments-api", "version": "2.4.0", "digest": DIGEST}])
    ).status_code in (200, 201)
    release = approved_release(service, release_manager)
    deploy(ci, "succeeded")
    release.refresh_from_db()
    assert release.state == ReleaseState.DEPLOYED
    alertmanager = integration_create(
        actor=None, provider="alertmanager", name="am", service_slugs=["payments-api"], secret="s"
    )
    fired = timezone.now()
    assert alerts_receive(integration=alertmanager, alerts=[alert("firing", fired)]).opened == 1
    assert alerts_receive(integration=alertmanager, alerts=[alert("resolved", fired)]).resolved

    events = emitted()
    assert types_of(events) == [
        "dev.cdeventsx.releasegate-approval.requested.0.1.0",
        "dev.cdeventsx.releasegate-approval.granted.0.1.0",
        "dev.cdevents.service.deployed.0.3.0",
        "dev.cdevents.incident.detected.0.3.0",
        "dev.cdevents.incident.resolved.0.3.0",
    ]
    for event in events:
        spec.assert_conforms(event)
    # One chain: the release's approval → its deployment → the incident on it.
    assert {e["context"]["chainId"] for e in events} == {cdevents.release_chain(release.pk)}
    # Ids are unique, stable per occurrence.
    assert len({e["context"]["id"] for e in events}) == len(events)

    deployed = events[2]
    assert deployed["subject"]["id"] == "payments-api"
    assert deployed["subject"]["content"]["environment"]["id"] == "production"
    assert deployed["subject"]["content"]["artifactId"] == (
        f"pkg:generic/payments-api@2.4.0?checksum={DIGEST}"
    )
    granted = events[1]["subject"]["content"]
    assert (granted["release"]["id"], granted["state"]) == (release.pk, "approved")
    assert granted["previousState"] == "awaiting_approval"
    detected = events[3]["subject"]["content"]
    assert detected["description"] == "5xx above 2%"
    assert detected["service"]["id"] == "payments-api"


def test_a_rollback_emits_service_rolledback_naming_the_version_gone_back_to(
    subscription, ci, production
):
    deploy(ci, "succeeded", version="2.3.0", external_id="deploy-0")
    deploy(ci, "succeeded", version="2.4.0", external_id="deploy-1")
    deploy(ci, "rolled_back", version="2.4.0", external_id="deploy-1")
    events = emitted(event_type=cdevents.SERVICE_ROLLEDBACK)
    assert len(events) == 1
    spec.assert_conforms(events[0])
    assert events[0]["subject"]["content"]["artifactId"] == "pkg:generic/payments-api@2.3.0"
    # No release: the deployment is its own chain.
    assert events[0]["context"]["chainId"]
    # The same report again emits nothing more.
    deploy(ci, "rolled_back", version="2.4.0", external_id="deploy-1")
    assert CDEventDelivery.objects.filter(event_type=cdevents.SERVICE_ROLLEDBACK).count() == 1


@pytest.mark.parametrize(
    ("transition", "predicate"),
    [("request_changes", "rejected"), ("reopen", "withdrawn")],
)
def test_approval_sent_back_or_withdrawn_is_emitted(
    subscription, service, release_manager, transition, predicate
):
    release = approved_release(service, release_manager)
    if transition == "request_changes":
        release = force_state(release, ReleaseState.AWAITING_APPROVAL)
    release_services.TRANSITION_SERVICES[transition](
        release=release.pk, actor=release_manager, reason="The rollback plan is missing a step."
    )
    event = emitted()[-1]
    assert event["context"]["type"] == f"dev.cdeventsx.releasegate-approval.{predicate}.0.1.0"
    spec.assert_conforms(event)
    assert event["context"]["chainId"] == cdevents.release_chain(release.pk)


def test_a_freeze_window_start_and_end_are_announced_once(subscription, service):
    now = timezone.now().replace(microsecond=0)
    window = FreezeWindow.objects.create(
        name="Black Friday",
        reason="Peak traffic",
        start=now - timedelta(minutes=10),
        end=now + timedelta(minutes=50),
    )
    window.services.set([service])
    assert cdevents.freezes_sweep(now=now) == 1
    assert cdevents.freezes_sweep(now=now) == 0  # once per occurrence
    assert cdevents.freezes_sweep(now=now + timedelta(minutes=51)) == 1
    started, ended = emitted()
    assert started["context"]["type"] == "dev.cdeventsx.releasegate-freeze.started.0.1.0"
    assert ended["context"]["type"] == "dev.cdeventsx.releasegate-freeze.ended.0.1.0"
    for event in (started, ended):
        spec.assert_conforms(event)
        assert "chainId" not in event["context"]
    assert started["subject"]["content"]["services"] == ["payments-api"]
    assert started["subject"]["id"] == ended["subject"]["id"]
    # A freeze long over is not news.
    assert cdevents.freezes_sweep(now=now + timedelta(days=2)) == 0


def test_a_delivery_is_a_signed_cloudevent_in_binary_mode(subscriber, subscription, ci, production):
    deploy(ci, "succeeded")
    row = CDEventDelivery.objects.get()
    subscriber.expect_oneshot_request("/cdevents", method="POST").respond_with_data("", status=204)
    assert cdevents.deliver(row.pk) == "delivered"
    ((request, _),) = subscriber.log
    body = request.get_data()
    event = json.loads(body)
    spec.assert_conforms(event)
    headers = request.headers
    assert headers["Content-Type"] == "application/json"
    assert headers["ce-specversion"] == "1.0"
    assert headers["ce-id"] == event["context"]["id"] == row.event_id
    assert headers["ce-source"] == event["context"]["source"]
    assert headers["ce-type"] == "dev.cdevents.service.deployed.0.3.0"
    assert headers["ce-time"] == event["context"]["timestamp"]
    assert headers["ce-subject"] == "payments-api"
    assert verify(
        SECRET, headers["X-Releasegate-Timestamp"], body, headers["X-Releasegate-Signature"]
    )
    assert headers["X-Releasegate-Idempotency-Key"] == f"cdevent:{row.event_id}"
    row.refresh_from_db()
    assert (row.status, row.attempts, row.last_status_code) == ("delivered", 1, 204)
    # Delivered is final: a second task (a redelivered message) sends nothing.
    assert cdevents.deliver(row.pk) == "skipped"
    assert len(subscriber.log) == 1


def test_a_failed_delivery_is_retried_later_then_given_up(subscriber, subscription, ci, production):
    deploy(ci, "succeeded")
    row = CDEventDelivery.objects.get()
    subscriber.expect_request("/cdevents").respond_with_response(Response("down", status=503))
    assert cdevents.deliver(row.pk) == "retry"
    row.refresh_from_db()
    assert (row.status, row.last_status_code, row.last_error) == ("pending", 503, "HTTP 503")
    assert row.next_attempt_at > timezone.now() - timedelta(seconds=1)
    CDEventDelivery.objects.filter(pk=row.pk).update(
        attempts=cdevents.MAX_ATTEMPTS - 1, next_attempt_at=timezone.now()
    )
    assert cdevents.deliver_due() == 0
    row.refresh_from_db()
    assert row.status == CDEventDeliveryStatus.DEAD


def test_a_private_destination_is_refused_when_not_allowed(subscription, ci, production, settings):
    deploy(ci, "succeeded")
    settings.OUTBOUND_ALLOW_PRIVATE = False
    row = CDEventDelivery.objects.get()
    assert cdevents.deliver(row.pk) == "dead"
    row.refresh_from_db()
    assert row.last_error.startswith("Refused:")
    with pytest.raises(CommandError, match="loopback"):
        call_command("cdevents_subscribe", name="evil", url="http://127.0.0.1:6379/", secret="x")


def test_subscriptions_choose_event_types_and_emitting_twice_writes_once(
    subscriber, service, production, ci
):
    call_command(
        "cdevents_subscribe",
        name="approvals-only",
        url=subscriber.url_for("/a"),
        secret=SECRET,
        types=["dev.cdeventsx.releasegate-approval."],
        stdout=StringIO(),
    )
    cdevent_subscription_save(
        actor=None, name="everything", url=subscriber.url_for("/b"), secret=SECRET
    )
    call_command(
        "cdevents_subscribe",
        name="off",
        url=subscriber.url_for("/c"),
        secret=SECRET,
        disable=True,
        stdout=StringIO(),
    )
    deploy(ci, "succeeded")
    by_subscription = dict(CDEventDelivery.objects.values_list("subscription__name", "event_type"))
    assert by_subscription == {"everything": cdevents.SERVICE_DEPLOYED}
    event = CDEventDelivery.objects.get().payload
    assert cdevents.emit(event, key=CDEventDelivery.objects.get().key) == []
    assert CDEventDelivery.objects.count() == 1
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert "cdevents_subscription.create" in actions
    assert CDEventSubscription.objects.get(name="off").enabled is False


def test_no_subscription_no_rows(ci, production):
    deploy(ci, "succeeded")
    assert not CDEventDelivery.objects.exists()


def test_an_emitted_event_reads_back_through_the_cdevents_endpoint(
    subscription, ci, service, production
):
    """Interoperability: what we emit, another Releasegate (or any CDEvents consumer) reads."""
    from pipelines.tests.test_cdevents_inbound import post

    deploy(ci, "succeeded")
    event = CDEventDelivery.objects.get().payload
    Integration.objects.all().delete()
    integration_create(
        actor=None,
        provider="cdevents",
        name="peer",
        service_slugs=[service.slug],
        secret="cdevents-shared-secret",
    )
    # Our own event coming back (a bus forwarding everything) is not recorded twice.
    mirrored = post(event, "binary")
    assert mirrored.status_code == 202
    assert "Emitted by this Releasegate" in mirrored.json()["detail"]
    # Another Releasegate's event (another source) is read like any producer's.
    event["context"]["source"] = "https://releasegate.peer.example"
    response = post(event, "binary")
    assert response.status_code == 200, response.json()
    assert response.json()["deployment"]["version"] == "2.4.0"
    assert Deployment.objects.count() == 2


def test_a_subscription_added_and_changed_in_the_admin_is_audited_without_its_secret(client):
    from django.contrib.auth import get_user_model

    root = get_user_model().objects.create_superuser("root", "root@example.test", "pw")
    client.force_login(root)
    add = {
        "name": "keptn",
        "url": "https://keptn.example/cdevents",
        "secret": "very-secret-value",
        "event_types": "dev.cdevents.service.\ndev.cdeventsx.releasegate-approval.",
        "enabled": "on",
    }
    response = client.post("/admin/pipelines/cdeventsubscription/add/", add)
    assert response.status_code == 302, response.content
    subscription = CDEventSubscription.objects.get()
    assert subscription.event_types == [
        "dev.cdevents.service.",
        "dev.cdeventsx.releasegate-approval.",
    ]
    change = {"url": "https://keptn.example/v2", "secret": "", "event_types": "", "enabled": "on"}
    response = client.post(
        f"/admin/pipelines/cdeventsubscription/{subscription.pk}/change/", change
    )
    assert response.status_code == 302, response.content
    subscription.refresh_from_db()
    assert (subscription.url, subscription.secret) == (
        "https://keptn.example/v2",
        "very-secret-value",
    )
    trail = AuditEvent.objects.filter(target_id=str(subscription.pk)).order_by("chain_seq")
    assert [e.action for e in trail] == [
        "cdevents_subscription.create",
        "cdevents_subscription.update",
    ]
    assert {e.actor_label for e in trail} == {"root"}
    assert "very-secret-value" not in json.dumps([[e.before, e.after] for e in trail])
    # A new subscription needs a secret; a private address is refused like any webhook's.
    missing = client.post(
        "/admin/pipelines/cdeventsubscription/add/", {**add, "name": "b", "secret": ""}
    )
    assert missing.status_code == 200 and CDEventSubscription.objects.count() == 1


def test_a_subscription_refuses_what_it_cannot_use(subscriber):
    from core.errors import InvalidInput

    url = subscriber.url_for("/x")
    with pytest.raises(InvalidInput, match="prefixes"):
        cdevent_subscription_save(
            actor=None, name="x", url=url, secret="s", event_types=["service.deployed"]
        )
    with pytest.raises(InvalidInput, match="needs a secret"):
        cdevent_subscription_save(actor=None, name="x", url=url)
    assert not CDEventSubscription.objects.exists()
