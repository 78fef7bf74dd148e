"""Break-glass: a role-bound override of the freeze for one release (optionally one
environment), for a rollback or a hotfix, until an expiry; and the post-implementation review
it owes. Lifecycle fields are protected FSM fields changed only by governance.services."""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django_fsm import ConcurrentTransitionMixin, FSMField, transition

from ..choices import BreakGlassKind, BreakGlassReview, BreakGlassState


class BreakGlass(ConcurrentTransitionMixin, models.Model):
    """Lifts the freeze blocker of one release's production deployments (only in
    ``environment`` when one is set) while ``state`` is active and ``expires_at`` is ahead.

    At most one is active per release (a partial unique constraint: two clicks create one).
    Whatever becomes of it (expired, revoked), its review stays owed: the release cannot close
    until someone other than the requester approves the review with a note."""

    release = models.ForeignKey(
        "releases.Release", on_delete=models.CASCADE, related_name="break_glasses"
    )
    environment = models.ForeignKey(
        "releases.Environment",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text="Only this production environment; empty = every production environment.",
    )
    kind = models.CharField(max_length=10, choices=BreakGlassKind.choices)
    reason = models.TextField()
    expires_at = models.DateTimeField()
    state = FSMField(
        max_length=10,
        choices=BreakGlassState.choices,
        default=BreakGlassState.ACTIVE,
        protected=True,
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    ended_at = models.DateTimeField(null=True, blank=True)
    ended_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    end_reason = models.TextField(blank=True)
    review_state = FSMField(
        max_length=10,
        choices=BreakGlassReview.choices,
        default=BreakGlassReview.PENDING,
        protected=True,
    )
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)
    review_note = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "break-glass"
        verbose_name_plural = "break-glasses"
        constraints = [
            models.UniqueConstraint(
                fields=["release"],
                condition=Q(state="active"),
                name="break_glass_one_active_per_release",
            )
        ]
        indexes = [
            models.Index(fields=["state", "expires_at"]),
            models.Index(fields=["release", "review_state"]),
        ]

    def __str__(self) -> str:
        return f"Break-glass ({self.get_kind_display().lower()}) for {self.release}"

    def is_active_at(self, at: datetime) -> bool:
        return self.state == BreakGlassState.ACTIVE and at < self.expires_at

    def covers_environment(self, environment_id: int | None) -> bool:
        """Whether it lifts the freeze in that environment (None: asked for the release as a
        whole, as its page and its transition are)."""
        return self.environment_id is None or environment_id in (None, self.environment_id)

    # --- transitions (pure: set fields only) -----------------------------------------------

    @transition(field=state, source=BreakGlassState.ACTIVE, target=BreakGlassState.EXPIRED)
    def expire(self) -> None:
        self.ended_at = self.expires_at

    @transition(field=state, source=BreakGlassState.ACTIVE, target=BreakGlassState.REVOKED)
    def revoke(self, *, by, reason: str) -> None:
        self.ended_at = timezone.now()
        self.ended_by = by
        self.end_reason = reason

    @transition(
        field=review_state, source=BreakGlassReview.PENDING, target=BreakGlassReview.APPROVED
    )
    def approve_review(self, *, by, note: str) -> None:
        self.reviewed_by = by
        self.reviewed_at = timezone.now()
        self.review_note = note
