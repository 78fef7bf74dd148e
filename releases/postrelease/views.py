"""Post-release pages: validation checklist, retrospective and action items, impact
assessment, release notes per audience; the open-actions list and the lessons-learned search.

Thin views: selectors read, ``releases.postrelease.services`` write. Every write re-renders
the post-release panel (for htmx) or redirects to it; a refusal re-renders it with the
service's message and a 4xx status.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_GET, require_POST

from core.errors import DomainError
from core.roles import ALL_ROLES

from .. import communications, evidence, selectors
from .. import views as release_views
from ..choices import (
    OPEN_ACTION_STATUSES,
    EvidenceTrigger,
    NotesAudience,
    NotesState,
    ReleaseState,
)
from ..forms import apply_domain_error, users_with_role
from ..markdown import render_markdown
from ..models import ActionItem, EvidencePack, Release, ValidationItem
from . import panel
from . import services as postrelease
from .forms import (
    ActionItemForm,
    ActionsFilterForm,
    ActionStatusForm,
    CommunicationForm,
    CompleteItemForm,
    ImpactForm,
    LessonsSearchForm,
    NotesForm,
    RetrospectiveForm,
    ValidationItemForm,
)

PANEL = "releases/postrelease/panel.html"


def _release_or_404(request: HttpRequest, pk: int) -> Release:
    try:
        return selectors.release_detail(viewer=request.user, pk=pk)
    except Release.DoesNotExist:
        raise Http404("No such release.") from None


def _with_overdue(items) -> list[ActionItem]:
    today = timezone.localdate()
    items = list(items)
    for item in items:
        item.is_overdue = item.status in OPEN_ACTION_STATUSES and item.due_date < today
    return items


def _panel_context(request: HttpRequest, release: Release, **forms: Any) -> dict[str, Any]:
    can_change = request.user.has_perm("releases.change_release", release)
    after_deploy = release.state in postrelease.POST_DEPLOY_STATES
    retro = getattr(release, "retrospective", None)
    impact = getattr(release, "impact_assessment", None)
    notes = {n.audience: n for n in release.notes.all()}
    notes_rows = []
    for audience, label in NotesAudience.choices:
        note = notes.get(audience)
        body = (
            note.body
            if note
            else postrelease.release_notes_draft_text(release=release, audience=audience)
        )
        notes_rows.append(
            {
                "audience": audience,
                "label": label,
                "note": note,
                "published": bool(note and note.state == NotesState.PUBLISHED),
                "html": mark_safe(render_markdown(body)),  # sanitised by nh3
                "form": forms.get(f"notes_{audience}")
                or NotesForm(initial={"body": body}, prefix=f"notes-{audience}"),
            }
        )
    return {
        # Entries other apps provide (the incidents of the release): before the panel's own
        # keys, so none of them can shadow one.
        **panel.entries(release),
        "release": release,
        "can_change": can_change,
        "after_deploy": after_deploy,
        "open": release.state != ReleaseState.CLOSED,
        "validation_items": list(release.validation_items.select_related("done_by")),
        "retro": retro,
        "action_items": _with_overdue(release.action_items.select_related("owner", "team")),
        "impact": impact,
        "notes_rows": notes_rows,
        "close_blockers": postrelease.close_blockers(release)
        if release.state == ReleaseState.DEPLOYED
        else [],
        "validation_form": forms.get("validation") or ValidationItemForm(),
        "retro_form": forms.get("retro")
        or RetrospectiveForm(
            initial={
                "went_well": retro.went_well,
                "went_badly": retro.went_badly,
                "to_change": retro.to_change,
                "lessons_learned": retro.lessons_learned,
                "runbook_links": "\n".join(retro.runbook_links),
            }
            if retro
            else None
        ),
        "action_form": forms.get("action") or ActionItemForm(owners=users_with_role(*ALL_ROLES)),
        "impact_form": forms.get("impact")
        or ImpactForm(
            initial={
                "expected_outcome": impact.expected_outcome,
                "observed_outcome": impact.observed_outcome,
                "customer_impact": impact.customer_impact,
                "notes": impact.notes,
            }
            if impact
            else None
        ),
        "error": forms.get("error"),
        "communications": list(release.communications.all()),
        "comms_form": forms.get("comms") or CommunicationForm(),
        "evidence_packs": list(
            release.evidence_packs.only("id", "trigger", "created_at", "sha256")[:10]
        ),
    }


def _render_panel(
    request: HttpRequest, release: Release, status: int = 200, **forms
) -> HttpResponse:
    template = PANEL if request.htmx else "releases/postrelease/page.html"
    return render(request, template, _panel_context(request, release, **forms), status=status)


def _done(request: HttpRequest, release: Release, message: str) -> HttpResponse:
    """After a successful write. On the release page the whole page is refreshed (the
    blockers, the buttons and the timeline change too); on the review's own page, the panel.
    Without JavaScript: post/redirect/get."""
    if request.htmx:
        if urlparse(request.htmx.current_url or "").path == release.get_absolute_url():
            return release_views._written(request, release.pk, message)
        messages.success(request, message)
        return _render_panel(request, _release_or_404(request, release.pk))
    messages.success(request, message)
    return redirect(reverse("postrelease:page", args=[release.pk]))


@login_required
@require_GET
def page(request: HttpRequest, pk: int) -> HttpResponse:
    """The post-release review of one release (the release page loads it lazily)."""
    return _render_panel(request, _release_or_404(request, pk))


def _handle(request, pk, form_class, form_key, call, message, form_kwargs=None):
    """Validate a form, call the service, and answer with the panel (or its errors)."""
    release = _release_or_404(request, pk)
    form = form_class(request.POST, **(form_kwargs or {}))
    if not form.is_valid():
        return _render_panel(request, release, status=400, **{form_key: form})
    try:
        call(release, form.cleaned_data)
    except DomainError as error:
        apply_domain_error(form, error)
        return _render_panel(request, release, status=error.status_code, **{form_key: form})
    return _done(request, release, message)


@login_required
@require_POST
def validation_add(request: HttpRequest, pk: int) -> HttpResponse:
    return _handle(
        request,
        pk,
        ValidationItemForm,
        "validation",
        lambda r, d: postrelease.validation_item_add(
            release=r, actor=request.user, title=d["title"]
        ),
        "Validation step added.",
    )


@login_required
@require_POST
def validation_complete(request: HttpRequest, pk: int, item_pk: int) -> HttpResponse:
    release = _release_or_404(request, pk)
    if not ValidationItem.objects.filter(pk=item_pk, release=release).exists():
        raise Http404("No such validation step.")
    form = CompleteItemForm(request.POST)
    form.is_valid()
    try:
        postrelease.validation_item_complete(
            item=item_pk, actor=request.user, note=form.cleaned_data.get("note", "")
        )
    except DomainError as error:
        return _render_panel(request, release, status=error.status_code, error=error.message)
    return _done(request, release, "Validation step done.")


@login_required
@require_POST
def retrospective(request: HttpRequest, pk: int) -> HttpResponse:
    return _handle(
        request,
        pk,
        RetrospectiveForm,
        "retro",
        lambda r, d: postrelease.retrospective_record(release=r, actor=request.user, **d),
        "Retrospective saved.",
    )


@login_required
@require_POST
def action_add(request: HttpRequest, pk: int) -> HttpResponse:
    return _handle(
        request,
        pk,
        ActionItemForm,
        "action",
        lambda r, d: postrelease.action_item_add(release=r, actor=request.user, **d),
        "Action item added.",
        {"owners": users_with_role(*ALL_ROLES)},
    )


@login_required
@require_POST
def action_status(request: HttpRequest, pk: int, item_pk: int) -> HttpResponse:
    release = _release_or_404(request, pk)
    if not ActionItem.objects.filter(pk=item_pk, release=release).exists():
        raise Http404("No such action item.")
    form = ActionStatusForm(request.POST)
    if not form.is_valid():
        return _render_panel(request, release, status=400, error="Choose a valid status.")
    try:
        postrelease.action_item_set_status(
            item=item_pk, actor=request.user, status=form.cleaned_data["status"]
        )
    except DomainError as error:
        return _render_panel(request, release, status=error.status_code, error=error.message)
    if request.POST.get("next") == "actions":
        return redirect(reverse("postrelease:actions"))
    return _done(request, release, "Action item updated.")


@login_required
@require_POST
def impact(request: HttpRequest, pk: int) -> HttpResponse:
    return _handle(
        request,
        pk,
        ImpactForm,
        "impact",
        lambda r, d: postrelease.impact_assessment_record(release=r, actor=request.user, **d),
        "Impact assessment saved.",
    )


def _audience(audience: str) -> str:
    if audience not in NotesAudience.values:
        raise Http404("No such audience.")
    return audience


@login_required
@require_POST
def notes_save(request: HttpRequest, pk: int, audience: str) -> HttpResponse:
    audience = _audience(audience)
    redraft = "redraft" in request.POST
    return _handle(
        request,
        pk,
        NotesForm,
        f"notes_{audience}",
        lambda r, d: postrelease.release_notes_save(
            release=r, actor=request.user, audience=audience, body=None if redraft else d["body"]
        ),
        "Release notes redrafted from scope." if redraft else "Release notes saved.",
        {"prefix": f"notes-{audience}"},
    )


@login_required
@require_POST
def notes_publish(request: HttpRequest, pk: int, audience: str) -> HttpResponse:
    audience = _audience(audience)
    release = _release_or_404(request, pk)
    try:
        notes = release.notes.filter(audience=audience).first() or postrelease.release_notes_save(
            release=release, actor=request.user, audience=audience
        )
        postrelease.release_notes_publish(notes=notes, actor=request.user)
    except DomainError as error:
        return _render_panel(request, release, status=error.status_code, error=error.message)
    return _done(request, release, "Release notes published; they are now frozen.")


@login_required
@require_POST
def notes_preview(request: HttpRequest, pk: int, audience: str) -> HttpResponse:
    """Render Markdown as it will be shown (sanitised), without saving."""
    _audience(audience)
    _release_or_404(request, pk)
    form = NotesForm(request.POST, prefix=f"notes-{audience}")
    body = form.cleaned_data["body"] if form.is_valid() else ""
    html = mark_safe(render_markdown(body))  # sanitised by nh3
    return render(request, "releases/postrelease/preview.html", {"html": html})


@login_required
@require_GET
def actions(request: HttpRequest) -> HttpResponse:
    """Open action items across releases, per team, overdue ones highlighted."""
    form = ActionsFilterForm(request.GET or None)
    team = form.cleaned_data.get("team") if form.is_valid() else None
    items = selectors.open_action_items(viewer=request.user, team_slug=team.slug if team else None)
    return render(request, "releases/postrelease/actions.html", {"form": form, "items": items})


@login_required
@require_GET
def lessons(request: HttpRequest) -> HttpResponse:
    """Search past retrospectives' lessons learned."""
    form = LessonsSearchForm(request.GET or None)
    query = form.cleaned_data.get("q", "") if form.is_valid() else ""
    results = selectors.lessons_learned_search(viewer=request.user, query=query) if query else []
    return render(
        request,
        "releases/postrelease/lessons.html",
        {"form": form, "query": query, "results": results},
    )


def _zip_response(pack: EvidencePack) -> HttpResponse:
    response = HttpResponse(evidence.evidence_pack_zip(pack), content_type="application/zip")
    stamp = pack.created_at.strftime("%Y%m%dT%H%M%SZ")
    name = f"evidence-release-{pack.release_id}-{stamp}.zip"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


@login_required
@require_POST
def evidence_capture(request: HttpRequest, pk: int) -> HttpResponse:
    """Capture a fresh evidence pack now and download it."""
    release = _release_or_404(request, pk)
    pack = evidence.evidence_pack_capture(
        release=release, actor=request.user, trigger=EvidenceTrigger.ON_DEMAND
    )
    return _zip_response(pack)


@login_required
@require_GET
def evidence_download(request: HttpRequest, pk: int, pack_pk: int) -> HttpResponse:
    """Download a pack captured earlier (for example the one frozen at deployment)."""
    release = _release_or_404(request, pk)
    pack = EvidencePack.objects.filter(pk=pack_pk, release=release).first()
    if pack is None:
        raise Http404("No such evidence pack.")
    return _zip_response(pack)


@login_required
@require_POST
def communication_add(request: HttpRequest, pk: int) -> HttpResponse:
    return _handle(
        request,
        pk,
        CommunicationForm,
        "comms",
        lambda r, d: communications.communication_schedule(release=r, actor=request.user, **d),
        "Message scheduled.",
    )


@login_required
@require_POST
def communication_cancel(request: HttpRequest, pk: int, comm_pk: int) -> HttpResponse:
    release = _release_or_404(request, pk)
    if not release.communications.filter(pk=comm_pk).exists():
        raise Http404("No such message.")
    try:
        communications.communication_cancel(communication=comm_pk, actor=request.user)
    except DomainError as error:
        return _render_panel(request, release, status=error.status_code, error=error.message)
    return _done(request, release, "Message cancelled.")
