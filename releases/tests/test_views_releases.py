"""Release pages with Django's test client: list, create/edit forms, detail, exports."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from core.models import AuditEvent
from releases import services
from releases.choices import ReleaseState
from releases.models import Release
from tests.factories import ReleaseFactory, force_state, make_ready

pytestmark = pytest.mark.django_db


@pytest.fixture
def release(service, release_manager):
    return make_ready(ReleaseFactory(name="Checkout v2", services=[service], owner=release_manager))


# --- list -------------------------------------------------------------------------------------


def test_list_shows_releases_with_their_columns(client, viewer, release):
    client.force_login(viewer)
    response = client.get(reverse("releases:list"))
    assert response.status_code == 200
    body = response.content.decode()
    assert "Checkout v2" in body
    assert release.version in body
    assert "payments-api" in body
    assert "state-draft" in body and ">Draft<" in body
    assert "rita" in body


def test_list_needs_login(client):
    response = client.get(reverse("releases:list"))
    assert response.status_code == 302
    assert reverse("login") in response["Location"]


def test_outsider_sees_an_explanation_not_data(client, outsider, release):
    client.force_login(outsider)
    response = client.get(reverse("releases:list"))
    assert response.status_code == 200
    body = response.content.decode()
    assert "no role" in body
    assert "Checkout v2" not in body


@pytest.mark.parametrize(
    ("query", "expected", "hidden"),
    [
        ({"state": ["planned"]}, ["Planned one"], ["Draft one", "Identity one"]),
        ({"state": ["planned", "draft"]}, ["Planned one", "Draft one"], ["Identity one"]),
        ({"service": "identity-api"}, ["Identity one"], ["Planned one"]),
        ({"team": "payments"}, ["Planned one", "Draft one"], ["Identity one"]),
        ({"release_type": "hotfix"}, ["Identity one"], ["Draft one"]),
        ({"risk_level": "high"}, ["Draft one"], ["Planned one"]),
        ({"q": "identity"}, ["Identity one"], ["Planned one"]),
        ({"window_from": "2030-01-01"}, ["Identity one"], ["Draft one"]),
        ({"window_to": "2029-12-31"}, ["Draft one", "Planned one"], ["Identity one"]),
    ],
)
def test_list_filters(client, viewer, service, other_service, query, expected, hidden):
    planned = ReleaseFactory(name="Planned one", services=[service])
    force_state(planned, ReleaseState.PLANNED)
    ReleaseFactory(name="Draft one", services=[service], risk_level="high")
    identity = ReleaseFactory(
        name="Identity one",
        services=[other_service],
        release_type="hotfix",
        window_start=datetime(2030, 2, 1, 10, tzinfo=ZoneInfo("UTC")),
        window_end=datetime(2030, 2, 1, 12, tzinfo=ZoneInfo("UTC")),
    )
    force_state(identity, ReleaseState.IN_PROGRESS)
    client.force_login(viewer)
    body = client.get(reverse("releases:list"), query).content.decode()
    for name in expected:
        assert name in body
    for name in hidden:
        assert name not in body


def test_invalid_filter_is_reported_not_a_500(client, viewer, release):
    client.force_login(viewer)
    response = client.get(reverse("releases:list"), {"window_from": "not-a-date", "state": "x"})
    assert response.status_code == 200
    assert "errorlist" in response.content.decode()


def test_list_paginates_by_25(client, viewer, service):
    for i in range(30):
        ReleaseFactory(name=f"Bulk {i:02d}", services=[service])
    client.force_login(viewer)
    first = client.get(reverse("releases:list"))
    assert len(first.context["releases"]) == 25
    assert "Page 1 of 2" in first.content.decode()
    second = client.get(reverse("releases:list"), {"page": 2})
    assert len(second.context["releases"]) == 5


def test_htmx_filter_request_gets_only_the_results(client, viewer, release):
    client.force_login(viewer)
    response = client.get(
        reverse("releases:list"),
        {"q": "Checkout"},
        HTTP_HX_REQUEST="true",
        HTTP_HX_TARGET="results",
    )
    body = response.content.decode()
    assert "Checkout v2" in body
    assert "<html" not in body


def _count_list_queries(client) -> int:
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(reverse("releases:list")).status_code == 200
    return len(ctx.captured_queries)


def test_list_query_count_does_not_grow_with_rows(
    client, viewer, service, other_service, release_manager, django_assert_num_queries
):
    client.force_login(viewer)
    for _ in range(2):
        ReleaseFactory(services=[service, other_service], owner=release_manager)
    baseline = _count_list_queries(client)
    for _ in range(20):
        ReleaseFactory(services=[service, other_service], owner=release_manager)
    client.get(reverse("releases:list"))  # warm the same caches as the baseline run
    with django_assert_num_queries(baseline):
        client.get(reverse("releases:list"))


# --- create / edit ----------------------------------------------------------------------------


def _form_data(service, **overrides):
    data = {
        "name": "Wallet top-ups",
        "version": "3.1.0",
        "release_type": "minor",
        "risk_level": "medium",
        "services": [service.pk],
        "time_zone": "Europe/Berlin",
        "window_start": "2031-03-10T22:00",
        "window_end": "2031-03-10T23:30",
        "code_freeze_at": "2031-03-08T12:00",
        "target_date": "2031-03-11",
        "description": "Top up a wallet by card.",
        "release_notes": "## Added\n\n- Top-ups",
    }
    data.update(overrides)
    return data


def test_release_manager_creates_a_draft_in_the_chosen_time_zone(client, release_manager, service):
    client.force_login(release_manager)
    response = client.post(reverse("releases:create"), _form_data(service))
    release = Release.objects.get(name="Wallet top-ups")
    assert response.status_code == 302
    assert response["Location"] == release.get_absolute_url()
    assert release.state == ReleaseState.DRAFT
    assert release.owner == release_manager
    assert list(release.services.all()) == [service]
    # 22:00 in Berlin (CET, UTC+1 in March before DST) is 21:00 UTC.
    assert release.window_start == datetime(2031, 3, 10, 21, 0, tzinfo=ZoneInfo("UTC"))
    assert AuditEvent.objects.filter(release_id=release.pk, action="release.create").count() == 1


def test_create_form_shows_field_errors(client, release_manager, service):
    client.force_login(release_manager)
    response = client.post(
        reverse("releases:create"),
        _form_data(service, name="", window_end="2031-03-10T21:00", services=[]),
    )
    assert response.status_code == 422
    form = response.context["form"]
    assert "name" in form.errors
    assert "window_end" in form.errors
    assert "services" in form.errors
    assert not Release.objects.exists()


def test_create_offers_only_the_users_team_services(
    client, release_manager, service, other_service
):
    client.force_login(release_manager)
    response = client.get(reverse("releases:create"))
    offered = list(response.context["form"].fields["services"].queryset)
    assert offered == [service]


def test_administrator_is_offered_every_service(client, administrator, service, other_service):
    client.force_login(administrator)
    response = client.get(reverse("releases:create"))
    assert set(response.context["form"].fields["services"].queryset) == {service, other_service}


def test_foreign_service_is_refused_with_a_field_error_not_a_500(
    client, release_manager, other_service
):
    client.force_login(release_manager)
    response = client.post(reverse("releases:create"), _form_data(other_service))
    assert response.status_code == 422
    assert "services" in response.context["form"].errors
    assert not Release.objects.exists()


def test_service_refusal_is_shown_on_the_form(client, release_manager, service, monkeypatch):
    from core.errors import InvalidInput

    def refuse(**kwargs):
        raise InvalidInput("Nope.", details={"version": ["Already released."]})

    monkeypatch.setattr(services, "release_create", refuse)
    client.force_login(release_manager)
    response = client.post(reverse("releases:create"), _form_data(service))
    assert response.status_code == 422
    assert response.context["form"].errors["version"] == ["Already released."]


def test_only_release_managers_see_new_release(client, viewer, release_manager):
    client.force_login(viewer)
    assert "New release" not in client.get(reverse("releases:list")).content.decode()
    assert client.get(reverse("releases:create")).status_code == 403
    client.force_login(release_manager)
    assert "New release" in client.get(reverse("releases:list")).content.decode()


def test_edit_records_only_what_changed(client, release_manager, release, service):
    client.force_login(release_manager)
    url = reverse("releases:edit", args=[release.pk])
    page = client.get(url)
    assert page.status_code == 200
    data = dict(page.context["form"].initial)
    data.update(
        services=[service.pk],
        owner=release_manager.pk,
        product_owner="",
        time_zone="UTC",
        window_start=release.window_start.strftime("%Y-%m-%dT%H:%M"),
        window_end=release.window_end.strftime("%Y-%m-%dT%H:%M"),
        code_freeze_at="",
        target_date="",
        version="9.9.9",
    )
    Release.objects.filter(pk=release.pk).update(
        window_start=release.window_start.replace(second=0, microsecond=0),
        window_end=release.window_end.replace(second=0, microsecond=0),
    )
    response = client.post(url, data)
    assert response.status_code == 302
    event = AuditEvent.objects.get(release_id=release.pk, action="release.update")
    assert event.before == {"version": release.version}
    assert event.after == {"version": "9.9.9"}


def test_viewer_cannot_edit(client, viewer, release):
    client.force_login(viewer)
    assert client.get(reverse("releases:edit", args=[release.pk])).status_code == 403


# --- detail -----------------------------------------------------------------------------------


def test_detail_shows_everything(client, viewer, release, release_manager):
    services.release_update(
        release=release,
        actor=release_manager,
        changes={"release_notes": "# Notes\n\n<script>alert(1)</script>"},
    )
    services.risk_add(release=release, actor=release_manager, description="Card network timeouts")
    client.force_login(viewer)
    response = client.get(reverse("releases:detail", args=[release.pk]))
    body = response.content.decode()
    assert response.status_code == 200
    assert "Checkout redesign" in body  # scope
    assert "PAY-1" in body
    assert "Redeploy the previous image." in body  # rollback plan
    assert "Card network timeouts" in body  # risk register
    assert "<h1>Notes</h1>" in body
    assert "<script>alert(1)</script>" not in body
    assert "Audit timeline" in body and "Risk add" in body
    assert "UTC" in body  # the window names its time zone
    assert "{# panels" not in body


def test_viewer_sees_no_transition_buttons_or_edit_forms(client, viewer, release):
    client.force_login(viewer)
    body = client.get(reverse("releases:detail", args=[release.pk])).content.decode()
    assert "/transitions/" not in body
    assert "Add scope item" not in body
    assert "Edit details" not in body


def test_other_team_release_manager_sees_no_buttons(client, other_release_manager, release):
    client.force_login(other_release_manager)
    body = client.get(reverse("releases:detail", args=[release.pk])).content.decode()
    assert "/transitions/" not in body


def test_release_manager_sees_exactly_the_available_transitions(client, release_manager, release):
    client.force_login(release_manager)
    response = client.get(reverse("releases:detail", args=[release.pk]))
    names = [t["name"] for t in response.context["transitions"]]
    assert set(names) == set(services.available_transitions(release=release, actor=release_manager))
    assert names == ["plan", "cancel"]  # forward first, the ending one last
    body = response.content.decode()
    assert reverse("releases:transition", args=[release.pk, "plan"]) in body
    assert reverse("releases:transition", args=[release.pk, "approve"]) not in body


# --- outsiders --------------------------------------------------------------------------------


def _release_urls(release):
    item = release.scope_items.first()
    return [
        ("get", reverse("releases:detail", args=[release.pk])),
        ("get", reverse("releases:edit", args=[release.pk])),
        ("post", reverse("releases:transition", args=[release.pk, "plan"])),
        ("post", reverse("releases:scope_add", args=[release.pk])),
        ("post", reverse("releases:scope_edit", args=[release.pk, item.pk])),
        ("post", reverse("releases:scope_status", args=[release.pk, item.pk])),
        ("post", reverse("releases:scope_remove", args=[release.pk, item.pk])),
        ("post", reverse("releases:risk_add", args=[release.pk])),
        ("post", reverse("releases:rollback_set", args=[release.pk])),
        ("get", reverse("releases:audit_csv", args=[release.pk])),
        ("get", reverse("releases:audit_json", args=[release.pk])),
    ]


def test_outsider_gets_404_on_every_release_url(client, outsider, release):
    client.force_login(outsider)
    for method, url in _release_urls(release):
        response = getattr(client, method)(url, {"reason": "x", "title": "x", "steps": "x"})
        assert response.status_code == 404, url
    release.refresh_from_db()
    assert release.state == ReleaseState.DRAFT
    assert release.scope_items.count() == 1


def test_unknown_release_is_404(client, viewer):
    client.force_login(viewer)
    assert client.get(reverse("releases:detail", args=[99999])).status_code == 404


# --- audit export -----------------------------------------------------------------------------


def _history(release, actor):
    services.release_plan(release=release, actor=actor)
    services.release_cancel(release=release, actor=actor, reason='Merged into 2.0, says "PO"')


def test_csv_export_has_every_event(client, viewer, release, release_manager):
    _history(release, release_manager)
    client.force_login(viewer)
    response = client.get(reverse("releases:audit_csv", args=[release.pk]))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert [r["action"] for r in rows] == ["release.plan", "release.cancel"]
    assert rows[1]["from_state"] == "planned" and rows[1]["to_state"] == "cancelled"
    assert rows[1]["reason"] == 'Merged into 2.0, says "PO"'
    assert rows[1]["actor"] == "rita"


def test_csv_export_defuses_spreadsheet_formulas(client, viewer, release, release_manager):
    services.release_cancel(release=release, actor=release_manager, reason="=HYPERLINK(1)")
    client.force_login(viewer)
    response = client.get(reverse("releases:audit_csv", args=[release.pk]))
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[-1]["reason"] == "'=HYPERLINK(1)"


def test_json_export_has_every_event(client, viewer, release, release_manager):
    services.scope_item_add(release=release, actor=release_manager, title="Refunds", kind="fix")
    _history(release, release_manager)
    client.force_login(viewer)
    response = client.get(reverse("releases:audit_json", args=[release.pk]))
    data = json.loads(b"".join(response.streaming_content))
    assert data["release"]["id"] == release.pk
    actions = [e["action"] for e in data["events"]]
    assert actions == ["scope.add", "release.plan", "release.cancel"]
    assert data["events"][0]["after"]["title"] == "Refunds"


def test_export_of_a_release_without_events_is_valid(client, viewer, release):
    client.force_login(viewer)
    response = client.get(reverse("releases:audit_json", args=[release.pk]))
    assert json.loads(b"".join(response.streaming_content))["events"] == []


def test_create_form_refuses_a_window_ending_in_9999(client, release_manager, service):
    client.force_login(release_manager)
    response = client.post(
        reverse("releases:create"), _form_data(service, window_end="9999-12-31T23:00")
    )
    assert response.status_code == 422
    assert response.context["form"].errors["window_end"] == [
        "Must be between 1970-01-01 and 2999-12-31."
    ]
    assert not Release.objects.exists()
