"""The iCal feed, parsed back with icalendar: events, stable UIDs, SEQUENCE bumps, freezes,
token regeneration and bad tokens."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from icalendar import Calendar

from core.errors import PermissionDenied
from core.models import AuditEvent
from dashboards.models import CalendarFeedToken
from dashboards.services import calendar_feed_token_regenerate
from governance.models import FreezeWindow
from releases import services as release_services
from tests.factories import ReleaseFactory, make_ready


def _parse(response) -> Calendar:
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/calendar")
    return Calendar.from_ical(response.content)


def _events(cal: Calendar) -> dict[str, object]:
    return {str(e["UID"]): e for e in cal.walk("VEVENT")}


@pytest.fixture
def freeze(db, service):
    now = timezone.now()
    window = FreezeWindow.objects.create(
        name="Black Friday",
        reason="Peak trading: no production changes.",
        kind="once",
        start=now + timedelta(days=1),
        end=now + timedelta(days=4),
    )
    window.services.set([service])
    return window


@pytest.fixture
def feed_url(viewer):
    raw = calendar_feed_token_regenerate(actor=viewer)
    return reverse("dashboards:calendar_feed", args=[raw])


@pytest.mark.django_db
def test_feed_parses_with_releases_freezes_and_refresh_hints(client, portfolio, freeze, feed_url):
    portfolio(per_state=1)
    cal = _parse(client.get(feed_url))
    assert str(cal["X-PUBLISHED-TTL"]) == "PT1H"
    assert cal["REFRESH-INTERVAL"].dt == timedelta(hours=1)
    events = _events(cal)
    releases = [uid for uid in events if uid.startswith("release-")]
    assert len(releases) == 8  # one per state, none cancelled
    freezes = [e for uid, e in events.items() if uid.startswith("freeze-")]
    assert len(freezes) == 1
    assert str(freezes[0]["SUMMARY"]) == "Freeze: Black Friday"
    assert "Peak trading" in str(freezes[0]["DESCRIPTION"])


@pytest.mark.django_db
def test_uids_are_stable_and_sequence_bumps_on_change(client, feed_url, service, release_manager):
    release = make_ready(ReleaseFactory(services=[service], owner=release_manager))
    uid = f"release-{release.pk}@testserver"
    first = _events(_parse(client.get(feed_url)))
    again = _events(_parse(client.get(feed_url)))
    assert first.keys() == again.keys()
    assert first[uid].to_ical() == again[uid].to_ical()  # nothing changed, nothing moves
    assert int(first[uid]["SEQUENCE"]) == 0

    release_services.release_plan(release=release, actor=release_manager)
    after = _events(_parse(client.get(feed_url)))[uid]
    assert int(after["SEQUENCE"]) == AuditEvent.objects.filter(release_id=release.pk).count() >= 1
    assert after["LAST-MODIFIED"].dt >= first[uid]["LAST-MODIFIED"].dt
    assert "Planned" in str(after["SUMMARY"])


@pytest.mark.django_db
def test_filters_travel_in_the_url(client, portfolio, feed_url, service):
    portfolio(per_state=1)
    cal = _parse(client.get(feed_url, {"service": service.slug, "state": "approved"}))
    summaries = [str(e["SUMMARY"]) for e in cal.walk("VEVENT")]
    assert summaries and all("(Approved)" in s for s in summaries)


@pytest.mark.django_db
def test_bad_token_is_404(client, feed_url):
    assert client.get("/dashboards/calendar/feed/cal_nope.ics").status_code == 404


@pytest.mark.django_db
def test_regenerating_revokes_the_old_url(client, viewer, feed_url):
    raw = calendar_feed_token_regenerate(actor=viewer)
    assert client.get(feed_url).status_code == 404
    assert client.get(reverse("dashboards:calendar_feed", args=[raw])).status_code == 200
    assert CalendarFeedToken.objects.filter(user=viewer).count() == 1
    actions = list(
        AuditEvent.objects.filter(action__startswith="calendar_feed.").values_list(
            "action", flat=True
        )
    )
    assert actions == ["calendar_feed.token_created", "calendar_feed.token_regenerated"]


@pytest.mark.django_db
def test_a_user_who_lost_their_role_gets_404(client, viewer, feed_url):
    viewer.groups.clear()
    assert client.get(feed_url).status_code == 404


@pytest.mark.django_db
def test_outsiders_cannot_create_a_feed(outsider):
    with pytest.raises(PermissionDenied):
        calendar_feed_token_regenerate(actor=outsider)


@pytest.mark.django_db
def test_page_shows_the_new_url_once_and_explains_the_lag(client, viewer):
    client.force_login(viewer)
    response = client.post(reverse("dashboards:calendar_regenerate"), follow=True)
    body = response.content.decode()
    assert "/dashboards/calendar/feed/cal_" in body
    assert "may lag by hours" in body
    again = client.get(reverse("dashboards:calendar")).content.decode()
    assert "/dashboards/calendar/feed/cal_" not in again


@pytest.mark.django_db
def test_download_for_the_logged_in_user(client, viewer, portfolio):
    portfolio(per_state=1)
    client.force_login(viewer)
    response = client.get(reverse("dashboards:calendar_download"))
    assert "attachment" in response["Content-Disposition"]
    assert len(_events(_parse(response))) >= 8


@pytest.mark.django_db
def test_events_carry_the_governing_risk(client, service, feed_url):
    from governance.models import RiskAssessment

    release = ReleaseFactory(services=[service], risk_level="low")
    RiskAssessment.objects.create(release=release, score=70, computed_level="high", factors=[])
    events = _events(_parse(client.get(feed_url)))
    event = next(e for uid, e in events.items() if uid.startswith("release-"))
    assert "Risk: High" in str(event["DESCRIPTION"])  # declared low, assessed high
