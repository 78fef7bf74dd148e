"""Admin of the pipelines app: tokens, runs, integrations and their secrets; polling health and
credentials, verification specs with their queries, rollback policies, and the notification
outbox (read-only, with a "retry now" action)."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.db import models, transaction
from django.utils import timezone

from core.models import (
    Notification,
    NotificationAttempt,
    NotificationPreference,
    NotificationStatus,
)
from core.outbound import OutboundRefused, check_outbound_url

from .models import (
    ApiToken,
    Artefact,
    ArtefactTag,
    CDEventDelivery,
    CDEventSubscription,
    CommitStatus,
    DeploymentCheck,
    DeploymentGateRequest,
    Incident,
    Integration,
    IntegrationPollState,
    IntegrationSecret,
    PipelineCheck,
    PipelineRun,
    PruneBatch,
    RollbackPolicy,
    RollbackRequest,
    RunDaySummary,
    VerificationQuery,
    VerificationRun,
    VerificationSpec,
    WebhookDelivery,
)
from .queueing import enqueue_on_commit
from .scm_api import github_app_jwt
from .services import (
    api_token_revoke,
    cdevent_subscription_delete,
    cdevent_subscription_save,
    integration_admin_saved,
    integration_delete,
    integration_secret_revoke,
)


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Tokens are created by `manage.py create_api_token` (the raw value is shown once);
    the admin lists and revokes them."""

    list_display = ["name", "key_hint", "scopes", "created_at", "last_used_at", "revoked_at"]
    readonly_fields = ["name", "key_hint", "scopes", "created_at", "last_used_at", "revoked_at"]
    filter_horizontal = ["services"]
    actions = ["revoke"]

    def has_add_permission(self, request):
        return False

    @admin.action(description="Revoke selected tokens")
    def revoke(self, request, queryset):
        with transaction.atomic():
            for token in queryset:
                api_token_revoke(actor=request.user, name=token.name, reason="Revoked in admin.")
        messages.success(request, f"Revoked {queryset.count()} token(s).")


class IntegrationSecretForm(forms.ModelForm):
    """The secret is write-only: never rendered back; left blank, a stored one is kept."""

    secret = forms.CharField(
        widget=forms.PasswordInput(render_value=False), required=False, max_length=200
    )

    class Meta:
        model = IntegrationSecret
        fields = ["secret"]

    def has_changed(self) -> bool:
        """Only a typed secret that differs from the stored one is a change: the stored one
        is never rendered back, so a blank field means "keep it" (and is no rotation)."""
        typed = self.data.get(self.add_prefix("secret"), "")
        return bool(typed) and typed != (self.instance.secret if self.instance.pk else None)

    def clean_secret(self) -> str:
        value = self.cleaned_data.get("secret", "")
        if value:
            return value
        if self.instance.pk:
            return self.instance.secret
        raise forms.ValidationError("Enter the secret.")


class IntegrationSecretInline(admin.TabularInline):
    """Add a secret to rotate (both verify); revoke the old one in Integration secrets, or
    delete its row here once senders use the new one."""

    model = IntegrationSecret
    form = IntegrationSecretForm
    extra = 0
    fields = ["secret", "hint", "created_at", "revoked_at"]
    readonly_fields = ["hint", "created_at", "revoked_at"]


class _BlankKeeps(forms.IntegerField):
    """An optional number where blank means "keep what is stored" (not a change)."""

    def has_changed(self, initial, data) -> bool:
        return data not in (None, "") and super().has_changed(initial, data)


class IntegrationForm(forms.ModelForm):
    """The API token is write-only like the secrets: never rendered back; left blank, the
    stored one is kept (clear it by deleting the integration or setting a new one)."""

    api_url = forms.URLField(
        required=False,
        max_length=300,
        assume_scheme="https",
        help_text="API base URL; blank = https://api.github.com or https://gitlab.com/api/v4 "
        "(GitHub Enterprise Server: https://HOST/api/v3).",
    )
    api_token = forms.CharField(
        widget=forms.PasswordInput(render_value=False),
        required=False,
        max_length=300,
        help_text="GitHub App installation / fine-grained token, or GitLab access token. "
        "Blank keeps the stored one.",
    )

    github_app_private_key = forms.CharField(
        widget=forms.PasswordInput(render_value=False),
        required=False,
        max_length=10000,
        label="GitHub App private key",
        help_text="PEM; paste the whole key (it is never shown again). Blank keeps it.",
    )
    gate_timeout_minutes = _BlankKeeps(
        required=False,
        min_value=1,
        max_value=43200,
        help_text="Minutes a deployment held at a GitHub/GitLab gate may wait for allow "
        "before it is rejected (fail closed). Blank keeps it (60 for a new integration).",
    )

    class Meta:
        model = Integration
        fields = [
            "provider",
            "name",
            "services",
            "enabled",
            "api_url",
            "api_token",
            "github_app_id",
            "github_app_private_key",
            "github_app_installation_id",
            "gate_timeout_minutes",
        ]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.initial["api_token"] = ""  # blank is "keep", not a change to audit
        self.initial["github_app_private_key"] = ""

    def clean_api_token(self) -> str:
        value = self.cleaned_data.get("api_token", "")
        if value:
            return value.strip()
        return self.instance.api_token if self.instance.pk else ""

    def clean_github_app_private_key(self) -> str:
        value = self.cleaned_data.get("github_app_private_key", "")
        if value:
            return value.strip() + "\n"
        return self.instance.github_app_private_key if self.instance.pk else ""

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("github_app_id") or cleaned.get("github_app_private_key"):
            try:
                key = cleaned.get("github_app_private_key") or ""
                github_app_jwt(cleaned.get("github_app_id") or "0", key)
            except Exception:  # noqa: BLE001 - whatever the key is, it cannot sign
                self.add_error(
                    "github_app_private_key", "The private key must be an RSA key in PEM."
                )
        return cleaned

    def clean_gate_timeout_minutes(self) -> int:
        value = self.cleaned_data.get("gate_timeout_minutes")
        if value is None:
            return self.instance.gate_timeout_minutes or 60
        return value

    def clean_api_url(self) -> str:
        value = self.cleaned_data.get("api_url", "")
        if value:
            check_outbound_url(value)  # OutboundRefused is a ValidationError: the field's error
        return value


@admin.register(Integration)
class IntegrationAdmin(admin.ModelAdmin):
    """Webhook senders: provider, services they may report for, enabled, their secrets.

    Every change made here is audited like the services' (``integration.create`` /
    ``.update`` / ``.delete``, ``.secret_add`` / ``.secret_replace`` / ``.secret_delete``):
    who may report deployments for which service is governance data. Django's admin saves
    the form, its inlines and the change message in one transaction, which the audit
    events join; no secret value reaches the trail, only its hint."""

    form = IntegrationForm
    list_display = ["name", "provider", "enabled", "created_at"]
    list_filter = ["provider", "enabled"]
    filter_horizontal = ["services"]
    readonly_fields = ["created_at", "api_token_hint"]  # a record of when, not a setting
    inlines = [IntegrationSecretInline]

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        integration_admin_saved(
            actor=request.user,
            integration=form.instance,
            created=not change,
            changed_fields=form.changed_data,
            secrets_added=[s for formset in formsets for s in formset.new_objects],
            secrets_replaced=[s for formset in formsets for s, _ in formset.changed_objects],
            secrets_deleted=[s for formset in formsets for s in formset.deleted_objects],
        )

    def delete_model(self, request, obj):
        integration_delete(actor=request.user, integration=obj)

    def delete_queryset(self, request, queryset):
        with transaction.atomic():
            for integration in queryset:
                integration_delete(actor=request.user, integration=integration)


@admin.register(IntegrationSecret)
class IntegrationSecretAdmin(admin.ModelAdmin):
    list_display = ["integration", "hint", "created_at", "revoked_at"]
    readonly_fields = ["integration", "hint", "created_at", "revoked_at"]
    exclude = ["secret"]
    actions = ["revoke"]

    def has_add_permission(self, request):
        return False

    @admin.action(description="Revoke selected secrets")
    def revoke(self, request, queryset):
        for secret in queryset:
            integration_secret_revoke(actor=request.user, secret=secret)
        messages.success(request, f"Revoked {queryset.count()} secret(s).")


class ReadOnlyAdmin(admin.ModelAdmin):
    """Facts reported by machines: recorded by services, read in the admin."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class PipelineCheckInline(admin.TabularInline):
    model = PipelineCheck
    extra = 0
    can_delete = False
    readonly_fields = ["kind", "name", "status", "metrics"]

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(PipelineRun)
class PipelineRunAdmin(ReadOnlyAdmin):
    list_display = ["__str__", "service", "version", "status", "started_at", "finished_at"]
    list_filter = ["provider", "status", "service"]
    search_fields = ["external_id", "commit_sha", "version"]
    inlines = [PipelineCheckInline]


class ArtefactTagInline(admin.TabularInline):
    model = ArtefactTag
    fk_name = "artefact"
    extra = 0
    can_delete = False
    readonly_fields = ["version", "uri", "run", "reported_by", "created_at"]
    fields = readonly_fields

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Artefact)
class ArtefactAdmin(ReadOnlyAdmin):
    list_display = ["name", "version", "digest", "service", "created_at"]
    list_filter = ["service"]
    search_fields = ["name", "version", "digest", "tags__version"]
    inlines = [ArtefactTagInline]


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdmin):
    list_display = ["provider", "delivery_id", "integration", "event", "run", "received_at"]
    list_filter = ["provider"]


@admin.register(RunDaySummary)
class RunDaySummaryAdmin(ReadOnlyAdmin):
    """What the retention policy kept of pruned runs (docs/operations.md)."""

    list_display = ["day", "service", "version", "runs", "succeeded", "failed", "first_started_at"]
    list_filter = ["service"]
    search_fields = ["version"]

    def has_delete_permission(self, request, obj=None):
        return False  # deleting one would move the lead-time figures


@admin.register(PruneBatch)
class PruneBatchAdmin(ReadOnlyAdmin):
    list_display = ["ran_at", "runs_deleted", "checks_deleted", "deliveries_deleted", "runs_before"]

    def has_delete_permission(self, request, obj=None):
        return False  # the target of the batch's audit event


@admin.register(Incident)
class IncidentAdmin(ReadOnlyAdmin):
    list_display = ["__str__", "service", "status", "started_at", "resolved_at"]
    list_filter = ["status", "service"]


@admin.register(DeploymentCheck)
class DeploymentCheckAdmin(ReadOnlyAdmin):
    """The questions asked at the deploy boundary and their answers (audited, never edited)."""

    list_display = [
        "created_at",
        "service_slug",
        "version",
        "environment_slug",
        "decision",
        "resume_at",
        "release",
        "source",
        "token",
    ]
    list_filter = ["decision", "source", "environment_slug"]
    search_fields = ["service_slug", "version", "commit_sha", "external_id"]
    list_select_related = ["release", "token"]

    def has_delete_permission(self, request, obj=None):
        return False


# URLs typed without a scheme are https (and Django 6's default).
HTTPS_URLS = {models.URLField: {"assume_scheme": "https"}}


class OutboundURLForm(forms.ModelForm):
    """Refuses a URL field the workers would call when it points at a private address
    (core/outbound.py): every URLField of these models is such a destination."""

    def clean(self):
        cleaned = super().clean()
        for field in self._meta.model._meta.fields:
            url = cleaned.get(field.name)
            if isinstance(field, models.URLField) and url:
                try:
                    check_outbound_url(url)
                except OutboundRefused as exc:
                    self.add_error(field.name, str(exc))
        return cleaned


@admin.register(IntegrationPollState)
class IntegrationPollStateAdmin(admin.ModelAdmin):
    form = OutboundURLForm
    formfield_overrides = HTTPS_URLS
    list_display = [
        "integration",
        "service",
        "enabled",
        "last_success_at",
        "consecutive_failures",
        "short_error",
        "next_poll_at",
    ]
    list_filter = ["enabled", "integration__provider"]
    readonly_fields = [
        "cursor",
        "last_polled_at",
        "last_success_at",
        "last_error_at",
        "last_error",
        "consecutive_failures",
        "last_duration_ms",
        "last_run_count",
    ]
    actions = ["poll_now"]

    @admin.display(description="Last error")
    def short_error(self, obj: IntegrationPollState) -> str:
        return (obj.last_error or "")[:80]

    @admin.action(description="Poll selected integrations now")
    def poll_now(self, request, queryset):
        for state in queryset:
            enqueue_on_commit("pipelines.poll_integration", state.integration_id)
        messages.success(request, f"Queued {queryset.count()} poll(s).")


class VerificationQueryInline(admin.TabularInline):
    formfield_overrides = HTTPS_URLS
    model = VerificationQuery
    extra = 1


@admin.register(VerificationSpec)
class VerificationSpecAdmin(admin.ModelAdmin):
    form = OutboundURLForm
    formfield_overrides = HTTPS_URLS
    list_display = ["service", "environment", "prometheus_url", "window_seconds", "enabled"]
    list_filter = ["environment", "enabled"]
    inlines = [VerificationQueryInline]


@admin.register(VerificationRun)
class VerificationRunAdmin(admin.ModelAdmin):
    list_display = ["deployment", "status", "started_at", "ends_at", "detail"]
    list_filter = ["status"]
    readonly_fields = [f.name for f in VerificationRun._meta.fields]

    def has_add_permission(self, request):
        return False


@admin.register(RollbackPolicy)
class RollbackPolicyAdmin(admin.ModelAdmin):
    form = OutboundURLForm
    formfield_overrides = HTTPS_URLS
    list_display = ["environment", "action", "webhook_url"]


@admin.register(RollbackRequest)
class RollbackRequestAdmin(admin.ModelAdmin):
    list_display = ["deployment", "release", "webhook_status", "webhook_attempts", "created_at"]
    readonly_fields = [f.name for f in RollbackRequest._meta.fields]

    def has_add_permission(self, request):
        return False


class NotificationAttemptInline(admin.TabularInline):
    model = NotificationAttempt
    extra = 0
    can_delete = False
    readonly_fields = ["attempt", "at", "ok", "status_code", "error"]


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    list_display = ["subject", "recipient", "event", "channel", "status", "attempts", "created_at"]
    list_filter = ["status", "channel", "event"]
    search_fields = ["subject", "idempotency_key"]
    readonly_fields = [f.name for f in Notification._meta.fields]
    inlines = [NotificationAttemptInline]
    actions = ["retry_now"]

    def has_add_permission(self, request):
        return False

    @admin.action(description="Retry delivery now")
    def retry_now(self, request, queryset):
        rows = queryset.exclude(status=NotificationStatus.DELIVERED)
        ids = list(rows.values_list("id", flat=True))
        rows.update(status=NotificationStatus.PENDING, next_attempt_at=timezone.now())
        for pk in ids:
            enqueue_on_commit("pipelines.deliver_notification", pk)
        messages.success(request, f"Queued {len(ids)} notification(s).")


@admin.register(NotificationPreference)
class NotificationPreferenceAdmin(admin.ModelAdmin):
    form = OutboundURLForm
    formfield_overrides = HTTPS_URLS
    list_display = ["user"]


class CDEventSubscriptionForm(forms.ModelForm):
    """The secret is write-only: left blank on a change, the current one is kept."""

    secret = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="HMAC-SHA256 key of X-Releasegate-Signature; blank keeps the current one.",
    )
    event_types = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="One CDEvents type prefix a line (dev.cdevents.service., "
        "dev.cdeventsx.releasegate-approval.…); empty: every event.",
    )

    class Meta:
        model = CDEventSubscription
        fields = ["name", "url", "secret", "event_types", "enabled"]

    url = forms.URLField(max_length=500, assume_scheme="https")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.initial["event_types"] = "\n".join(self.instance.event_types or [])

    def clean_event_types(self):
        return [line.strip() for line in self.cleaned_data["event_types"].splitlines() if line]

    def clean_url(self):
        url = self.cleaned_data["url"]
        try:
            check_outbound_url(url)
        except OutboundRefused as exc:
            raise forms.ValidationError(str(exc)) from None
        return url

    def clean_secret(self):
        secret = self.cleaned_data.get("secret") or ""
        if not secret and not self.instance.pk:
            raise forms.ValidationError("Enter the secret that signs the deliveries.")
        return secret


@admin.register(CDEventSubscription)
class CDEventSubscriptionAdmin(admin.ModelAdmin):
    """CDEvents consumers (docs/cdevents.md). Saved and deleted through the services, so every
    change is validated (outbound address guard) and audited like an integration's."""

    form = CDEventSubscriptionForm
    list_display = ["name", "url", "enabled", "created_at"]
    list_filter = ["enabled"]

    def get_readonly_fields(self, request, obj=None):
        return ["name", "created_at"] if obj else ["created_at"]

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        saved = cdevent_subscription_save(
            actor=request.user,
            name=obj.name if change else data["name"],
            url=data["url"],
            secret=data.get("secret") or "",
            event_types=data.get("event_types") or [],
            enabled=data.get("enabled", False),
        )
        obj.pk = saved.pk

    def delete_model(self, request, obj):
        cdevent_subscription_delete(actor=request.user, subscription=obj)

    def delete_queryset(self, request, queryset):
        with transaction.atomic():
            for subscription in queryset:
                cdevent_subscription_delete(actor=request.user, subscription=subscription)


@admin.register(CDEventDelivery)
class CDEventDeliveryAdmin(ReadOnlyAdmin):
    list_display = ["event_type", "subscription", "status", "attempts", "created_at"]
    list_filter = ["status", "event_type"]
    readonly_fields = [f.name for f in CDEventDelivery._meta.fields]


@admin.register(DeploymentGateRequest)
class DeploymentGateRequestAdmin(ReadOnlyAdmin):
    """Deployments held at a GitHub/GitLab gate and the answer Releasegate gave (recorded by
    pipelines/services/scm.py; the deployment checks behind them are audited)."""

    list_display = [
        "repository",
        "external_id",
        "environment_name",
        "kind",
        "state",
        "answer",
        "last_decision",
        "created_at",
        "answered_at",
    ]
    list_filter = ["kind", "state", "answer"]
    search_fields = ["repository", "external_id", "sha"]
    raw_id_fields = ["last_check", "release", "service"]


@admin.register(CommitStatus)
class CommitStatusAdmin(ReadOnlyAdmin):
    """Gate results as published (or being published) on commits."""

    list_display = ["repository", "sha", "context", "state", "published_at", "last_error"]
    list_filter = ["state"]
    search_fields = ["repository", "sha", "context"]
