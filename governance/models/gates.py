"""Gate policies (data, versioned) and the gate checks a planned release gets from them,
with the policy snapshot taken at planning.

Lifecycle fields are protected FSM fields changed only by governance.services."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone
from django_fsm import ConcurrentTransitionMixin, FSMField, transition

from core.roles import Role
from releases.choices import ReleaseType, RiskLevel
from releases.models import Environment

from ..choices import (
    GATE_DONE,
    GateKind,
    GateStage,
    GateStatus,
    PolicyChangeRequest,
)


def _default_waivers() -> list[str]:
    return [Role.CAB_CHAIR.value, Role.ADMINISTRATOR.value]


# What invalidates a passed gate unless its requirement says otherwise ("invalidated_by").
DEFAULT_INVALIDATED_BY: dict[str, list[str]] = {
    GateKind.MANUAL: ["scope", "build"],
    GateKind.CI_GREEN: ["build"],
    GateKind.TESTS_PASSED: ["build"],
    GateKind.NO_CRITICAL_VULNS: ["build"],
    GateKind.COVERAGE_MIN: ["build"],
    GateKind.PERFORMANCE_PASSED: ["build"],
    GateKind.STAGING_VALIDATED: ["build", "scope"],
    GateKind.ROLLBACK_REHEARSED: ["rollback_plan"],
}
INVALIDATION_CAUSES = ("scope", "rollback_plan", "build", "window")
SIGN_OFF_ROLES = (
    Role.QA_LEAD,
    Role.SECURITY_LEAD,
    Role.OPERATIONS,
    Role.PRODUCT_OWNER,
    Role.RELEASE_MANAGER,
    Role.CAB_CHAIR,
)


def normalize_requirements(raw: object) -> list[dict]:
    """Validate and fill in a policy's requirement list; raises ValidationError with a message
    per problem. Each requirement: key, stage, kind, label; role for manual sign-offs;
    threshold for coverage; waivable_by (roles); invalidated_by (causes)."""
    if not isinstance(raw, list):
        raise ValidationError("Requirements must be a list of objects.")
    errors: list[str] = []
    result: list[dict] = []
    keys: set[str] = set()
    for index, item in enumerate(raw, start=1):
        if not isinstance(item, dict):
            errors.append(f"Requirement {index} must be an object.")
            continue
        kind = item.get("kind")
        stage = item.get("stage")
        key = str(item.get("key") or "").strip()
        if kind not in GateKind.values:
            errors.append(f"Requirement {index}: unknown kind {kind!r}.")
            continue
        if stage not in GateStage.values:
            errors.append(f"Requirement {index}: unknown stage {stage!r}.")
            continue
        role = item.get("role") or ""
        if kind == GateKind.MANUAL:
            if role not in [r.value for r in SIGN_OFF_ROLES]:
                errors.append(f"Requirement {index}: a manual sign-off needs a role.")
                continue
            key = key or f"{stage}:signoff:{role}"
        else:
            key = key or f"{stage}:{kind}"
        if key in keys:
            errors.append(f"Requirement {index}: duplicate key {key!r}.")
            continue
        keys.add(key)
        threshold = item.get("threshold")
        if kind == GateKind.COVERAGE_MIN:
            try:
                threshold = float(threshold)
            except (TypeError, ValueError):
                errors.append(f"Requirement {index}: coverage needs a numeric threshold.")
                continue
            if not 0 <= threshold <= 100:
                errors.append(f"Requirement {index}: coverage threshold must be 0–100.")
                continue
        else:
            threshold = None
        waivable_by = item.get("waivable_by", _default_waivers())
        if not isinstance(waivable_by, list) or set(waivable_by) - set(Role.values):
            errors.append(f"Requirement {index}: waivable_by must list known roles.")
            continue
        invalidated_by = item.get("invalidated_by", DEFAULT_INVALIDATED_BY[kind])
        if not isinstance(invalidated_by, list) or set(invalidated_by) - set(INVALIDATION_CAUSES):
            errors.append(
                f"Requirement {index}: invalidated_by must list causes among "
                f"{', '.join(INVALIDATION_CAUSES)}."
            )
            continue
        label = str(item.get("label") or "").strip()
        if not label:
            if kind == GateKind.MANUAL:
                label = f"{Role(role).label} sign-off"
            elif kind == GateKind.COVERAGE_MIN:
                label = f"Coverage ≥ {threshold:g}%"
            else:
                label = GateKind(kind).label
        result.append(
            {
                "key": key,
                "stage": stage,
                "kind": kind,
                "label": label,
                "role": role if kind == GateKind.MANUAL else "",
                "threshold": threshold,
                "waivable_by": list(waivable_by),
                "invalidated_by": list(invalidated_by),
            }
        )
    if errors:
        raise ValidationError(errors)
    return result


def normalize_promotion_path(raw: object) -> list[str]:
    """Validate a promotion path: a list of distinct, known environment slugs."""
    if raw in (None, ""):
        return []
    if not isinstance(raw, list) or not all(isinstance(v, str) for v in raw):
        raise ValidationError({"promotion_path": "A list of environment slugs is expected."})
    path = [v.strip() for v in raw if v.strip()]
    if len(set(path)) != len(path):
        raise ValidationError({"promotion_path": "An environment appears twice."})
    known = set(Environment.objects.filter(slug__in=path).values_list("slug", flat=True))
    unknown = [v for v in path if v not in known]
    if unknown:
        raise ValidationError({"promotion_path": f"Unknown environments: {', '.join(unknown)}."})
    return path


class GatePolicy(models.Model):
    """Which gates a release must pass, by stage, selected by release type and risk level.

    Data edited in the admin. Every change to the requirements or the selection bumps
    ``version``; releases keep the snapshot taken when they were planned (their GateChecks
    record the policy name and version). Among active policies matching a release, the one
    with the highest priority wins.
    """

    name = models.CharField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    version = models.PositiveIntegerField(default=1, editable=False)
    is_active = models.BooleanField(default=True)
    priority = models.IntegerField(default=0, help_text="Higher wins when several match.")
    release_types = models.JSONField(
        default=list, blank=True, help_text="Release types it applies to; empty = all."
    )
    risk_levels = models.JSONField(
        default=list, blank=True, help_text="Risk levels it applies to; empty = all."
    )
    change_request = models.CharField(
        max_length=10,
        choices=PolicyChangeRequest.choices,
        blank=True,
        default=PolicyChangeRequest.NONE,
        help_text="Open a change request of this type when approval is requested.",
    )
    requirements = models.JSONField(
        default=list,
        blank=True,
        help_text='List of {"stage", "kind", "role"?, "threshold"?, "label"?, '
        '"waivable_by"?, "invalidated_by"?}.',
    )
    promotion_path = models.JSONField(
        default=list,
        blank=True,
        help_text="Environment slugs in the order a version must pass them, e.g. "
        '["dev", "staging", "production"]; empty = every environment by its order.',
    )
    updated_at = models.DateTimeField(auto_now=True)

    VERSIONED_FIELDS = (
        "release_types",
        "risk_levels",
        "change_request",
        "requirements",
        "promotion_path",
    )

    class Meta:
        ordering = ["-priority", "name"]
        verbose_name_plural = "gate policies"

    def __str__(self) -> str:
        return f"{self.name} v{self.version}"

    def save(self, *args, **kwargs):
        # A changed rule is a new version; in-flight releases keep their snapshot.
        self.requirements = normalize_requirements(self.requirements)
        if self.pk:
            old = GatePolicy.objects.filter(pk=self.pk).values(*self.VERSIONED_FIELDS).first()
            if old and any(old[f] != getattr(self, f) for f in self.VERSIONED_FIELDS):
                self.version += 1
        super().save(*args, **kwargs)

    def clean(self) -> None:
        self.requirements = normalize_requirements(self.requirements)
        bad_types = set(self.release_types or []) - set(ReleaseType.values)
        bad_risks = set(self.risk_levels or []) - set(RiskLevel.values)
        if bad_types:
            raise ValidationError({"release_types": f"Unknown: {', '.join(sorted(bad_types))}"})
        if bad_risks:
            raise ValidationError({"risk_levels": f"Unknown: {', '.join(sorted(bad_risks))}"})
        self.promotion_path = normalize_promotion_path(self.promotion_path)

    def matches(self, *, release_type: str, risk_level: str) -> bool:
        return (not self.release_types or release_type in self.release_types) and (
            not self.risk_levels or risk_level in self.risk_levels
        )


class GateCheck(ConcurrentTransitionMixin, models.Model):
    """One requirement of one release, snapshotted from its gate policy at planning.

    State: pending → passed | failed | waived, failed → pending (re-run), passed → pending
    (invalidated by a newer build or a scope change; a waiver is invalidated the same way).
    Changed only by governance.services (gate_sign_off, gate_reject, gate_waive,
    gate_record_result, gate_reset and the invalidation listener), each writing one audit
    event.
    """

    release = models.ForeignKey(
        "releases.Release", on_delete=models.CASCADE, related_name="gate_checks"
    )
    policy = models.ForeignKey(
        GatePolicy, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    policy_name = models.CharField(max_length=100)
    policy_version = models.PositiveIntegerField()
    key = models.CharField(max_length=100)
    position = models.PositiveSmallIntegerField(default=0)
    stage = models.CharField(max_length=20, choices=GateStage.choices)
    kind = models.CharField(max_length=24, choices=GateKind.choices)
    label = models.CharField(max_length=200)
    role = models.CharField(max_length=20, blank=True, choices=Role.choices)
    threshold = models.FloatField(null=True, blank=True)
    requirement = models.JSONField(help_text="The policy requirement as it was at planning.")
    status = FSMField(
        max_length=10, choices=GateStatus.choices, default=GateStatus.PENDING, protected=True
    )
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    comment = models.TextField(blank=True)
    run = models.ForeignKey(
        "pipelines.PipelineRun",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="gate_checks",
    )
    commit_sha = models.CharField(max_length=64, blank=True)
    detail = models.CharField(max_length=500, blank=True)
    pending_since = models.DateTimeField(default=timezone.now)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["release", "position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["release", "key"], name="gate_check_unique_key")
        ]
        indexes = [models.Index(fields=["role", "status"]), models.Index(fields=["status"])]

    def __str__(self) -> str:
        return f"{self.label} ({self.status})"

    @property
    def is_manual(self) -> bool:
        return self.kind == GateKind.MANUAL

    @property
    def is_done(self) -> bool:
        return self.status in GATE_DONE

    @property
    def waivable_by(self) -> list[str]:
        return list(self.requirement.get("waivable_by", []))

    @property
    def invalidated_by(self) -> list[str]:
        return list(self.requirement.get("invalidated_by", []))

    # --- transitions (pure) --------------------------------------------------------------

    @transition(field=status, source=GateStatus.PENDING, target=GateStatus.PASSED)
    def pass_(self) -> None:
        self.decided_at = timezone.now()

    @transition(field=status, source=GateStatus.PENDING, target=GateStatus.FAILED)
    def fail(self) -> None:
        self.decided_at = timezone.now()

    @transition(
        field=status, source=[GateStatus.PENDING, GateStatus.FAILED], target=GateStatus.WAIVED
    )
    def waive(self) -> None:
        self.decided_at = timezone.now()

    @transition(
        field=status,
        source=[GateStatus.FAILED, GateStatus.PASSED, GateStatus.WAIVED],
        target=GateStatus.PENDING,
    )
    def reset(self) -> None:
        self.decided_by = None
        self.decided_at = None
        self.pending_since = timezone.now()


class PolicySnapshot(models.Model):
    """The gate policy a release was planned under, frozen at planning: a later policy change
    does not move in-flight releases. Its requirements became the release's GateChecks."""

    release = models.OneToOneField(
        "releases.Release", on_delete=models.CASCADE, related_name="policy_snapshot"
    )
    policy = models.ForeignKey(
        GatePolicy, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    policy_name = models.CharField(max_length=100, blank=True)
    policy_version = models.PositiveIntegerField(null=True, blank=True)
    risk_level = models.CharField(max_length=10, choices=RiskLevel.choices)
    change_request = models.CharField(
        max_length=10, choices=PolicyChangeRequest.choices, blank=True
    )
    requirements = models.JSONField(default=list)
    promotion_path = models.JSONField(
        default=list, blank=True, help_text="The policy's promotion path at planning."
    )
    taken_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        if not self.policy_name:
            return "No gate policy matched"
        return f"{self.policy_name} v{self.policy_version}"
