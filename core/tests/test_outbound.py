"""The outbound guard (core/outbound.py): URLs people typed may not lead the workers to
private addresses, neither when the URL is saved nor when the worker sends (the name may
resolve differently by then), nor through a redirect. The test settings allow private
addresses (stub servers on 127.0.0.1); these tests turn that off."""

from __future__ import annotations

import ipaddress
import socket

import httpx
import pytest
from django.test import override_settings
from django.utils import timezone
from werkzeug import Response

from core import notifications as outbox
from core.errors import InvalidInput
from core.models import Notification, NotificationAttempt, NotificationPreference
from core.outbound import OutboundRefused, check_outbound_url, outbound_client
from pipelines.admin import OutboundURLForm
from pipelines.models import (
    IntegrationPollState,
    RollbackPolicy,
    RollbackRequest,
    VerificationQuery,
    VerificationSpec,
)
from pipelines.polling.http import FetchStats, PollError, get_json
from pipelines.verification import call_rollback_webhook, query_prometheus
from releases import communications
from releases.models import Deployment
from tests.factories import ReleaseFactory, UserFactory, make_ready

guarded = override_settings(OUTBOUND_ALLOW_PRIVATE=False, OUTBOUND_ALLOWED_NETWORKS=[])

PUBLIC = "93.184.216.34"


class FakeDNS:
    """getaddrinfo for the names in ``records`` (changeable between calls, as a rebinding
    server would); every other name resolves as usual."""

    def __init__(self, real):
        self.real = real
        self.records: dict[str, list[str]] = {}
        self.lookups: list[str] = []

    def __call__(self, host, port, *args, **kwargs):
        if host not in self.records:
            return self.real(host, port, *args, **kwargs)
        self.lookups.append(host)
        out = []
        for address in self.records[host]:
            if ipaddress.ip_address(address).version == 6:
                out.append((socket.AF_INET6, socket.SOCK_STREAM, 6, "", (address, port, 0, 0)))
            else:
                out.append((socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port)))
        return out


@pytest.fixture
def dns(monkeypatch):
    fake = FakeDNS(socket.getaddrinfo)
    monkeypatch.setattr(socket, "getaddrinfo", fake)
    return fake


# --- the rule -------------------------------------------------------------------------------


@guarded
@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("http://127.0.0.1/hook", "loopback"),
        ("http://127.8.9.10:8080/", "loopback"),
        ("http://[::1]/", "loopback"),
        ("http://10.0.0.5/hook", "private"),
        ("http://172.16.3.4/", "private"),
        ("https://192.168.1.1/", "private"),
        ("http://[fc00::1]/", "private"),
        ("http://[fd12:3456::1]/", "private"),
        ("http://[2001:db8::1]/", "private"),  # documentation range
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("http://[fe80::1]/", "link-local"),
        ("http://224.0.0.1/", "multicast"),
        ("http://[ff02::1]/", "multicast"),
        ("http://240.0.0.1/", "reserved"),
        ("http://0.0.0.0:8000/", "unspecified"),
        ("http://[::]/", "unspecified"),
        ("http://100.64.0.1/", "non-public"),  # carrier-grade NAT
        ("http://[::ffff:127.0.0.1]/", "loopback"),  # IPv4-mapped IPv6
        ("http://[::ffff:10.0.0.5]/", "private"),
    ],
)
def test_it_refuses_ip_literals_of_every_non_public_class(url, kind):
    with pytest.raises(OutboundRefused, match=kind) as refused:
        check_outbound_url(url)
    assert "ask an administrator to allow private destinations" in str(refused.value)


@guarded
def test_it_refuses_a_name_that_resolves_to_a_private_address(dns):
    dns.records["hooks.example.test"] = ["10.0.0.5"]
    with pytest.raises(OutboundRefused) as refused:
        check_outbound_url("https://hooks.example.test/T0/B0")
    assert "hooks.example.test resolves to a private address (10.0.0.5)" in str(refused.value)


@guarded
def test_it_refuses_a_name_when_any_of_its_addresses_is_private(dns):
    dns.records["mixed.example.test"] = [PUBLIC, "2606:2800:220:1:248:1893:25c8:1946", "127.0.0.1"]
    with pytest.raises(OutboundRefused, match="loopback"):
        check_outbound_url("https://mixed.example.test/")


@guarded
def test_it_accepts_public_addresses(dns):
    dns.records["hooks.example.test"] = [PUBLIC, "2606:2800:220:1:248:1893:25c8:1946"]
    check_outbound_url("https://hooks.example.test/T0/B0")
    check_outbound_url(f"https://{PUBLIC}:8443/hook")
    check_outbound_url("https://[2606:2800:220:1:248:1893:25c8:1946]/hook")


@guarded
def test_a_name_that_does_not_resolve_yet_is_accepted_and_checked_when_sent():
    check_outbound_url("https://not-yet-published.invalid/hook")


@guarded
@pytest.mark.parametrize("url", ["ftp://example.com/", "file:///etc/passwd", "https://", "nope"])
def test_it_refuses_what_is_not_an_http_url_with_a_host(url):
    with pytest.raises(OutboundRefused):
        check_outbound_url(url)


@override_settings(OUTBOUND_ALLOW_PRIVATE=False, OUTBOUND_ALLOWED_NETWORKS=["10.20.0.0/16"])
def test_an_allowed_network_lets_just_that_subnet_through():
    check_outbound_url("http://10.20.4.5:8080/job/build/")
    with pytest.raises(OutboundRefused, match="10.30.0.1"):
        check_outbound_url("http://10.30.0.1/")
    with pytest.raises(OutboundRefused):
        check_outbound_url("http://169.254.169.254/")


@override_settings(OUTBOUND_ALLOW_PRIVATE=True)
def test_with_private_destinations_allowed_loopback_is_accepted(httpserver):
    check_outbound_url("http://127.0.0.1:9090/")
    check_outbound_url("http://10.0.0.5/hook")
    httpserver.expect_request("/ok").respond_with_data("ok")
    with outbound_client(timeout=5) as client:
        assert client.get(httpserver.url_for("/ok")).text == "ok"


# --- at send time ------------------------------------------------------------------------------


@override_settings(OUTBOUND_ALLOW_PRIVATE=False, OUTBOUND_ALLOWED_NETWORKS=["127.0.0.0/8"])
def test_the_client_connects_to_the_checked_address_with_the_original_host(httpserver, dns):
    dns.records["stub.example.test"] = ["127.0.0.1"]
    seen = []
    httpserver.expect_request("/hook").respond_with_handler(
        lambda request: seen.append(request.headers["Host"]) or Response("ok")
    )
    with outbound_client(timeout=5) as client:
        response = client.get(f"http://stub.example.test:{httpserver.port}/hook")
    assert response.text == "ok"
    assert seen == [f"stub.example.test:{httpserver.port}"]
    assert dns.lookups == ["stub.example.test"]  # resolved once, by the guard


@guarded
def test_the_client_refuses_before_connecting(dns):
    dns.records["rebound.example.test"] = ["169.254.169.254"]
    with outbound_client(timeout=1) as client, pytest.raises(OutboundRefused, match="link-local"):
        client.get("http://rebound.example.test/latest/meta-data/")


@override_settings(OUTBOUND_ALLOW_PRIVATE=False, OUTBOUND_ALLOWED_NETWORKS=["127.0.0.0/8"])
def test_a_redirect_to_a_private_address_is_refused(httpserver):
    httpserver.expect_request("/hook").respond_with_data(
        "", status=302, headers={"Location": "http://169.254.169.254/latest/meta-data/"}
    )
    # Followed (only if a caller asks): the hop is checked like the first request.
    with (
        outbound_client(timeout=5, follow_redirects=True) as client,
        pytest.raises(OutboundRefused, match="link-local"),
    ):
        client.get(httpserver.url_for("/hook"))
    # The webhooks do not follow redirects at all: a 3xx is a failed delivery.
    outcome = outbox.post_signed(httpserver.url_for("/hook"), {}, secret="s", key="k")
    assert not outcome.ok
    assert outcome.error == "HTTP 302"


@pytest.mark.django_db
def test_a_webhook_that_resolves_privately_when_sent_is_a_failed_delivery_not_retried(
    release_manager, dns
):
    dns.records["hooks.example.test"] = [PUBLIC]
    with guarded:
        outbox.preferences_update(
            actor=release_manager,
            channels={"gate_waiting": ["slack"]},
            slack_webhook_url="https://hooks.example.test/T0/B0",
        )  # accepted: public when saved
        (row,) = outbox.notification_enqueue(
            event="gate_waiting",
            recipients=[release_manager],
            subject="Gate waiting",
            idempotency_key="gate_waiting:1",
        )
        dns.records["hooks.example.test"] = ["10.0.0.5"]  # rebound before the worker sends
        assert outbox.deliver_notification(row.pk) == "dead"
    row.refresh_from_db()
    assert row.status == "dead"
    assert "resolves to a private address (10.0.0.5)" in row.last_error
    (attempt,) = NotificationAttempt.objects.filter(notification=row)
    assert not attempt.ok
    assert attempt.error.startswith("Refused: hooks.example.test resolves to a private")
    assert outbox.deliver_notification(row.pk) == "skipped"  # never sent again


@pytest.mark.django_db
@guarded
def test_an_external_destination_stored_earlier_is_refused_when_sent():
    row = outbox.notification_enqueue_external(
        channel="slack",
        destination="http://169.254.169.254/latest/meta-data/",
        subject="Maintenance tonight",
        idempotency_key="comms:1",
    )
    assert outbox.deliver_notification(row.pk) == "dead"
    assert "link-local" in Notification.objects.get(pk=row.pk).last_error


@pytest.mark.django_db
@guarded
def test_a_rollback_webhook_to_a_private_address_is_refused_and_not_retried(
    service, production, release_manager
):
    release = ReleaseFactory(services=[service], owner=release_manager)
    deployment = Deployment.objects.create(
        release=release,
        service=service,
        environment=production,
        version=release.version,
        state="succeeded",
        provider="argo",
        external_id="d-1",
        started_at=timezone.now(),
    )
    request = RollbackRequest.objects.create(
        release=release,
        deployment=deployment,
        reason="Verification failed",
        webhook_url="http://10.1.2.3/rollback",
        webhook_next_attempt_at=timezone.now(),
    )
    assert call_rollback_webhook(request.pk) == "refused"
    request.refresh_from_db()
    assert request.webhook_next_attempt_at is None
    assert request.webhook_attempts == 1


@guarded
def test_a_poller_or_prometheus_at_a_private_address_is_a_poll_error_at_once(dns):
    dns.records["jenkins.example.test"] = ["10.9.8.7"]
    stats = FetchStats()
    with outbound_client(timeout=1) as client:
        with pytest.raises(PollError, match="Refused: jenkins.example.test resolves"):
            get_json(client, "http://jenkins.example.test/job/x/api/json", stats=stats)
        value, error = query_prometheus(
            client, "http://[::1]:9090", VerificationQuery(promql="up", comparator="lt")
        )
    assert stats.attempts == 1  # not retried
    assert value is None
    assert error.startswith("Refused: ::1 is a loopback address")


# --- when saved ----------------------------------------------------------------------------------


@pytest.mark.django_db
@guarded
def test_the_preferences_form_refuses_a_private_webhook(client, release_manager):
    client.force_login(release_manager)
    response = client.post(
        "/pipelines/notifications/preferences/",
        {"slack_webhook_url": "https://192.168.0.10/hooks/abc"},
    )
    assert response.status_code == 200
    assert "is a private address" in response.content.decode()
    assert not NotificationPreference.objects.exists()


@pytest.mark.django_db
@guarded
def test_the_preferences_service_refuses_a_private_webhook(release_manager):
    with pytest.raises(InvalidInput) as refused:
        outbox.preferences_update(
            actor=release_manager, channels={}, slack_webhook_url="https://[::1]/hook"
        )
    assert "loopback" in refused.value.details["slack_webhook_url"][0]


@pytest.mark.django_db
@guarded
def test_a_release_communication_to_a_private_webhook_is_refused(service, release_manager, dns):
    dns.records["status.corp.test"] = ["172.20.0.4"]
    release = make_ready(ReleaseFactory(services=[service], owner=release_manager))
    with pytest.raises(InvalidInput) as refused:
        communications.communication_schedule(
            release=release,
            actor=release_manager,
            audience="customers",
            channel="slack",
            destination="https://status.corp.test/hook",
            trigger="window_start",
            subject="Maintenance",
            message="Tonight.",
        )
    assert "status.corp.test resolves to a private address (172.20.0.4)" in str(
        refused.value.details["destination"]
    )


@pytest.mark.django_db
@guarded
@pytest.mark.parametrize(
    ("model", "field"),
    [
        (RollbackPolicy, "webhook_url"),
        (VerificationSpec, "prometheus_url"),
        (IntegrationPollState, "base_url"),
        (NotificationPreference, "slack_webhook_url"),
    ],
)
def test_the_admin_refuses_private_urls_on_every_worker_destination(rf, model, field):
    from django.contrib import admin

    request = rf.get("/")
    request.user = UserFactory(is_superuser=True, is_staff=True)
    form_class = admin.site._registry[model].get_form(request)
    assert issubclass(form_class, OutboundURLForm)
    form = form_class({field: "http://169.254.169.254/latest/meta-data/"})
    assert not form.is_valid()
    assert "link-local" in form.errors[field][0]


def test_httpx_is_the_version_the_guard_was_written_for():
    # The guard passes its network backend to httpcore.ConnectionPool (public in httpcore 1.x)
    # and replaces HTTPTransport's pool; re-check both when upgrading.
    assert httpx.__version__.startswith("0.28.")
