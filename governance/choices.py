"""States and kinds of the governance app, as TextChoices."""

from __future__ import annotations

from django.db import models


class GateStage(models.TextChoices):
    PRE_APPROVAL = "pre_approval", "Pre-approval"
    PRE_DEPLOYMENT = "pre_deployment", "Pre-deployment"
    POST_DEPLOYMENT = "post_deployment", "Post-deployment"


class GateKind(models.TextChoices):
    CI_GREEN = "ci_green", "CI build green"
    TESTS_PASSED = "tests_passed", "Tests passed"
    NO_CRITICAL_VULNS = "no_critical_vulns", "No critical vulnerabilities"
    COVERAGE_MIN = "coverage_min", "Coverage at or above threshold"
    PERFORMANCE_PASSED = "performance_passed", "Performance test passed"
    STAGING_VALIDATED = "staging_validated", "Staging validation passed"
    ROLLBACK_REHEARSED = "rollback_rehearsed", "Rollback rehearsed"
    MANUAL = "manual", "Manual sign-off"


AUTOMATED_KINDS = frozenset(k.value for k in GateKind if k != GateKind.MANUAL)
# Gate kinds whose result comes from a pipeline run (the others from deployments or plans).
RUN_KINDS = frozenset(
    {
        GateKind.CI_GREEN,
        GateKind.TESTS_PASSED,
        GateKind.NO_CRITICAL_VULNS,
        GateKind.COVERAGE_MIN,
        GateKind.PERFORMANCE_PASSED,
    }
)


class GateStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    PASSED = "passed", "Passed"
    FAILED = "failed", "Failed"
    WAIVED = "waived", "Waived"


GATE_DONE = frozenset({GateStatus.PASSED, GateStatus.WAIVED})


class ChangeType(models.TextChoices):
    STANDARD = "standard", "Standard (pre-approved)"
    NORMAL = "normal", "Normal (CAB)"
    EMERGENCY = "emergency", "Emergency (eCAB)"


class PolicyChangeRequest(models.TextChoices):
    """Whether a gate policy asks for a change request, and of which type."""

    NONE = "", "No change request"
    STANDARD = "standard", "Standard (pre-approved)"
    NORMAL = "normal", "Normal (CAB)"
    EMERGENCY = "emergency", "Emergency (eCAB)"


class ChangeState(models.TextChoices):
    DRAFT = "draft", "Draft"
    SUBMITTED = "submitted", "Submitted"
    IN_REVIEW = "in_review", "In review"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"
    NEEDS_INFO = "needs_info", "Needs information"
    IMPLEMENTED = "implemented", "Implemented"
    REVIEWED = "reviewed", "Reviewed"
    CLOSED = "closed", "Closed"


# A change request in one of these states counts as "approved" for the release.
CHANGE_APPROVED_STATES = frozenset(
    {ChangeState.APPROVED, ChangeState.IMPLEMENTED, ChangeState.REVIEWED, ChangeState.CLOSED}
)
# States in which votes may be cast or changed.
VOTING_STATES = frozenset({ChangeState.SUBMITTED, ChangeState.IN_REVIEW})


class VoteChoice(models.TextChoices):
    APPROVE = "approve", "Approve"
    REJECT = "reject", "Reject"
    ABSTAIN = "abstain", "Abstain"


class MeetingKind(models.TextChoices):
    REGULAR = "regular", "Regular CAB"
    EMERGENCY = "emergency", "Emergency CAB"


class MeetingState(models.TextChoices):
    SCHEDULED = "scheduled", "Scheduled"
    CLOSED = "closed", "Closed"


class AgendaOutcome(models.TextChoices):
    OPEN = "", "Open"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"
    NEEDS_INFO = "needs_info", "Needs information"


class FreezeKind(models.TextChoices):
    ONCE = "once", "One-off"
    RRULE = "rrule", "Recurring (RRULE)"
    CRON = "cron", "Recurring (cron)"


class ExceptionState(models.TextChoices):
    REQUESTED = "requested", "Requested"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"


class BreakGlassKind(models.TextChoices):
    """Why a freeze is broken: only to undo a release or to ship an urgent fix."""

    ROLLBACK = "rollback", "Rollback"
    HOTFIX = "hotfix", "Hotfix"


class BreakGlassState(models.TextChoices):
    ACTIVE = "active", "Active"
    EXPIRED = "expired", "Expired"
    REVOKED = "revoked", "Revoked"


class BreakGlassReview(models.TextChoices):
    """The post-implementation review every break-glass owes, whatever became of it."""

    PENDING = "pending", "Review pending"
    APPROVED = "approved", "Review approved"
