"""Post-release services: validation checklist, retrospective and action items, impact
assessment, release notes. Same shape as services.py: transactional, permission-checked,
audited. Kept in their own module because they follow deployment, not the lifecycle.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from typing import Any

from django.db import transaction
from django.forms.models import model_to_dict
from django.utils import timezone

from core.audit import audit_record
from core.errors import Conflict, InvalidInput, PermissionDenied, TransitionNotAllowed

from ..choices import (
    OPEN_ACTION_STATUSES,
    RISK_ORDER,
    ActionStatus,
    CustomerImpact,
    NotesAudience,
    NotesState,
    ReleaseState,
    RiskLevel,
    ScopeKind,
    ScopeStatus,
)
from ..models import (
    ActionItem,
    ImpactAssessment,
    Release,
    ReleaseNotes,
    Retrospective,
    ValidationItem,
)
from ..risk import current_governing_level

POST_DEPLOY_STATES = {ReleaseState.DEPLOYED, ReleaseState.ROLLED_BACK, ReleaseState.CLOSED}
DEFAULT_VALIDATION_ITEMS = (
    "Smoke tests pass in production",
    "Dashboards and alerts checked for an hour after the deployment",
    "Support briefed on the changes",
)


def _lock_for_change(release: Release | int, actor) -> Release:
    pk = release.pk if isinstance(release, Release) else release
    release = Release.objects.select_for_update().get(pk=pk)
    if not actor.has_perm("releases.change_release", release):
        raise PermissionDenied("Only a release manager of the owning team can do this.")
    return release


# --- validation checklist --------------------------------------------------------------------


def validation_item_add(*, release: Release | int, actor, title: str) -> ValidationItem:
    """Add a step to the post-deployment validation checklist."""
    if not title.strip():
        raise InvalidInput("A validation step needs a title.", details={"title": ["Required."]})
    with transaction.atomic():
        release = _lock_for_change(release, actor)
        if release.state == ReleaseState.CLOSED:
            raise TransitionNotAllowed("The release is closed; its checklist is final.")
        item = ValidationItem.objects.create(release=release, title=title.strip())
        audit_record(actor=actor, action="validation.add", target=item, release=release)
    return item


def validation_items_ensure_defaults(*, release: Release | int, actor) -> list[ValidationItem]:
    """Give a release the default checklist if it has none yet (idempotent)."""
    with transaction.atomic():
        release = _lock_for_change(release, actor)
        if release.validation_items.exists():
            return list(release.validation_items.all())
        items = [
            ValidationItem.objects.create(release=release, title=t)
            for t in DEFAULT_VALIDATION_ITEMS
        ]
        audit_record(
            actor=actor,
            action="validation.defaults",
            target=release,
            release=release,
            after={"items": list(DEFAULT_VALIDATION_ITEMS)},
        )
    return items


def on_release_transition(*, release: Release, actor, name: str, from_state: str) -> None:
    """Transition listener: a deployed release gets the default validation checklist, so
    closing it asks for the checks a team should always make."""
    if name != "mark_deployed" or release.validation_items.exists():
        return
    # Not audited on its own: the checklist follows from the deployment's audit event, and a
    # transition writes exactly one event.
    ValidationItem.objects.bulk_create(
        [ValidationItem(release=release, title=title) for title in DEFAULT_VALIDATION_ITEMS]
    )


def validation_item_complete(
    *, item: ValidationItem | int, actor, note: str = ""
) -> ValidationItem:
    """Tick a validation step. Only after deployment, and only once."""
    with transaction.atomic():
        item = ValidationItem.objects.get(pk=item.pk if isinstance(item, ValidationItem) else item)
        release = _lock_for_change(item.release_id, actor)
        item = ValidationItem.objects.select_for_update().get(pk=item.pk)
        if release.state not in (ReleaseState.DEPLOYED, ReleaseState.ROLLED_BACK):
            raise TransitionNotAllowed("Validation steps are completed after deployment.")
        if item.is_done:
            raise Conflict(f"“{item.title}” was already completed.")
        item.done_by, item.done_at, item.note = actor, timezone.now(), note.strip()
        item.save(update_fields=["done_by", "done_at", "note"])
        audit_record(
            actor=actor, action="validation.complete", target=item, release=release, reason=note
        )
    return item


# --- retrospective and action items ----------------------------------------------------------

RETRO_FIELDS = ["went_well", "went_badly", "to_change", "lessons_learned", "runbook_links"]


def retrospective_record(
    *,
    release: Release | int,
    actor,
    went_well: str,
    went_badly: str,
    to_change: str,
    lessons_learned: str = "",
    runbook_links: list[str] | None = None,
) -> Retrospective:
    """Record (or amend) the release's retrospective, after deployment."""
    if not (went_well.strip() or went_badly.strip() or to_change.strip()):
        raise InvalidInput(
            "A retrospective needs at least one of: what went well, what did not, what to change.",
            details={"went_well": ["Say what went well, what did not, or what to change."]},
        )
    links = [link.strip() for link in (runbook_links or []) if link.strip()]
    bad = [link for link in links if not link.startswith(("https://", "http://"))]
    if bad:
        raise InvalidInput(
            f"Runbook links must be http(s) URLs: {', '.join(bad)}",
            details={"runbook_links": ["Must be http(s) URLs."]},
        )
    with transaction.atomic():
        release = _lock_for_change(release, actor)
        if release.state not in POST_DEPLOY_STATES:
            raise TransitionNotAllowed("A retrospective is recorded after deployment.")
        if release.state == ReleaseState.CLOSED:
            raise TransitionNotAllowed("The release is closed; its retrospective is final.")
        retro = Retrospective.objects.filter(release=release).first()
        before = model_to_dict(retro, fields=RETRO_FIELDS) if retro else None
        retro = retro or Retrospective(release=release, recorded_by=actor)
        retro.went_well, retro.went_badly, retro.to_change = (
            went_well.strip(),
            went_badly.strip(),
            to_change.strip(),
        )
        retro.lessons_learned, retro.runbook_links = lessons_learned.strip(), links
        retro.save()
        audit_record(
            actor=actor,
            action="retrospective.record" if before is None else "retrospective.update",
            target=retro,
            release=release,
            before=before,
            after=model_to_dict(retro, fields=RETRO_FIELDS),
        )
    return retro


def action_item_add(
    *, release: Release | int, actor, title: str, owner, due_date: date, team=None
) -> ActionItem:
    """Raise an action item from a release's retrospective; owned by a person and a team."""
    errors = {}
    if not title.strip():
        errors["title"] = ["Required."]
    if owner is None:
        errors["owner"] = ["Required."]
    if due_date is None:
        errors["due_date"] = ["Required."]
    if errors:
        raise InvalidInput("The action item is incomplete.", details=errors)
    with transaction.atomic():
        release = _lock_for_change(release, actor)
        if not hasattr(release, "retrospective"):
            raise TransitionNotAllowed("Record the retrospective before raising action items.")
        if team is None:
            team = release.services.order_by("id").first().team
        item = ActionItem.objects.create(
            release=release, team=team, title=title.strip(), owner=owner, due_date=due_date
        )
        audit_record(
            actor=actor,
            action="action_item.add",
            target=item,
            release=release,
            after={"title": item.title, "owner": owner.get_username(), "due_date": due_date},
        )
    return item


def action_item_set_status(
    *, item: ActionItem | int, actor, status: str, note: str = ""
) -> ActionItem:
    """Move an action item (open, in progress, done, cancelled). Its owner, the release's
    managers, and administrators may."""
    if status not in ActionStatus.values:
        raise InvalidInput(f"Unknown status {status!r}.", details={"status": ["Invalid."]})
    with transaction.atomic():
        item = (
            ActionItem.objects.select_for_update()
            .select_related("release")
            .get(pk=item.pk if isinstance(item, ActionItem) else item)
        )
        if item.owner_id != getattr(actor, "pk", None) and not actor.has_perm(
            "releases.change_release", item.release
        ):
            raise PermissionDenied("Only the owner or the release's managers can update this.")
        if item.status == status:
            return item
        before = item.status
        item.status = status
        item.closed_at = None if status in OPEN_ACTION_STATUSES else timezone.now()
        item.save(update_fields=["status", "closed_at"])
        audit_record(
            actor=actor,
            action="action_item.status",
            target=item,
            release=item.release,
            from_state=before,
            to_state=status,
            reason=note,
        )
    return item


# --- impact assessment -----------------------------------------------------------------------


def impact_assessment_record(
    *,
    release: Release | int,
    actor,
    expected_outcome: str,
    observed_outcome: str = "",
    customer_impact: str = CustomerImpact.NONE,
    notes: str = "",
) -> ImpactAssessment:
    """Record expected vs observed outcome and customer impact."""
    if not expected_outcome.strip():
        raise InvalidInput(
            "Say what outcome was expected.", details={"expected_outcome": ["Required."]}
        )
    if customer_impact not in CustomerImpact.values:
        raise InvalidInput("Unknown customer impact.", details={"customer_impact": ["Invalid."]})
    fields = ["expected_outcome", "observed_outcome", "customer_impact", "notes"]
    with transaction.atomic():
        release = _lock_for_change(release, actor)
        impact = ImpactAssessment.objects.filter(release=release).first()
        before = model_to_dict(impact, fields=fields) if impact else None
        impact = impact or ImpactAssessment(release=release)
        impact.expected_outcome, impact.observed_outcome = (
            expected_outcome.strip(),
            observed_outcome,
        )
        impact.customer_impact, impact.notes, impact.recorded_by = customer_impact, notes, actor
        impact.save()
        audit_record(
            actor=actor,
            action="impact.record",
            target=impact,
            release=release,
            before=before,
            after=model_to_dict(impact, fields=fields),
        )
    return impact


# --- release notes ---------------------------------------------------------------------------

KIND_HEADINGS = {
    ScopeKind.FEATURE: "New features",
    ScopeKind.IMPROVEMENT: "Improvements",
    ScopeKind.FIX: "Fixes",
    ScopeKind.CHORE: "Maintenance",
}


def release_notes_draft_text(*, release: Release, audience: str) -> str:
    """Markdown drafted from the included scope items, grouped by kind, external keys linked.

    Customer-facing notes leave out chores and internal keys' links."""
    groups: dict[str, list[str]] = defaultdict(list)
    items = release.scope_items.filter(status=ScopeStatus.INCLUDED).order_by("external_key", "id")
    for item in items:
        if audience == NotesAudience.CUSTOMER and item.kind == ScopeKind.CHORE:
            continue
        key = item.external_key
        if key and item.url and audience == NotesAudience.INTERNAL:
            key = f"[{key}]({item.url})"
        groups[item.kind].append(f"- {item.title}" + (f" ({key})" if key else ""))
    lines = [f"# {release.name} {release.version}", ""]
    for kind, heading in KIND_HEADINGS.items():
        if groups.get(kind):
            lines += [f"## {heading}", "", *groups[kind], ""]
    if len(lines) == 2:
        lines += ["No user-visible changes.", ""]
    return "\n".join(lines)


def release_notes_save(
    *, release: Release | int, actor, audience: str, body: str | None = None
) -> ReleaseNotes:
    """Create or edit the draft notes of one audience (drafted from scope when body is None).
    Published notes are frozen."""
    if audience not in NotesAudience.values:
        raise InvalidInput("Unknown audience.", details={"audience": ["Invalid."]})
    with transaction.atomic():
        release = _lock_for_change(release, actor)
        notes = (
            ReleaseNotes.objects.select_for_update()
            .filter(release=release, audience=audience)
            .first()
        )
        if notes and notes.state == NotesState.PUBLISHED:
            raise Conflict("These notes are published and frozen; they can no longer change.")
        text = (
            body
            if body is not None
            else release_notes_draft_text(release=release, audience=audience)
        )
        if len(text) > 100_000:
            raise InvalidInput("Release notes are limited to 100,000 characters.")
        before = {"body": notes.body} if notes else None
        notes = notes or ReleaseNotes(release=release, audience=audience)
        notes.body = text
        notes.save()
        audit_record(
            actor=actor,
            action="notes.save",
            target=notes,
            release=release,
            before=before,
            after={"audience": audience, "body": text},
        )
    return notes


def release_notes_publish(*, notes: ReleaseNotes | int, actor) -> ReleaseNotes:
    """Publish a draft: from now on it is frozen (a later scope change does not alter it)."""
    with transaction.atomic():
        notes = ReleaseNotes.objects.select_for_update().get(
            pk=notes.pk if isinstance(notes, ReleaseNotes) else notes
        )
        release = _lock_for_change(notes.release_id, actor)
        if notes.state == NotesState.PUBLISHED:
            raise Conflict("These notes are already published.")
        if not notes.body.strip():
            raise InvalidInput("Empty notes cannot be published.")
        notes.state, notes.published_at, notes.published_by = (
            NotesState.PUBLISHED,
            timezone.now(),
            actor,
        )
        notes.save(update_fields=["state", "published_at", "published_by", "updated_at"])
        audit_record(
            actor=actor,
            action="notes.publish",
            target=notes,
            release=release,
            from_state=NotesState.DRAFT,
            to_state=NotesState.PUBLISHED,
            after={"body": notes.body},
        )
    return notes


def close_blockers(release: Release) -> list[dict[str, Any]]:
    """What the post-release work still lacks before the release may close (used by the
    readiness seam): incomplete validation steps, and a retrospective for risk ≥ medium."""
    # The governing risk (releases.risk), not the declared one: a release declared low but
    # assessed high still owes a retrospective.
    return close_blockers_from(
        pending=[i.title for i in release.validation_items.all() if not i.is_done],
        risk=current_governing_level(release),
        has_retrospective=Retrospective.objects.filter(release=release).exists(),
    )


def close_blockers_from(
    *, pending: list[str], risk: str, has_retrospective: bool
) -> list[dict[str, Any]]:
    """``close_blockers`` from data already read (the board reads it for all its cards at
    once): the titles of the validation steps not done, the governing risk level, and
    whether a retrospective exists."""
    found = []
    if pending:
        found.append(
            {
                "code": "validation_pending",
                "message": "Validation steps not done: " + "; ".join(pending),
            }
        )
    if RISK_ORDER[risk] >= RISK_ORDER[RiskLevel.MEDIUM] and not has_retrospective:
        found.append(
            {
                "code": "retrospective_missing",
                "message": "A retrospective is required for "
                f"{RiskLevel(risk).label.lower()} risk releases.",
            }
        )
    return found
