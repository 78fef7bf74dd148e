"""The governing risk rule, in Python and as a list filter, agree on every combination."""

from __future__ import annotations

import itertools

import pytest

from governance.models import RiskAssessment
from governance.services.risk import effective_risk_level, governing_risk_level, governing_risk_q
from releases.choices import RiskLevel
from releases.models import Release
from tests.factories import ReleaseFactory

pytestmark = pytest.mark.django_db

LEVELS = list(RiskLevel.values)


def test_the_filter_selects_exactly_the_releases_the_rule_gives_each_level(service):
    expected: dict[int, str] = {}
    for declared in LEVELS:
        release = ReleaseFactory(services=[service], risk_level=declared)
        expected[release.pk] = governing_risk_level(release, None)
    for declared, computed, override in itertools.product(LEVELS, LEVELS, ["", *LEVELS]):
        release = ReleaseFactory(services=[service], risk_level=declared)
        assessment = RiskAssessment.objects.create(
            release=release, score=10, computed_level=computed, override_level=override
        )
        expected[release.pk] = governing_risk_level(release, assessment)
        assert effective_risk_level(release) == expected[release.pk]
    for level in LEVELS:
        selected = set(Release.objects.filter(governing_risk_q(level)).values_list("pk", flat=True))
        assert selected == {pk for pk, governing in expected.items() if governing == level}, level


def test_an_override_governs_even_below_the_declared_level(service):
    release = ReleaseFactory(services=[service], risk_level="high")
    assessment = RiskAssessment(
        release=release, score=80, computed_level="critical", override_level="medium"
    )
    assert governing_risk_level(release, assessment) == "medium"
