"""Emergency changes: overdue post-implementation reviews appear in the inbox of the change's
owner and of the CAB chair, and can be recorded there."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from governance import selectors, services
from governance.models import ChangeRequest

pytestmark = pytest.mark.django_db


@pytest.fixture
def implemented(release_manager):
    now = timezone.now()
    cr = services.change_request_create(
        actor=release_manager,
        title="Hotfix card tokenisation",
        change_type="emergency",
        reason="Outage",
        impact="payments-api",
        implementation_plan="Deploy hotfix",
        backout_plan="Redeploy previous image",
        test_plan="Smoke",
        window_start=now,
        window_end=now + timedelta(hours=1),
    )
    ChangeRequest.objects.filter(pk=cr.pk).update(state="approved")
    cr = services.change_request_implement(change_request=cr.pk, actor=release_manager)
    ChangeRequest.objects.filter(pk=cr.pk).update(review_due_at=now - timedelta(hours=2))
    return ChangeRequest.objects.get(pk=cr.pk)


def test_overdue_review_is_in_the_inbox_of_owner_and_chair_only(
    implemented, release_manager, cab_chair, cab_member, client
):
    assert [c.pk for c in selectors.pending_reviews(viewer=release_manager)] == [implemented.pk]
    assert [c.pk for c in selectors.pending_reviews(viewer=cab_chair)] == [implemented.pk]
    assert selectors.pending_reviews(viewer=cab_member) == []
    client.force_login(cab_chair)
    html = client.get("/governance/inbox/").content.decode()
    assert "Post-implementation review" in html and "Overdue" in html
    assert f"CR-{implemented.number}" in html


def test_recording_the_review_from_the_inbox_clears_it(implemented, release_manager, client):
    client.force_login(release_manager)
    resp = client.post(
        f"/governance/change-requests/{implemented.pk}/review/",
        {"comment": "Root cause fixed; monitoring added."},
    )
    assert resp.status_code == 302
    implemented.refresh_from_db()
    assert implemented.state == "reviewed"
    assert selectors.pending_reviews(viewer=release_manager) == []


def test_a_review_needs_notes(implemented, release_manager, client):
    client.force_login(release_manager)
    client.post(f"/governance/change-requests/{implemented.pk}/review/", {"comment": ""})
    implemented.refresh_from_db()
    assert implemented.state == "implemented"
