"""Risk and available actions come from one source, and every page shows the same answer
for every seeded release (issue 15).

Risk: the release list, the release page, the board, the inbox and the CAB workbench all
show the governing level (``releases.risk``), which this compares with the level read
fresh for each release. Actions: the release page's enabled and disabled buttons and the
board's "Move to…" menu are exactly ``releases.actions.release_actions``, and the API's
``available_transitions`` names the same transitions, for each demo user who may move
releases and one who may not.
"""

from __future__ import annotations

import io
import re

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client

from releases.actions import release_actions
from releases.models import Release
from releases.risk import current_governing_level

pytestmark = pytest.mark.django_db

RISK = re.compile(r'class="badge badge-risk risk-(\w+)"')
RELEASE_LINK = re.compile(r'href="/releases/(\d+)/"')


@pytest.fixture
def seeded():
    call_command("seed_demo", stdout=io.StringIO())
    return {r.pk: current_governing_level(r) for r in Release.objects.all()}


def _client(username: str) -> Client:
    client = Client()
    client.force_login(get_user_model().objects.get(username=username))
    return client


def _get(client: Client, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200, f"{url}: {response.status_code}"
    return response.content.decode()


def _risk_per_release(html: str, block: str) -> dict[int, str]:
    """{release id: risk level} of each ``block`` (the markup every entry starts with)."""
    found: dict[int, str] = {}
    for chunk in html.split(block)[1:]:
        link, risk = RELEASE_LINK.search(chunk), RISK.search(chunk)
        assert link and risk, f"an entry without its release or risk: {chunk[:300]}"
        found[int(link.group(1))] = risk.group(1)
    return found


def test_every_page_shows_the_governing_risk_of_every_seeded_release(seeded):
    stella = _client("stella")
    listed: dict[int, str] = {}
    page = 1
    while True:
        html = _get(stella, f"/?page={page}")
        rows = html.split("<tbody")[1].split("</tbody>")[0]
        listed.update(_risk_per_release(rows, "<tr"))
        if f"?page={page + 1}" not in html and f"page={page + 1}" not in html:
            break
        page += 1
    assert listed == {pk: level for pk, level in seeded.items() if pk in listed}
    assert len(listed) == len(seeded), "the list shows every release"

    for pk, level in seeded.items():
        header = _get(stella, f"/releases/{pk}/").split('id="transitions"')[0]
        assert RISK.search(header).group(1) == level, f"release page of {pk}"

    board = _risk_per_release(_get(stella, "/dashboards/board/"), '<article id="card-')
    assert board and board == {pk: seeded[pk] for pk in board}

    shown = {}
    for username in ("quinn", "sam", "omar", "carla", "chris"):
        shown.update(
            _risk_per_release(_get(_client(username), "/governance/inbox/"), 'class="gov-evidence"')
        )
    # Each agenda item: its header's badge comes first, then the release's evidence.
    cab = _risk_per_release(_get(_client("chris"), "/governance/cab/"), '<article class="gov-item"')
    assert shown and cab, "the demo has sign-offs, votes and an agenda"
    assert shown == {pk: seeded[pk] for pk in shown}
    assert cab == {pk: seeded[pk] for pk in cab}


TRANSITION_FORM = re.compile(r'action="/releases/\d+/transitions/([\w-]+)/"')
BLOCKED_BUTTON = re.compile(r'aria-describedby="blocked-([\w-]+)"')
MOVE = re.compile(r'name="transition" value="([\w-]+)"')
BLOCKED_MOVE = re.compile(r'aria-describedby="move-blocked-\d+-([\w-]+)"')


@pytest.mark.parametrize("username", ["rita", "ida", "admin", "stella"])
def test_the_release_page_board_and_api_offer_the_same_actions(seeded, username):
    user = get_user_model().objects.get(username=username)
    client = _client(username)
    offered_somewhere = 0
    for release in Release.objects.order_by("id"):
        actions = release_actions(release=release, actor=user)
        enabled = [a.name for a in actions if a.enabled]
        blocked = [a.name for a in actions if not a.enabled]
        offered_somewhere += len(actions)

        section = _get(client, f"/releases/{release.pk}/").split('id="transitions"')[1]
        section = section.split("</section>")[0]
        assert sorted(set(TRANSITION_FORM.findall(section))) == sorted(enabled), release
        assert sorted(BLOCKED_BUTTON.findall(section)) == sorted(blocked), release

        menu = _get(client, f"/dashboards/board/{release.pk}/moves/")
        assert MOVE.findall(menu) == enabled, f"board menu of {release}"
        assert BLOCKED_MOVE.findall(menu) == blocked, f"board menu of {release}"

        api = client.get(f"/api/v1/releases/{release.pk}/").json()
        assert sorted(api["available_transitions"]) == sorted(enabled + blocked), release
    if username == "stella":
        assert offered_somewhere == 0
    else:
        assert offered_somewhere > 0
