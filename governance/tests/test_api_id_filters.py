"""Governance list filters on a related id: an id that does not exist and one the caller
may not see both filter to nothing (neither tells which ids exist); a malformed or
out-of-range id is a 400 naming the parameter, never a 500."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from core.roles import Role
from governance.models import ChangeRequest, FreezeException, FreezeWindow, GateCheck, Vote
from pipelines.services import api_token_create
from tests.factories import ReleaseFactory, UserFactory

pytestmark = pytest.mark.django_db

UNKNOWN = 987654321


def _gate(release) -> GateCheck:
    return GateCheck.objects.create(
        release=release,
        policy_name="Standard",
        policy_version=1,
        key="pre_approval:ci_green",
        stage="pre_approval",
        kind="ci_green",
        label="CI green",
        requirement={"stage": "pre_approval", "kind": "ci_green"},
    )


def _change(release, number: int, requester) -> ChangeRequest:
    return ChangeRequest.objects.create(
        number=number, title=f"Change {number}", release=release, requested_by=requester
    )


@pytest.fixture
def world(service, other_service):
    """One release of each service, with a gate, a change request and its vote, and a
    freeze exception; plus a freeze window nobody asked an exception of."""
    requester = UserFactory(username="reese", roles=[Role.RELEASE_MANAGER])
    voter = UserFactory(username="vera", roles=[Role.CAB_MEMBER])
    now = timezone.now()
    freeze = FreezeWindow.objects.create(name="Year end", start=now, end=now + timedelta(days=1))
    rows = {}
    for key, svc, number in (("mine", service, 1), ("theirs", other_service, 2)):
        release = ReleaseFactory(services=[svc])
        change = _change(release, number, requester)
        rows[key] = {
            "release": release,
            "gate": _gate(release),
            "change": change,
            "vote": Vote.objects.create(change_request=change, voter=voter, choice="approve"),
            "exception": FreezeException.objects.create(
                freeze=freeze,
                release=release,
                justification="Outage fix",
                requested_by=requester,
                expires_at=now + timedelta(days=2),
            ),
        }
    rows["freeze"] = freeze
    return rows


@pytest.fixture
def as_viewer(viewer):
    api = APIClient()
    api.force_login(viewer)
    return api


@pytest.fixture
def as_token(service):
    """A CI token of payments-api: sees that service's releases, not identity-api's."""
    _, raw = api_token_create(
        actor=None, name="ci", service_slugs=[service.slug], scopes=["releases:read"]
    )
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return api


# (endpoint, parameter, how to find the parameter's id and the expected row in the world)
FILTERS = [
    ("/api/v1/gate-checks/", "release", lambda w: w["release"].pk, "gate"),
    ("/api/v1/change-requests/", "release", lambda w: w["release"].pk, "change"),
    ("/api/v1/votes/", "change_request", lambda w: w["change"].pk, "vote"),
    ("/api/v1/freeze-exceptions/", "release", lambda w: w["release"].pk, "exception"),
]


def ids(response) -> set[int]:
    assert response.status_code == 200, response.content
    return {row["id"] for row in response.json()["results"]}


@pytest.mark.parametrize(("url", "param", "key", "row"), FILTERS)
def test_unknown_and_hidden_ids_both_filter_to_nothing(world, as_token, url, param, key, row):
    mine, theirs = world["mine"], world["theirs"]
    assert ids(as_token.get(url, {param: key(mine)})) == {mine[row].pk}
    assert ids(as_token.get(url, {param: key(theirs)})) == set()  # exists, hidden
    assert ids(as_token.get(url, {param: UNKNOWN})) == set()  # does not exist


@pytest.mark.parametrize(("url", "param", "key", "row"), FILTERS)
def test_a_viewer_filters_by_id_and_an_unknown_id_is_empty_not_a_400(
    world, as_viewer, url, param, key, row
):
    theirs = world["theirs"]
    assert ids(as_viewer.get(url, {param: key(theirs)})) == {theirs[row].pk}
    assert ids(as_viewer.get(url, {param: UNKNOWN})) == set()


def test_freeze_exceptions_filter_by_freeze_window_id(world, as_viewer):
    both = {world["mine"]["exception"].pk, world["theirs"]["exception"].pk}
    url = "/api/v1/freeze-exceptions/"
    assert ids(as_viewer.get(url, {"freeze": world["freeze"].pk})) == both
    assert ids(as_viewer.get(url, {"freeze": UNKNOWN})) == set()


BAD = ["abc", "1.5", "0", "-3", "9" * 30, str(2**63)]


@pytest.mark.parametrize("value", BAD)
@pytest.mark.parametrize(
    ("url", "param"),
    [(url, param) for url, param, _, _ in FILTERS] + [("/api/v1/freeze-exceptions/", "freeze")],
)
def test_a_malformed_or_out_of_range_id_is_a_400_naming_it(world, as_viewer, url, param, value):
    response = as_viewer.get(url, {param: value})
    assert response.status_code == 400, response.content
    assert param in response.json()["errors"]


def test_the_largest_id_is_accepted(world, as_viewer):
    response = as_viewer.get("/api/v1/gate-checks/", {"release": 2**63 - 1})
    assert ids(response) == set()


def test_the_schema_types_the_id_filters_as_integers(as_viewer):
    schema = as_viewer.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    for url, param in [
        ("/api/v1/gate-checks/", "release"),
        ("/api/v1/change-requests/", "release"),
        ("/api/v1/votes/", "change_request"),
        ("/api/v1/freeze-exceptions/", "freeze"),
    ]:
        [parameter] = [p for p in schema["paths"][url]["get"]["parameters"] if p["name"] == param]
        assert parameter["schema"]["type"] == "integer", (url, param)
