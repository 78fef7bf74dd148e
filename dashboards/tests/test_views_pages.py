"""The calendar, board and metrics pages: who sees them, what they show, and that their query
count does not grow with the data."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from dashboards.services import metrics_facts_refresh
from releases.models import Release

PAGES = [
    ("dashboards:calendar", {}),
    ("dashboards:calendar", {"view": "week"}),
    ("dashboards:calendar", {"view": "list"}),
    ("dashboards:board", {}),
    ("dashboards:metrics", {}),
    ("dashboards:metrics", {"by": "team"}),  # release rankings through the service links
]


def _count(client, name: str, params: dict) -> int:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(reverse(name), params)
    assert response.status_code == 200, response.content[:500]
    return len(ctx.captured_queries)


@pytest.mark.django_db
@pytest.mark.parametrize(("name", "params"), PAGES)
def test_query_count_does_not_grow_with_the_data(
    client, viewer, portfolio, name, params, django_assert_num_queries
):
    client.force_login(viewer)
    portfolio(per_state=12)  # more than a board column shows
    metrics_facts_refresh(full=True)  # so that neither request below refreshes them
    small = _count(client, name, params)
    portfolio(per_state=36)
    with django_assert_num_queries(small):
        client.get(reverse(name), params)


@pytest.mark.django_db
@pytest.mark.parametrize(("name", "params"), PAGES)
def test_outsiders_see_no_data(client, outsider, portfolio, name, params):
    portfolio(per_state=1)
    client.force_login(outsider)
    response = client.get(reverse(name), params)
    assert response.status_code == 200
    assert b"You have no role" in response.content
    assert b"Release 0" not in response.content


@pytest.mark.django_db
def test_calendar_shows_windows_and_explains_conflicts(client, viewer, portfolio):
    portfolio(per_state=1)
    client.force_login(viewer)
    response = client.get(reverse("dashboards:calendar"), {"view": "list"})
    body = response.content.decode()
    assert "Release 5 2.5.0" in body
    assert "Shares production environment production: overlaps" in body
    assert '<details class="conflict">' in body


@pytest.mark.django_db
def test_calendar_filters_by_service(client, viewer, portfolio, service):
    portfolio(per_state=1)
    client.force_login(viewer)
    response = client.get(reverse("dashboards:calendar"), {"view": "list", "service": service.slug})
    body = response.content.decode()
    # Entries are links; a shown window's conflict may still name an identity-api release.
    assert ">Release 6 2.6.0</a>" in body  # payments-api
    assert ">Release 5 2.5.0</a>" not in body  # identity-api


@pytest.mark.django_db
def test_htmx_navigation_returns_only_the_calendar(client, viewer, portfolio):
    portfolio(per_state=1)
    client.force_login(viewer)
    response = client.get(
        reverse("dashboards:calendar"), HTTP_HX_REQUEST="true", HTTP_HX_TARGET="calendar"
    )
    body = response.content.decode()
    assert body.lstrip().startswith('<section id="calendar"')
    assert "<html" not in body


@pytest.mark.django_db
def test_metrics_page_renders_charts_with_data_tables(client, viewer, portfolio):
    client.force_login(viewer)
    response = client.get(reverse("dashboards:metrics"))
    body = response.content.decode()
    assert body.count('<figure class="chart"') == 6
    assert body.count("Data table") == 6


@pytest.mark.django_db
@pytest.mark.parametrize("htmx", [True, False])
@pytest.mark.parametrize("who", ["release_manager", "other_release_manager"])
def test_board_for_release_managers_and_its_move_menu_do_not_grow(
    client, request, portfolio, who, htmx, django_assert_num_queries
):
    """The board as a release manager (a permission check and moves per card: as the owner,
    or through the team of one of the services) and a card's "Move to…" menu (loaded when
    opened, or a page without JavaScript) cost the same queries with three times the data."""
    client.force_login(request.getfixturevalue(who))
    headers = {"HTTP_HX_REQUEST": "true"} if htmx else {}
    portfolio(per_state=12)
    release = Release.objects.filter(state="planned").order_by("pk").first()
    menu = reverse("dashboards:board_moves", args=[release.pk])
    small_board = _count(client, "dashboards:board", {})
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(menu, **headers)
    assert response.status_code == 200
    assert b'value="start_work"' in response.content
    small_menu = len(ctx.captured_queries)
    portfolio(per_state=36)
    with django_assert_num_queries(small_board):
        client.get(reverse("dashboards:board"))
    with django_assert_num_queries(small_menu):
        client.get(menu, **headers)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("dashboards:calendar", {"date": "9999-12-31"}),
        ("dashboards:calendar", {"date": "0001-01-01", "view": "week"}),
        ("dashboards:calendar", {"date": "9999-12-31", "view": "list"}),
        (
            "dashboards:metrics",
            {"period": "custom", "start_date": "9999-12-01", "end_date": "9999-12-31"},
        ),
    ],
)
def test_a_date_out_of_range_is_dropped_not_a_500(client, viewer, name, params):
    """Weeks and months around year 1 or 9999 leave Python's dates: such a date in a
    bookmark or a hand-typed URL falls back to the default (today, the last 90 days)."""
    from django.utils import timezone

    client.force_login(viewer)
    response = client.get(reverse(name), params)
    assert response.status_code == 200
    today = timezone.localdate()
    shown = "(90 days)" if name == "dashboards:metrics" else f"{today:%Y}"
    assert shown in response.content.decode()


@pytest.mark.django_db
def test_the_board_with_every_kind_of_blocker_does_not_grow(
    client, viewer, governed, django_assert_num_queries
):
    """Change requests (on an agenda or not), freezes with an exception, deploying releases,
    validation and retrospectives: the board's blockers cost the same queries at three
    times the releases (readiness is asked once for all the cards)."""
    client.force_login(viewer)
    governed(rounds=2)
    small = _count(client, "dashboards:board", {})
    governed(rounds=6)
    with django_assert_num_queries(small):
        client.get(reverse("dashboards:board"))
