"""The release page's header and the release list show the governing risk (the level gates
and the CAB use), with why, instead of the level the release manager declared."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from governance.models import RiskAssessment
from releases.models import ReleaseRisk, ScopeItem
from tests.factories import ReleaseFactory, make_ready

pytestmark = pytest.mark.django_db

FACTORS = [
    {"name": "change_size", "label": "Change size", "value": "14 scope items", "contribution": 12},
    {
        "name": "services",
        "label": "Services touched",
        "value": "payments-api (tier 2)",
        "contribution": 20,
    },
    {"name": "migration", "label": "Data migration", "value": "yes", "contribution": 25},
    {
        "name": "off_hours",
        "label": "Window outside business hours",
        "value": "no",
        "contribution": 0,
    },
    {"name": "history", "label": "Change failure history", "value": "8% failed", "contribution": 5},
]


def _assess(release, *, computed="high", score=62, **fields) -> RiskAssessment:
    return RiskAssessment.objects.create(
        release=release, score=score, computed_level=computed, factors=FACTORS, **fields
    )


def _header(client, release) -> str:
    response = client.get(reverse("releases:detail", args=[release.pk]))
    assert response.status_code == 200
    body = response.content.decode()
    start = body.index('<header class="release-header')
    return body[start : body.index("</header>", start)]


def _badge(header: str) -> str:
    match = re.search(r'class="badge badge-risk risk-(\w+)"', header)
    assert match, header
    return match.group(1)


@pytest.fixture
def release(service, release_manager):
    return make_ready(
        ReleaseFactory(
            name="Checkout v2", services=[service], owner=release_manager, risk_level="low"
        )
    )


def test_header_shows_the_computed_level_when_it_is_higher_than_the_declared_one(
    client, viewer, release
):
    _assess(release)
    client.force_login(viewer)
    header = _header(client, release)
    assert _badge(header) == "high"
    assert "Why high?" in header
    assert "declared: low" in header
    assert "score 62/100" in header
    # The largest factors, largest first, with what was seen and the points they add.
    assert (
        header.index("Data migration")
        < header.index("Services touched")
        < header.index("Change size")
    )
    assert "payments-api (tier 2)" in header and "+25" in header
    assert "Change failure history" not in header  # fourth: left to the governance panel
    assert "Window outside business hours" not in header  # adds nothing
    assert "(1 more factor)" in header
    # Readable without JavaScript: a <details>, not a script-driven popover.
    assert '<details class="risk-why">' in header


def test_header_shows_the_declared_level_when_it_is_higher(client, viewer, release):
    release.risk_level = "critical"
    release.save(update_fields=["risk_level"])
    _assess(release, computed="medium", score=40)
    client.force_login(viewer)
    header = _header(client, release)
    assert _badge(header) == "critical"
    assert "Why critical?" in header
    assert "declared:" not in header  # the declared level is the one shown


def test_header_shows_an_override_with_who_and_why(client, viewer, release, release_manager):
    _assess(
        release,
        override_level="medium",
        override_justification="Migration rehearsed twice on a production copy.",
        overridden_by=release_manager,
        overridden_at=timezone.now(),
    )
    client.force_login(viewer)
    header = _header(client, release)
    assert _badge(header) == "medium"
    assert "overridden by rita" in header
    assert "Overridden to medium" in header
    assert "Migration rehearsed twice on a production copy." in header
    assert "Computed: high" in header
    assert "declared: low" in header


def test_header_says_the_level_is_declared_before_any_assessment(client, viewer, release):
    client.force_login(viewer)
    header = _header(client, release)
    assert _badge(header) == "low"
    assert "declared by the release manager, not yet assessed" in header.lower()
    assert "Why low?" not in header


def _count(client, url) -> int:
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(url).status_code == 200
    return len(ctx.captured_queries)


def test_detail_query_count_is_fixed_with_or_without_an_assessment_and_more_data(
    client, viewer, release, release_manager, django_assert_num_queries
):
    client.force_login(viewer)
    url = reverse("releases:detail", args=[release.pk])
    client.get(url)  # warm per-session caches
    baseline = _count(client, url)
    _assess(
        release,
        overridden_by=release_manager,
        override_level="high",
        override_justification="Card network change.",
    )
    for n in range(15):
        ScopeItem.objects.create(release=release, title=f"Item {n}", external_key=f"PAY-{n + 10}")
        ReleaseRisk.objects.create(release=release, description=f"Risk {n}", owner=release_manager)
    with django_assert_num_queries(baseline) as captured:
        client.get(url)
    # Read with the release (a join), never on its own.
    assert not [
        q for q in captured.captured_queries if 'FROM "governance_riskassessment"' in q["sql"]
    ]


# --- list -------------------------------------------------------------------------------------


def _list(client, **params) -> str:
    response = client.get(reverse("releases:list"), params)
    assert response.status_code == 200
    return response.content.decode()


def _row_badge(body: str, name: str) -> str:
    row = body[body.index(f">{name}</a>") :]
    row = row[: row.index("</tr>")]
    return _badge(row)


def test_list_rows_show_the_governing_risk(client, viewer, service):
    assessed = ReleaseFactory(name="Assessed", services=[service], risk_level="low")
    _assess(assessed)
    ReleaseFactory(name="Declared only", services=[service], risk_level="medium")
    client.force_login(viewer)
    body = _list(client)
    assert _row_badge(body, "Assessed") == "high"
    assert _row_badge(body, "Declared only") == "medium"


def test_list_filters_on_the_governing_risk(client, viewer, service, release_manager):
    _assess(ReleaseFactory(name="Computed high", services=[service], risk_level="low"))
    ReleaseFactory(name="Declared low", services=[service], risk_level="low")
    _assess(
        ReleaseFactory(name="Overridden low", services=[service], risk_level="low"),
        override_level="low",
        override_justification="Feature-flagged.",
        overridden_by=release_manager,
    )
    client.force_login(viewer)
    low = _list(client, risk_level="low")
    assert "Declared low" in low and "Overridden low" in low and "Computed high" not in low
    high = _list(client, risk_level="high")
    assert "Computed high" in high and "Declared low" not in high and "Overridden low" not in high


def test_list_query_count_does_not_grow_with_assessed_rows(
    client, viewer, service, django_assert_num_queries
):
    client.force_login(viewer)
    for _ in range(2):
        _assess(ReleaseFactory(services=[service]))
    baseline = _count(client, reverse("releases:list"))
    for n in range(20):
        release = ReleaseFactory(services=[service])
        if n % 2:
            _assess(release)
    with django_assert_num_queries(baseline):
        client.get(reverse("releases:list"))
