"""Change requests and the CAB: quorum policies, votes, recusals, meetings and their agenda.

Lifecycle fields are protected FSM fields changed only by governance.services."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone
from django_fsm import ConcurrentTransitionMixin, FSMField, transition

from core.roles import Role
from releases.choices import RiskLevel

from ..choices import (
    AgendaOutcome,
    ChangeState,
    ChangeType,
    MeetingKind,
    MeetingState,
    VoteChoice,
)
from ..domain import quorum


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
