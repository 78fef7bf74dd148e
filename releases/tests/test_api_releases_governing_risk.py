"""The releases API shows and filters the governing risk (what gates, CAB and the web pages
use) beside the declared ``risk_level``, in a fixed number of queries."""

from __future__ import annotations

import itertools

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from governance.models import RiskAssessment
from governance.services.risk import governing_risk_level
from pipelines.services import api_token_create
from releases.choices import RiskLevel
from tests.factories import ReleaseFactory

pytestmark = pytest.mark.django_db

LIST = "/api/v1/releases/"
LEVELS = list(RiskLevel.values)


@pytest.fixture
def client(viewer):
    api = APIClient()
    api.force_login(viewer)
    return api


def assessed(service, declared: str, computed: str | None = None, override: str = ""):
    release = ReleaseFactory(services=[service], risk_level=declared)
    if computed is not None:
        RiskAssessment.objects.create(
            release=release, score=50, computed_level=computed, override_level=override
        )
    return release


def ids(response) -> set[int]:
    assert response.status_code == 200, response.content
    return {row["id"] for row in response.json()["results"]}


@pytest.mark.parametrize(
    ("declared", "computed", "override", "governing"),
    [
        ("low", "high", "", "high"),  # computed above declared: risk only goes up
        ("high", "critical", "medium", "medium"),  # an override governs, even below declared
        ("medium", None, "", "medium"),  # not yet assessed: the declared level
        ("high", "low", "", "high"),  # computed below declared: the declared level holds
    ],
)
def test_list_and_detail_show_the_governing_beside_the_declared_level(
    client, service, declared, computed, override, governing
):
    release = assessed(service, declared, computed, override)
    [row] = client.get(LIST).json()["results"]
    detail = client.get(f"{LIST}{release.pk}/").json()
    for body in (row, detail):
        assert body["risk_level"] == declared
        assert body["governing_risk_level"] == governing


def test_the_filter_selects_what_the_rule_gives_for_every_combination(client, service):
    expected: dict[int, str] = {}
    for declared in LEVELS:
        release = assessed(service, declared)
        expected[release.pk] = governing_risk_level(release, None)
    for declared, computed, override in itertools.product(LEVELS, LEVELS, ["", *LEVELS]):
        release = assessed(service, declared, computed, override)
        expected[release.pk] = governing_risk_level(release, release.risk_assessment)
    assert len(expected) > 50  # more than one page: count, not the page, is compared below
    for level in LEVELS:
        want = {pk for pk, governing in expected.items() if governing == level}
        body = client.get(LIST, {"governing_risk_level": level}).json()
        assert body["count"] == len(want), level
        seen: set[int] = set()
        url: str | None = f"{LIST}?governing_risk_level={level}"
        while url:
            page = client.get(url).json()
            seen |= {row["id"] for row in page["results"]}
            assert {row["governing_risk_level"] for row in page["results"]} <= {level}
            url = page["next"]
        assert seen == want, level


def test_the_filter_is_repeatable_and_the_declared_filter_stays_declared(client, service):
    raised = assessed(service, "low", "high")  # declared low, governs high
    lowered = assessed(service, "critical", "critical", "medium")  # override below declared
    plain = assessed(service, "low")
    assert ids(client.get(LIST, {"governing_risk_level": "high"})) == {raised.pk}
    assert ids(client.get(LIST, {"governing_risk_level": ["high", "medium"]})) == {
        raised.pk,
        lowered.pk,
    }
    assert ids(client.get(LIST, {"governing_risk_level": "low"})) == {plain.pk}
    # ?risk_level= keeps filtering the declared level, as it always did.
    assert ids(client.get(LIST, {"risk_level": "low"})) == {raised.pk, plain.pk}
    assert ids(client.get(LIST, {"risk_level": "critical"})) == {lowered.pk}
    both = client.get(LIST, {"risk_level": "low", "governing_risk_level": "high"})
    assert ids(both) == {raised.pk}


@pytest.mark.parametrize(
    "params", [{"governing_risk_level": "severe"}, {"governing_risk_level": ["low", "extreme"]}]
)
def test_an_unknown_governing_level_is_a_400_naming_the_parameter(client, params):
    response = client.get(LIST, params)
    assert response.status_code == 400
    assert "governing_risk_level" in response.json()["errors"]


def test_the_filter_respects_what_a_token_may_see(service, other_service):
    mine = assessed(service, "low", "high")
    assessed(other_service, "low", "high")
    _, raw = api_token_create(
        actor=None, name="ci", service_slugs=[service.slug], scopes=["releases:read"]
    )
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert ids(api.get(LIST, {"governing_risk_level": "high"})) == {mine.pk}


def _queries(client, params=None) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(LIST, params or {})
    assert response.status_code == 200
    return len(captured.captured_queries)


@pytest.mark.parametrize("params", [{}, {"governing_risk_level": ["high", "low"]}])
def test_the_list_stays_a_fixed_number_of_queries_at_two_sizes(client, service, params):
    def batch(n: int) -> None:
        for i in range(n):
            # Assessed and unassessed releases alike: neither reads its assessment alone.
            if i % 2:
                assessed(service, "low", "high")
            else:
                assessed(service, "low")

    batch(4)
    small = _queries(client, params)
    batch(30)
    large = _queries(client, params)
    assert large == small


def test_the_detail_reads_the_assessment_with_the_release(client, service):
    bare = assessed(service, "low")
    scored = assessed(service, "low", "high", "")
    with CaptureQueriesContext(connection) as without:
        assert client.get(f"{LIST}{bare.pk}/").json()["governing_risk_level"] == "low"
    with CaptureQueriesContext(connection) as with_assessment:
        assert client.get(f"{LIST}{scored.pk}/").json()["governing_risk_level"] == "high"
    assert len(with_assessment.captured_queries) == len(without.captured_queries)
    table = RiskAssessment._meta.db_table
    own = [
        q["sql"]
        for q in with_assessment.captured_queries
        if q["sql"].partition(" FROM ")[2].lstrip().strip('"`').startswith(table)
    ]
    assert not own, "the assessment was read in a query of its own"


def test_the_schema_documents_both_levels(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json")
    assert schema.status_code == 200
    text = schema.content.decode()
    assert "governing_risk_level" in text
    assert "The risk level governance uses" in text
    assert "The risk level the release manager declared" in text
