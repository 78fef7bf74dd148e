"""Governance pages: inbox, CAB workbench, release panel. The same services as the API;
refusals shown in place; query counts that do not grow with the number of items."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from core.roles import Role
from governance import services
from governance.models import ChangeRequest, GateCheck
from releases.models import Release
from tests.factories import UserFactory, force_state

pytestmark = pytest.mark.django_db
HTMX = {"HTTP_HX_REQUEST": "true"}


def browser(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_inbox_lists_my_sign_offs_with_evidence(policy, make_release, security_approver):
    release = make_release("in_progress")
    page = browser(security_approver).get("/governance/inbox/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "Security lead sign-off" in html
    assert str(release) in html
    assert "CI build green" in html and "score" in html
    assert (
        html.count('class="gov-item" id="signoff-') == 1
    )  # only the security lead's gate is theirs


def test_sign_off_from_the_inbox_with_htmx(policy, make_release, security_approver):
    gate = make_release("in_progress").gate_checks.get(role="security_lead")
    response = browser(security_approver).post(
        f"/governance/gates/{gate.pk}/decide/",
        {"decision": "sign_off", "comment": "Clean scan", "panel": "inbox"},
        **HTMX,
    )
    assert response.status_code == 200
    assert "Passed" in response.content.decode()
    assert GateCheck.objects.get(pk=gate.pk).status == "passed"


def test_reject_and_waive_need_a_comment_on_the_page(policy, make_release, security_approver):
    gate = make_release("in_progress").gate_checks.get(role="security_lead")
    response = browser(security_approver).post(
        f"/governance/gates/{gate.pk}/decide/", {"decision": "reject", "comment": ""}, **HTMX
    )
    assert response.status_code == 422
    assert "A comment is required to reject" in response.content.decode()
    assert GateCheck.objects.get(pk=gate.pk).status == "pending"


def test_separation_of_duties_is_refused_on_the_page(policy, make_release, release_manager):
    release_manager.groups.add(*UserFactory(roles=[Role.SECURITY_LEAD]).groups.all())
    gate = make_release("in_progress").gate_checks.get(role="security_lead")
    response = browser(release_manager).post(
        f"/governance/gates/{gate.pk}/decide/", {"decision": "sign_off"}, **HTMX
    )
    assert response.status_code == 403
    assert "Separation of duties" in response.content.decode()
    # And the owner's inbox does not offer their own release.
    assert (
        "Security lead sign-off"
        not in browser(release_manager).get("/governance/inbox/").content.decode()
    )  # noqa: E501


def _submitted_cr(requester, n: int) -> ChangeRequest:
    now = timezone.now()
    cr = services.change_request_create(
        actor=requester,
        title=f"Change {n}",
        reason="r",
        implementation_plan="i",
        backout_plan="b",
        window_start=now + timedelta(days=1, hours=n),
        window_end=now + timedelta(days=1, hours=n + 1),
    )
    return services.change_request_submit(change_request=cr, actor=requester)


def test_vote_from_the_inbox(quorum_policy, release_manager, cab_member):
    cr = _submitted_cr(release_manager, 0)
    page = browser(cab_member).get("/governance/inbox/").content.decode()
    assert f"CR-{cr.number}" in page
    response = browser(cab_member).post(
        f"/governance/change-requests/{cr.pk}/vote/", {"choice": "approve"}, **HTMX
    )
    assert response.status_code == 200
    assert "Your vote: <strong>Approve</strong>" in response.content.decode()


def test_requester_vote_is_refused_on_the_page(quorum_policy, release_manager):
    release_manager.groups.add(*UserFactory(roles=[Role.CAB_MEMBER]).groups.all())
    cr = _submitted_cr(release_manager, 0)
    response = browser(release_manager).post(
        f"/governance/change-requests/{cr.pk}/vote/", {"choice": "approve"}, **HTMX
    )
    assert response.status_code == 403
    assert "Separation of duties" in response.content.decode()


def test_workbench_shows_the_agenda_tally_and_the_chair_closes(
    quorum_policy, release_manager, cab_member, cab_chair
):
    cr = _submitted_cr(release_manager, 0)
    meeting = services.meeting_create(
        actor=cab_chair, title="Weekly CAB", scheduled_at=timezone.now() + timedelta(hours=2)
    )
    (item,) = services.meeting_build_agenda(meeting=meeting, actor=cab_chair)
    services.vote_cast(change_request=cr, actor=cab_member, choice="approve")
    page = browser(cab_chair).get("/governance/cab/").content.decode()
    assert "Weekly CAB" in page and f"CR-{cr.number}" in page
    assert "1 approve" in page and "1 of 2 required votes cast" in page
    assert "Close item" in page
    assert "Close item" not in browser(cab_member).get("/governance/cab/").content.decode()
    assert "Closing now records <strong" in page and "Close item (record rejection)" in page
    response = browser(cab_chair).post(
        f"/governance/cab/items/{item.pk}/close/",
        {"outcome": "", "expected_outcome": "rejected", "confirm_rejection": "on"},
        **HTMX,
    )
    assert response.status_code == 200
    assert "Closed: Rejected" in response.content.decode()
    assert "Why it was decided" in response.content.decode()


def test_closing_as_a_rejection_needs_the_chairs_confirmation(
    quorum_policy, release_manager, cab_member, cab_chair
):
    cr = _submitted_cr(release_manager, 0)
    meeting = services.meeting_create(
        actor=cab_chair, title="Weekly CAB", scheduled_at=timezone.now() + timedelta(hours=2)
    )
    (item,) = services.meeting_build_agenda(meeting=meeting, actor=cab_chair)
    url = f"/governance/cab/items/{item.pk}/close/"
    unconfirmed = browser(cab_chair).post(
        url, {"outcome": "", "expected_outcome": "rejected", "comment": "Late"}, **HTMX
    )
    assert unconfirmed.status_code == 422
    assert "tick “Record the rejection” to confirm" in unconfirmed.content.decode()
    assert 'value="Late"' in unconfirmed.content.decode()  # the chair's note is kept
    stale = browser(cab_chair).post(url, {"outcome": "", "expected_outcome": "approved"}, **HTMX)
    assert stale.status_code == 409
    assert "closing now records rejected" in stale.content.decode()
    cr.refresh_from_db()
    assert cr.state == "in_review"


def test_release_panel_shows_gates_policy_risk_and_blockers(policy, make_release, viewer):
    release = make_release("in_progress")
    html = browser(viewer).get(f"/governance/releases/{release.pk}/panel/").content.decode()
    assert "Gate policy: <strong>Standard v1</strong>" in html
    assert "Why is this blocked?" in html
    assert "Coverage ≥ 80%" in html
    assert "Service criticality" in html


def test_panel_badge_shows_the_governing_risk_and_an_override_reloads_the_page(
    policy, make_release, release_manager
):
    from governance.models import RiskAssessment

    release = make_release("planned")
    RiskAssessment.objects.update_or_create(
        release=release, defaults={"score": 20, "computed_level": "low", "factors": []}
    )
    type(release).objects.filter(pk=release.pk).update(risk_level="high")
    client = browser(release_manager)
    html = client.get(f"/governance/releases/{release.pk}/panel/").content.decode()
    # Declared high beats computed low: the panel says what gates use, like the header.
    assert '<span class="badge risk-high">High</span>' in html

    response = client.post(
        f"/governance/releases/{release.pk}/risk-override/",
        {"level": "critical", "justification": "Touches the ledger"},
        **HTMX,
    )
    assert response.status_code == 200
    assert response["HX-Refresh"] == "true"  # the header shows the risk too
    assert '<span class="badge risk-critical">Critical</span>' in response.content.decode()


def test_release_detail_page_includes_the_panel_loader(policy, make_release, viewer):
    release = make_release("in_progress")
    html = browser(viewer).get(release.get_absolute_url()).content.decode()
    assert f"/governance/releases/{release.pk}/panel/" in html


# --- query counts -----------------------------------------------------------------------------


def _sign_off_items(make_release, n: int) -> None:
    for _ in range(n):
        make_release("in_progress")


@pytest.mark.parametrize("n", [1, 4])
def test_inbox_query_count_does_not_grow(
    n, policy, quorum_policy, make_release, release_manager, django_assert_num_queries
):
    security_cab = UserFactory(username="sec", roles=[Role.SECURITY_LEAD, Role.CAB_MEMBER])
    _sign_off_items(make_release, n)
    for i in range(n):
        _submitted_cr(release_manager, i)
    client = browser(security_cab)
    client.get("/governance/inbox/")  # warm the session
    with django_assert_num_queries(QUERIES["inbox"]):
        page = client.get("/governance/inbox/")
    assert page.content.decode().count('class="gov-item"') == 2 * n


@pytest.mark.parametrize("n", [1, 4])
def test_workbench_query_count_does_not_grow(
    n, quorum_policy, release_manager, cab_member, cab_chair, django_assert_num_queries
):
    crs = [_submitted_cr(release_manager, i) for i in range(n)]
    meeting = services.meeting_create(
        actor=cab_chair, title="CAB", scheduled_at=timezone.now() + timedelta(hours=2)
    )
    services.meeting_build_agenda(meeting=meeting, actor=cab_chair)
    for cr in crs:
        services.vote_cast(change_request=cr, actor=cab_member, choice="approve")
    client = browser(cab_chair)
    client.get("/governance/cab/")
    with django_assert_num_queries(QUERIES["cab"]):
        page = client.get("/governance/cab/")
    assert page.content.decode().count('class="gov-item"') == n


# Measured once; equal at both sizes is the point (session, user, roles, the lists).
QUERIES = {"inbox": 10, "cab": 10}  # inbox: + pending post-implementation reviews


def test_a_release_manager_reopens_a_rejected_gate_from_the_panel(
    policy, make_release, release_manager, security_approver
):
    gate = make_release("in_progress").gate_checks.get(role="security_lead")
    services.gate_reject(gate=gate, actor=security_approver, comment="Missing threat model")
    response = browser(release_manager).post(
        f"/governance/gates/{gate.pk}/reset/", {"comment": "Threat model attached"}, **HTMX
    )
    assert response.status_code == 200
    assert GateCheck.objects.get(pk=gate.pk).status == "pending"
    refused = browser(release_manager).post(f"/governance/gates/{gate.pk}/reset/", {}, **HTMX)
    assert refused.status_code == 400


def test_the_panel_of_a_release_stored_with_a_9999_window_is_not_a_500(
    policy, make_release, viewer, operations
):
    """Windows typed before the date range was enforced still open (issue 15, item 1)."""
    services.freeze_window_create(
        actor=operations,
        name="Weekend",
        kind="cron",
        tz="Europe/Berlin",
        cron="0 16 * * 5",
        duration=timedelta(hours=64),
    )
    release = make_release("planned")
    far = timezone.now().replace(year=9999, month=12, day=31)
    Release.objects.filter(pk=release.pk).update(
        window_start=far - timedelta(days=1), window_end=far
    )
    page = browser(viewer).get(f"/governance/releases/{release.pk}/panel/")
    assert page.status_code == 200


def test_refusals_and_blockers_read_as_sentences(policy, make_release, release_manager):
    """No "sign off its gates it", "a qa lead" or ".;" (issue 15, item 7)."""
    release_manager.groups.add(*UserFactory(roles=[Role.SECURITY_LEAD]).groups.all())
    release = make_release("in_progress")
    gate = release.gate_checks.get(role="security_lead")
    refused = browser(release_manager).post(
        f"/governance/gates/{gate.pk}/decide/", {"decision": "sign_off"}, **HTMX
    )
    assert "so you cannot sign off its gates.<" in refused.content.decode()
    force_state(release, "awaiting_approval")
    pressed = browser(release_manager).post(f"/releases/{release.pk}/transitions/approve/", **HTMX)
    assert pressed.status_code == 409
    page = pressed.content.decode()
    assert "a QA lead (not the release owner)" in page
    assert ".;" not in page and "qa lead" not in page
