"""Server-rendered pages of the pipelines app (thin: a selector and a template): the release
page's lazily loaded delivery and verification panels, integration health, and the in-app
notification list and preferences."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from core.errors import DomainError
from core.errors import PermissionDenied as DomainPermissionDenied
from core.models import NotificationChannel, NotificationEvent, NotificationPreference
from core.notifications import channels_for, inbox, notifications_mark_read, preferences_update
from core.outbound import check_outbound_url
from releases import selectors as release_selectors
from releases.models import Release
from releases.rules import has_any_role

from . import selectors
from .models import (
    ApiToken,
    Integration,
    RollbackRequest,
    TokenScope,
    VerificationRun,
)
from .services import DEFAULT_SCOPES
from .services import tokens as token_services
from .verification import chart


@login_required
def release_delivery_panel(request: HttpRequest, pk: int) -> HttpResponse:
    """The release page's delivery panel (loaded lazily): CI runs with their checks,
    artefacts with digests, deployments per environment. Whoever sees the release sees it."""
    try:
        release = (
            release_selectors.visible_releases(viewer=request.user)
            .prefetch_related("services")
            .get(pk=pk)
        )
    except Release.DoesNotExist:
        raise Http404("No such release.") from None
    return render(
        request,
        "pipelines/partials/release_delivery.html",
        {"release": release, "delivery": selectors.release_delivery(release=release)},
    )


@login_required
@require_GET
def integrations(request: HttpRequest) -> HttpResponse:
    """Health of every integration that polls: last success, last error, failures, next poll."""
    if not (request.user.is_superuser or has_any_role(request.user)):
        raise PermissionDenied
    rows = Integration.objects.select_related("poll_state").order_by("provider", "name")
    return render(request, "pipelines/integrations.html", {"integrations": rows})


@login_required
@require_GET
def notification_list(request: HttpRequest) -> HttpResponse:
    """The signed-in user's in-app notifications; ?show=unread|read|all."""
    show = request.GET.get("show", "unread")
    qs = inbox(request.user)
    if show == "unread":
        qs = qs.filter(read_at__isnull=True)
    elif show == "read":
        qs = qs.filter(read_at__isnull=False)
    page = Paginator(qs, 50).get_page(request.GET.get("page"))
    unread = inbox(request.user).filter(read_at__isnull=True).count()
    return render(
        request,
        "pipelines/notifications.html",
        {"page": page, "show": show, "unread": unread},
    )


@login_required
@require_POST
def notification_mark_read(request: HttpRequest) -> HttpResponse:
    ids = (
        None
        if request.POST.get("all")
        else [int(i) for i in request.POST.getlist("id") if i.isdigit()]
    )
    count = notifications_mark_read(actor=request.user, ids=ids)
    messages.success(request, f"Marked {count} notification(s) read.")
    return redirect("pipelines:notifications")


class PreferencesForm(forms.Form):
    """A grid: one multiple-choice field per event, plus the personal Slack webhook."""

    slack_webhook_url = forms.URLField(
        required=False,
        assume_scheme="https",
        label="Slack incoming webhook URL",
        help_text="Messages are signed (X-Releasegate-Signature, HMAC-SHA256 with timestamp).",
    )

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        for event in NotificationEvent:
            self.fields[f"event_{event.value}"] = forms.MultipleChoiceField(
                label=event.label,
                required=False,
                choices=NotificationChannel.choices,
                widget=forms.CheckboxSelectMultiple,
                initial=channels_for(user, event.value) if user is not None else [],
            )

    def clean_slack_webhook_url(self) -> str:
        """Only https: the worker POSTs to this URL, so plain http (or a typo'd internal
        address over http) is refused unless NOTIFICATION_WEBHOOK_ALLOW_HTTP is set; and
        never a private address (core/outbound.py), unless an administrator allowed it."""
        url = self.cleaned_data["slack_webhook_url"]
        allow_http = getattr(settings, "NOTIFICATION_WEBHOOK_ALLOW_HTTP", False)
        if url and not url.startswith("https://") and not allow_http:
            raise forms.ValidationError("Use an https:// webhook URL.")
        if url:
            check_outbound_url(url)  # OutboundRefused is a ValidationError: the field's error
        return url

    def channels(self) -> dict[str, list[str]]:
        return {e.value: self.cleaned_data.get(f"event_{e.value}", []) for e in NotificationEvent}


@login_required
@require_http_methods(["GET", "POST"])
def notification_preferences(request: HttpRequest) -> HttpResponse:
    pref = NotificationPreference.objects.filter(user=request.user).first()
    initial = {"slack_webhook_url": pref.slack_webhook_url if pref else ""}
    if pref is not None:
        for event, chosen in (pref.channels or {}).items():
            initial[f"event_{event}"] = chosen
    form = PreferencesForm(request.POST or None, user=request.user, initial=initial)
    if request.method == "POST" and form.is_valid():
        preferences_update(
            actor=request.user,
            channels=form.channels(),
            slack_webhook_url=form.cleaned_data["slack_webhook_url"],
        )
        messages.success(request, "Notification preferences saved.")
        return redirect("pipelines:notification_preferences")
    return render(request, "pipelines/notifications_preferences.html", {"form": form})


@login_required
@require_GET
def verification_panel(request: HttpRequest, pk: int) -> HttpResponse:
    """The release page's verification panel: each deployment's verification, its samples as
    small SVG charts against the thresholds, and any "rollback required"."""
    try:
        release = release_selectors.release_detail(viewer=request.user, pk=pk)
    except Release.DoesNotExist:
        raise Http404("No such release.") from None
    runs = (
        VerificationRun.objects.filter(deployment__release=release)
        .select_related("deployment__environment", "deployment__service", "spec")
        .prefetch_related("samples", "spec__queries")
        .order_by("-started_at")[:5]
    )
    return render(
        request,
        "pipelines/partials/verification_chart.html",
        {
            "release": release,
            "verifications": [{"run": run, "charts": chart(run)} for run in runs],
            "rollback_requests": RollbackRequest.objects.filter(release=release).select_related(
                "deployment"
            ),
            "loaded": True,
        },
    )


class TokenCreateForm(forms.Form):
    name = forms.CharField(
        max_length=100, help_text="Say where it is used, e.g. “payments-api GitHub Actions”."
    )
    services = forms.ModelMultipleChoiceField(
        queryset=None, widget=forms.CheckboxSelectMultiple, help_text="At least one."
    )
    scopes = forms.MultipleChoiceField(
        choices=TokenScope.choices,
        initial=list(DEFAULT_SCOPES),
        widget=forms.CheckboxSelectMultiple,
        help_text="Grant only what the pipeline does.",
    )

    def __init__(self, *args, services=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["services"].queryset = services


def _token_page(request, *, form, created=None, raw=None, status=200) -> HttpResponse:
    response = render(
        request,
        "pipelines/tokens.html",
        {
            "form": form,
            "tokens": selectors.tokens_for_manager(request.user),
            "created": created,
            "raw_token": raw,
        },
        status=status,
    )
    # The page may carry a new token's only copy: never cache it anywhere.
    response["Cache-Control"] = "no-store"
    return response


@login_required
@require_http_methods(["GET", "POST"])
def api_tokens(request: HttpRequest) -> HttpResponse:
    """CI tokens of the services the viewer manages: create (secret shown once), last use,
    revoke. Administrators see every token, release managers their teams' services'."""
    services = selectors.token_manageable_services(request.user).order_by("name")
    if not services.exists():
        raise PermissionDenied
    form = TokenCreateForm(request.POST or None, services=services)
    if request.method == "GET" or not form.is_valid():
        return _token_page(request, form=form, status=200 if request.method == "GET" else 400)
    try:
        token, raw = token_services.api_token_create(
            actor=request.user,
            name=form.cleaned_data["name"],
            service_slugs=[s.slug for s in form.cleaned_data["services"]],
            scopes=form.cleaned_data["scopes"],
        )
    except DomainError as error:
        form.add_error("name" if "named" in error.message else None, error.message)
        return _token_page(request, form=form, status=400)
    fresh = TokenCreateForm(services=services)
    return _token_page(request, form=fresh, created=token, raw=raw)


@login_required
@require_POST
def api_token_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    token = ApiToken.objects.filter(pk=pk).first()
    if token is None:
        raise Http404
    try:
        token_services.api_token_revoke(
            actor=request.user, name=token.name, reason=request.POST.get("reason", "").strip()
        )
    except DomainError as error:
        if isinstance(error, DomainPermissionDenied):
            raise PermissionDenied(error.message) from error
        messages.error(request, error.message)
    else:
        messages.success(request, f"Token “{token.name}” is revoked; CI calls with it now get 401.")
    return redirect("pipelines:tokens")
