"""Explained risk: compute a release's assessment from its facts, and override it with a
justification (audited)."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from core.audit import audit_record
from core.errors import InvalidInput
from releases.choices import RISK_ORDER, RiskLevel, ScopeStatus
from releases.models import Deployment, Release

from ..domain import freeze as freeze_domain
from ..domain import risk as risk_domain
from ..models import FreezeWindow, RiskAssessment
from ._common import lock_release, require_live, require_manager, require_person, require_text

# How far back the change failure rate of a release's services is measured.
FAILURE_HISTORY_DAYS = 90
# How far around the window freezes count for "proximity".
FREEZE_LOOKAROUND = timedelta(days=3)


def _business_hours() -> risk_domain.BusinessHours:
    return risk_domain.BusinessHours(
        tz=getattr(settings, "GOVERNANCE_BUSINESS_HOURS_TZ", settings.TIME_ZONE or "UTC")
    )


def _failure_rate(release: Release) -> float | None:
    since = timezone.now() - timedelta(days=FAILURE_HISTORY_DAYS)
    finished = Deployment.objects.filter(
        service__in=release.services.all(),
        environment__is_production=True,
        finished_at__gte=since,
        state__in=["succeeded", "failed", "rolled_back"],
    ).exclude(release=release)
    total = finished.count()
    if not total:
        return None
    failed = finished.filter(state__in=["failed", "rolled_back"]).count()
    return round(failed / total, 3)


def hours_to_nearest_freeze(release: Release) -> float | None:
    """Hours between the deployment window and the nearest freeze covering the release
    (0 when they overlap), looking three days either side; None when none is near."""
    if not (release.window_start and release.window_end):
        return None
    service_ids = list(release.services.values_list("id", flat=True))
    # Freeze rules are only evaluated within their horizon; clamping first keeps a window
    # stored far in the future (9999) from overflowing the look-around arithmetic.
    start = max(release.window_start, freeze_domain.EVALUATION_START) - FREEZE_LOOKAROUND
    end = min(release.window_end, freeze_domain.EVALUATION_END) + FREEZE_LOOKAROUND
    best: float | None = None
    windows = (
        FreezeWindow.objects.filter(is_active=True)
        .filter(Q(services__isnull=True) | Q(services__in=service_ids))
        .distinct()
    )
    for window in windows:
        try:
            spans = freeze_domain.occurrences(window.rule(), start, end)
        except freeze_domain.FreezeRuleError:
            continue
        for s, e in spans:
            if s < release.window_end and e > release.window_start:
                gap = 0.0
            elif e <= release.window_start:
                gap = (release.window_start - e).total_seconds() / 3600
            else:
                gap = (s - release.window_end).total_seconds() / 3600
            best = gap if best is None else min(best, gap)
    return None if best is None else round(best, 1)


def risk_input(release: Release, *, data_migration: bool = False) -> risk_domain.RiskInput:
    """The facts of a release as the pure risk model wants them."""
    scope = list(
        release.scope_items.filter(status=ScopeStatus.INCLUDED).values_list("title", flat=True)
    )
    detected = any("migration" in title.lower() for title in scope)
    return risk_domain.RiskInput(
        scope_item_count=len(scope),
        services=[(s.slug, s.criticality) for s in release.services.all()],
        data_migration=data_migration or detected,
        window_start=release.window_start if release.window_end else None,
        window_end=release.window_end if release.window_start else None,
        business_hours=_business_hours(),
        recent_change_failure_rate=_failure_rate(release),
        hours_to_nearest_freeze=hours_to_nearest_freeze(release),
    )


def governing_risk_level(release: Release, assessment: RiskAssessment | None) -> str:
    """The risk governance uses, from a release and its assessment (None when not yet
    assessed): an override when there is one; otherwise the higher of the computed level and
    the level the release manager declared (risk only goes up without a justification).

    The one place this rule lives: services read the assessment and call it, pages call it
    with the assessment they read alongside the release (no query here)."""
    declared = release.risk_level
    if assessment is None:
        return declared
    if assessment.override_level:
        return assessment.override_level
    return max(declared, assessment.computed_level, key=lambda level: RISK_ORDER[level])


def governing_risk_q(level: str) -> Q:
    """Releases whose governing level is ``level``, as a filter over the release row joined
    to its assessment: the same rule as governing_risk_level, written for SQL so a list can
    filter on it in its one query (tests compare the two over every combination)."""
    at_most = [value for value, order in RISK_ORDER.items() if order <= RISK_ORDER[level]]
    assessed = Q(risk_assessment__isnull=False, risk_assessment__override_level="")
    return (
        Q(risk_assessment__override_level=level)
        | Q(risk_assessment__isnull=True, risk_level=level)
        | assessed & Q(risk_level=level, risk_assessment__computed_level__in=at_most)
        | assessed & Q(risk_assessment__computed_level=level, risk_level__in=at_most)
    )


def effective_risk_level(release: Release) -> str:
    """The risk governance uses for ``release``, read fresh from its assessment (see
    governing_risk_level for the rule)."""
    return governing_risk_level(release, RiskAssessment.objects.filter(release=release).first())


def risk_assess(
    *, release: Release | int, actor=None, data_migration: bool | None = None, audit: bool = True
) -> RiskAssessment:
    """Compute (or recompute) a release's explained risk and store it with its factors.

    An existing override stays in force. Permissions: release managers of the release when
    called by a person (the planning listener calls it as part of release_plan with
    ``audit=False``: the plan event covers it). Side effects: ``risk.assess`` audit event.
    """
    with transaction.atomic():
        release = lock_release(release)
        if audit:
            require_manager(actor, release)
        existing = RiskAssessment.objects.filter(release=release).first()
        migration = (
            existing.data_migration if existing and data_migration is None else bool(data_migration)
        )
        data = risk_input(release, data_migration=migration)
        result = risk_domain.assess(data)
        factors = [
            {
                "name": f.name,
                "label": f.label,
                "value": f.value_description,
                "contribution": f.contribution,
                "explanation": f.explanation,
            }
            for f in result.factors
        ]
        before = {"score": existing.score, "level": existing.computed_level} if existing else None
        assessment = existing or RiskAssessment(release=release)
        assessment.score = result.score
        assessment.computed_level = result.level
        assessment.factors = factors
        assessment.data_migration = migration
        assessment.inputs = {
            "scope_item_count": data.scope_item_count,
            "services": [list(s) for s in data.services],
            "data_migration": data.data_migration,
            "recent_change_failure_rate": data.recent_change_failure_rate,
            "hours_to_nearest_freeze": data.hours_to_nearest_freeze,
            "business_hours": data.business_hours.describe(),
        }
        assessment.assessed_at = timezone.now()
        assessment.save()
        if audit:
            audit_record(
                actor=actor,
                action="risk.assess",
                target=assessment,
                release=release,
                before=before,
                after={"score": result.score, "level": result.level, "factors": result.explanation},
            )
        return assessment


def risk_override(
    *, release: Release | int, actor, level: str, justification: str
) -> RiskAssessment:
    """Override the computed risk level with a justification (required).

    Permissions: release managers of the release and administrators. The release's declared
    risk level follows the override. Gate checks already instantiated stay as they are (the
    policy snapshot is taken at planning). Side effects: ``risk.override`` audit event.
    """
    justification = require_text(justification, "A justification", "justification")
    if level not in RiskLevel.values:
        raise InvalidInput("Unknown risk level.", details={"level": ["Unknown risk level."]})
    require_person(actor)
    with transaction.atomic():
        # Permission first: a refused override must not even refresh the assessment.
        release = lock_release(release)
        require_manager(actor, release)
        require_live(release)
        assessment = risk_assess(release=release, actor=actor, audit=False)
        assessment = RiskAssessment.objects.select_for_update().get(pk=assessment.pk)
        before = {"level": assessment.level, "declared": release.risk_level}
        assessment.override_level = level
        assessment.override_justification = justification
        assessment.overridden_by = actor
        assessment.overridden_at = timezone.now()
        assessment.save()
        release.risk_level = level
        release.save(update_fields=["risk_level", "updated_at"])
        audit_record(
            actor=actor,
            action="risk.override",
            target=assessment,
            release=release,
            reason=justification,
            before=before,
            after={
                "level": level,
                "computed": assessment.computed_level,
                "score": assessment.score,
            },
        )
        return assessment
