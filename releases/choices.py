"""States and kinds of the releases app, as TextChoices."""

from django.db import models


class ReleaseState(models.TextChoices):
    DRAFT = "draft", "Draft"
    PLANNED = "planned", "Planned"
    IN_PROGRESS = "in_progress", "In progress"
    AWAITING_APPROVAL = "awaiting_approval", "Awaiting approval"
    APPROVED = "approved", "Approved"
    DEPLOYING = "deploying", "Deploying"
    DEPLOYED = "deployed", "Deployed"
    CLOSED = "closed", "Closed"
    ROLLED_BACK = "rolled_back", "Rolled back"
    CANCELLED = "cancelled", "Cancelled"


# States from which a release may still be cancelled: anything before deploying.
CANCELLABLE_STATES = [
    ReleaseState.DRAFT,
    ReleaseState.PLANNED,
    ReleaseState.IN_PROGRESS,
    ReleaseState.AWAITING_APPROVAL,
    ReleaseState.APPROVED,
]
TERMINAL_STATES = [ReleaseState.CLOSED, ReleaseState.CANCELLED, ReleaseState.ROLLED_BACK]


class ReleaseType(models.TextChoices):
    MAJOR = "major", "Major"
    MINOR = "minor", "Minor"
    PATCH = "patch", "Patch"
    HOTFIX = "hotfix", "Hotfix"
    EMERGENCY = "emergency", "Emergency"


class RiskLevel(models.TextChoices):
    LOW = "low", "Low"
    MEDIUM = "medium", "Medium"
    HIGH = "high", "High"
    CRITICAL = "critical", "Critical"


RISK_ORDER = {RiskLevel.LOW: 0, RiskLevel.MEDIUM: 1, RiskLevel.HIGH: 2, RiskLevel.CRITICAL: 3}


class Criticality(models.TextChoices):
    LOW = "low", "Tier 4 – low"
    MEDIUM = "medium", "Tier 3 – medium"
    HIGH = "high", "Tier 2 – high"
    CRITICAL = "critical", "Tier 1 – critical"


class ScopeKind(models.TextChoices):
    FEATURE = "feature", "Feature"
    FIX = "fix", "Fix"
    IMPROVEMENT = "improvement", "Improvement"
    CHORE = "chore", "Chore"


class ScopeStatus(models.TextChoices):
    INCLUDED = "included", "Included"
    DEFERRED = "deferred", "Deferred"


class Likelihood(models.TextChoices):
    LOW = "low", "Low"
    MEDIUM = "medium", "Medium"
    HIGH = "high", "High"


class RiskItemStatus(models.TextChoices):
    OPEN = "open", "Open"
    MITIGATED = "mitigated", "Mitigated"
    ACCEPTED = "accepted", "Accepted"
    CLOSED = "closed", "Closed"


class DeploymentState(models.TextChoices):
    PENDING = "pending", "Pending"
    IN_PROGRESS = "in_progress", "In progress"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    ROLLED_BACK = "rolled_back", "Rolled back"


class DeploymentStrategy(models.TextChoices):
    ALL_AT_ONCE = "all_at_once", "All at once"
    ROLLING = "rolling", "Rolling"
    CANARY = "canary", "Canary"
    BLUE_GREEN = "blue_green", "Blue-green"


class ActionStatus(models.TextChoices):
    OPEN = "open", "Open"
    IN_PROGRESS = "in_progress", "In progress"
    DONE = "done", "Done"
    CANCELLED = "cancelled", "Cancelled"


OPEN_ACTION_STATUSES = [ActionStatus.OPEN, ActionStatus.IN_PROGRESS]


class CustomerImpact(models.TextChoices):
    NONE = "none", "None"
    MINOR = "minor", "Minor"
    MAJOR = "major", "Major"
    SEVERE = "severe", "Severe"


class NotesAudience(models.TextChoices):
    INTERNAL = "internal", "Internal"
    CUSTOMER = "customer", "Customer-facing"


class NotesState(models.TextChoices):
    DRAFT = "draft", "Draft"
    PUBLISHED = "published", "Published"


class EvidenceTrigger(models.TextChoices):
    DEPLOYMENT = "deployment", "Captured at deployment"
    ON_DEMAND = "on_demand", "Captured on demand"


class CommsAudience(models.TextChoices):
    INTERNAL = "internal", "Internal teams"
    SUPPORT = "support", "Support"
    CUSTOMERS = "customers", "Customers"


class CommsChannel(models.TextChoices):
    EMAIL = "email", "Email"
    SLACK = "slack", "Slack-compatible webhook"


class CommsTrigger(models.TextChoices):
    BEFORE_WINDOW = "before_window", "Before the window"
    WINDOW_START = "window_start", "At the start of the window"
    COMPLETED = "completed", "On completion"
    ROLLED_BACK = "rolled_back", "On rollback"


TIMED_COMMS_TRIGGERS = [CommsTrigger.BEFORE_WINDOW, CommsTrigger.WINDOW_START]


class CommsStatus(models.TextChoices):
    SCHEDULED = "scheduled", "Scheduled"
    SENT = "sent", "Sent"
    SKIPPED = "skipped", "Skipped"
    CANCELLED = "cancelled", "Cancelled"
