"""Transition buttons and inline panels of the release page, with and without htmx."""

from __future__ import annotations

import pytest
from django.urls import reverse

from core.models import AuditEvent
from releases import readiness
from releases.choices import ReleaseState, ScopeStatus
from releases.models import ScopeItem
from releases.readiness import Blocker
from tests.factories import ReleaseFactory, force_state, make_ready

pytestmark = pytest.mark.django_db
HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def release(service, release_manager):
    return make_ready(ReleaseFactory(name="Checkout v2", services=[service], owner=release_manager))


def _transition_url(release, name):
    return reverse("releases:transition", args=[release.pk, name])


def test_htmx_transition_swaps_the_whole_release_page(client, release_manager, release):
    client.force_login(release_manager)
    response = client.post(_transition_url(release, "plan"), **HTMX)
    assert response.status_code == 200
    assert response["HX-Retarget"] == "#release-page"
    assert response["HX-Reselect"] == "#release-page"
    assert response["HX-Reswap"] == "outerHTML"
    body = response.content.decode()
    assert "state-planned" in body
    assert _transition_url(release, "start_work") in body
    assert "the release is now Planned" in body  # the message rides along (oob)
    release.refresh_from_db()
    assert release.state == ReleaseState.PLANNED
    assert AuditEvent.objects.filter(release_id=release.pk, action="release.plan").count() == 1


def test_transition_without_js_redirects(client, release_manager, release):
    client.force_login(release_manager)
    response = client.post(_transition_url(release, "plan"))
    assert response.status_code == 302
    assert response["Location"] == release.get_absolute_url()
    page = client.get(response["Location"]).content.decode()
    assert "the release is now Planned" in page


def test_refusal_shows_the_message_and_blockers_in_the_panel(client, release_manager, service):
    bare = ReleaseFactory(services=[service], owner=release_manager)  # no scope, no plan
    client.force_login(release_manager)
    response = client.post(_transition_url(bare, "plan"), **HTMX)
    assert response.status_code == 409
    body = response.content.decode()
    assert body.lstrip().startswith('<section id="transitions"')
    assert "Cannot plan" in body
    assert "At least one included scope item is needed." in body
    assert "A rollback plan with steps is needed." in body
    bare.refresh_from_db()
    assert bare.state == ReleaseState.DRAFT
    assert not AuditEvent.objects.filter(release_id=bare.pk).exists()


def test_governance_blockers_are_listed(client, release_manager, release):
    def gate_provider(rel, transition):
        return [Blocker("gate_pending", "Security scan gate is pending.", "Security lead")]

    readiness.register(gate_provider)
    try:
        force_state(release, ReleaseState.IN_PROGRESS)
        client.force_login(release_manager)
        response = client.post(_transition_url(release, "request_approval"), **HTMX)
    finally:
        readiness.unregister(gate_provider)
    assert response.status_code == 409
    body = response.content.decode()
    assert "Security scan gate is pending." in body
    assert "Security lead" in body


def test_refusal_without_js_renders_the_page_with_the_message(client, release_manager, service):
    bare = ReleaseFactory(services=[service], owner=release_manager)
    client.force_login(release_manager)
    response = client.post(_transition_url(bare, "plan"))
    assert response.status_code == 409
    body = response.content.decode()
    assert "<html" in body and "Cannot plan" in body


def test_blank_reason_is_a_form_error(client, release_manager, release):
    client.force_login(release_manager)
    response = client.post(_transition_url(release, "cancel"), {"reason": "  "}, **HTMX)
    assert response.status_code == 422
    body = response.content.decode()
    assert "Please give a reason." in body
    assert '<details class="transition-reason" open>' in body
    release.refresh_from_db()
    assert release.state == ReleaseState.DRAFT


def test_cancel_with_a_reason_is_recorded(client, release_manager, release):
    client.force_login(release_manager)
    response = client.post(
        _transition_url(release, "cancel"), {"reason": "Superseded by 3.0"}, **HTMX
    )
    assert response.status_code == 200
    event = AuditEvent.objects.get(release_id=release.pk, action="release.cancel")
    assert event.reason == "Superseded by 3.0"
    assert "Superseded by 3.0" in response.content.decode()  # on the timeline


def test_reason_field_is_offered_only_where_required(client, release_manager, release):
    client.force_login(release_manager)
    transitions = client.get(reverse("releases:detail", args=[release.pk])).context["transitions"]
    by_name = {t["name"]: t["reason_required"] for t in transitions}
    assert by_name == {"plan": False, "cancel": True}


def test_viewer_posting_a_transition_is_refused(client, viewer, release):
    client.force_login(viewer)
    response = client.post(_transition_url(release, "plan"), **HTMX)
    assert response.status_code == 403
    assert "Only a release manager" in response.content.decode()
    release.refresh_from_db()
    assert release.state == ReleaseState.DRAFT


def test_transition_from_the_wrong_state_is_a_conflict(client, release_manager, release):
    client.force_login(release_manager)
    response = client.post(_transition_url(release, "approve"), **HTMX)
    assert response.status_code == 409
    assert "Cannot approve" in response.content.decode()


def test_unknown_transition_is_404(client, release_manager, release):
    client.force_login(release_manager)
    assert client.post(_transition_url(release, "explode")).status_code == 404


def test_transitions_need_post(client, release_manager, release):
    client.force_login(release_manager)
    assert client.get(_transition_url(release, "plan")).status_code == 405


# --- scope, risks, rollback plan panels ---------------------------------------------------


def test_add_scope_item_via_htmx(client, release_manager, release):
    client.force_login(release_manager)
    response = client.post(
        reverse("releases:scope_add", args=[release.pk]),
        {"kind": "fix", "external_key": "PAY-77", "title": "Refund rounding", "status": "included"},
        **HTMX,
    )
    assert response.status_code == 200
    assert "PAY-77" in response.content.decode()
    assert release.scope_items.filter(external_key="PAY-77").exists()


def test_add_scope_item_with_errors_re_renders_the_panel(client, release_manager, release):
    client.force_login(release_manager)
    response = client.post(
        reverse("releases:scope_add", args=[release.pk]),
        {"kind": "fix", "title": "", "url": "not a url", "status": "included"},
        **HTMX,
    )
    assert response.status_code == 422
    body = response.content.decode()
    assert body.lstrip().startswith('<section id="scope"')
    assert "This field is required." in body
    assert '<details class="add-form" open>' in body


def test_defer_and_edit_and_remove_scope_items(client, release_manager, release):
    client.force_login(release_manager)
    item = release.scope_items.get()
    client.post(
        reverse("releases:scope_status", args=[release.pk, item.pk]), {"status": "deferred"}, **HTMX
    )
    item.refresh_from_db()
    assert item.status == ScopeStatus.DEFERRED
    response = client.post(
        reverse("releases:scope_edit", args=[release.pk, item.pk]),
        {
            "kind": "feature",
            "external_key": "PAY-1",
            "title": "Checkout v2 UI",
            "status": "deferred",
        },
        **HTMX,
    )
    assert response.status_code == 200
    item.refresh_from_db()
    assert item.title == "Checkout v2 UI"
    event = AuditEvent.objects.filter(action="scope.update").last()
    assert event.before == {"title": "Checkout redesign"}
    client.post(reverse("releases:scope_remove", args=[release.pk, item.pk]), **HTMX)
    assert not ScopeItem.objects.filter(pk=item.pk).exists()


def test_scope_item_of_another_release_is_404(client, release_manager, release, service):
    other = make_ready(ReleaseFactory(services=[service]))
    foreign = other.scope_items.get()
    client.force_login(release_manager)
    url = reverse("releases:scope_remove", args=[release.pk, foreign.pk])
    assert client.post(url).status_code == 404
    assert ScopeItem.objects.filter(pk=foreign.pk).exists()


def test_scope_is_locked_once_deploying(client, release_manager, release):
    force_state(release, ReleaseState.DEPLOYING)
    client.force_login(release_manager)
    page = client.get(reverse("releases:detail", args=[release.pk])).content.decode()
    assert "Add scope item" not in page
    response = client.post(
        reverse("releases:scope_add", args=[release.pk]),
        {"kind": "fix", "title": "Late fix", "status": "included"},
        **HTMX,
    )
    assert response.status_code == 409
    assert "Scope cannot change once deployment has started." in response.content.decode()


def test_add_and_update_a_risk(client, release_manager, release):
    client.force_login(release_manager)
    client.post(
        reverse("releases:risk_add", args=[release.pk]),
        {"description": "PSP latency", "likelihood": "high", "impact": "medium", "mitigation": ""},
        **HTMX,
    )
    risk = release.risks.get()
    response = client.post(
        reverse("releases:risk_edit", args=[release.pk, risk.pk]),
        {
            "description": "PSP latency",
            "likelihood": "high",
            "impact": "medium",
            "mitigation": "Circuit breaker",
            "owner": release_manager.pk,
            "status": "mitigated",
        },
        **HTMX,
    )
    assert response.status_code == 200
    risk.refresh_from_db()
    assert (risk.status, risk.owner, risk.mitigation) == (
        "mitigated",
        release_manager,
        "Circuit breaker",
    )


def test_rollback_plan_set_and_error(client, release_manager, release):
    client.force_login(release_manager)
    url = reverse("releases:rollback_set", args=[release.pk])
    bad = client.post(url, {"steps": ""}, **HTMX)
    assert bad.status_code == 422
    assert bad.content.decode().lstrip().startswith('<section id="rollback"')
    good = client.post(url, {"steps": "1. Flip the flag\n2. Redeploy 2.3.9"}, **HTMX)
    assert good.status_code == 200
    release.rollback_plan.refresh_from_db()
    assert release.rollback_plan.steps.startswith("1. Flip the flag")


def test_viewer_cannot_change_scope(client, viewer, release):
    client.force_login(viewer)
    response = client.post(
        reverse("releases:scope_add", args=[release.pk]),
        {"kind": "fix", "title": "Sneaky", "status": "included"},
        **HTMX,
    )
    assert response.status_code == 403
    assert release.scope_items.count() == 1
