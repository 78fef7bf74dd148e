"""The risk seam (releases.risk): governance's rule when it is registered, the declared
level when no source is."""

from __future__ import annotations

import pytest

from governance.models import RiskAssessment
from releases import risk
from releases.models import Release
from tests.factories import ReleaseFactory


@pytest.fixture
def raised():
    """Declared low, assessed high: governance says high."""
    release = ReleaseFactory(risk_level="low")
    RiskAssessment.objects.create(release=release, score=70, computed_level="high")
    return release


@pytest.fixture
def no_source():
    source = risk.registered_risk_source()
    risk.unregister_risk_source(source)
    yield
    risk.register_risk_source(source)


@pytest.mark.django_db
def test_governance_source_decides_and_reads_in_the_same_query(raised, django_assert_num_queries):
    assert risk.current_governing_level(raised) == "high"
    with django_assert_num_queries(1):
        (loaded,) = risk.with_risk(Release.objects.filter(pk=raised.pk), lean=True)
        assert risk.governing_level(loaded) == "high"
    assert set(Release.objects.filter(risk.governing_level_q(["high"]))) == {raised}


@pytest.mark.django_db
def test_without_a_source_the_declared_level_governs(raised, no_source):
    assert risk.governing_level(raised) == "low"
    assert risk.current_governing_level(raised) == "low"
    assert risk.risk_header(raised) == {"level": "low", "assessed": False}
    assert set(Release.objects.filter(risk.governing_level_q(["low"]))) == {raised}
    assert not Release.objects.filter(risk.governing_level_q(["high"])).exists()
    qs = Release.objects.all()
    assert risk.with_risk(qs, lean=True, header=True) is qs


def test_a_second_source_is_refused():
    source = risk.registered_risk_source()
    other = risk.RiskSource(
        level=source.level,
        fresh_level=source.fresh_level,
        level_q=source.level_q,
        header=source.header,
    )
    with pytest.raises(ValueError):
        risk.register_risk_source(other)
