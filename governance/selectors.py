"""Reads of the governance app for pages and the API, with their joins chosen so that
list pages do a fixed number of queries however many rows they show."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.db.models import Prefetch, Q, QuerySet
from django.utils import timezone

from core.models import AuditEvent
from core.roles import Role, has_role, user_roles
from releases import risk as release_risk
from releases.choices import TERMINAL_STATES
from releases.models import Release, Service
from releases.selectors import visible_releases
from releases.services import TRANSITION_LABELS

from .choices import VOTING_STATES, ChangeState, ChangeType, GateStatus, MeetingState
from .domain import freeze as freeze_domain
from .domain import quorum
from .models import (
    AgendaItem,
    BreakGlass,
    CABMeeting,
    ChangeRequest,
    FreezeException,
    FreezeWindow,
    GateCheck,
    GatePolicy,
    QuorumPolicyRecord,
    Recusal,
    Vote,
)
from .readiness import release_blockers

# --- the CAB's quorum: which policy applies, and what the votes decide ------------------

CAB_ROLES = (Role.CAB_MEMBER, Role.CAB_CHAIR)
DEFAULT_QUORUM = quorum.QuorumPolicy(
    min_votes=2, approval_share="0.5", mandatory_roles=frozenset({Role.SECURITY_LEAD.value})
)


def quorum_policy_for(cr: ChangeRequest, *, records=None) -> quorum.QuorumPolicy:
    """The stored quorum policy of the change's type; an emergency change without its own
    policy uses the emergency variant of the normal one (smaller quorum)."""
    records = {
        r.change_type: r for r in (QuorumPolicyRecord.objects.all() if records is None else records)
    }
    if cr.change_type in records:
        return records[cr.change_type].as_domain()
    normal = (
        records[ChangeType.NORMAL].as_domain() if ChangeType.NORMAL in records else (DEFAULT_QUORUM)
    )
    if cr.change_type == ChangeType.EMERGENCY:
        return quorum.QuorumPolicy.emergency(normal)
    return normal


def may_vote(actor, policy: quorum.QuorumPolicy) -> bool:
    """Whether the actor holds a role that votes under this quorum policy: CAB members and
    chairs, and holders of its mandatory roles (vote_cast enforces it; pages ask it before
    offering vote buttons)."""
    return has_role(actor, *CAB_ROLES, *policy.mandatory_roles)


def tally(
    cr: ChangeRequest,
    votes: list[Vote] | None = None,
    *,
    closing: bool = False,
    policy: quorum.QuorumPolicy | None = None,
) -> quorum.Decision:
    """The quorum decision for the current votes (domain Decision)."""
    votes = list(cr.votes.all()) if votes is None else votes
    ballot = [
        quorum.Vote(voter_id=v.voter_id, choice=v.choice, roles=frozenset(v.roles)) for v in votes
    ]
    policy = policy or quorum_policy_for(cr)
    return quorum.evaluate(policy, ballot, cr.risk_level, closing=closing)


def gate_checks(*, viewer) -> QuerySet[GateCheck]:
    return GateCheck.objects.filter(release__in=visible_releases(viewer=viewer)).select_related(
        "release", "decided_by", "run"
    )


def change_requests(*, viewer) -> QuerySet[ChangeRequest]:
    """Change requests of visible releases; stand-alone ones for every role holder."""
    qs = ChangeRequest.objects.select_related("release", "requested_by", "decided_by")
    if getattr(viewer, "is_machine", False):
        return qs.filter(release__in=visible_releases(viewer=viewer))
    if not user_roles(viewer):
        return qs.none()
    return qs


def meetings(*, viewer) -> QuerySet[CABMeeting]:
    if not user_roles(viewer):
        return CABMeeting.objects.none()
    return CABMeeting.objects.select_related("chair")


def reads_governance_config(viewer) -> bool:
    """Who may read governance configuration (gate policies, freeze windows): role holders,
    and tokens with the ``releases:read`` scope. Not a signed-in user without a role, not a
    token that only reports runs."""
    if getattr(viewer, "is_machine", False):
        return viewer.has_scope("releases:read")
    return bool(user_roles(viewer))


def gate_policies(*, viewer) -> QuerySet[GatePolicy]:
    if not reads_governance_config(viewer):
        return GatePolicy.objects.none()
    return GatePolicy.objects.all()


def freeze_windows(*, viewer) -> QuerySet[FreezeWindow]:
    if not reads_governance_config(viewer):
        return FreezeWindow.objects.none()
    return FreezeWindow.objects.prefetch_related("environments", "services")


def freeze_exceptions(*, viewer) -> QuerySet[FreezeException]:
    return FreezeException.objects.filter(
        release__in=visible_releases(viewer=viewer)
    ).select_related("freeze", "release", "requested_by", "approver")


def break_glasses(*, viewer, release: Release | int) -> QuerySet[BreakGlass]:
    """A release's break-glass overrides, newest first, for a viewer who may see it."""
    pk = release.pk if isinstance(release, Release) else release
    return BreakGlass.objects.filter(
        release__in=visible_releases(viewer=viewer), release_id=pk
    ).select_related("environment", "requested_by", "ended_by", "reviewed_by")


def break_glass_lifting(windows, *, at: datetime | None = None) -> dict[int, list[dict]]:
    """For each freeze window (prefetched ``services`` and ``environments``), the break-glass
    in force at ``at`` (now) that lift it for a release it covers: the freeze windows API
    shows them beside the freeze. Two queries whatever the number of windows."""
    at = at or timezone.now()
    windows = list(windows)
    found: dict[int, list[dict]] = {w.pk: [] for w in windows}
    if not windows:
        return found
    glasses = list(
        BreakGlass.objects.filter(created_at__lte=at, expires_at__gt=at)
        .filter(Q(ended_at__isnull=True) | Q(ended_at__gt=at))
        .select_related("release", "requested_by", "environment")
        .prefetch_related(Prefetch("release__services", queryset=Service.objects.only("id")))
        .order_by("created_at", "id")
    )
    for window in windows:
        window_services = {s.pk for s in window.services.all()}
        window_envs = list(window.environments.all())
        if window_envs and not any(e.is_production for e in window_envs):
            continue  # freezes block production only; nothing to lift
        for glass in glasses:
            release_services = {s.pk for s in glass.release.services.all()}
            if window_services and not window_services & release_services:
                continue
            if (
                glass.environment_id
                and window_envs
                and (glass.environment_id not in {e.pk for e in window_envs})
            ):
                continue
            found[window.pk].append(
                {
                    "id": glass.pk,
                    "release": glass.release_id,
                    "release_name": str(glass.release),
                    "kind": glass.kind,
                    "environment": glass.environment.slug if glass.environment_id else None,
                    "requested_by": glass.requested_by.get_username(),
                    "reason": glass.reason,
                    "expires_at": glass.expires_at.isoformat(),
                }
            )
    return found


# --- approvals inbox --------------------------------------------------------------------------


@dataclass
class Inbox:
    sign_offs: list[GateCheck]
    votes: list[ChangeRequest]
    exceptions: list[FreezeException] = field(default_factory=list)
    reviews: list[ChangeRequest] = field(default_factory=list)
    break_glass_reviews: list[BreakGlass] = field(default_factory=list)

    @property
    def count(self) -> int:
        return (
            len(self.sign_offs)
            + len(self.votes)
            + len(self.exceptions)
            + len(self.reviews)
            + len(self.break_glass_reviews)
        )


def _release_evidence_prefetch() -> list:
    return [
        Prefetch("release__gate_checks", queryset=GateCheck.objects.order_by("position", "id")),
        "release__services",
    ]


def inbox(*, viewer) -> Inbox:
    """What waits for the viewer: manual gates of their roles on releases they do not own,
    change requests they may vote on (with their current vote), freeze exceptions they may
    decide. A fixed number of queries whatever the number of items."""
    roles = user_roles(viewer)
    releases = visible_releases(viewer=viewer).exclude(state__in=TERMINAL_STATES)
    # A sign-off is due once its stage is near: post-deployment ones only after deploying.
    due = Q(stage__in=["pre_approval", "pre_deployment"]) | Q(
        stage="post_deployment", release__state__in=["deploying", "deployed"]
    )
    sign_offs = list(
        GateCheck.objects.filter(
            due,
            kind="manual",
            role__in=roles,
            status__in=[GateStatus.PENDING, GateStatus.FAILED],
            release__in=releases,
        )
        .exclude(release__owner=viewer)
        .select_related("release", "release__risk_assessment", "release__owner")
        .prefetch_related(*_release_evidence_prefetch())
        .order_by("pending_since", "id")
    )
    votes: list[ChangeRequest] = []
    if has_role(viewer, *CAB_ROLES, Role.SECURITY_LEAD):
        votes = list(
            ChangeRequest.objects.filter(state__in=VOTING_STATES)
            .exclude(release__state__in=TERMINAL_STATES)
            .exclude(requested_by=viewer)
            .exclude(release__owner=viewer)
            .exclude(recusals__user=viewer)
            .select_related("release", "release__risk_assessment", "requested_by")
            .prefetch_related(
                Prefetch("votes", queryset=Vote.objects.select_related("voter")),
                Prefetch("release__gate_checks", queryset=GateCheck.objects.order_by("position")),
                "release__services",
            )
            .order_by("submitted_at", "id")
        )
        if not has_role(viewer, *CAB_ROLES):  # mandatory-role voters: high risk only
            votes = [c for c in votes if c.risk_level in ("high", "critical")]
        for cr in votes:
            cr.my_vote = next((v for v in cr.votes.all() if v.voter_id == viewer.pk), None)
    exceptions: list[FreezeException] = []
    if has_role(viewer, Role.CAB_CHAIR, Role.OPERATIONS, Role.ADMINISTRATOR):
        exceptions = list(
            FreezeException.objects.filter(state="requested", release__in=releases)
            .exclude(requested_by=viewer)
            .exclude(release__owner=viewer)
            .select_related("freeze", "release", "release__risk_assessment", "requested_by")
            .prefetch_related("release__services")
        )
    glass_reviews: list[BreakGlass] = []
    if has_role(viewer, *settings.BREAK_GLASS_ROLES, Role.CAB_CHAIR):
        # Break-glass reviews someone other than the requester approves (separation of
        # duties), on the release page; closed releases cannot owe one.
        glass_reviews = list(
            BreakGlass.objects.filter(review_state="pending", release__in=releases)
            .exclude(requested_by=viewer)
            .select_related("release", "requested_by", "environment")
            .order_by("created_at", "id")
        )
    return Inbox(
        sign_offs=sign_offs,
        votes=votes,
        exceptions=exceptions,
        reviews=pending_reviews(viewer=viewer),
        break_glass_reviews=glass_reviews,
    )


def pending_reviews(*, viewer) -> list[ChangeRequest]:
    """Post-implementation reviews the viewer owes: emergency changes implemented and not yet
    reviewed, for their requester and the release's owner, and for every CAB chair. Overdue
    ones first (``review_overdue``)."""
    qs = ChangeRequest.objects.filter(
        state=ChangeState.IMPLEMENTED, review_due_at__isnull=False, reviewed_at__isnull=True
    )
    if not has_role(viewer, Role.CAB_CHAIR):
        qs = qs.filter(Q(requested_by=viewer) | Q(release__owner=viewer))
    return list(
        qs.select_related("release", "release__risk_assessment", "requested_by")
        .prefetch_related("release__services")
        .order_by("review_due_at", "id")
    )


# --- CAB workbench ----------------------------------------------------------------------------


def workbench_meetings(*, viewer, now: datetime | None = None) -> list[CABMeeting]:
    """Scheduled meetings (and the last closed one) with their agendas, each item's change
    request, its votes, recusals and evidence, and the live tally. Queries do not grow with
    the number of items or votes (the quorum policy is read once)."""
    now = now or timezone.now()
    qs = (
        meetings(viewer=viewer)
        .filter(Q(state=MeetingState.SCHEDULED) | Q(scheduled_at__gte=now - timedelta(days=7)))
        .prefetch_related(
            Prefetch(
                "items",
                queryset=AgendaItem.objects.select_related(
                    "change_request__release__risk_assessment",
                    "change_request__requested_by",
                    "change_request__release__owner",
                ).prefetch_related(
                    Prefetch(
                        "change_request__votes", queryset=Vote.objects.select_related("voter")
                    ),
                    Prefetch(
                        "change_request__recusals", queryset=Recusal.objects.select_related("user")
                    ),
                    Prefetch(
                        "change_request__release__gate_checks",
                        queryset=GateCheck.objects.order_by("position", "id"),
                    ),
                ),
            )
        )
        .order_by("scheduled_at")
    )
    result = list(qs)
    policies = _policy_cache()
    for meeting in result:
        for item in meeting.items.all():
            _attach_tally(item.change_request, viewer, policies)
    return result


def _attach_tally(cr: ChangeRequest, viewer, policies) -> None:
    """The live tally of an agenda item, what closing it now would record, and what the
    viewer may do on it (no query: votes and recusals are prefetched)."""
    votes = list(cr.votes.all())
    cr.decision = tally(cr, votes, policy=policies(cr))
    # What "Close item" would record now: the same rule, evaluated as closing.
    cr.closing_decision = tally(cr, votes, closing=True, policy=policies(cr))
    cr.viewer_may_vote = may_vote(viewer, policies(cr))
    cr.my_vote = next((v for v in votes if v.voter_id == viewer.pk), None)
    cr.viewer_recused = (
        cr.requested_by_id == viewer.pk
        or any(r.user_id == viewer.pk for r in cr.recusals.all())
        or (cr.release is not None and cr.release.owner_id == viewer.pk)
    )


def _policy_cache():
    records = list(QuorumPolicyRecord.objects.all())
    cache: dict[str, object] = {}

    def get(cr: ChangeRequest):
        if cr.change_type not in cache:
            cache[cr.change_type] = quorum_policy_for(cr, records=records)
        return cache[cr.change_type]

    return get


def unscheduled_change_requests() -> QuerySet[ChangeRequest]:
    """Submitted changes not yet on an open agenda (for the chair to add)."""
    return (
        ChangeRequest.objects.filter(state__in=[ChangeState.SUBMITTED, ChangeState.IN_REVIEW])
        .exclude(agenda_items__meeting__state=MeetingState.SCHEDULED)
        .exclude(change_type="standard")
        .select_related("release")
        .order_by("window_start")
    )


def release_governance(*, release: Release) -> dict:
    """Everything the release page's governance panel shows."""

    assessment = getattr(release, "risk_assessment", None)
    return {
        "gates": list(
            release.gate_checks.select_related("decided_by", "run").order_by("position", "id")
        ),
        "snapshot": getattr(release, "policy_snapshot", None),
        "risk": assessment,
        # The level gates and CAB use (override, else the higher of computed and declared),
        # the same the page header shows.
        "governing_risk": release_risk.governing_level(release),
        "change_requests": list(
            release.change_requests.select_related("requested_by").prefetch_related("votes")
        ),
        "blockers": _readable(release_blockers(release)),
        "exceptions": list(release.freeze_exceptions.select_related("freeze", "approver")),
    }


# --- freeze conflicts in memory (a fixed number of queries for many releases) -----------------


def active_freeze_rules() -> list[tuple[FreezeWindow, object, set[int], bool]]:
    """(window, rule, service ids, covers production) for every valid active freeze."""
    found = []
    for window in FreezeWindow.objects.filter(is_active=True).prefetch_related(
        "services", "environments"
    ):
        try:
            rule = window.rule()
        except freeze_domain.FreezeRuleError:
            continue
        envs = list(window.environments.all())
        covers_prod = not envs or any(e.is_production for e in envs)
        found.append((window, rule, {s.pk for s in window.services.all()}, covers_prod))
    return found


def freeze_conflicts(release: Release, rules) -> list[str]:
    """Freezes that overlap the release's deployment window, in words (services prefetched)."""
    if not (release.window_start and release.window_end):
        return []
    service_ids = {s.pk for s in release.services.all()}
    conflicts = []
    for window, rule, services, covers_prod in rules:
        if not covers_prod or (services and not services & service_ids):
            continue
        spans = freeze_domain.occurrences(rule, release.window_start, release.window_end)
        if spans:
            conflicts.append(f"{window.name}: {window.description}")
    return conflicts


def _readable(answer: dict) -> dict:
    """The blockers answer with datetimes and transition labels, for templates."""
    for step in answer["transitions"]:
        step["label"] = TRANSITION_LABELS.get(step["transition"], step["transition"])
        step["earliest"] = (
            datetime.fromisoformat(step["earliest_at"]) if step["earliest_at"] else None
        )
        for blocker in step["blockers"]:
            blocker["until_at"] = (
                datetime.fromisoformat(blocker["until"]) if blocker["until"] else None
            )
    return answer


# --- a CAB meeting's page: attendance and what closing each item would record ---------------

ATTENDANCE_ACTION = "meeting.attendance"


def meeting_presence(meeting: CABMeeting) -> dict[int, bool]:
    """{user id: present?} for the attendees the chair has marked: the latest
    ``meeting.attendance`` event of each (one query). Attendance is kept as the audit trail
    of the marks themselves: who marked whom, when, and every change, with no table of its
    own to drift from it."""
    events = (
        AuditEvent.objects.filter(
            target_type=ContentType.objects.get_for_model(CABMeeting),
            target_id=str(meeting.pk),
            action=ATTENDANCE_ACTION,
        )
        .order_by("chain_seq", "id")
        .values_list("after", flat=True)
    )
    presence: dict[int, bool] = {}
    for after in events:
        if isinstance(after, dict) and "user_id" in after:
            presence[int(after["user_id"])] = bool(after.get("present"))
    return presence


@dataclass
class Attendee:
    user: Any
    roles: list[str]
    present: bool | None  # None: not marked yet


def meeting_page(*, viewer, pk: int) -> tuple[CABMeeting, list[Attendee]]:
    """One meeting (raises CABMeeting.DoesNotExist) with its agenda as the workbench reads it
    (votes, recusals, evidence, live tally and what closing each item would record), and its
    attendees with their presence. Queries do not grow with items, votes or attendees."""
    meeting = meetings(viewer=viewer).get(pk=pk)
    items = (
        AgendaItem.objects.filter(meeting=meeting)
        .select_related(
            "change_request__release__risk_assessment",
            "change_request__requested_by",
            "change_request__release__owner",
        )
        .prefetch_related(
            Prefetch("change_request__votes", queryset=Vote.objects.select_related("voter")),
            Prefetch("change_request__recusals", queryset=Recusal.objects.select_related("user")),
            Prefetch(
                "change_request__release__gate_checks",
                queryset=GateCheck.objects.order_by("position", "id"),
            ),
        )
        .order_by("position", "id")
    )
    meeting.agenda = list(items)
    policies = _policy_cache()
    for item in meeting.agenda:
        item.meeting = meeting
        _attach_tally(item.change_request, viewer, policies)
    presence = meeting_presence(meeting)
    people = meeting.attendees.prefetch_related("groups").order_by("username")
    attendees = [
        Attendee(
            user=person,
            roles=[Role(g.name).label for g in person.groups.all() if g.name in Role.values],
            present=presence.get(person.pk),
        )
        for person in people
    ]
    return meeting, attendees


# --- the compact inbox: one list of rows, sorted and filtered -------------------------------

INBOX_KINDS = {
    "signoff": "Sign-off",
    "vote": "CAB vote",
    "exception": "Freeze exception",
    "review": "Post-implementation review",
}
INBOX_SORTS = {"due": "Due first", "age": "Waiting longest", "risk": "Highest risk"}
_RISK_ORDER = {level: n for n, level in enumerate(["critical", "high", "medium", "low"])}


@dataclass
class InboxRow:
    kind: str  # a key of INBOX_KINDS
    key: str  # unique on the page: "signoff-12"
    item: Any  # the gate, change request or freeze exception
    title: str
    release: Release | None
    risk: str  # the governing level of the release, else the change's own
    due_at: datetime | None  # when it must be decided by
    since: datetime | None  # waiting since
    services: list[str] = field(default_factory=list)  # service slugs

    @property
    def kind_label(self) -> str:
        return INBOX_KINDS[self.kind]


def _row_services(release: Release | None) -> list[str]:
    return sorted(s.slug for s in release.services.all()) if release is not None else []


def inbox_rows(
    box: Inbox, *, sort: str = "due", kind: str = "", release: str = "", service: str = ""
) -> list[InboxRow]:
    """The inbox as one list of rows, filtered by kind, release id and service slug and
    sorted by due date, age or risk. Reads only what ``inbox`` prefetched (no query)."""
    rows: list[InboxRow] = []
    for gate in box.sign_offs:
        rows.append(
            InboxRow(
                kind="signoff",
                key=f"signoff-{gate.pk}",
                item=gate,
                title=f"{gate.label} ({gate.get_stage_display().lower()})",
                release=gate.release,
                risk=release_risk.governing_level(gate.release),
                due_at=gate.release.window_start,
                since=gate.pending_since,
                services=_row_services(gate.release),
            )
        )
    for cr in box.votes:
        rows.append(
            InboxRow(
                kind="vote",
                key=f"cr-{cr.pk}",
                item=cr,
                title=f"CR-{cr.number} {cr.title}",
                release=cr.release,
                risk=release_risk.governing_level(cr.release) if cr.release else cr.risk_level,
                due_at=cr.window_start,
                since=cr.submitted_at,
                services=_row_services(cr.release),
            )
        )
    for exception in box.exceptions:
        rows.append(
            InboxRow(
                kind="exception",
                key=f"exception-{exception.pk}",
                item=exception,
                title=f"Exception to “{exception.freeze.name}”",
                release=exception.release,
                risk=release_risk.governing_level(exception.release),
                due_at=exception.release.window_start,
                since=exception.created_at,
                services=_row_services(exception.release),
            )
        )
    for cr in box.reviews:
        rows.append(
            InboxRow(
                kind="review",
                key=f"review-{cr.pk}",
                item=cr,
                title=f"Review of CR-{cr.number} {cr.title}",
                release=cr.release,
                risk=release_risk.governing_level(cr.release) if cr.release else cr.risk_level,
                due_at=cr.review_due_at,
                since=cr.implemented_at,
                services=_row_services(cr.release),
            )
        )
    if kind:
        rows = [r for r in rows if r.kind == kind]
    if release:
        rows = [r for r in rows if r.release is not None and str(r.release.pk) == release]
    if service:
        rows = [r for r in rows if service in r.services]
    far = datetime.max.replace(tzinfo=UTC)
    if sort == "age":
        rows.sort(key=lambda r: (r.since or far, r.key))
    elif sort == "risk":
        rows.sort(key=lambda r: (_RISK_ORDER.get(r.risk, 9), r.due_at or far, r.key))
    else:
        rows.sort(key=lambda r: (r.due_at or far, r.key))
    return rows
