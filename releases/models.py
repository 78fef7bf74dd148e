"""Services, environments, releases and what a release carries.

Lifecycle fields are protected FSM fields: they change only through the transition methods
below, which are pure (they set fields, never do I/O) and are called only from services.py,
which locks the row, checks permissions and readiness, and writes the audit trail.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone
from django_fsm import ConcurrentTransitionMixin, FSMField, transition

from .choices import (
    CANCELLABLE_STATES,
    ActionStatus,
    CommsAudience,
    CommsChannel,
    CommsStatus,
    CommsTrigger,
    Criticality,
    CustomerImpact,
    DeploymentState,
    DeploymentStrategy,
    EvidenceTrigger,
    Likelihood,
    NotesAudience,
    NotesState,
    ReleaseState,
    ReleaseType,
    RiskItemStatus,
    RiskLevel,
    ScopeKind,
    ScopeStatus,
)


class Team(models.Model):
    """A team owns services; its members who are release managers manage their releases."""

    name = models.CharField(max_length=100, unique=True)
    slug = models.SlugField(max_length=100, unique=True)
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, related_name="teams", blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Service(models.Model):
    """A deployable service. Its team decides who may manage its releases."""

    name = models.CharField(max_length=100, unique=True)
    slug = models.SlugField(max_length=100, unique=True)
    team = models.ForeignKey(Team, on_delete=models.PROTECT, related_name="services")
    criticality = models.CharField(
        max_length=10, choices=Criticality.choices, default=Criticality.MEDIUM
    )
    repository_url = models.URLField(blank=True)
    description = models.TextField(blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Environment(models.Model):
    """A stage of the promotion path (dev → staging → production)."""

    name = models.CharField(max_length=50, unique=True)
    slug = models.SlugField(max_length=50, unique=True)
    order = models.PositiveSmallIntegerField(help_text="Position in the promotion path.")
    is_production = models.BooleanField(default=False)
    soak_minutes = models.PositiveIntegerField(
        default=0,
        help_text="How long a version must run here, succeeded and verified, before it may "
        "go to the next environment of its promotion path (soak time).",
    )

    class Meta:
        ordering = ["order", "name"]

    def __str__(self) -> str:
        return self.name


# --- transition conditions: side-effect-free reads, also used to explain refusals ---------


def has_owner(release: Release) -> bool:
    return release.owner_id is not None


def has_window(release: Release) -> bool:
    return bool(
        release.window_start and release.window_end and release.window_end > release.window_start
    )


def has_scope(release: Release) -> bool:
    return release.scope_items.filter(status=ScopeStatus.INCLUDED).exists()


def has_rollback_plan(release: Release) -> bool:
    plan = getattr(release, "rollback_plan", None)
    return bool(plan and plan.steps.strip())


class Release(ConcurrentTransitionMixin, models.Model):
    """A versioned delivery of one or more services, driven through its lifecycle.

    Permissions: release managers of a team owning one of its services (or its owner) edit
    and transition it; every user holding a role reads it; others do not see it.
    """

    name = models.CharField(max_length=200)
    version = models.CharField(max_length=64)
    release_type = models.CharField(
        max_length=10, choices=ReleaseType.choices, default=ReleaseType.MINOR
    )
    risk_level = models.CharField(max_length=10, choices=RiskLevel.choices, default=RiskLevel.LOW)
    state = FSMField(
        max_length=20, choices=ReleaseState.choices, default=ReleaseState.DRAFT, protected=True
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="owned_releases",
        help_text="The release manager accountable for this release.",
    )
    product_owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="product_releases",
    )
    services = models.ManyToManyField(Service, related_name="releases")
    window_start = models.DateTimeField(null=True, blank=True)
    window_end = models.DateTimeField(null=True, blank=True)
    code_freeze_at = models.DateTimeField(null=True, blank=True)
    target_date = models.DateField(null=True, blank=True)
    description = models.TextField(blank=True)
    release_notes = models.TextField(blank=True, help_text="Markdown; rendered sanitised.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)
    planned_at = models.DateTimeField(null=True, blank=True)
    approved_at = models.DateTimeField(null=True, blank=True)
    deployment_started_at = models.DateTimeField(null=True, blank=True)
    deployed_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-window_start", "-id"]
        indexes = [
            models.Index(fields=["state", "window_start"]),
            # The board's column totals: finished releases (closed, rolled back) count only
            # while recently updated; counted from this index alone, without a table row each.
            models.Index(fields=["state", "updated_at"], name="release_state_updated_idx"),
            # Calendar ranges (window_start < end AND window_end > start) read this index
            # alone, without a table row per window of history; still serves window_start
            # ordering as the plain window_start index did.
            models.Index(
                fields=["window_start", "window_end", "state"], name="release_window_span_idx"
            ),
            # With it, a calendar range is two index ranges (dashboards.selectors.calendar.
            # calendar_queryset): windows starting in it, and windows already open at its start
            # read from the ones ending after that start.
            models.Index(
                fields=["window_end", "window_start", "state"], name="release_window_end_idx"
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(window_end__isnull=True)
                | Q(window_start__isnull=True)
                | Q(window_end__gt=models.F("window_start")),
                name="release_window_ends_after_start",
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} {self.version}"

    def get_absolute_url(self) -> str:
        return reverse("releases:detail", args=[self.pk])

    # --- transitions (pure: set fields only) -----------------------------------------------

    @transition(
        field=state,
        source=ReleaseState.DRAFT,
        target=ReleaseState.PLANNED,
        conditions=[has_owner, has_scope, has_window, has_rollback_plan],
    )
    def plan(self) -> None:
        self.planned_at = timezone.now()

    @transition(field=state, source=ReleaseState.PLANNED, target=ReleaseState.IN_PROGRESS)
    def start_work(self) -> None:
        pass

    @transition(field=state, source=ReleaseState.IN_PROGRESS, target=ReleaseState.AWAITING_APPROVAL)
    def request_approval(self) -> None:
        pass

    @transition(field=state, source=ReleaseState.AWAITING_APPROVAL, target=ReleaseState.IN_PROGRESS)
    def request_changes(self) -> None:
        pass

    @transition(field=state, source=ReleaseState.AWAITING_APPROVAL, target=ReleaseState.APPROVED)
    def approve(self) -> None:
        self.approved_at = timezone.now()

    @transition(field=state, source=ReleaseState.APPROVED, target=ReleaseState.IN_PROGRESS)
    def reopen(self) -> None:
        self.approved_at = None

    @transition(field=state, source=ReleaseState.APPROVED, target=ReleaseState.DEPLOYING)
    def start_deployment(self) -> None:
        self.deployment_started_at = timezone.now()

    @transition(field=state, source=ReleaseState.DEPLOYING, target=ReleaseState.DEPLOYED)
    def mark_deployed(self) -> None:
        self.deployed_at = timezone.now()

    @transition(
        field=state,
        source=[ReleaseState.DEPLOYING, ReleaseState.DEPLOYED],
        target=ReleaseState.ROLLED_BACK,
    )
    def roll_back(self) -> None:
        pass

    @transition(field=state, source=ReleaseState.DEPLOYED, target=ReleaseState.CLOSED)
    def close(self) -> None:
        self.closed_at = timezone.now()

    @transition(field=state, source=CANCELLABLE_STATES, target=ReleaseState.CANCELLED)
    def cancel(self) -> None:
        pass


class ScopeItem(models.Model):
    """A feature, fix, improvement or chore that the release carries (or defers)."""

    release = models.ForeignKey(Release, on_delete=models.CASCADE, related_name="scope_items")
    kind = models.CharField(max_length=12, choices=ScopeKind.choices, default=ScopeKind.FEATURE)
    external_key = models.CharField(max_length=50, blank=True, help_text="For example PAY-123.")
    title = models.CharField(max_length=300)
    url = models.URLField(blank=True)
    status = models.CharField(
        max_length=10, choices=ScopeStatus.choices, default=ScopeStatus.INCLUDED
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["kind", "external_key", "id"]

    def __str__(self) -> str:
        return f"{self.external_key} {self.title}".strip()


class ReleaseRisk(models.Model):
    """An entry of the release's risk register."""

    release = models.ForeignKey(Release, on_delete=models.CASCADE, related_name="risks")
    description = models.TextField()
    likelihood = models.CharField(
        max_length=10, choices=Likelihood.choices, default=Likelihood.MEDIUM
    )
    impact = models.CharField(max_length=10, choices=Likelihood.choices, default=Likelihood.MEDIUM)
    mitigation = models.TextField(blank=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    status = models.CharField(
        max_length=10, choices=RiskItemStatus.choices, default=RiskItemStatus.OPEN
    )

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.description[:60]


class RollbackPlan(models.Model):
    """How to undo the release; rehearsal evidence feeds the 'rollback rehearsed' gate."""

    release = models.OneToOneField(Release, on_delete=models.CASCADE, related_name="rollback_plan")
    steps = models.TextField()
    rehearsed_at = models.DateTimeField(null=True, blank=True)
    evidence_url = models.URLField(blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"Rollback plan for {self.release}"


class Deployment(ConcurrentTransitionMixin, models.Model):
    """A release (of one service's version) going to one environment."""

    release = models.ForeignKey(
        Release, on_delete=models.CASCADE, related_name="deployments", null=True, blank=True
    )
    service = models.ForeignKey(Service, on_delete=models.PROTECT, related_name="deployments")
    environment = models.ForeignKey(
        Environment, on_delete=models.PROTECT, related_name="deployments"
    )
    version = models.CharField(max_length=64)
    state = FSMField(
        max_length=20,
        choices=DeploymentState.choices,
        default=DeploymentState.PENDING,
        protected=True,
    )
    strategy = models.CharField(
        max_length=12, choices=DeploymentStrategy.choices, default=DeploymentStrategy.ALL_AT_ONCE
    )
    canary_stages = models.JSONField(
        default=list, blank=True, help_text="Traffic percentages of a canary, e.g. [5, 25, 100]."
    )
    provider = models.CharField(max_length=40, blank=True)
    external_id = models.CharField(max_length=200, blank=True)
    url = models.URLField(max_length=500, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["environment", "service", "-finished_at"]),
            # The API lists deployments newest first (``ordering``), all or one service's.
            models.Index(fields=["-created_at", "-id"], name="deployment_newest"),
            models.Index(
                fields=["service", "-created_at", "-id"], name="deployment_service_newest"
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "external_id"],
                condition=~Q(external_id=""),
                name="deployment_unique_external_id",
            )
        ]

    def __str__(self) -> str:
        return f"{self.service} {self.version} → {self.environment}"

    @transition(field=state, source=DeploymentState.PENDING, target=DeploymentState.IN_PROGRESS)
    def start(self) -> None:
        self.started_at = self.started_at or timezone.now()

    @transition(
        field=state,
        source=[DeploymentState.PENDING, DeploymentState.IN_PROGRESS],
        target=DeploymentState.SUCCEEDED,
    )
    def succeed(self) -> None:
        self.finished_at = self.finished_at or timezone.now()

    @transition(
        field=state,
        source=[DeploymentState.PENDING, DeploymentState.IN_PROGRESS],
        target=DeploymentState.FAILED,
    )
    def fail(self) -> None:
        self.finished_at = self.finished_at or timezone.now()

    @transition(field=state, source=DeploymentState.SUCCEEDED, target=DeploymentState.ROLLED_BACK)
    def roll_back(self) -> None:
        pass


# --- post-release: validation, retrospective, impact, release notes ---------------------------


class ValidationItem(models.Model):
    """One step of the post-deployment validation checklist (smoke test, dashboards
    checked, support briefed…). A release closes only when every item is done."""

    release = models.ForeignKey(Release, on_delete=models.CASCADE, related_name="validation_items")
    title = models.CharField(max_length=200)
    done_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    done_at = models.DateTimeField(null=True, blank=True)
    note = models.TextField(blank=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.title

    @property
    def is_done(self) -> bool:
        return self.done_at is not None


class Retrospective(models.Model):
    """What went well, what did not, what to change — recorded once per release and
    required to close a release of risk medium or above."""

    release = models.OneToOneField(Release, on_delete=models.CASCADE, related_name="retrospective")
    went_well = models.TextField(blank=True)
    went_badly = models.TextField(blank=True)
    to_change = models.TextField(blank=True)
    lessons_learned = models.TextField(blank=True)
    runbook_links = models.JSONField(
        default=list, blank=True, help_text="Runbook and documentation links updated."
    )
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    recorded_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"Retrospective of {self.release}"


class ActionItem(models.Model):
    """An improvement raised by a retrospective, tracked to closure across releases."""

    release = models.ForeignKey(Release, on_delete=models.CASCADE, related_name="action_items")
    team = models.ForeignKey(Team, on_delete=models.PROTECT, related_name="action_items")
    title = models.CharField(max_length=300)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="action_items"
    )
    due_date = models.DateField()
    status = models.CharField(
        max_length=12, choices=ActionStatus.choices, default=ActionStatus.OPEN
    )
    created_at = models.DateTimeField(default=timezone.now)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["due_date", "id"]
        indexes = [models.Index(fields=["team", "status", "due_date"])]

    def __str__(self) -> str:
        return self.title


class ImpactAssessment(models.Model):
    """Expected against observed outcome of a release, and its customer impact."""

    release = models.OneToOneField(
        Release, on_delete=models.CASCADE, related_name="impact_assessment"
    )
    expected_outcome = models.TextField()
    observed_outcome = models.TextField(blank=True)
    customer_impact = models.CharField(
        max_length=10, choices=CustomerImpact.choices, default="none"
    )
    notes = models.TextField(blank=True)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"Impact of {self.release}"


class ReleaseNotes(models.Model):
    """Release notes for one audience. Editable while a draft; frozen once published."""

    release = models.ForeignKey(Release, on_delete=models.CASCADE, related_name="notes")
    audience = models.CharField(max_length=10, choices=NotesAudience.choices)
    body = models.TextField(help_text="Markdown; rendered sanitised.")
    state = models.CharField(max_length=10, choices=NotesState.choices, default=NotesState.DRAFT)
    published_at = models.DateTimeField(null=True, blank=True)
    published_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "release notes"
        constraints = [
            models.UniqueConstraint(fields=["release", "audience"], name="one_notes_per_audience")
        ]

    def __str__(self) -> str:
        return f"{self.get_audience_display()} notes for {self.release}"


class EvidencePack(models.Model):
    """A frozen snapshot of everything an auditor asks about a release, with the head of
    its audit chain at that moment. Captured when the release is deployed and on demand;
    never edited (a new capture is a new row)."""

    release = models.ForeignKey(Release, on_delete=models.CASCADE, related_name="evidence_packs")
    trigger = models.CharField(max_length=12, choices=EvidenceTrigger.choices)
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    snapshot = models.JSONField()
    chain_key = models.CharField(max_length=120)
    chain_head_seq = models.PositiveBigIntegerField()
    chain_head_hash = models.CharField(max_length=64, blank=True)
    sha256 = models.CharField(max_length=64, help_text="SHA-256 of the snapshot's canonical JSON.")

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"Evidence for {self.release} ({self.get_trigger_display().lower()})"


class Communication(models.Model):
    """One message of a release's communications plan: to an audience, on a channel, at a
    moment (before the window, at its start, on completion, on rollback).

    Sending claims the row (scheduled → sent) and writes the outbox row in one transaction,
    so a worker restart can neither lose nor repeat it; the outbox then delivers at least
    once with ``comms:<id>`` as the idempotency key.
    """

    release = models.ForeignKey(Release, on_delete=models.CASCADE, related_name="communications")
    audience = models.CharField(max_length=10, choices=CommsAudience.choices)
    channel = models.CharField(max_length=10, choices=CommsChannel.choices)
    destination = models.CharField(
        max_length=500, help_text="Email addresses (comma-separated) or a webhook URL."
    )
    trigger = models.CharField(max_length=15, choices=CommsTrigger.choices)
    offset_hours = models.PositiveSmallIntegerField(
        default=24, help_text="For 'before the window': how many hours before."
    )
    subject = models.CharField(max_length=200)
    message = models.TextField()
    status = models.CharField(
        max_length=10, choices=CommsStatus.choices, default=CommsStatus.SCHEDULED
    )
    due_at = models.DateTimeField(null=True, blank=True, db_index=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["due_at", "id"]
        indexes = [models.Index(fields=["status", "due_at"])]

    def __str__(self) -> str:
        return f"{self.get_trigger_display()} to {self.get_audience_display()}: {self.subject}"

    @property
    def idempotency_key(self) -> str:
        return f"comms:{self.pk}"
