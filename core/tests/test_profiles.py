"""The viewer's time zone: chosen on the profile page (validated against zoneinfo, audited),
remembered in the session at login, and used by every page's dates and times, which show
one format with the UTC value on hover. The API stays in UTC."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from django.template import Context, Template
from django.test import override_settings
from django.utils import timezone

from core.errors import InvalidInput, PermissionDenied
from core.models import AuditEvent, Profile
from core.profiles import profile_update, time_zone_of

pytestmark = pytest.mark.django_db

INSTANT = datetime(2027, 1, 20, 20, 0, tzinfo=UTC)


def _render(source: str, **context) -> str:
    return Template(source).render(Context(context))


def test_a_new_person_sees_the_site_time_zone(viewer):
    assert time_zone_of(viewer) == "UTC"
    with override_settings(TIME_ZONE="Europe/Berlin"):
        assert time_zone_of(viewer) == "Europe/Berlin"


def test_it_stores_a_chosen_zone_and_audits_the_change(viewer):
    profile_update(actor=viewer, user=viewer, time_zone="Asia/Tokyo")
    assert Profile.objects.get(user=viewer).time_zone == "Asia/Tokyo"
    event = AuditEvent.objects.get(action="profile.update")
    assert (event.before, event.after) == ({"time_zone": "UTC"}, {"time_zone": "Asia/Tokyo"})
    profile_update(actor=viewer, user=viewer, time_zone="Asia/Tokyo")  # no change: no event
    assert AuditEvent.objects.filter(action="profile.update").count() == 1


@pytest.mark.parametrize("name", ["Mars/Olympus", "", "utc/x", "../../etc/passwd", "/etc/UTC"])
def test_it_refuses_a_zone_zoneinfo_does_not_know(viewer, name):
    with pytest.raises(InvalidInput):
        profile_update(actor=viewer, user=viewer, time_zone=name)
    assert not Profile.objects.exists()


def test_it_refuses_to_change_someone_elses_profile(viewer, release_manager):
    with pytest.raises(PermissionDenied):
        profile_update(actor=release_manager, user=viewer, time_zone="Asia/Tokyo")


def test_the_profile_page_saves_the_zone_and_pages_follow_it(client, viewer):
    client.force_login(viewer)
    page = client.get("/accounts/profile/")
    assert page.status_code == 200
    assert b'<option value="Europe/Paris">Europe/Paris</option>' in page.content
    response = client.post("/accounts/profile/", {"time_zone": "Asia/Tokyo"})
    assert response.status_code == 302
    page = client.get("/accounts/profile/")
    assert b'<option value="Asia/Tokyo" selected>' in page.content
    assert b" JST</time>" in page.content  # "Now:" in Tokyo time


def test_the_profile_page_shows_an_unknown_zone_as_a_field_error(client, viewer):
    client.force_login(viewer)
    response = client.post("/accounts/profile/", {"time_zone": "Mars/Olympus"})
    assert response.status_code == 400
    assert b'role="alert"' in response.content and b"Mars/Olympus" in response.content
    assert not Profile.objects.exists()


def test_the_zone_is_remembered_at_login_so_pages_read_no_profile(client, viewer):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    profile_update(actor=viewer, user=viewer, time_zone="America/New_York")
    client.force_login(viewer)
    assert client.session["time_zone"] == "America/New_York"
    with CaptureQueriesContext(connection) as queries:
        assert client.get("/accounts/password/change/").status_code == 200
    assert not [q for q in queries.captured_queries if "core_profile" in q["sql"]]


def test_the_api_answers_in_utc_whatever_the_zone(client, release_manager, service):
    from tests.factories import ReleaseFactory

    release = ReleaseFactory(services=[service], owner=release_manager, window_start=INSTANT)
    profile_update(actor=release_manager, user=release_manager, time_zone="Asia/Tokyo")
    client.force_login(release_manager)
    body = client.get(f"/api/v1/releases/{release.pk}/").json()
    assert body["window_start"].endswith("Z") or body["window_start"].endswith("+00:00")


def test_when_shows_the_viewers_time_with_utc_on_hover():
    with timezone.override("Europe/Paris"):
        html = _render("{{ t|when }}", t=INSTANT)
    assert html == (
        '<time datetime="2027-01-20T20:00:00Z" title="2027-01-20 20:00 UTC">'
        "Wed 20 Jan 2027, 21:00 CET</time>"
    )


def test_a_window_shortens_its_end_on_the_same_local_day():
    end = datetime(2027, 1, 20, 22, 30, tzinfo=UTC)
    with timezone.override("Europe/Paris"):
        html = _render("{% window a b %}", a=INSTANT, b=end)
    assert "Wed 20 Jan 2027, 21:00 CET</time>–<time" in html
    assert ">23:30 CET</time>" in html
    with timezone.override("Asia/Tokyo"):  # 05:00 and 07:30 on the 21st in Tokyo
        html = _render("{% window a b %}", a=INSTANT, b=end)
    assert "Thu 21 Jan 2027, 05:00 JST" in html and ">07:30 JST</time>" in html


def test_empty_values_fall_back_to_default_and_days_have_no_zone():
    assert _render('{{ t|when|default:"Not set" }}', t=None) == "Not set"
    assert _render("{{ d|day }}", d=date(2027, 1, 20)) == (
        '<time datetime="2027-01-20">20 Jan 2027</time>'
    )
    with timezone.override("Asia/Tokyo"):
        html = _render("{{ t|ago }}", t=timezone.now())
    assert "ago</time>" in html and "UTC)" in html
