"""The demo portfolio loaded by ``manage.py seed_demo`` (and so by ``make run``).

Three teams, eight services, four environments, one user per role and about forty releases
spread over the past six months and the next three, in every state of the lifecycle.

Two rules make the demo trustworthy:

- Every lifecycle step goes through the services, as a person would drive it, so the
  audit trail, the readiness checks and whatever other apps hang off the transitions (gate
  checks, change requests, notifications) are all genuine. State is never written directly.
- Each step happens at its historical moment: the clock is moved with ``time-machine``
  while the step runs, so audit timestamps, ``planned_at``, ``deployed_at`` … look real.

It is idempotent: reference data is keyed by natural keys (slugs, usernames) and a release
whose (name, version) already exists is skipped whole, so running it twice changes nothing.
Each release is built in its own transaction, so an interrupted run leaves no half-built one.

The hook for other apps: ``REQUIREMENT_RESOLVERS``
--------------------------------------------------
Other apps add requirements to the governed transitions (``request_approval``, ``approve``,
``start_deployment``, ``close``): gates to pass, sign-offs, CAB decisions, freeze checks.
Before each governed transition the demo calls every function in ``REQUIREMENT_RESOLVERS``
as ``resolver(release, transition_name)``, at the same simulated moment, so that an app can
satisfy its own requirements the way its users would (post a green pipeline run, give the
sign-offs, record the CAB decision) through its own services. A resolver that cannot or
should not satisfy a requirement leaves it: the transition is then refused and the command
stops with the blockers in the message. Append to the list from the owning app, e.g. in
``AppConfig.ready()`` or at import of a ``demo`` module::

    from releases import demo
    demo.REQUIREMENT_RESOLVERS.append(my_resolver)
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from django.db import transaction
from django.utils import timezone

if TYPE_CHECKING:
    from .models import Release

REQUIREMENT_RESOLVERS: list[Callable[[Release, str], None]] = []
# Called with no arguments after the reference data and after the portfolio (idempotent),
# so other apps can add their own reference data (gate policies, freezes, meetings).
REFERENCE_DATA_HOOKS: list[Callable[[], None]] = []
AFTER_SEED_HOOKS: list[Callable[[], None]] = []

DEMO_PASSWORD = "releasegate-demo"

# username, first name, last name, roles, team slugs
DEMO_USERS: list[tuple[str, str, str, list[str], list[str]]] = [
    ("admin", "Ada", "Admin", ["administrator"], []),
    ("rita", "Rita", "Moreno", ["release_manager"], ["payments"]),
    ("ravi", "Ravi", "Shankar", ["release_manager"], ["platform"]),
    ("ida", "Ida", "Lindqvist", ["release_manager"], ["identity"]),
    ("quinn", "Quinn", "Okafor", ["qa_lead"], []),
    ("sam", "Sam", "Novak", ["security_lead"], []),
    ("omar", "Omar", "Haddad", ["operations"], []),
    ("paula", "Paula", "Jensen", ["product_owner"], []),
    ("carla", "Carla", "Rossi", ["cab_member"], []),
    ("chris", "Chris", "Adeyemi", ["cab_chair", "cab_member"], []),
    ("stella", "Stella", "Park", ["stakeholder"], []),
]

TEAMS = [("Payments", "payments"), ("Platform", "platform"), ("Identity", "identity")]

# name, team slug, criticality, description
SERVICES = [
    ("payments-api", "payments", "critical", "Card and wallet payments for every checkout."),
    ("checkout-web", "payments", "high", "The checkout front end."),
    ("ledger-service", "payments", "critical", "Double-entry ledger and reconciliation."),
    ("api-gateway", "platform", "critical", "Edge routing, authentication and rate limits."),
    ("notification-service", "platform", "medium", "E-mail, SMS and push notifications."),
    ("search-service", "platform", "low", "Catalogue and help-centre search."),
    ("auth-service", "identity", "critical", "Login, sessions, MFA and passkeys."),
    ("user-profile", "identity", "medium", "Profiles, preferences and data exports."),
]

# name, slug, order, is_production
ENVIRONMENTS = [
    ("dev", "dev", 1, False),
    ("qa", "qa", 2, False),
    ("staging", "staging", 3, False),
    ("production", "production", 4, True),
]

TEAM_OWNER = {"payments": "rita", "platform": "ravi", "identity": "ida"}
KEY_PREFIX = {"payments": "PAY", "platform": "PLAT", "identity": "IAM"}


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

FORWARD = ["plan", "start_work", "request_approval", "approve", "start_deployment"]
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


# --- reference data ---------------------------------------------------------------------------


def ensure_reference_data(stdout=None) -> dict:
    """Teams, services, environments, roles and users, keyed by natural keys."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    from .models import Environment, Service, Team
    from .roles import ALL_ROLES

    for role in ALL_ROLES:
        Group.objects.get_or_create(name=role)
    teams = {
        slug: Team.objects.get_or_create(slug=slug, defaults={"name": name})[0]
        for name, slug in TEAMS
    }
    for name, team, criticality, description in SERVICES:
        Service.objects.get_or_create(
            slug=name,
            defaults={
                "name": name,
                "team": teams[team],
                "criticality": criticality,
                "repository_url": f"https://git.example.com/{team}/{name}",
                "description": description,
            },
        )
    for name, slug, order, is_production in ENVIRONMENTS:
        Environment.objects.get_or_create(
            slug=slug, defaults={"name": name, "order": order, "is_production": is_production}
        )
    user_model = get_user_model()
    users = {}
    for username, first, last, roles, team_slugs in DEMO_USERS:
        user, created = user_model.objects.get_or_create(
            username=username,
            defaults={
                "first_name": first,
                "last_name": last,
                "email": f"{username}@example.com",
                "is_staff": username == "admin",
                "is_superuser": username == "admin",
            },
        )
        if created:
            user.set_password(DEMO_PASSWORD)
            user.save(update_fields=["password"])
        user.groups.add(*Group.objects.filter(name__in=roles))
        for slug in team_slugs:
            teams[slug].members.add(user)
        users[username] = user
    return users


# --- releases ---------------------------------------------------------------------------------


def _versions(now: datetime) -> dict[str, str]:
    """A version per demo release: each primary service counts up in window order."""
    counters: dict[str, list[int]] = {}
    versions = {}
    for spec in sorted(PORTFOLIO, key=lambda s: (s.day, s.hour, s.name)):
        major, minor, patch = counters.setdefault(spec.services[0], [2, 0, 0])
        if spec.release_type == "major":
            major, minor, patch = major + 1, 0, 0
        elif spec.release_type in ("patch", "hotfix", "emergency"):
            patch += 1
        else:
            minor, patch = minor + 1, 0
        counters[spec.services[0]] = [major, minor, patch]
        versions[spec.name] = f"{major}.{minor}.{patch}"
    return versions


def _window(spec: DemoRelease, now: datetime) -> tuple[datetime, datetime]:
    if spec.state == "deploying":
        start = (now - timedelta(minutes=20)).replace(second=0, microsecond=0)
        return start, start + timedelta(hours=2)
    day = (now + timedelta(days=spec.day)).replace(hour=spec.hour, minute=0, second=0)
    start = day.replace(microsecond=0)
    return start, start + timedelta(hours=spec.hours)


def _moments(start: datetime, end: datetime, count: int) -> list[datetime]:
    """``count`` moments spread evenly after ``start`` and before ``end``."""
    if count == 0:
        return []
    step = (end - start) / (count + 1)
    moments = []
    for i in range(count):
        moment = (start + step * (i + 1)).replace(second=0, microsecond=0)
        # People press buttons in office hours; keep the night-time ones only when moving
        # them would cross ``end`` (e.g. today, before the office opened).
        office = moment.replace(hour=9 + moment.hour % 8)
        moments.append(office if start < office < end else moment)
    return sorted(moments)


class DemoBlocked(RuntimeError):
    """A governed transition stayed blocked: a resolver is missing for some requirement."""


def _transition(release, name: str, actor, when: datetime, reason: str = ""):
    import time_machine

    from . import readiness, services
    from .errors import RequirementsNotMet

    with time_machine.travel(when, tick=False):
        if name in readiness.GOVERNED_TRANSITIONS:
            for resolver in REQUIREMENT_RESOLVERS:
                resolver(release, name)
        try:
            return services.TRANSITION_SERVICES[name](release=release, actor=actor, reason=reason)
        except RequirementsNotMet as error:
            raise DemoBlocked(
                f"Demo release {release} could not {name} at {when:%Y-%m-%d %H:%M}: "
                f"{error.message} (add a resolver to releases.demo.REQUIREMENT_RESOLVERS)"
            ) from error


def _build_release(spec: DemoRelease, *, version: str, users: dict, now: datetime, rng) -> None:
    import time_machine

    from . import services
    from .models import Service

    team = Service.objects.get(slug=spec.services[0]).team.slug
    owner = users[TEAM_OWNER[team]]
    window_start, window_end = _window(spec, now)
    in_past = window_start < now
    # The release is created three to five weeks before its window, but never in the future.
    created = min(window_start - timedelta(days=rng.randint(21, 35)), now - timedelta(days=2))
    created = created.replace(hour=9, minute=rng.choice([5, 15, 30, 45]), second=0, microsecond=0)
    # Work before deployment happens before the window (or before now, for later windows).
    horizon = min(window_start - timedelta(hours=3), now - timedelta(hours=1))
    services_qs = list(Service.objects.filter(slug__in=spec.services))
    scope_pool = SCOPE_TITLES[team]

    with time_machine.travel(created, tick=False):
        release = services.release_create(
            actor=owner,
            name=spec.name,
            version=version,
            services=services_qs,
            release_type=spec.release_type,
            risk_level=spec.risk,
            owner=owner,
            product_owner=users["paula"],
            window_start=window_start,
            window_end=window_end,
            code_freeze_at=(window_start - timedelta(days=3)).replace(hour=12),
            target_date=window_start.date(),
            description=f"{spec.name} for {', '.join(spec.services)}.",
            release_notes=_notes(spec, version),
        )
    cancel_after = spec.extra.get("cancel_after")
    if spec.state == "draft" or cancel_after == "draft":
        # Drafts are still being put together: some scope, no rollback plan yet.
        with time_machine.travel(created + timedelta(hours=2), tick=False):
            kind, title = rng.choice(scope_pool)
            services.scope_item_add(
                release=release,
                actor=owner,
                kind=kind,
                title=title,
                external_key=f"{KEY_PREFIX[team]}-{rng.randint(100, 999)}",
            )
        if cancel_after == "draft":
            _transition(release, "cancel", owner, horizon, CANCEL_REASONS["draft"])
        return

    # Scope, risks and the rollback plan, in the first hours after creation.
    with time_machine.travel(created + timedelta(hours=1), tick=False):
        items = []
        for kind, title in rng.sample(scope_pool, rng.randint(2, 5)):
            key = f"{KEY_PREFIX[team]}-{rng.randint(100, 999)}"
            items.append(
                services.scope_item_add(
                    release=release,
                    actor=owner,
                    kind=kind,
                    title=title,
                    external_key=key,
                    url=f"https://tracker.example.com/browse/{key}",
                )
            )
    with time_machine.travel(created + timedelta(hours=2), tick=False):
        risks = []
        for description, likelihood, impact, mitigation, risk_owner in rng.sample(
            RISKS, {"low": 0, "medium": 1, "high": 2, "critical": 3}[spec.risk]
        ):
            risks.append(
                services.risk_add(
                    release=release,
                    actor=owner,
                    description=description,
                    likelihood=likelihood,
                    impact=impact,
                    mitigation=mitigation,
                    owner=users[risk_owner],
                )
            )
    with time_machine.travel(created + timedelta(hours=3), tick=False):
        rehearsed = spec.risk in ("high", "critical") and (in_past or rng.random() < 0.5)
        services.rollback_plan_set(
            release=release,
            actor=owner,
            steps=ROLLBACK_STEPS.format(services=", ".join(spec.services)),
            rehearsed_at=created + timedelta(hours=3) if rehearsed else None,
            evidence_url=f"https://wiki.example.com/rollback/{release.pk}" if rehearsed else "",
        )

    if not in_past and not cancel_after and spec.state in ("planned", "in_progress", "approved"):
        _plan_communications(release, owner, created + timedelta(hours=3, minutes=30))

    target = cancel_after or (spec.state if spec.state in PRE_DEPLOY_STEPS else "approved")
    steps = list(PRE_DEPLOY_STEPS[target])
    if spec.changes_requested and "approve" in steps:
        i = steps.index("approve")
        steps[i:i] = ["request_changes", "request_approval"]
    moments = _moments(
        created + timedelta(hours=4), horizon, len(steps) + (1 if cancel_after else 0)
    )
    for name, when in zip(steps, moments, strict=False):
        reason = ""
        if name == "request_changes":
            reason = "Load-test results missing for the new endpoints; please attach them."
        if name == "start_work" and len(items) > 2 and rng.random() < 0.4:
            # Something always slips: defer the last item before work starts.
            with time_machine.travel(when - timedelta(minutes=30), tick=False):
                services.scope_item_update(
                    item=items[-1], actor=owner, changes={"status": "deferred"}
                )
        _transition(release, name, owner, when, reason)
    if cancel_after:
        _transition(release, "cancel", owner, moments[-1], CANCEL_REASONS[cancel_after])
        return
    if spec.state in PRE_DEPLOY_STEPS:
        return

    # Deployment, inside the window.
    _transition(release, "start_deployment", owner, window_start + timedelta(minutes=5))
    if spec.state == "deploying":
        return
    if spec.state == "rolled_back" and not spec.extra.get("deployed_first"):
        reason = ROLLBACK_REASONS[len(spec.name) % len(ROLLBACK_REASONS)]
        _transition(release, "roll_back", owner, window_start + timedelta(minutes=50), reason)
        return
    _transition(release, "mark_deployed", owner, window_start + timedelta(minutes=45))
    if spec.state == "rolled_back":
        reason = ROLLBACK_REASONS[2]
        _transition(release, "roll_back", owner, window_start + timedelta(hours=16), reason)
        return
    # After deployment the team works through the validation checklist, and for closed
    # releases records the retrospective (required to close risk ≥ medium).
    _post_release(release, owner, window_start + timedelta(hours=1), closing=spec.state == "closed")
    if spec.state == "closed":
        closed_at = window_end + timedelta(days=2, hours=1)
        with time_machine.travel(closed_at - timedelta(hours=1), tick=False):
            for risk in risks:
                services.risk_update(risk=risk, actor=owner, changes={"status": "closed"})
        _transition(release, "close", owner, closed_at)


def _post_release(release, owner, when: datetime, *, closing: bool) -> None:
    """Validation steps after deployment (all of them when the release will close, the
    first one otherwise) and, before closing, the retrospective."""
    import time_machine

    from . import postrelease

    with time_machine.travel(when, tick=False):
        items = postrelease.validation_items_ensure_defaults(release=release, actor=owner)
    for offset, item in enumerate(items if closing else items[:1], start=1):
        if item.is_done:
            continue
        with time_machine.travel(when + timedelta(minutes=20 * offset), tick=False):
            postrelease.validation_item_complete(item=item, actor=owner, note="Checked.")
    with time_machine.travel(when + timedelta(hours=2), tick=False):
        notes = postrelease.release_notes_save(release=release, actor=owner, audience="customer")
        postrelease.release_notes_publish(notes=notes, actor=owner)
    if closing:
        lesson = LESSONS[release.pk % len(LESSONS)]
        with time_machine.travel(when + timedelta(days=1), tick=False):
            postrelease.retrospective_record(
                release=release,
                actor=owner,
                went_well="Smooth switch-over; dashboards stayed green.",
                went_badly="The change window started 15 minutes late.",
                to_change="Book the window with operations a week earlier.",
                lessons_learned=lesson,
                runbook_links=[f"https://wiki.example.com/runbooks/{release.pk}"],
            )
            # One action closed, one still open (overdue for the older releases).
            done = postrelease.action_item_add(
                release=release,
                actor=owner,
                title="Book change windows with operations a week ahead",
                owner=owner,
                due_date=(when + timedelta(days=8)).date(),
            )
            postrelease.action_item_add(
                release=release,
                actor=owner,
                title=f"Automate the check that slipped: {lesson.split(';')[0].lower()}",
                owner=owner,
                due_date=(when + timedelta(days=21)).date(),
            )
            postrelease.impact_assessment_record(
                release=release,
                actor=owner,
                expected_outcome="No customer-visible change in error rate; faster checkout.",
                observed_outcome="Error rate flat; p95 latency 8% lower over the first week.",
                customer_impact="none",
            )
        with time_machine.travel(when + timedelta(days=1, hours=3), tick=False):
            postrelease.action_item_set_status(item=done, actor=owner, status="done")


LESSONS = [
    "Feature flags let us ship dark and switch on after the smoke tests",
    "Rehearse the rollback a week ahead; the night before is too late",
    "Database migrations go out one release before the code that needs them",
    "Canary at 5% caught the slow query before customers did",
]


def _plan_communications(release, owner, when: datetime) -> None:
    """Upcoming releases tell support a day ahead and customers when the window opens."""
    import time_machine

    from . import communications

    with time_machine.travel(when, tick=False):
        communications.communication_schedule(
            release=release,
            actor=owner,
            audience="support",
            channel="email",
            destination="support@example.com",
            trigger="before_window",
            offset_hours=24,
            subject=f"Tomorrow: {release}",
            message="A release is planned for tomorrow's window; the release page has the notes.",
        )
        communications.communication_schedule(
            release=release,
            actor=owner,
            audience="customers",
            channel="email",
            destination="status-updates@example.com",
            trigger="completed",
            subject=f"{release} is live",
            message="The release is complete. Thank you for your patience.",
        )


def _notes(spec: DemoRelease, version: str) -> str:
    return (
        f"## {spec.name} {version}\n\n"
        f"Ships to **{', '.join(spec.services)}**.\n\n"
        "### Highlights\n\n"
        "- See the scope below for every change and its ticket.\n"
        "- No action is needed from API clients.\n\n"
        "| Area | Change |\n|---|---|\n"
        f"| {spec.services[0]} | {spec.release_type.title()} release |\n"
    )


@dataclass
class SeedResult:
    created: int = 0
    skipped: int = 0
    users: list[str] = field(default_factory=list)


def seed(*, now: datetime | None = None, stdout=None) -> SeedResult:
    """Load the demo portfolio (idempotent). ``now`` is the moment "today" is built around."""
    from .models import Release

    now = (now or timezone.now()).replace(microsecond=0)
    result = SeedResult()
    with transaction.atomic():
        users = ensure_reference_data()
        for hook in REFERENCE_DATA_HOOKS:
            hook()
    result.users = [u[0] for u in DEMO_USERS]
    versions = _versions(now)
    # Build in window order so that, as in real life, an earlier release has left the
    # deploying state before a later one of the same service starts deploying.
    for index, spec in sorted(
        enumerate(PORTFOLIO), key=lambda pair: (pair[1].day, pair[1].hour, pair[0])
    ):
        version = versions[spec.name]
        if Release.objects.filter(name=spec.name, version=version).exists():
            result.skipped += 1
            continue
        rng = random.Random(f"{spec.name}-{index}")  # stable per release, so reruns agree
        with transaction.atomic():
            _build_release(spec, version=version, users=users, now=now, rng=rng)
        result.created += 1
        if stdout is not None:
            stdout.write(f"  {spec.name} {version}: {spec.state}\n")
    for hook in AFTER_SEED_HOOKS:
        hook()
    return result
