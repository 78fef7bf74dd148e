"""Break-glass is shown wherever the freeze is: the board card, the calendar's freeze band
(tooltip and list), the calendar API's freeze event and the iCal feed."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from core.roles import Role
from dashboards.selectors import calendar as cal
from governance import services
from tests.factories import ReleaseFactory, UserFactory, force_state

pytestmark = pytest.mark.django_db
REASON = "Roll back 2.4.0: checkout 500s for 12% of EU customers"


@pytest.fixture
def broken(service, production, release_manager):
    """A freeze in force today, and an approved rollback release with a break-glass."""
    now = timezone.now()
    operations = UserFactory(username="omar", roles=[Role.OPERATIONS])
    services.freeze_window_create(
        actor=operations,
        name="Year-end freeze",
        kind="once",
        tz="UTC",
        start=now - timedelta(hours=1),
        end=now + timedelta(hours=8),
        environments=[production],
    )
    release = force_state(
        ReleaseFactory(
            services=[service],
            owner=release_manager,
            name="Rollback checkout",
            version="2.3.1",
            window_start=now - timedelta(minutes=30),
            window_end=now + timedelta(hours=3),
        ),
        "approved",
    )
    services.break_glass_create(
        release=release,
        actor=release_manager,
        kind="rollback",
        reason=REASON,
        expires_at=now + timedelta(hours=2),
    )
    return release


def browser(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_the_board_card_shows_the_break_glass(broken, viewer):
    html = browser(viewer).get("/dashboards/board/").content.decode()
    card = html[html.index(f'id="card-{broken.pk}"') :]
    card = card[: card.index("</article>")]
    assert 'class="card-break-glass"' in card
    assert "Break-glass (rollback) by rita lifts the freeze" in card
    assert "card-blocker" not in card  # the freeze no longer blocks it


def test_the_calendar_band_names_the_release_it_is_lifted_for(broken, viewer):
    today = timezone.localdate()
    start, end = cal.day_bounds(today, today)
    (band,) = cal.freeze_bands(start=start, end=end, filters=cal.CalendarFilters())
    (note,) = band.break_glass
    assert note.startswith("Lifted for Rollback checkout 2.3.1 by break-glass (rollback, rita)")
    html = browser(viewer).get("/dashboards/calendar/").content.decode()
    assert "freeze-band-broken" in html and "Lifted for Rollback checkout 2.3.1" in html


def test_the_calendar_api_and_the_ical_feed_say_it_too(broken, viewer):
    today = timezone.localdate().isoformat()
    client = browser(viewer)
    response = client.get(f"/api/v1/calendar/events/?start={today}&end={today}")
    assert response.status_code == 200, response.content
    (freeze,) = [e for e in response.json() if e["type"] == "freeze"]
    assert "Lifted for Rollback checkout 2.3.1 by break-glass" in freeze["description"]
    ics = client.get("/dashboards/calendar/download.ics").content.decode()
    assert "Lifted for Rollback checkout 2.3.1 by break-glass" in ics.replace("\r\n ", "")
