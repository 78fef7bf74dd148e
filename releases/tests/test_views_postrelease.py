"""Post-release pages through the test client: what a release manager does after deploying."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from releases.choices import ReleaseState
from releases.models import ActionItem, ReleaseNotes, Retrospective
from releases.postrelease import services as postrelease
from tests.factories import ReleaseFactory, force_state, make_ready


@pytest.fixture
def deployed(service, release_manager):
    release = make_ready(ReleaseFactory(services=[service], owner=release_manager))
    return force_state(release, ReleaseState.DEPLOYED)


def url(release, suffix=""):
    return f"/releases/{release.pk}/post-release/{suffix}"


@pytest.mark.django_db
def test_page_shows_the_review_and_drafted_notes(client, deployed, release_manager):
    client.force_login(release_manager)
    page = client.get(url(deployed))
    assert page.status_code == 200
    html = page.content.decode()
    assert "Post-release review" in html and "Checkout redesign" in html
    assert "Record retrospective" in html


@pytest.mark.django_db
def test_htmx_request_gets_only_the_panel(client, deployed, release_manager):
    client.force_login(release_manager)
    page = client.get(url(deployed), HTTP_HX_REQUEST="true")
    assert page.content.decode().lstrip().startswith('<section id="post-release"')


@pytest.mark.django_db
def test_record_retrospective_and_action_item(client, deployed, release_manager):
    client.force_login(release_manager)
    resp = client.post(
        url(deployed, "retrospective/"),
        {"retro-went_well": "Smooth canary", "retro-runbook_links": ""},
    )
    assert resp.status_code == 302
    assert Retrospective.objects.get(release=deployed).went_well == "Smooth canary"
    due = (timezone.localdate() + timedelta(days=7)).isoformat()
    resp = client.post(
        url(deployed, "actions/"),
        {
            "action-title": "Automate smoke test",
            "action-owner": release_manager.pk,
            "action-due_date": due,
        },
    )
    assert resp.status_code == 302
    assert ActionItem.objects.get().title == "Automate smoke test"


@pytest.mark.django_db
def test_empty_retrospective_shows_a_form_error(client, deployed, release_manager):
    client.force_login(release_manager)
    resp = client.post(
        url(deployed, "retrospective/"), {"retro-went_well": ""}, HTTP_HX_REQUEST="true"
    )
    assert resp.status_code == 400
    assert "Say what went well" in resp.content.decode()
    assert not Retrospective.objects.exists()


@pytest.mark.django_db
def test_bad_runbook_link_is_a_field_error(client, deployed, release_manager):
    client.force_login(release_manager)
    resp = client.post(
        url(deployed, "retrospective/"),
        {"retro-went_well": "ok", "retro-runbook_links": "javascript:alert(1)"},
        HTTP_HX_REQUEST="true",
    )
    assert resp.status_code == 400
    assert "http(s)" in resp.content.decode()


@pytest.mark.django_db
def test_publish_notes_freezes_them(client, deployed, release_manager):
    client.force_login(release_manager)
    client.post(
        url(deployed, "notes/customer/"), {"notes-customer-body": "# Hello\n\n<script>x</script>"}
    )
    resp = client.post(url(deployed, "notes/customer/publish/"))
    assert resp.status_code == 302
    notes = ReleaseNotes.objects.get(audience="customer")
    assert notes.state == "published"
    resp = client.post(
        url(deployed, "notes/customer/"), {"notes-customer-body": "changed"}, HTTP_HX_REQUEST="true"
    )
    assert resp.status_code == 409
    notes.refresh_from_db()
    assert notes.body.startswith("# Hello")


@pytest.mark.django_db
def test_preview_is_sanitised(client, deployed, release_manager):
    client.force_login(release_manager)
    resp = client.post(
        url(deployed, "notes/internal/preview/"),
        {"notes-internal-body": "**bold** <script>alert(1)</script> [x](javascript:alert(1))"},
    )
    html = resp.content.decode()
    assert "<strong>bold</strong>" in html
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert 'href="javascript' not in html


@pytest.mark.django_db
def test_viewer_reads_but_cannot_write(client, deployed, viewer):
    client.force_login(viewer)
    assert client.get(url(deployed)).status_code == 200
    resp = client.post(
        url(deployed, "retrospective/"), {"retro-went_well": "x"}, HTTP_HX_REQUEST="true"
    )
    assert resp.status_code == 403
    assert not Retrospective.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("suffix", ["", "retrospective/", "notes/internal/publish/"])
def test_outsider_gets_404(client, deployed, outsider, suffix):
    client.force_login(outsider)
    method = client.get if suffix == "" else client.post
    assert method(url(deployed, suffix)).status_code == 404


@pytest.mark.django_db
def test_open_actions_page_highlights_overdue_items(client, deployed, release_manager):
    postrelease.retrospective_record(
        release=deployed, actor=release_manager, went_well="x", went_badly="", to_change=""
    )
    postrelease.action_item_add(
        release=deployed,
        actor=release_manager,
        title="Overdue thing",
        owner=release_manager,
        due_date=timezone.localdate() - timedelta(days=3),
    )
    client.force_login(release_manager)
    html = client.get("/actions/").content.decode()
    assert "Overdue thing" in html and "Overdue</span>" in html


@pytest.mark.django_db
def test_lessons_search_page(client, deployed, release_manager):
    postrelease.retrospective_record(
        release=deployed,
        actor=release_manager,
        went_well="x",
        went_badly="",
        to_change="",
        lessons_learned="Feature flags saved us",
    )
    client.force_login(release_manager)
    html = client.get("/lessons/", {"q": "feature flags"}).content.decode()
    assert "Feature flags saved us" in html


@pytest.mark.django_db
def test_open_actions_query_count_does_not_grow(
    client, deployed, release_manager, django_assert_num_queries
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    postrelease.retrospective_record(
        release=deployed, actor=release_manager, went_well="x", went_badly="", to_change=""
    )

    def add(n):
        for i in range(n):
            postrelease.action_item_add(
                release=deployed,
                actor=release_manager,
                title=f"a{i}",
                owner=release_manager,
                due_date=timezone.localdate(),
            )

    client.force_login(release_manager)
    add(2)
    with CaptureQueriesContext(connection) as small:
        client.get("/actions/")
    add(20)
    with CaptureQueriesContext(connection) as large:
        client.get("/actions/")
    assert len(large.captured_queries) == len(small.captured_queries)


@pytest.mark.django_db
def test_plan_and_cancel_a_message(client, deployed, release_manager):
    client.force_login(release_manager)
    data = {
        "comms-audience": "support",
        "comms-channel": "email",
        "comms-destination": "support@example.com",
        "comms-trigger": "rolled_back",
        "comms-subject": "Rolled back",
        "comms-message": "We rolled back; nothing to do.",
    }
    assert client.post(url(deployed, "communications/"), data).status_code == 302
    comm = deployed.communications.get()
    assert "Rolled back" in client.get(url(deployed)).content.decode()
    resp = client.post(url(deployed, f"communications/{comm.pk}/cancel/"))
    assert resp.status_code == 302
    comm.refresh_from_db()
    assert comm.status == "cancelled"


@pytest.mark.django_db
def test_bad_message_destination_is_a_field_error(client, deployed, release_manager):
    client.force_login(release_manager)
    data = {
        "comms-audience": "customers",
        "comms-channel": "slack",
        "comms-destination": "not a url",
        "comms-trigger": "completed",
        "comms-subject": "x",
        "comms-message": "y",
    }
    resp = client.post(url(deployed, "communications/"), data, HTTP_HX_REQUEST="true")
    assert resp.status_code == 400
    assert "webhook URL" in resp.content.decode()
    assert not deployed.communications.exists()
