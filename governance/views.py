"""Governance pages: the approvals inbox, the CAB workbench and the release page's
governance panel. Thin: each POST validates a small form and calls the same service as the
API; a refusal (DomainError) is shown in the item it concerns with its 4xx status, which
base.html tells htmx to swap in."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from core.errors import DomainError
from core.roles import Role, has_role
from releases.forms import apply_domain_error
from releases.models import Release
from releases.selectors import visible_releases

from . import selectors, services
from .choices import MeetingState
from .forms import (
    AgendaCloseForm,
    BreakGlassForm,
    BreakGlassReviewForm,
    BreakGlassRevokeForm,
    CommentForm,
    FreezeExceptionForm,
    GateDecisionForm,
    InboxFilterForm,
    MeetingForm,
    RiskOverrideForm,
    VoteForm,
)
from .models import AgendaItem, CABMeeting, ChangeRequest, FreezeException
from .readiness import active_freezes


def _error_text(form) -> str:
    return " ".join(str(e) for errors in form.errors.values() for e in errors)


# --- approvals inbox --------------------------------------------------------------------------


def _evidence(items, rules) -> None:
    """Attach freeze conflicts and CI status to each item's release (no queries per item)."""
    for item in items:
        release = item.release
        if release is None or hasattr(release, "conflicts"):
            continue
        release.conflicts = selectors.freeze_conflicts(release, rules)
        gates = list(release.gate_checks.all())
        release.gate_list = gates
        release.ci_gate = next((g for g in gates if g.kind == "ci_green"), None)


def _inbox_context(request: HttpRequest) -> dict[str, Any]:
    box = selectors.inbox(viewer=request.user)
    rules = selectors.active_freeze_rules()
    _evidence(box.sign_offs, rules)
    _evidence(box.votes, rules)
    for gate in box.sign_offs:
        gate.can_waive = services.may_waive(request.user, gate)
    every = selectors.inbox_rows(box)
    form = InboxFilterForm(
        request.GET or None,
        rows=every,
        kinds=selectors.INBOX_KINDS,
        sorts=selectors.INBOX_SORTS,
    )
    filters = form.filters() if request.GET else {}
    query = request.GET.copy()
    query.pop("part", None)
    return {
        "count_query": query.urlencode(),
        "inbox": box,
        "can_vote": has_role(request.user, Role.CAB_MEMBER, Role.CAB_CHAIR),
        "filter_form": form,
        "rows": selectors.inbox_rows(box, **filters) if filters else every,
        "total": len(every),
    }


@login_required
@require_GET
def inbox(request: HttpRequest) -> HttpResponse:
    """Every sign-off, vote, freeze exception and review waiting for the current user, one
    compact row each, filtered by kind, release and service and sorted by due date, age or
    risk; a row opens in place. htmx asks for the rows alone when a filter changes."""
    context = _inbox_context(request)
    if request.htmx and request.GET.get("part") == "count":
        return render(request, "governance/partials/inbox_count.html", context)
    if request.htmx and request.htmx.target == "inbox-list":
        return render(request, "governance/partials/inbox_list.html", context)
    return render(request, "governance/inbox.html", context)


def _inbox_changed(response: HttpResponse) -> HttpResponse:
    """An item was decided in place: the inbox's count asks for itself again (htmx event)."""
    response["HX-Trigger"] = "inbox-changed"
    return response


def _signoff_item(request: HttpRequest, pk: int, status: int = 200, **extra) -> HttpResponse:
    gate = (
        selectors.gate_checks(viewer=request.user)
        .select_related("release__risk_assessment", "release__owner")
        .prefetch_related("release__gate_checks", "release__services")
        .filter(pk=pk)
        .first()
    )
    if gate is None:
        raise Http404("No such gate check.")
    _evidence([gate], selectors.active_freeze_rules())
    gate.can_waive = services.may_waive(request.user, gate)
    return render(
        request, "governance/partials/inbox_signoff.html", {"gate": gate, **extra}, status=status
    )


@login_required
@require_POST
def gate_decide(request: HttpRequest, pk: int) -> HttpResponse:
    """Sign off, reject (comment required) or waive (justification required) a gate, from
    the inbox (``panel=inbox``) or the release page (``panel=release``)."""
    gate = selectors.gate_checks(viewer=request.user).filter(pk=pk).first()
    if gate is None:
        raise Http404("No such gate check.")
    panel = request.POST.get("panel", "inbox")
    form = GateDecisionForm(request.POST)
    error, status = "", 200
    if not form.is_valid():
        error, status = _error_text(form), 422
    else:
        decision, comment = form.cleaned_data["decision"], form.cleaned_data["comment"]
        try:
            if decision == "sign_off":
                services.gate_sign_off(gate=gate, actor=request.user, comment=comment)
            elif decision == "reject":
                services.gate_reject(gate=gate, actor=request.user, comment=comment)
            else:
                services.gate_waive(gate=gate, actor=request.user, justification=comment)
        except DomainError as exc:
            error, status = exc.message, exc.status_code
    if panel == "release":
        return _release_panel(
            request, gate.release_id, status=status, gate_error=error, error_gate=gate.pk
        )
    if not request.htmx:
        if error:
            messages.error(request, error)
        return redirect("governance:inbox")
    response = _signoff_item(request, pk, status=status, error=error, done=not error)
    return response if error else _inbox_changed(response)


def _vote_item(request: HttpRequest, pk: int, status: int = 200, **extra) -> HttpResponse:
    box_votes = (
        selectors.change_requests(viewer=request.user)
        .select_related("release__risk_assessment")
        .prefetch_related("votes__voter", "release__gate_checks", "release__services")
        .filter(pk=pk)
    )
    cr = box_votes.first()
    if cr is None:
        raise Http404("No such change request.")
    cr.my_vote = next((v for v in cr.votes.all() if v.voter_id == request.user.pk), None)
    cr.decision = selectors.tally(cr, list(cr.votes.all()))
    if cr.release is not None:
        _evidence([cr], selectors.active_freeze_rules())
    return render(
        request, "governance/partials/inbox_vote.html", {"cr": cr, **extra}, status=status
    )


@login_required
@require_POST
def vote(request: HttpRequest, pk: int) -> HttpResponse:
    """Cast or change a vote (comment required on reject), from the inbox or the CAB
    workbench (``item`` = agenda item to re-render)."""
    cr = selectors.change_requests(viewer=request.user).filter(pk=pk).first()
    if cr is None:
        raise Http404("No such change request.")
    form = VoteForm(request.POST)
    error, status = "", 200
    if not form.is_valid():
        error, status = _error_text(form), 422
    else:
        try:
            services.vote_cast(change_request=cr, actor=request.user, **form.cleaned_data)
        except DomainError as exc:
            error, status = exc.message, exc.status_code
    item = request.POST.get("item")
    if item:
        return _cab_item(request, int(item), status=status, error=error)
    if not request.htmx:
        if error:
            messages.error(request, error)
        return redirect("governance:inbox")
    response = _vote_item(request, pk, status=status, error=error, done=not error)
    return response if error else _inbox_changed(response)


@login_required
@require_POST
def review(request: HttpRequest, pk: int) -> HttpResponse:
    """Record an emergency change's post-implementation review (notes required)."""
    cr = selectors.change_requests(viewer=request.user).filter(pk=pk).first()
    if cr is None:
        raise Http404("No such change request.")
    form = CommentForm(request.POST)
    form.is_valid()
    try:
        services.change_request_review(
            change_request=cr, actor=request.user, notes=form.cleaned_data.get("comment", "")
        )
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Review of CR-{cr.number} recorded.")
    return redirect("governance:inbox")


@login_required
@require_POST
def exception_decide(request: HttpRequest, pk: int, decision: str) -> HttpResponse:
    """Approve or reject (comment required) a freeze exception."""
    exception = selectors.freeze_exceptions(viewer=request.user).filter(pk=pk).first()
    if exception is None or decision not in ("approve", "reject"):
        raise Http404("No such freeze exception.")
    form = CommentForm(request.POST)
    form.is_valid()
    comment = form.cleaned_data.get("comment", "")
    error, status = "", 200
    try:
        if decision == "approve":
            services.freeze_exception_approve(
                exception=exception, actor=request.user, comment=comment
            )
        else:
            services.freeze_exception_reject(
                exception=exception, actor=request.user, comment=comment
            )
    except DomainError as exc:
        error, status = exc.message, exc.status_code
    exception = FreezeException.objects.select_related("freeze", "release", "requested_by").get(
        pk=pk
    )
    if not request.htmx:
        if error:
            messages.error(request, error)
        return redirect("governance:inbox")
    response = render(
        request,
        "governance/partials/inbox_exception.html",
        {"exception": exception, "error": error, "done": not error},
        status=status,
    )
    return response if error else _inbox_changed(response)


# --- CAB workbench ----------------------------------------------------------------------------


@login_required
@require_GET
def cab_workbench(request: HttpRequest) -> HttpResponse:
    """Upcoming meetings, their agendas with evidence and the live tally; inline voting; the
    chair builds agendas, reorders and closes items and meetings."""
    return _workbench(request)


def _workbench(request: HttpRequest, meeting_form=None, status: int = 200) -> HttpResponse:
    """The workbench; ``meeting_form`` is a refused "Schedule a meeting" form, shown with
    its errors next to its fields and the input kept."""
    meetings = selectors.workbench_meetings(viewer=request.user)
    rules = selectors.active_freeze_rules()
    for meeting in meetings:
        _evidence([item.change_request for item in meeting.items.all()], rules)
    is_chair = has_role(request.user, Role.CAB_CHAIR, Role.ADMINISTRATOR)
    return render(
        request,
        "governance/cab.html",
        {
            # Scheduled meetings first; the ones closed this week under their own heading.
            "upcoming": [m for m in meetings if m.state == MeetingState.SCHEDULED],
            "recently_closed": [m for m in meetings if m.state != MeetingState.SCHEDULED],
            "is_chair": is_chair,
            "meeting_form": (meeting_form or MeetingForm()) if is_chair else None,
            "unscheduled": list(selectors.unscheduled_change_requests()) if is_chair else [],
        },
        status=status,
    )


def _meeting_page(
    request: HttpRequest,
    pk: int,
    *,
    template: str = "governance/meeting.html",
    status: int = 200,
    **extra,
) -> HttpResponse:
    try:
        meeting, attendees = selectors.meeting_page(viewer=request.user, pk=pk)
    except CABMeeting.DoesNotExist:
        raise Http404("No such meeting.") from None
    _evidence([item.change_request for item in meeting.agenda], selectors.active_freeze_rules())
    is_chair = has_role(request.user, Role.CAB_CHAIR, Role.ADMINISTRATOR)
    open_items = [item for item in meeting.agenda if not item.outcome]
    context = {
        "meeting": meeting,
        "meeting_end": meeting.scheduled_at + meeting.duration,
        "attendees": attendees,
        "present": sum(1 for a in attendees if a.present),
        "is_chair": is_chair,
        "may_mark": is_chair and meeting.state == MeetingState.SCHEDULED,
        "open_items": open_items,
        "unscheduled": (
            list(selectors.unscheduled_change_requests())
            if is_chair and meeting.state == MeetingState.SCHEDULED
            else []
        ),
        "here": request.path,
        **extra,
    }
    return render(request, template, context, status=status)


@login_required
@require_GET
def meeting_page(request: HttpRequest, pk: int) -> HttpResponse:
    """One CAB meeting: its agenda with the live tally of each item, its attendees with
    their presence, and what closing each open item would record now and why. Only the
    actions the viewer may take are shown (votes to voters, the rest to the chair).
    ``?part=preview`` is the outcome preview alone (htmx polls it)."""
    if request.htmx and request.GET.get("part") == "preview":
        return _meeting_page(request, pk, template="governance/partials/meeting_preview.html")
    return _meeting_page(request, pk)


@login_required
@require_POST
def meeting_attendance(request: HttpRequest, pk: int, user_pk: int) -> HttpResponse:
    """Mark an attendee present or absent (the chair; audited). htmx gets the attendees
    panel back, with the refusal on it if there is one."""
    meeting = selectors.meetings(viewer=request.user).filter(pk=pk).first()
    attendee = get_user_model().objects.filter(pk=user_pk).first()
    if meeting is None or attendee is None:
        raise Http404("No such meeting or attendee.")
    error, status = "", 200
    try:
        services.meeting_mark_attendance(
            meeting=meeting,
            actor=request.user,
            attendee=attendee,
            present=request.POST.get("present") == "yes",
        )
    except DomainError as exc:
        error, status = exc.message, exc.status_code
    if not request.htmx:
        if error:
            messages.error(request, error)
        return redirect("governance:meeting", pk=pk)
    return _meeting_page(
        request,
        pk,
        template="governance/partials/meeting_attendees.html",
        attendance_error=error,
        status=status,
    )


def _cab_item(request: HttpRequest, pk: int, status: int = 200, **extra) -> HttpResponse:
    meetings = selectors.workbench_meetings(viewer=request.user)
    item = next((i for m in meetings for i in m.items.all() if i.pk == pk), None)
    if item is None:
        raise Http404("No such agenda item.")
    _evidence([item.change_request], selectors.active_freeze_rules())
    context = {
        "item": item,
        "meeting": item.meeting,
        "is_chair": has_role(request.user, Role.CAB_CHAIR, Role.ADMINISTRATOR),
        **extra,
    }
    return render(request, "governance/partials/cab_item.html", context, status=status)


@login_required
@require_GET
def cab_item(request: HttpRequest, pk: int) -> HttpResponse:
    """One agenda item (polled by the workbench for the live tally)."""
    return _cab_item(request, pk)


def _chair_action(request: HttpRequest, fn) -> HttpResponse:
    try:
        fn()
    except DomainError as exc:
        messages.error(request, exc.message)
    return _back(request)


def _back(request: HttpRequest) -> HttpResponse:
    """Back to the page the form was on (a meeting's page), else the workbench."""
    target = request.POST.get("next", "")
    if target.startswith("/") and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return redirect(target)
    return redirect("governance:cab")


@login_required
@require_POST
def meeting_create(request: HttpRequest) -> HttpResponse:
    form = MeetingForm(request.POST)
    if not form.is_valid():
        return _workbench(request, form, status=422)
    try:
        meeting = services.meeting_create(actor=request.user, **form.cleaned_data)
    except DomainError as exc:
        apply_domain_error(form, exc)
        return _workbench(request, form, status=exc.status_code)
    messages.success(request, f"Scheduled {meeting.title}.")
    return redirect("governance:cab")


def _build_agenda(request: HttpRequest, meeting) -> None:
    added = services.meeting_build_agenda(meeting=meeting, actor=request.user)
    if added:
        count = len(added)
        messages.success(
            request, f"Added {count} change request{'s' if count != 1 else ''} to the agenda."
        )
    else:
        messages.info(
            request,
            "Nothing is due before the next meeting: no submitted change request is waiting "
            "for this one.",
        )


@login_required
@require_POST
def meeting_action(request: HttpRequest, pk: int, name: str) -> HttpResponse:
    meeting = selectors.meetings(viewer=request.user).filter(pk=pk).first()
    if meeting is None:
        raise Http404("No such meeting.")
    actions = {
        "build-agenda": lambda: _build_agenda(request, meeting),
        "close": lambda: services.meeting_close(meeting=meeting, actor=request.user),
    }
    if name == "add-item":
        cr = ChangeRequest.objects.filter(pk=request.POST.get("change_request")).first()
        if cr is None:
            raise Http404("No such change request.")
        return _chair_action(
            request,
            lambda: services.agenda_item_add(
                meeting=meeting, change_request=cr, actor=request.user
            ),
        )
    if name not in actions:
        raise Http404("No such action.")
    return _chair_action(request, actions[name])


@login_required
@require_POST
def agenda_item_action(request: HttpRequest, pk: int, name: str) -> HttpResponse:
    item = AgendaItem.objects.filter(
        pk=pk, meeting__in=selectors.meetings(viewer=request.user)
    ).first()
    if item is None:
        raise Http404("No such agenda item.")
    if name == "move":
        position = item.position + (-1 if request.POST.get("direction") == "up" else 1)
        return _chair_action(
            request,
            lambda: services.agenda_item_move(item=item, actor=request.user, position=position),
        )
    if name != "close":
        raise Http404("No such action.")
    form = AgendaCloseForm(request.POST)
    error, status = "", 200
    if not form.is_valid():
        error, status = _error_text(form), 422
    else:
        try:
            services.agenda_item_close(item=item, actor=request.user, **form.service_kwargs())
        except DomainError as exc:
            error, status = exc.message, exc.status_code
    if not request.htmx:
        if error:
            messages.error(request, error)
        return _back(request)
    close_comment = request.POST.get("comment", "") if error else ""
    return _cab_item(request, pk, status=status, error=error, close_comment=close_comment)


# --- release page panel -----------------------------------------------------------------------


def _release_or_404(request: HttpRequest, pk: int) -> Release:
    release = (
        visible_releases(viewer=request.user).prefetch_related("services").filter(pk=pk).first()
    )
    if release is None:
        raise Http404("No such release.")
    return release


def _release_panel(request: HttpRequest, pk: int, status: int = 200, **extra) -> HttpResponse:
    release = _release_or_404(request, pk)
    context = selectors.release_governance(release=release)
    user = request.user
    roles = set(selectors.user_roles(user))
    # The services refuse every gate, risk and freeze action once the release is final.
    live = services.is_live(release)
    for gate in context["gates"]:
        gate.can_sign = (
            live and gate.is_manual and gate.role in roles and release.owner_id != user.pk
        )
        gate.can_waive = live and services.may_waive(user, gate) and release.owner_id != user.pk
    manages = live and user.has_perm("releases.transition_release", release)
    notes = {n["id"]: n for n in context["blockers"]["break_glass"]}
    glasses = list(selectors.break_glasses(viewer=user, release=release))
    for glass in glasses:
        glass.note = notes.get(glass.pk)
        glass.can_review = services.may_review_break_glass(user, glass)
        glass.can_revoke = (
            live
            and glass.note is not None
            and glass.note["active"]
            and (glass.requested_by_id == user.pk or services.may_break_glass(user))
        )
    may_break = live and services.may_break_glass(user)
    context.update(
        release=release,
        manages=manages,
        override_form=RiskOverrideForm() if manages else None,
        freezes=[w for w, _ in _release_freezes(release)],
        break_glasses=glasses,
        break_glass_form=extra.pop("break_glass_form", None)
        or (BreakGlassForm() if may_break else None),
        **extra,
    )
    return render(request, "governance/partials/release_panel.html", context, status=status)


def _release_freezes(release: Release):
    if not release.window_start:
        return []
    return active_freezes(release, release.window_start)


@login_required
def release_panel(request: HttpRequest, pk: int) -> HttpResponse:
    """The governance panel of the release page (loaded lazily): gate checklist with the
    policy version, explained risk, change request and tally, why it is blocked, freezes."""
    return _release_panel(request, pk)


@login_required
@require_POST
def gate_reset(request: HttpRequest, pk: int) -> HttpResponse:
    """Re-open a decided gate (release managers), with a reason: the same service as the
    API's reset action."""
    gate = selectors.gate_checks(viewer=request.user).filter(pk=pk).first()
    if gate is None:
        raise Http404("No such gate check.")
    form = CommentForm(request.POST)
    form.is_valid()
    try:
        services.gate_reset(gate=gate, actor=request.user, reason=form.cleaned_data["comment"])
    except DomainError as exc:
        return _release_panel(
            request, gate.release_id, status=exc.status_code, gate_error=exc.message
        )
    return _release_panel(request, gate.release_id)


@login_required
@require_POST
def release_risk_override(request: HttpRequest, pk: int) -> HttpResponse:
    release = _release_or_404(request, pk)
    form = RiskOverrideForm(request.POST)
    if not form.is_valid():
        return _release_panel(request, pk, status=422, risk_error=_error_text(form))
    try:
        services.risk_override(release=release, actor=request.user, **form.cleaned_data)
    except DomainError as exc:
        return _release_panel(request, pk, status=exc.status_code, risk_error=exc.message)
    response = _release_panel(request, pk)
    if request.htmx:
        # The governing risk shows in the page header too (and decides gates and closing):
        # reload the page rather than leave the header saying the old level.
        response["HX-Refresh"] = "true"
    return response


@login_required
@require_POST
def release_exception_request(request: HttpRequest, pk: int) -> HttpResponse:
    release = _release_or_404(request, pk)
    form = FreezeExceptionForm(request.POST)
    if not form.is_valid():
        return _release_panel(request, pk, status=422, freeze_error=_error_text(form))
    try:
        services.freeze_exception_request(
            freeze=form.cleaned_data["freeze"],
            release=release,
            actor=request.user,
            justification=form.cleaned_data["justification"],
        )
    except DomainError as exc:
        return _release_panel(request, pk, status=exc.status_code, freeze_error=exc.message)
    return _release_panel(request, pk)


# --- break-glass on the release page -----------------------------------------------------------


@login_required
@require_POST
def release_break_glass(request: HttpRequest, pk: int) -> HttpResponse:
    """Break the glass on a freeze for this release (the same service as the API); field
    errors are shown next to the fields with a 422, a refusal with its 4xx."""
    release = _release_or_404(request, pk)
    form = BreakGlassForm(request.POST)
    if form.is_valid():
        try:
            services.break_glass_create(release=release, actor=request.user, **form.cleaned_data)
        except DomainError as exc:
            apply_domain_error(form, exc)
            status = 422 if isinstance(exc.details, dict) else exc.status_code
            return _release_panel(request, pk, status=status, break_glass_form=form)
        return _release_panel(request, pk)
    return _release_panel(request, pk, status=422, break_glass_form=form)


def _glass_or_404(request: HttpRequest, pk: int, glass_pk: int):
    glass = selectors.break_glasses(viewer=request.user, release=pk).filter(pk=glass_pk).first()
    if glass is None:
        raise Http404("No such break-glass.")
    return glass


@login_required
@require_POST
def release_break_glass_review(request: HttpRequest, pk: int, glass_pk: int) -> HttpResponse:
    """Approve a break-glass's post-implementation review, with a note (not its requester)."""
    glass = _glass_or_404(request, pk, glass_pk)
    form = BreakGlassReviewForm(request.POST)
    if not form.is_valid():
        return _release_panel(request, pk, status=422, break_glass_error=_error_text(form))
    try:
        services.break_glass_review_approve(
            glass=glass, actor=request.user, note=form.cleaned_data["note"]
        )
    except DomainError as exc:
        return _release_panel(request, pk, status=exc.status_code, break_glass_error=exc.message)
    return _release_panel(request, pk)


@login_required
@require_POST
def release_break_glass_revoke(request: HttpRequest, pk: int, glass_pk: int) -> HttpResponse:
    """Revoke a break-glass before its expiry, with a reason."""
    glass = _glass_or_404(request, pk, glass_pk)
    form = BreakGlassRevokeForm(request.POST)
    if not form.is_valid():
        return _release_panel(request, pk, status=422, break_glass_error=_error_text(form))
    try:
        services.break_glass_revoke(
            glass=glass, actor=request.user, reason=form.cleaned_data["reason"]
        )
    except DomainError as exc:
        return _release_panel(request, pk, status=exc.status_code, break_glass_error=exc.message)
    return _release_panel(request, pk)
