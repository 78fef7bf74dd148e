"""The demo portfolio: about forty releases spread over the past six months and the next
three, in every state of the lifecycle, and the words their people write (scope, risks,
rollback plans, cancel and rollback reasons, lessons learned).

Pure data and pure functions of "now"; ``demo.lifecycle`` drives each release through the
services.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta


@dataclass(frozen=True)
class DemoRelease:
    """One demo release: where it sits in time and how far its lifecycle has gone."""

    name: str
    services: tuple[str, ...]
    release_type: str
    risk: str
    state: str
    day: int  # window start, in days from today (negative: in the past)
    hour: int = 20  # window start hour, UTC
    hours: int = 2  # window length
    changes_requested: bool = False  # went back once from awaiting approval
    extra: dict = field(default_factory=dict)


R = DemoRelease
PORTFOLIO: list[DemoRelease] = [
    # closed: deployed, verified and closed
    R("Checkout redesign", ("checkout-web", "payments-api"), "major", "high", "closed", -175),
    R("Gateway rate limiting", ("api-gateway",), "minor", "medium", "closed", -160, 21),
    R("Passkeys login", ("auth-service",), "major", "high", "closed", -140, changes_requested=True),
    R("Ledger reconciliation v2", ("ledger-service",), "minor", "medium", "closed", -120, 22),
    R("Notification templates", ("notification-service",), "minor", "low", "closed", -100, 14),
    R("Profile export (GDPR)", ("user-profile",), "minor", "medium", "closed", -80),
    R("3-D Secure 2 rollout", ("payments-api",), "major", "critical", "closed", -60, 23, 3),
    R("Search relevance tuning", ("search-service",), "patch", "low", "closed", -45, 10, 1),
    R("Session hardening", ("auth-service", "user-profile"), "minor", "high", "closed", -30),
    # rolled back
    R(
        "Payout scheduling",
        ("ledger-service", "payments-api"),
        "minor",
        "high",
        "rolled_back",
        -150,
    ),
    R("Webhook retries", ("notification-service",), "minor", "medium", "rolled_back", -70, 19),
    R(
        "MFA recovery codes",
        ("auth-service",),
        "minor",
        "high",
        "rolled_back",
        -12,
        21,
        extra={"deployed_first": True},
    ),
    # cancelled, in the past and in the future
    R(
        "Crypto payments pilot",
        ("payments-api",),
        "minor",
        "high",
        "cancelled",
        -130,
        extra={"cancel_after": "planned"},
    ),
    R(
        "Search index rebuild",
        ("search-service",),
        "minor",
        "low",
        "cancelled",
        -20,
        extra={"cancel_after": "in_progress"},
    ),
    R(
        "SSO for partners (SAML)",
        ("auth-service", "user-profile"),
        "major",
        "high",
        "cancelled",
        15,
        extra={"cancel_after": "awaiting_approval"},
    ),
    R(
        "Legacy SMS provider removal",
        ("notification-service",),
        "minor",
        "medium",
        "cancelled",
        40,
        extra={"cancel_after": "draft"},
    ),
    # deployed, awaiting close
    R("Refund automation", ("payments-api", "ledger-service"), "minor", "medium", "deployed", -9),
    R("Gateway mTLS", ("api-gateway",), "minor", "high", "deployed", -5, 22),
    R("Currency rounding fix", ("ledger-service",), "hotfix", "medium", "deployed", -2, 11, 1),
    # deploying right now
    R("Apple Pay support", ("checkout-web", "payments-api"), "minor", "medium", "deploying", 0),
    R("Login throttling", ("auth-service",), "patch", "medium", "deploying", 0),
    # approved, waiting for the window
    R(
        "Notification preferences",
        ("notification-service",),
        "minor",
        "low",
        "approved",
        2,
        20,
    ),
    R("Search autocomplete", ("search-service",), "minor", "low", "approved", 4, 15),
    R(
        "Chargeback API",
        ("payments-api",),
        "minor",
        "high",
        "approved",
        6,
        21,
        changes_requested=True,
    ),
    # awaiting approval
    R("Gateway HTTP/3", ("api-gateway",), "major", "high", "awaiting_approval", 5, 22),
    R(
        "Account deletion flow",
        ("user-profile", "auth-service"),
        "minor",
        "medium",
        "awaiting_approval",
        8,
    ),
    R("Invoice PDFs", ("ledger-service",), "minor", "low", "awaiting_approval", 12, 14),
    R("Saved cards", ("checkout-web", "payments-api"), "minor", "high", "awaiting_approval", 18),
    # in progress
    R("Fraud scoring v3", ("payments-api",), "major", "critical", "in_progress", 10, 23, 3),
    R(
        "Push notifications (iOS 19)",
        ("notification-service",),
        "minor",
        "medium",
        "in_progress",
        16,
    ),
    R("OAuth scopes cleanup", ("auth-service",), "minor", "high", "in_progress", 22),
    R("Search synonyms", ("search-service",), "patch", "low", "in_progress", 30, 11, 1),
    R(
        "Multi-currency wallets",
        ("ledger-service", "payments-api"),
        "major",
        "high",
        "in_progress",
        45,
    ),
    # planned
    R("Profile avatars", ("user-profile",), "minor", "low", "planned", 25, 14),
    R("Gateway canary routing", ("api-gateway",), "minor", "medium", "planned", 35, 21),
    R("Express checkout", ("checkout-web",), "major", "high", "planned", 55),
    R("Password policy update", ("auth-service",), "minor", "medium", "planned", 70),
    # draft
    R("Email digest", ("notification-service",), "minor", "low", "draft", 60, 13),
    R("Ledger archiving", ("ledger-service",), "minor", "medium", "draft", 75),
    R("Device trust", ("auth-service", "user-profile"), "major", "high", "draft", 88),
]
del R

PRE_DEPLOY_STEPS = {
    "draft": [],
    "planned": ["plan"],
    "in_progress": ["plan", "start_work"],
    "awaiting_approval": ["plan", "start_work", "request_approval"],
    "approved": ["plan", "start_work", "request_approval", "approve"],
}

SCOPE_TITLES = {
    "payments": [
        ("feature", "Show saved payment methods at checkout"),
        ("feature", "Retry declined card payments with a second PSP"),
        ("fix", "Amounts in JPY rounded to two decimals"),
        ("improvement", "Idempotency keys on payment capture"),
        ("chore", "Upgrade the PSP SDK to v7"),
        ("fix", "Duplicate ledger entries on partial refunds"),
        ("feature", "Merchant-initiated transactions"),
        ("improvement", "Faster settlement file import"),
    ],
    "platform": [
        ("feature", "Per-client rate limits"),
        ("improvement", "Structured access logs"),
        ("fix", "Retry storm after upstream timeouts"),
        ("chore", "Rotate gateway TLS certificates"),
        ("feature", "Template preview in the admin"),
        ("improvement", "Search results cached for 60 s"),
        ("fix", "Unicode normalisation in search queries"),
        ("chore", "Move to the new metrics exporter"),
    ],
    "identity": [
        ("feature", "Register a passkey from the profile page"),
        ("fix", "Session not revoked after password change"),
        ("improvement", "Shorter MFA prompt on trusted devices"),
        ("feature", "Download my data as JSON"),
        ("chore", "Upgrade the SAML library"),
        ("fix", "Locale lost after login redirect"),
        ("improvement", "Audit log of admin impersonation"),
        ("feature", "Recovery codes for MFA"),
    ],
}

RISKS = [
    (
        "PSP latency spikes during the window could time out captures.",
        "medium",
        "high",
        "Circuit breaker to the secondary PSP; capture retries are idempotent.",
        "omar",
    ),
    (
        "Data migration locks a large table.",
        "low",
        "high",
        "Online migration in batches; rehearsed on a staging copy.",
        "omar",
    ),
    (
        "Third-party SDK behaves differently in production.",
        "medium",
        "medium",
        "Feature flag per merchant; canary to 5 % first.",
        "quinn",
    ),
    (
        "New endpoint widens the attack surface.",
        "low",
        "high",
        "Threat model reviewed; rate limits and authz tests added.",
        "sam",
    ),
    (
        "Cache stampede after deploy.",
        "medium",
        "low",
        "Warm the cache before switching traffic.",
        "omar",
    ),
]

ROLLBACK_STEPS = (
    "1. Switch traffic back to the previous version (blue/green toggle).\n"
    "2. Redeploy the previous image tag of {services}.\n"
    "3. Run the smoke-test suite against production.\n"
    "4. Announce the rollback in #releases and update the change request."
)

CANCEL_REASONS = {
    "draft": "Superseded by the platform roadmap; the provider is removed with the Q3 migration.",
    "planned": "Legal review: not allowed in two of our markets yet.",
    "in_progress": "Merged into the next minor release to save a deployment window.",
    "awaiting_approval": "CAB asked to split it: the SAML part ships separately.",
}
ROLLBACK_REASONS = [
    "Error rate on /payouts above 2 % for 10 minutes after the switch.",
    "Duplicate webhooks delivered to merchants; rolling back while we fix deduplication.",
    "Recovery codes rejected for users with legacy MFA; rolling back.",
]

LESSONS = [
    "Feature flags let us ship dark and switch on after the smoke tests",
    "Rehearse the rollback a week ahead; the night before is too late",
    "Database migrations go out one release before the code that needs them",
    "Canary at 5% caught the slow query before customers did",
]


def versions() -> dict[str, str]:
    """A version per demo release: each primary service counts up in window order."""
    counters: dict[str, list[int]] = {}
    by_name = {}
    for spec in sorted(PORTFOLIO, key=lambda s: (s.day, s.hour, s.name)):
        major, minor, patch = counters.setdefault(spec.services[0], [2, 0, 0])
        if spec.release_type == "major":
            major, minor, patch = major + 1, 0, 0
        elif spec.release_type in ("patch", "hotfix", "emergency"):
            patch += 1
        else:
            minor, patch = minor + 1, 0
        counters[spec.services[0]] = [major, minor, patch]
        by_name[spec.name] = f"{major}.{minor}.{patch}"
    return by_name


def window(spec: DemoRelease, now: datetime) -> tuple[datetime, datetime]:
    """The release window: ``spec.day`` days from ``now`` at ``spec.hour``, or for a release
    deploying right now, one that opened twenty minutes ago."""
    if spec.state == "deploying":
        start = (now - timedelta(minutes=20)).replace(second=0, microsecond=0)
        return start, start + timedelta(hours=2)
    day = (now + timedelta(days=spec.day)).replace(hour=spec.hour, minute=0, second=0)
    start = day.replace(microsecond=0)
    return start, start + timedelta(hours=spec.hours)
