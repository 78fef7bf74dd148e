"""The board's "Move to…": only available transitions, through the releases services; a
refusal shows the blocking reason on the card."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from governance.models import AuditEvent
from releases.models import Release
from tests.factories import ReleaseFactory, force_state, make_ready


@pytest.fixture
def planned(service, release_manager):
    release = make_ready(ReleaseFactory(services=[service], owner=release_manager))
    return force_state(release, "planned")


@pytest.fixture
def approved_future(service, release_manager):
    release = make_ready(
        ReleaseFactory(
            services=[service],
            owner=release_manager,
            window_start=timezone.now() + timedelta(days=5),
        )
    )
    return force_state(release, "approved")


@pytest.mark.django_db
def test_card_offers_only_available_transitions(client, release_manager, planned):
    client.force_login(release_manager)
    body = client.get(reverse("dashboards:board")).content.decode()
    card = body[body.index(f'id="card-{planned.pk}"') :]
    card = card[: card.index("</article>")]
    assert 'value="start_work"' in card
    assert 'value="cancel"' in card
    assert 'value="approve"' not in card


@pytest.mark.django_db
def test_viewers_get_no_move_menu(client, viewer, planned):
    client.force_login(viewer)
    body = client.get(reverse("dashboards:board")).content.decode()
    assert "Move to…" not in body


@pytest.mark.django_db
def test_release_manager_moves_a_card(client, release_manager, planned):
    client.force_login(release_manager)
    response = client.post(
        reverse("dashboards:board_move", args=[planned.pk]), {"transition": "start_work"}
    )
    assert response.status_code == 302
    assert Release.objects.get(pk=planned.pk).state == "in_progress"
    assert AuditEvent.objects.filter(release=planned, action="release.start_work").count() == 1


@pytest.mark.django_db
def test_htmx_move_redraws_the_board(client, release_manager, planned):
    client.force_login(release_manager)
    response = client.post(
        reverse("dashboards:board_move", args=[planned.pk]),
        {"transition": "start_work"},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 200
    assert response["HX-Retarget"] == "#board"
    assert b'id="board"' in response.content


@pytest.mark.django_db
def test_refused_move_shows_the_blocking_reason(client, release_manager, approved_future):
    client.force_login(release_manager)
    response = client.post(
        reverse("dashboards:board_move", args=[approved_future.pk]),
        {"transition": "start_deployment"},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code in (400, 409, 422)
    body = response.content.decode()
    assert "The deployment window opens at" in body
    assert Release.objects.get(pk=approved_future.pk).state == "approved"


@pytest.mark.django_db
def test_refusal_without_javascript_is_a_message(client, release_manager, approved_future):
    client.force_login(release_manager)
    response = client.post(
        reverse("dashboards:board_move", args=[approved_future.pk]),
        {"transition": "start_deployment"},
        follow=True,
    )
    assert "The deployment window opens at" in response.content.decode()


@pytest.mark.django_db
def test_reason_is_required_where_the_service_says_so(client, release_manager, planned):
    client.force_login(release_manager)
    response = client.post(
        reverse("dashboards:board_move", args=[planned.pk]),
        {"transition": "cancel"},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 400
    assert "A reason is required" in response.content.decode()


@pytest.mark.django_db
def test_other_teams_cannot_move(client, other_release_manager, planned):
    client.force_login(other_release_manager)
    client.post(reverse("dashboards:board_move", args=[planned.pk]), {"transition": "start_work"})
    assert Release.objects.get(pk=planned.pk).state == "planned"


@pytest.mark.django_db
def test_card_shows_top_blocker_delay_and_gate_progress(client, release_manager, approved_future):
    client.force_login(release_manager)
    body = client.get(reverse("dashboards:board")).content.decode()
    assert "Blocked:" in body and "The deployment window opens at" in body
