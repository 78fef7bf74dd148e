"""The board's "Move to…": only available transitions, through the releases services; a
refusal shows the blocking reason on the card."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from core.models import AuditEvent
from releases.actions import release_actions
from releases.models import Release
from releases.services import available_transitions
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


def _card(body: str, release) -> str:
    card = body[body.index(f'id="card-{release.pk}"') :]
    return card[: card.index("</article>")]


def _options(body: str) -> list[str]:
    """The moves offered to press now."""
    return re.findall(r'name="transition" value="([a-z_]+)"', body)


def _blocked(body: str) -> list[str]:
    """The moves shown disabled, with what blocks them."""
    return re.findall(r'aria-describedby="move-blocked-\d+-([a-z_]+)"', body)


@pytest.mark.django_db
def test_card_loads_its_menu_when_opened(client, release_manager, planned):
    client.force_login(release_manager)
    card = _card(client.get(reverse("dashboards:board")).content.decode(), planned)
    moves_url = reverse("dashboards:board_moves", args=[planned.pk])
    # The menu is fetched on opening (htmx), and without JavaScript the link leads to it.
    assert f'hx-get="{moves_url}"' in card
    assert 'hx-trigger="toggle once"' in card
    assert f'href="{moves_url}"' in card
    # No move buttons, csrf token or textarea per card on the board itself.
    assert _options(card) == []
    assert "csrfmiddlewaretoken" not in card


@pytest.mark.django_db
def test_menu_keeps_the_board_filters(client, release_manager, planned, service):
    client.force_login(release_manager)
    body = client.get(reverse("dashboards:board"), {"service": service.slug}).content.decode()
    moves_url = reverse("dashboards:board_moves", args=[planned.pk])
    assert f'hx-get="{moves_url}?query=service%3D{service.slug}"' in _card(body, planned)
    menu = client.get(
        moves_url, {"query": f"service={service.slug}"}, HTTP_HX_REQUEST="true"
    ).content.decode()
    assert f'name="query" value="service={service.slug}"' in menu


@pytest.mark.django_db
def test_menu_offers_only_available_transitions(client, release_manager, planned):
    client.force_login(release_manager)
    response = client.get(
        reverse("dashboards:board_moves", args=[planned.pk]), HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200
    body = response.content.decode()
    assert "<html" not in body  # htmx: the form alone, into the card
    assert f'hx-post="{reverse("dashboards:board_move", args=[planned.pk])}"' in body
    assert f'hx-target="#card-{planned.pk}"' in body
    assert "csrfmiddlewaretoken" in body
    fresh = Release.objects.get(pk=planned.pk)
    assert sorted(_options(body)) == sorted(
        available_transitions(release=fresh, actor=release_manager)
    )
    assert "start_work" in _options(body) and "approve" not in _options(body)


@pytest.mark.django_db
@pytest.mark.parametrize("state", ["draft", "planned", "awaiting_approval", "approved", "deployed"])
def test_menu_options_equal_available_transitions(client, release_manager, service, state):
    release = force_state(make_ready(ReleaseFactory(services=[service])), state)
    client.force_login(release_manager)
    body = client.get(
        reverse("dashboards:board_moves", args=[release.pk]), HTTP_HX_REQUEST="true"
    ).content.decode()
    fresh = Release.objects.get(pk=release.pk)
    expected = available_transitions(release=fresh, actor=release_manager)
    assert expected
    # Every move the release page lists; those readiness blocks are disabled, as there.
    assert sorted(_options(body) + _blocked(body)) == sorted(expected)
    assert _options(body) == [
        a.name for a in release_actions(release=fresh, actor=release_manager) if a.enabled
    ]


@pytest.mark.django_db
def test_menu_without_javascript_is_a_page(client, release_manager, planned):
    client.force_login(release_manager)
    response = client.get(reverse("dashboards:board_moves", args=[planned.pk]))
    body = response.content.decode()
    assert response.status_code == 200
    assert "<html" in body
    assert f'action="{reverse("dashboards:board_move", args=[planned.pk])}"' in body
    assert "hx-post" not in body  # a plain POST, redirected back to the board
    assert "start_work" in _options(body)
    assert f'href="{reverse("dashboards:board")}"' in body


@pytest.mark.django_db
def test_menu_posts_move_the_card_without_javascript(client, release_manager, planned):
    client.force_login(release_manager)
    response = client.post(
        reverse("dashboards:board_move", args=[planned.pk]),
        {"transition": "start_work", "query": "owner=me"},
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("dashboards:board") + "?owner=me"
    assert Release.objects.get(pk=planned.pk).state == "in_progress"


@pytest.mark.django_db
def test_viewers_get_no_move_menu(client, viewer, planned):
    client.force_login(viewer)
    body = client.get(reverse("dashboards:board")).content.decode()
    assert "Move to…" not in body
    assert reverse("dashboards:board_moves", args=[planned.pk]) not in body


@pytest.mark.django_db
@pytest.mark.parametrize("who", ["viewer", "other_release_manager"])
def test_who_may_not_move_gets_no_options(client, request, planned, who):
    client.force_login(request.getfixturevalue(who))
    for headers in ({"HTTP_HX_REQUEST": "true"}, {}):
        response = client.get(reverse("dashboards:board_moves", args=[planned.pk]), **headers)
        assert response.status_code == 200
        body = response.content.decode()
        assert _options(body) == []
        assert "No move is open to you" in body


@pytest.mark.django_db
def test_outsiders_get_404_for_the_menu(client, outsider, planned):
    client.force_login(outsider)
    response = client.get(reverse("dashboards:board_moves", args=[planned.pk]))
    assert response.status_code == 404
    assert b"start_work" not in response.content


@pytest.mark.django_db
def test_menu_needs_login_and_get(client, release_manager, planned):
    url = reverse("dashboards:board_moves", args=[planned.pk])
    assert client.get(url).status_code == 302
    client.force_login(release_manager)
    assert client.post(url).status_code == 405


@pytest.mark.django_db
def test_release_manager_moves_a_card(client, release_manager, planned):
    client.force_login(release_manager)
    response = client.post(
        reverse("dashboards:board_move", args=[planned.pk]), {"transition": "start_work"}
    )
    assert response.status_code == 302
    assert Release.objects.get(pk=planned.pk).state == "in_progress"
    assert (
        AuditEvent.objects.filter(release_id=planned.pk, action="release.start_work").count() == 1
    )


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
    # The card comes back with its menu open and the moves still offered, inline.
    assert body.lstrip().startswith(f'<article id="card-{approved_future.pk}"')
    assert '<details class="move-menu no-print" open>' in body
    fresh = Release.objects.get(pk=approved_future.pk)
    assert sorted(_options(body) + _blocked(body)) == sorted(
        available_transitions(release=fresh, actor=release_manager)
    )
    # The refused move is now shown disabled, with why.
    assert "start_deployment" in _blocked(body) and "start_deployment" not in _options(body)
    assert f'hx-target="#card-{approved_future.pk}"' in body


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


@pytest.mark.django_db
def test_full_columns_link_to_the_rest_in_the_release_list(client, viewer, portfolio):
    portfolio(per_state=8)
    client.force_login(viewer)
    body = client.get(reverse("dashboards:board")).content.decode()
    assert f'href="{reverse("releases:list")}?state=draft">2 more in the release list' in body


@pytest.mark.django_db
def test_card_escapes_names_with_html_special_characters(client, release_manager, team):
    """The cards are built in Python (dashboards/templatetags/board_html.py): every value
    the data supplies is escaped there, on the board and on a refused move's card."""
    from tests.factories import ServiceFactory

    service = ServiceFactory(name='api <"edge"> & co', slug="edge-api", team=team)
    release_manager.first_name, release_manager.last_name = "<b>Rita</b>", "O'Neil & Co"
    release_manager.save()
    release = ReleaseFactory(
        name='<script>alert("x")</script>',
        version="1.0 <beta> & 'rc'",
        services=[service],
        owner=release_manager,
        window_start=timezone.now() + timedelta(days=5),
    )
    release = force_state(make_ready(release), "approved")
    client.force_login(release_manager)
    body = client.get(reverse("dashboards:board")).content.decode()
    name = "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;"
    version = "1.0 &lt;beta&gt; &amp; &#x27;rc&#x27;"
    for page in (
        _card(body, release),
        client.post(
            reverse("dashboards:board_move", args=[release.pk]),
            {"transition": "start_deployment"},
            HTTP_HX_REQUEST="true",
        ).content.decode(),
    ):
        assert "<script>" not in page and "<beta>" not in page and "<b>" not in page
        assert f'>{name}</a> <span class="card-version">{version}</span></h3>' in page
        assert f'<span class="visually-hidden"> ({name} {version})</span>' in page
        assert '<span class="tag">api &lt;&quot;edge&quot;&gt; &amp; co</span>' in page
        assert "<dd>&lt;b&gt;Rita&lt;/b&gt; O&#x27;Neil &amp; Co</dd>" in page
    assert f"Choose a move for {name} {version}</a>" in _card(body, release)
