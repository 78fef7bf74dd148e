"""A CAB meeting's own page: agenda with live tallies, attendees with presence (marked by
the chair, audited), what closing each open item would record and why, and only the
actions the viewer may take."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from core.errors import InvalidInput, PermissionDenied, TransitionNotAllowed
from core.models import AuditEvent
from governance import selectors, services
from governance.models import ChangeRequest
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


def browser(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


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


@pytest.fixture
def meeting(cab_chair, cab_member):
    """A scheduled meeting; the CAB group (chair and member) is invited."""
    return services.meeting_create(
        actor=cab_chair, title="Weekly CAB", scheduled_at=timezone.now() + timedelta(hours=2)
    )


def _attendance_events(meeting) -> int:
    return AuditEvent.objects.filter(action="meeting.attendance", target_id=str(meeting.pk)).count()


def test_the_chair_marks_presence_once_per_change(meeting, cab_chair, cab_member):
    assert selectors.meeting_presence(meeting) == {}
    assert services.meeting_mark_attendance(
        meeting=meeting, actor=cab_chair, attendee=cab_member, present=True
    )
    # A second click with the same answer records nothing.
    assert not services.meeting_mark_attendance(
        meeting=meeting, actor=cab_chair, attendee=cab_member, present=True
    )
    assert _attendance_events(meeting) == 1
    services.meeting_mark_attendance(
        meeting=meeting, actor=cab_chair, attendee=cab_member, present=False
    )
    assert selectors.meeting_presence(meeting) == {cab_member.pk: False}
    event = AuditEvent.objects.filter(action="meeting.attendance").last()
    assert event.actor == cab_chair
    assert event.before == {"user_id": cab_member.pk, "present": True}
    assert event.after["present"] is False


def test_only_the_chair_marks_presence(meeting, cab_member):
    with pytest.raises(PermissionDenied):
        services.meeting_mark_attendance(
            meeting=meeting, actor=cab_member, attendee=cab_member, present=True
        )
    assert _attendance_events(meeting) == 0


def test_it_refuses_someone_not_invited_and_a_closed_meeting(meeting, cab_chair, viewer):
    with pytest.raises(InvalidInput):
        services.meeting_mark_attendance(
            meeting=meeting, actor=cab_chair, attendee=viewer, present=True
        )
    services.meeting_close(meeting=meeting, actor=cab_chair)
    with pytest.raises(TransitionNotAllowed):
        services.meeting_mark_attendance(
            meeting=meeting, actor=cab_chair, attendee=cab_chair, present=True
        )


def test_the_page_shows_agenda_tally_attendees_and_the_outcome_preview(
    quorum_policy, meeting, release_manager, cab_member, cab_chair
):
    cr = _submitted_cr(release_manager, 0)
    services.meeting_build_agenda(meeting=meeting, actor=cab_chair)
    services.vote_cast(change_request=cr, actor=cab_member, choice="approve")
    services.meeting_mark_attendance(
        meeting=meeting, actor=cab_chair, attendee=cab_member, present=True
    )

    page = browser(cab_chair).get(f"/governance/cab/meetings/{meeting.pk}/").content.decode()
    assert "<h1>Weekly CAB</h1>" in page
    assert f"CR-{cr.number} Change 0" in page and "1 approve" in page
    assert "1 of 2 present" in page and "Not marked" in page
    # What closing would record, and why, before the chair presses it.
    preview = page.split('id="outcome-preview"')[1].split("</section>")[0]
    assert "Closing now records <strong" in preview and "Rejected" in preview
    assert "<li>" in preview  # the reasons
    assert "Close item (record rejection)" in page
    assert f'aria-label="Mark {cab_member.username} absent"' in page

    member_page = browser(cab_member).get(f"/governance/cab/meetings/{meeting.pk}/")
    body = member_page.content.decode()
    assert member_page.status_code == 200
    assert "Close item" not in body and "Build agenda" not in body
    assert 'aria-label="Mark' not in body  # only the chair marks presence
    assert "Your vote: <strong>Approve</strong>" in body


def test_a_viewer_sees_no_actions(meeting, viewer):
    body = browser(viewer).get(f"/governance/cab/meetings/{meeting.pk}/").content.decode()
    assert "Weekly CAB" in body
    assert "<button" not in body.split('<main id="main"')[1]


def test_marking_presence_from_the_page_swaps_the_attendees(meeting, cab_chair, cab_member):
    url = f"/governance/cab/meetings/{meeting.pk}/attendees/{cab_member.pk}/"
    response = browser(cab_chair).post(url, {"present": "yes"}, **HTMX)
    assert response.status_code == 200
    body = response.content.decode()
    assert body.lstrip().startswith('<section id="attendees"')
    assert "1 of 2 present" in body
    refused = browser(cab_member).post(url, {"present": "no"}, **HTMX)
    assert refused.status_code == 403
    assert "Only the CAB chair" in refused.content.decode()
    assert selectors.meeting_presence(meeting) == {cab_member.pk: True}


def test_an_unknown_meeting_is_404(cab_chair):
    assert browser(cab_chair).get("/governance/cab/meetings/999999/").status_code == 404


def test_the_page_reads_a_fixed_number_of_queries(
    quorum_policy, meeting, release_manager, cab_member, cab_chair
):
    def count() -> int:
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        client = browser(cab_chair)
        with CaptureQueriesContext(connection) as queries:
            assert client.get(f"/governance/cab/meetings/{meeting.pk}/").status_code == 200
        return len(queries)

    _submitted_cr(release_manager, 0)
    services.meeting_build_agenda(meeting=meeting, actor=cab_chair)
    one = count()
    for n in range(1, 5):
        cr = _submitted_cr(release_manager, n)
        services.agenda_item_add(meeting=meeting, change_request=cr, actor=cab_chair)
        services.vote_cast(change_request=cr, actor=cab_member, choice="approve")
    for n in range(3):
        meeting.attendees.add(UserFactory(username=f"guest{n}"))
    assert count() <= one


def test_the_workbench_lists_closed_meetings_apart_from_the_upcoming(meeting, cab_chair):
    """Issue 15, item 10: closed meetings were listed under "Upcoming"."""
    closed = services.meeting_create(
        actor=cab_chair, title="Monday CAB", scheduled_at=timezone.now() + timedelta(hours=1)
    )
    services.meeting_close(meeting=closed, actor=cab_chair)
    page = browser(cab_chair).get("/governance/cab/").content.decode()
    heading = page.index("Closed in the last seven days")
    assert page.index("Weekly CAB") < heading < page.index("Monday CAB")
