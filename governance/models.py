"""Governance data: gate policies and gate checks, risk assessments, change requests with
CAB meetings and votes, freeze windows and exceptions. (The audit trail lives in core.models.)

Lifecycle fields are protected FSM fields changed only by governance.services."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.utils import timezone
from django_fsm import ConcurrentTransitionMixin, FSMField, transition

from core.roles import Role
from releases.choices import ReleaseType, RiskLevel

from .choices import (
    GATE_DONE,
    AgendaOutcome,
    ChangeState,
    ChangeType,
    ExceptionState,
    FreezeKind,
    GateKind,
    GateStage,
    GateStatus,
    MeetingKind,
    MeetingState,
    PolicyChangeRequest,
    VoteChoice,
)
from .domain import freeze, quorum

# --- gate policies and gate checks -------------------------------------------------------------


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
    updated_at = models.DateTimeField(auto_now=True)

    VERSIONED_FIELDS = ("release_types", "risk_levels", "change_request", "requirements")

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
    taken_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        if not self.policy_name:
            return "No gate policy matched"
        return f"{self.policy_name} v{self.policy_version}"


# --- risk -------------------------------------------------------------------------------------


class RiskAssessment(models.Model):
    """The explained risk of one release: score, level, the factors behind them, and an
    optional override (level + justification, by whom). The effective level is the
    override when there is one, else the higher of the computed and declared levels."""

    release = models.OneToOneField(
        "releases.Release", on_delete=models.CASCADE, related_name="risk_assessment"
    )
    score = models.PositiveSmallIntegerField()
    computed_level = models.CharField(max_length=10, choices=RiskLevel.choices)
    factors = models.JSONField(default=list)
    inputs = models.JSONField(default=dict, encoder=DjangoJSONEncoder)
    data_migration = models.BooleanField(
        default=False, help_text="Declared by the release manager (also detected from scope)."
    )
    override_level = models.CharField(max_length=10, choices=RiskLevel.choices, blank=True)
    override_justification = models.TextField(blank=True)
    overridden_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    overridden_at = models.DateTimeField(null=True, blank=True)
    assessed_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"Risk of {self.release}: {self.level} ({self.score})"

    @property
    def level(self) -> str:
        return self.override_level or self.computed_level


# --- change requests and CAB ------------------------------------------------------------------


def is_standard(cr: ChangeRequest) -> bool:
    return cr.change_type == ChangeType.STANDARD


def is_not_standard(cr: ChangeRequest) -> bool:
    return cr.change_type != ChangeType.STANDARD


class ChangeRequest(ConcurrentTransitionMixin, models.Model):
    """A request to change production, decided by the CAB (normal), an emergency CAB
    (emergency) or pre-approved (standard).

    State: draft → submitted → in_review → approved | rejected | needs_info,
    needs_info → submitted, approved → implemented → reviewed → closed; a standard change
    goes submitted → approved (pre-approved model). Written only by governance.services.
    """

    number = models.PositiveIntegerField(unique=True, editable=False)
    title = models.CharField(max_length=200)
    change_type = models.CharField(
        max_length=10, choices=ChangeType.choices, default=ChangeType.NORMAL
    )
    state = FSMField(
        max_length=12, choices=ChangeState.choices, default=ChangeState.DRAFT, protected=True
    )
    release = models.ForeignKey(
        "releases.Release",
        on_delete=models.PROTECT,
        related_name="change_requests",
        null=True,
        blank=True,
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="change_requests"
    )
    risk_level = models.CharField(max_length=10, choices=RiskLevel.choices, default="low")
    reason = models.TextField(blank=True)
    impact = models.TextField(blank=True)
    implementation_plan = models.TextField(blank=True)
    backout_plan = models.TextField(blank=True)
    test_plan = models.TextField(blank=True)
    window_start = models.DateTimeField(null=True, blank=True)
    window_end = models.DateTimeField(null=True, blank=True)
    decision_reasons = models.JSONField(default=list, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    submitted_at = models.DateTimeField(null=True, blank=True)
    implemented_at = models.DateTimeField(null=True, blank=True)
    review_due_at = models.DateTimeField(null=True, blank=True)
    reviewed_at = models.DateTimeField(null=True, blank=True)
    review_notes = models.TextField(blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["state"])]

    def __str__(self) -> str:
        return f"CR-{self.number} {self.title}"

    @property
    def review_overdue(self) -> bool:
        """An emergency change whose post-implementation review is late."""
        return bool(
            self.review_due_at and self.reviewed_at is None and timezone.now() > self.review_due_at
        )

    @transition(
        field=state,
        source=[ChangeState.DRAFT, ChangeState.NEEDS_INFO],
        target=ChangeState.SUBMITTED,
    )
    def submit(self) -> None:
        self.submitted_at = timezone.now()

    @transition(
        field=state,
        source=ChangeState.SUBMITTED,
        target=ChangeState.IN_REVIEW,
        conditions=[is_not_standard],
    )
    def start_review(self) -> None:
        pass

    @transition(field=state, source=ChangeState.IN_REVIEW, target=ChangeState.APPROVED)
    def approve(self) -> None:
        self.decided_at = timezone.now()

    @transition(
        field=state,
        source=ChangeState.SUBMITTED,
        target=ChangeState.APPROVED,
        conditions=[is_standard],
    )
    def pre_approve(self) -> None:
        self.decided_at = timezone.now()

    @transition(field=state, source=ChangeState.IN_REVIEW, target=ChangeState.REJECTED)
    def reject(self) -> None:
        self.decided_at = timezone.now()

    @transition(field=state, source=ChangeState.IN_REVIEW, target=ChangeState.NEEDS_INFO)
    def request_info(self) -> None:
        pass

    @transition(field=state, source=ChangeState.APPROVED, target=ChangeState.NEEDS_INFO)
    def withdraw_approval(self) -> None:
        """The change was approved for a scope, build or backout plan that has since
        changed: the CAB decides again once it is resubmitted."""
        self.decided_at = None

    @transition(field=state, source=ChangeState.APPROVED, target=ChangeState.IMPLEMENTED)
    def implement(self) -> None:
        self.implemented_at = timezone.now()

    @transition(field=state, source=ChangeState.IMPLEMENTED, target=ChangeState.REVIEWED)
    def review(self) -> None:
        self.reviewed_at = timezone.now()

    @transition(field=state, source=ChangeState.REVIEWED, target=ChangeState.CLOSED)
    def close(self) -> None:
        self.closed_at = timezone.now()

    @transition(
        field=state,
        source=[
            ChangeState.DRAFT,
            ChangeState.SUBMITTED,
            ChangeState.IN_REVIEW,
            ChangeState.NEEDS_INFO,
        ],
        target=ChangeState.CLOSED,
    )
    def withdraw(self) -> None:
        """The change will not happen (for example, its release was cancelled)."""
        self.closed_at = timezone.now()


class QuorumPolicyRecord(models.Model):
    """CAB quorum as data (see governance/domain/quorum.py for the rules): per change type,
    the minimum votes, the approval share, and mandatory roles for high/critical risk whose
    reject is a veto. Edited in the admin."""

    change_type = models.CharField(max_length=10, choices=ChangeType.choices, unique=True)
    min_votes = models.PositiveSmallIntegerField(default=3)
    approval_share = models.DecimalField(max_digits=4, decimal_places=3, default=Decimal("0.5"))
    mandatory_roles = models.JSONField(default=list, blank=True)
    veto = models.BooleanField(default=True)

    class Meta:
        verbose_name = "quorum policy"
        verbose_name_plural = "quorum policies"

    def __str__(self) -> str:
        return f"{self.get_change_type_display()}: {self.min_votes} votes, {self.approval_share}"

    def clean(self) -> None:
        try:
            self.as_domain()
        except ValueError as exc:
            raise ValidationError(str(exc)) from exc
        if set(self.mandatory_roles or []) - set(Role.values):
            raise ValidationError({"mandatory_roles": "Unknown roles."})

    def as_domain(self) -> quorum.QuorumPolicy:
        return quorum.QuorumPolicy(
            min_votes=self.min_votes,
            approval_share=self.approval_share,
            mandatory_roles=frozenset(self.mandatory_roles or []),
            veto=self.veto,
        )


class Vote(models.Model):
    """One CAB member's current vote on a change request; changeable until the decision.
    The unique constraint makes "one vote per member" hold under any concurrency."""

    change_request = models.ForeignKey(
        ChangeRequest, on_delete=models.CASCADE, related_name="votes"
    )
    voter = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    choice = models.CharField(max_length=10, choices=VoteChoice.choices)
    comment = models.TextField(blank=True)
    roles = models.JSONField(default=list, help_text="The voter's roles when voting.")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["change_request", "voter"], name="vote_one_per_member")
        ]

    def __str__(self) -> str:
        return f"{self.voter} {self.choice} on CR-{self.change_request_id}"


class Recusal(models.Model):
    """A person who may not vote on a change request (its requester, the release owner)."""

    change_request = models.ForeignKey(
        ChangeRequest, on_delete=models.CASCADE, related_name="recusals"
    )
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    reason = models.CharField(max_length=200)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["change_request", "user"], name="recusal_unique")
        ]

    def __str__(self) -> str:
        return f"{self.user} recused from CR-{self.change_request_id}: {self.reason}"


class CABMeeting(models.Model):
    """A scheduled CAB (or emergency CAB) meeting with attendees and an agenda of change
    requests. The chair adds, reorders and closes items; closing the meeting closes all."""

    title = models.CharField(max_length=200)
    kind = models.CharField(max_length=10, choices=MeetingKind.choices, default=MeetingKind.REGULAR)
    scheduled_at = models.DateTimeField()
    duration = models.DurationField(default=timedelta(hours=1))
    chair = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    attendees = models.ManyToManyField(
        settings.AUTH_USER_MODEL, related_name="cab_meetings", blank=True
    )
    state = models.CharField(
        max_length=10, choices=MeetingState.choices, default=MeetingState.SCHEDULED
    )
    closed_at = models.DateTimeField(null=True, blank=True)
    notes = models.TextField(blank=True)

    class Meta:
        ordering = ["scheduled_at", "id"]
        verbose_name = "CAB meeting"

    def __str__(self) -> str:
        return f"{self.title} ({self.scheduled_at:%Y-%m-%d %H:%M})"


class AgendaItem(models.Model):
    """A change request on a meeting's agenda, in the chair's order, with its outcome."""

    meeting = models.ForeignKey(CABMeeting, on_delete=models.CASCADE, related_name="items")
    change_request = models.ForeignKey(
        ChangeRequest, on_delete=models.CASCADE, related_name="agenda_items"
    )
    position = models.PositiveSmallIntegerField(default=0)
    outcome = models.CharField(
        max_length=12, choices=AgendaOutcome.choices, blank=True, default=AgendaOutcome.OPEN
    )
    closed_at = models.DateTimeField(null=True, blank=True)
    closed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["meeting", "position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["meeting", "change_request"], name="agenda_item_unique")
        ]

    def __str__(self) -> str:
        return f"{self.meeting}: {self.change_request}"


# --- freeze windows ---------------------------------------------------------------------------


class FreezeWindow(models.Model):
    """A one-off or recurring period in which production deployments of the covered services
    and environments are refused (unless an approved exception exists). No environments =
    every production environment; no services = every service. Recurrence is evaluated in
    local wall time of ``tz`` (governance/domain/freeze.py), so it is right across DST."""

    name = models.CharField(max_length=200)
    reason = models.TextField(blank=True)
    kind = models.CharField(max_length=5, choices=FreezeKind.choices, default=FreezeKind.ONCE)
    tz = models.CharField(max_length=64, default="UTC", help_text="IANA time zone.")
    start = models.DateTimeField(null=True, blank=True, help_text="One-off: start.")
    end = models.DateTimeField(null=True, blank=True, help_text="One-off: end.")
    rrule = models.CharField(
        max_length=300, blank=True, help_text="e.g. FREQ=WEEKLY;BYDAY=FR;BYHOUR=16;BYMINUTE=0"
    )
    cron = models.CharField(max_length=100, blank=True, help_text="e.g. 0 16 * * FRI")
    duration = models.DurationField(null=True, blank=True)
    end_time = models.TimeField(
        null=True, blank=True, help_text="Local end time of each occurrence."
    )
    end_weekday = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="0 = Monday … 6 = Sunday"
    )
    environments = models.ManyToManyField("releases.Environment", blank=True, related_name="+")
    services = models.ManyToManyField("releases.Service", blank=True, related_name="+")
    is_active = models.BooleanField(default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name

    def rule(self) -> freeze.FreezeRule:
        """The pure rule; raises FreezeRuleError when the row is inconsistent."""
        return freeze.parse_rule(
            self.kind,
            self.tz,
            start=self.start if self.kind == FreezeKind.ONCE else None,
            end=self.end if self.kind == FreezeKind.ONCE else None,
            rrule=self.rrule or None,
            cron=self.cron or None,
            duration=self.duration,
            end_time=self.end_time,
            end_weekday=self.end_weekday,
        )

    def clean(self) -> None:
        try:
            self.rule()
        except freeze.FreezeRuleError as exc:
            raise ValidationError(str(exc)) from exc

    @property
    def description(self) -> str:
        try:
            return freeze.describe(self.rule())
        except freeze.FreezeRuleError as exc:
            return f"Invalid rule: {exc}"


class FreezeException(models.Model):
    """Permission for one release to deploy during one freeze window: requested with a
    justification, approved by someone other than the requester and the release owner,
    valid until ``expires_at``."""

    freeze = models.ForeignKey(FreezeWindow, on_delete=models.CASCADE, related_name="exceptions")
    release = models.ForeignKey(
        "releases.Release", on_delete=models.CASCADE, related_name="freeze_exceptions"
    )
    justification = models.TextField()
    state = models.CharField(
        max_length=10, choices=ExceptionState.choices, default=ExceptionState.REQUESTED
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    approver = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_comment = models.TextField(blank=True)
    expires_at = models.DateTimeField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"Exception for {self.release} from {self.freeze}"

    def is_valid_at(self, at) -> bool:
        return self.state == ExceptionState.APPROVED and at < self.expires_at
