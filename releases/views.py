"""Server-rendered release pages: thin views over selectors (reads) and services (writes).

One view renders the full page or, for htmx, the partial it concerns. A successful write
answers an htmx request with the whole detail page and tells htmx to swap only
``#release-page`` (a transition changes the badge, the buttons and the timeline at once);
a refused write re-renders just the panel that was used, with the service's message.
Without JavaScript the same forms post normally and redirect (or re-render on error).
Hidden releases answer 404 everywhere, so their existence is not disclosed.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.core.serializers.json import DjangoJSONEncoder
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import reselect, reswap, retarget

from core.errors import DomainError
from core.roles import ALL_ROLES

from . import actions, risk, selectors, services
from .choices import TERMINAL_STATES, ReleaseState, ScopeStatus
from .forms import (
    ReleaseFilterForm,
    ReleaseForm,
    RiskForm,
    RollbackPlanForm,
    ScopeItemForm,
    TransitionForm,
    apply_domain_error,
    users_with_role,
)
from .models import Release

PAGE_SIZE = 25


def _release_or_404(request: HttpRequest, pk: int) -> Release:
    try:
        return selectors.release_detail(viewer=request.user, pk=pk)
    except Release.DoesNotExist:
        raise Http404("No such release.") from None


# --- list -------------------------------------------------------------------------------------


@login_required
@require_GET
def release_list(request: HttpRequest) -> HttpResponse:
    """Releases with filters and pagination. Users without a role get an explanation."""
    if not request.user.has_perm("releases.view_release"):
        return render(request, "releases/list.html", {"no_access": True})
    choices = selectors.filter_choices()
    form = ReleaseFilterForm(
        request.GET or None, services=choices["services"], teams=choices["teams"]
    )
    releases = selectors.release_list(viewer=request.user, filters=form.filters())
    page = Paginator(releases, PAGE_SIZE).get_page(request.GET.get("page"))
    context = {"form": form, "page": page, "releases": page.object_list}
    # A history-restore request (Back after filtering) wants the whole page again.
    if (
        request.htmx
        and request.htmx.target == "results"
        and not request.htmx.history_restore_request
    ):
        return render(request, "releases/partials/release_results.html", context)
    return render(request, "releases/list.html", context)


# --- create / edit ----------------------------------------------------------------------------


@login_required
def release_create(request: HttpRequest) -> HttpResponse:
    if not request.user.has_perm("releases.add_release"):
        raise PermissionDenied("Only release managers can create releases.")
    form = ReleaseForm(request.POST or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        try:
            release = services.release_create(actor=request.user, **form.service_kwargs())
        except DomainError as error:
            apply_domain_error(form, error)
        else:
            messages.success(request, f"Created {release} as a draft.")
            return redirect(release)
    status = 422 if form.is_bound and form.errors else 200
    return render(request, "releases/form.html", {"form": form, "release": None}, status=status)


def _changes(release: Release, data: dict[str, Any]) -> dict[str, Any]:
    """Only what differs from the release, so the audit trail records real edits."""
    changes: dict[str, Any] = {}
    for field, value in data.items():
        if field == "services":
            if {s.pk for s in value} != {s.pk for s in release.services.all()}:
                changes[field] = list(value)
        elif field in ("owner", "product_owner"):
            if (value.pk if value else None) != getattr(release, f"{field}_id"):
                changes[field] = value
        elif getattr(release, field) != value:
            changes[field] = value
    return changes


@login_required
def release_edit(request: HttpRequest, pk: int) -> HttpResponse:
    release = _release_or_404(request, pk)
    if not request.user.has_perm("releases.change_release", release):
        raise PermissionDenied("Only a release manager of the owning team can edit this release.")
    form = ReleaseForm(request.POST or None, user=request.user, release=release)
    if request.method == "POST" and form.is_valid():
        changes = _changes(release, form.service_kwargs())
        if not changes:
            messages.info(request, "Nothing changed.")
            return redirect(release)
        try:
            services.release_update(release=release, actor=request.user, changes=changes)
        except DomainError as error:
            apply_domain_error(form, error)
        else:
            messages.success(request, f"Saved {release}.")
            return redirect(release)
    status = 422 if form.is_bound and form.errors else 200
    return render(request, "releases/form.html", {"form": form, "release": release}, status=status)


# --- detail -----------------------------------------------------------------------------------


def _detail_context(request: HttpRequest, release: Release, **overrides: Any) -> dict[str, Any]:
    """Everything the detail page and its panels show. Overrides carry bound forms and
    errors back into the panel that was used."""
    user = request.user
    can_change = user.has_perm("releases.change_release", release)
    editable = can_change and release.state not in TERMINAL_STATES
    scope_editable = editable and release.state not in (
        ReleaseState.DEPLOYING,
        ReleaseState.DEPLOYED,
    )
    bound_transition = overrides.pop("transition_forms", {})
    transitions = []
    # The one list of what the viewer may press now (releases.actions): a blocked action is
    # shown disabled with what blocks it, rather than offered and then refused.
    for action in actions.release_actions(release=release, actor=user):
        transitions.append(
            {
                "name": action.name,
                "label": action.label,
                "reason_required": action.reason_required,
                "danger": action.danger,
                "blockers": list(action.blockers),
                "form": bound_transition.get(action.name)
                or TransitionForm(
                    reason_required=action.reason_required, auto_id=f"id_{action.name}_%s"
                ),
            }
        )
    bound_scope = overrides.pop("scope_edit_forms", {})
    bound_risk = overrides.pop("risk_edit_forms", {})
    owners = users_with_role(*ALL_ROLES) if editable else None
    scope_rows = [
        {
            "item": item,
            "form": bound_scope.get(item.pk)
            or (
                ScopeItemForm(
                    initial={f: getattr(item, f) for f in ScopeItemForm.base_fields},
                    auto_id=f"id_scope{item.pk}_%s",
                )
                if scope_editable
                else None
            ),
        }
        for item in release.scope_items.all()
    ]
    risk_rows = [
        {
            "risk": risk,
            "form": bound_risk.get(risk.pk)
            or (
                RiskForm(
                    initial={
                        "description": risk.description,
                        "likelihood": risk.likelihood,
                        "impact": risk.impact,
                        "mitigation": risk.mitigation,
                        "owner": risk.owner_id,
                        "status": risk.status,
                    },
                    owners=owners,
                    auto_id=f"id_risk{risk.pk}_%s",
                )
                if editable
                else None
            ),
        }
        for risk in release.risks.all()
    ]
    plan = getattr(release, "rollback_plan", None)
    # Moving forward first (the first one is the primary button), ending or undoing last.
    transitions.sort(key=lambda t: t["danger"])
    context: dict[str, Any] = {
        "release": release,
        "header_risk": risk.risk_header(release),
        "can_change": can_change,
        "editable": editable,
        "scope_editable": scope_editable,
        "transitions": transitions,
        "transition_error": None,
        "blockers": [],
        "open_transition": None,
        "scope_rows": scope_rows,
        "scope_form": ScopeItemForm(auto_id="id_scope_new_%s"),
        "scope_error": None,
        "risk_error": None,
        "rollback_error": None,
        "risk_rows": risk_rows,
        "risk_form": RiskForm(owners=owners, adding=True, auto_id="id_risk_new_%s")
        if editable
        else None,
        "rollback_plan": plan,
        "rollback_form": RollbackPlanForm(
            initial={
                "steps": plan.steps,
                "rehearsed_at": plan.rehearsed_at,
                "evidence_url": plan.evidence_url,
            }
            if plan
            else None,
            auto_id="id_rollback_%s",
        ),
        "events": selectors.release_audit_events(release=release),
        "can_export": user.has_perm("releases.export_audit"),
    }
    context.update(overrides)
    return context


@login_required
@require_GET
def release_detail(request: HttpRequest, pk: int) -> HttpResponse:
    release = _release_or_404(request, pk)
    return render(request, "releases/detail.html", _detail_context(request, release))


def _written(request: HttpRequest, pk: int, message: str) -> HttpResponse:
    """After a successful write: the fresh page for htmx (swapping #release-page), a
    redirect otherwise (post/redirect/get)."""
    messages.success(request, message)
    if not request.htmx:
        return redirect("releases:detail", pk=pk)
    release = _release_or_404(request, pk)
    response = render(request, "releases/detail.html", _detail_context(request, release))
    retarget(response, "#release-page")
    reselect(response, "#release-page")
    reswap(response, "outerHTML")
    return response


def _refused(
    request: HttpRequest, pk: int, panel: str, status: int, **overrides: Any
) -> HttpResponse:
    """Re-render the panel that was used (htmx) or the page (no JS) with the problem shown.

    The release is read again: a refusal may come from somebody else's change."""
    release = _release_or_404(request, pk)
    context = _detail_context(request, release, **overrides)
    template = f"releases/partials/{panel}.html" if request.htmx else "releases/detail.html"
    return render(request, template, context, status=status)


# --- transitions ------------------------------------------------------------------------------


@login_required
@require_POST
def release_transition(request: HttpRequest, pk: int, name: str) -> HttpResponse:
    """Press one transition button: the same service as the API's action endpoint."""
    release = _release_or_404(request, pk)
    service = services.TRANSITION_SERVICES.get(name)
    if service is None:
        raise Http404("No such transition.")
    reason_required = name in services.REASON_REQUIRED
    form = TransitionForm(request.POST, reason_required=reason_required, auto_id=f"id_{name}_%s")
    if not form.is_valid():
        return _refused(
            request, pk, "transitions", 422, transition_forms={name: form}, open_transition=name
        )
    try:
        release = service(release=release, actor=request.user, reason=form.cleaned_data["reason"])
    except DomainError as error:
        return _refused(
            request,
            pk,
            "transitions",
            error.status_code,
            transition_error=error.message,
            blockers=error.details if isinstance(error.details, list) else [],
        )
    label = services.TRANSITION_LABELS[name]
    return _written(request, pk, f"{label}: the release is now {release.get_state_display()}.")


# --- scope ------------------------------------------------------------------------------------


def _refusal(form, error: DomainError) -> str | None:
    """A service refusal on an inline form: field errors go on the form; anything else is
    returned for the panel's alert (the form may not even be shown, e.g. scope is locked)."""
    if isinstance(error.details, dict) and any(f in form.fields for f in error.details):
        apply_domain_error(form, error)
        return None
    return error.message


def _scope_item_or_404(release: Release, item_pk: int):
    for item in release.scope_items.all():
        if item.pk == item_pk:
            return item
    raise Http404("No such scope item.")


@login_required
@require_POST
def scope_add(request: HttpRequest, pk: int) -> HttpResponse:
    release = _release_or_404(request, pk)
    form = ScopeItemForm(request.POST, auto_id="id_scope_new_%s")
    if form.is_valid():
        try:
            item = services.scope_item_add(release=release, actor=request.user, **form.cleaned_data)
        except DomainError as error:
            message, status = _refusal(form, error), error.status_code
        else:
            return _written(request, pk, f"Added “{item}” to the scope.")
    else:
        message, status = None, 422
    return _refused(
        request, pk, "scope", status, scope_form=form, scope_open="new", scope_error=message
    )


@login_required
@require_POST
def scope_edit(request: HttpRequest, pk: int, item_pk: int) -> HttpResponse:
    release = _release_or_404(request, pk)
    item = _scope_item_or_404(release, item_pk)
    form = ScopeItemForm(request.POST, auto_id=f"id_scope{item.pk}_%s")
    if form.is_valid():
        changes = {f: v for f, v in form.cleaned_data.items() if getattr(item, f) != v}
        if not changes:
            return _written(request, pk, "Nothing changed.")
        try:
            services.scope_item_update(item=item, actor=request.user, changes=changes)
        except DomainError as error:
            message, status = _refusal(form, error), error.status_code
        else:
            return _written(request, pk, f"Saved “{item}”.")
    else:
        message, status = None, 422
    return _refused(
        request,
        pk,
        "scope",
        status,
        scope_edit_forms={item.pk: form},
        scope_open=item.pk,
        scope_error=message,
    )


@login_required
@require_POST
def scope_status(request: HttpRequest, pk: int, item_pk: int) -> HttpResponse:
    """Defer an included item or include a deferred one again."""
    release = _release_or_404(request, pk)
    item = _scope_item_or_404(release, item_pk)
    status = request.POST.get("status", "")
    if status not in ScopeStatus.values:
        return _refused(request, pk, "scope", 422, scope_error="Choose included or deferred.")
    try:
        services.scope_item_update(item=item, actor=request.user, changes={"status": status})
    except DomainError as error:
        return _refused(request, pk, "scope", error.status_code, scope_error=error.message)
    verb = "Deferred" if status == ScopeStatus.DEFERRED else "Included"
    return _written(request, pk, f"{verb} “{item}”.")


@login_required
@require_POST
def scope_remove(request: HttpRequest, pk: int, item_pk: int) -> HttpResponse:
    release = _release_or_404(request, pk)
    item = _scope_item_or_404(release, item_pk)
    try:
        services.scope_item_remove(
            item=item, actor=request.user, reason=request.POST.get("reason", "").strip()
        )
    except DomainError as error:
        return _refused(request, pk, "scope", error.status_code, scope_error=error.message)
    return _written(request, pk, f"Removed “{item}” from the scope.")


# --- risks ------------------------------------------------------------------------------------


@login_required
@require_POST
def risk_add(request: HttpRequest, pk: int) -> HttpResponse:
    release = _release_or_404(request, pk)
    owners = users_with_role(*ALL_ROLES)
    form = RiskForm(request.POST, owners=owners, adding=True, auto_id="id_risk_new_%s")
    if form.is_valid():
        try:
            services.risk_add(release=release, actor=request.user, **form.cleaned_data)
        except DomainError as error:
            message, status = _refusal(form, error), error.status_code
        else:
            return _written(request, pk, "Added a risk to the register.")
    else:
        message, status = None, 422
    return _refused(
        request, pk, "risks", status, risk_form=form, risk_open="new", risk_error=message
    )


@login_required
@require_POST
def risk_edit(request: HttpRequest, pk: int, risk_pk: int) -> HttpResponse:
    release = _release_or_404(request, pk)
    risk = next((r for r in release.risks.all() if r.pk == risk_pk), None)
    if risk is None:
        raise Http404("No such risk.")
    form = RiskForm(
        request.POST, owners=users_with_role(*ALL_ROLES), auto_id=f"id_risk{risk_pk}_%s"
    )
    if form.is_valid():
        changes = {f: v for f, v in form.cleaned_data.items() if getattr(risk, f) != v}
        if not changes:
            return _written(request, pk, "Nothing changed.")
        try:
            services.risk_update(risk=risk, actor=request.user, changes=changes)
        except DomainError as error:
            message, status = _refusal(form, error), error.status_code
        else:
            return _written(request, pk, "Updated the risk.")
    else:
        message, status = None, 422
    return _refused(
        request,
        pk,
        "risks",
        status,
        risk_edit_forms={risk_pk: form},
        risk_open=risk_pk,
        risk_error=message,
    )


# --- rollback plan ----------------------------------------------------------------------------


@login_required
@require_POST
def rollback_set(request: HttpRequest, pk: int) -> HttpResponse:
    release = _release_or_404(request, pk)
    form = RollbackPlanForm(request.POST, auto_id="id_rollback_%s")
    if form.is_valid():
        try:
            services.rollback_plan_set(release=release, actor=request.user, **form.cleaned_data)
        except DomainError as error:
            message, status = _refusal(form, error), error.status_code
        else:
            return _written(request, pk, "Saved the rollback plan.")
    else:
        message, status = None, 422
    return _refused(
        request,
        pk,
        "rollback",
        status,
        rollback_form=form,
        rollback_open=True,
        rollback_error=message,
    )


# --- audit export -----------------------------------------------------------------------------

EXPORT_COLUMNS = [
    "time",
    "actor",
    "action",
    "target",
    "from_state",
    "to_state",
    "reason",
    "before",
    "after",
    "ip_address",
    "user_agent",
]


def _event_row(event) -> dict[str, Any]:
    return {
        "time": event.created_at.isoformat(),
        "actor": event.actor_label,
        "action": event.action,
        "target": event.target_repr,
        "from_state": event.from_state,
        "to_state": event.to_state,
        "reason": event.reason,
        "before": event.before,
        "after": event.after,
        "ip_address": event.ip_address,
        "user_agent": event.user_agent,
    }


class _Echo:
    """A write-only file for csv.writer: hands each line back instead of buffering it."""

    def write(self, value: str) -> str:
        return value


_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _csv_cell(value: Any) -> str:
    """A cell that a spreadsheet shows as text: reasons and titles are typed by users, and a
    leading = + - @ would otherwise be run as a formula when the export is opened."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def _csv_lines(events: Iterable) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow(EXPORT_COLUMNS)
    for event in events:
        row = _event_row(event)
        for key in ("before", "after"):
            row[key] = json.dumps(row[key], cls=DjangoJSONEncoder) if row[key] is not None else ""
        yield writer.writerow([_csv_cell(row[c]) for c in EXPORT_COLUMNS])


def _json_chunks(release: Release, events: Iterable) -> Iterator[str]:
    head = {"release": {"id": release.pk, "name": release.name, "version": release.version}}
    yield json.dumps(head)[:-1] + ', "events": ['
    for index, event in enumerate(events):
        yield ("," if index else "") + "\n" + json.dumps(_event_row(event), cls=DjangoJSONEncoder)
    yield "\n]}\n"


@login_required
@require_GET
def audit_export(request: HttpRequest, pk: int, fmt: str) -> StreamingHttpResponse:
    """Every audit event of the release, streamed (a long history never sits in memory)."""
    release = _release_or_404(request, pk)
    if not request.user.has_perm("releases.export_audit"):
        raise Http404("No such release.")
    events = selectors.release_audit_events(release=release).iterator(chunk_size=500)
    if fmt == "csv":
        response = StreamingHttpResponse(_csv_lines(events), content_type="text/csv")
    else:
        response = StreamingHttpResponse(
            _json_chunks(release, events), content_type="application/json"
        )
    filename = f"release-{release.pk}-audit.{fmt}"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
