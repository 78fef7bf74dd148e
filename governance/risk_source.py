"""Governance's answer to the releases app's risk seam (``releases.risk``): the governing
level is the one ``services.risk.governing_risk_level`` decides, from the assessment read
with the release. Registered in GovernanceConfig.ready()."""

from __future__ import annotations

from typing import Any

from releases.models import Release
from releases.risk import RiskSource

from .services.risk import effective_risk_level, governing_risk_level, governing_risk_q

# Factors listed in the release header's "Why …?"; the governance panel lists them all.
HEADER_RISK_FACTORS = 3


def _assessment(release: Release):
    # A release without an assessment raises RelatedObjectDoesNotExist (an AttributeError).
    return getattr(release, "risk_assessment", None)


def loaded_risk_level(release: Release) -> str:
    """The governing level from the assessment read with the release (no query)."""
    return governing_risk_level(release, _assessment(release))


def risk_header(release: Release) -> dict[str, Any]:
    """The risk the release header shows: the governing level and, at a glance, why: the
    largest factors and the score, the override, the declared level when it differs. Uses
    the assessment read with the release (no query)."""
    assessment = _assessment(release)
    level = governing_risk_level(release, assessment)
    if assessment is None:
        return {"level": level, "assessed": False}
    factors = sorted(
        (f for f in assessment.factors if f.get("contribution", 0) > 0),
        key=lambda f: -f["contribution"],
    )
    return {
        "level": level,
        "assessed": True,
        "score": assessment.score,
        "computed": assessment.computed_level,
        "declared": release.risk_level if release.risk_level != level else None,
        "factors": factors[:HEADER_RISK_FACTORS],
        "more_factors": len(factors) - HEADER_RISK_FACTORS,
        "override": assessment if assessment.override_level else None,
    }


RISK_SOURCE = RiskSource(
    level=loaded_risk_level,
    fresh_level=effective_risk_level,
    level_q=governing_risk_q,
    header=risk_header,
    related=("risk_assessment",),
    # Lists show the level, not its factors.
    deferred=("risk_assessment__factors", "risk_assessment__inputs"),
    header_related=("risk_assessment__overridden_by",),
)
