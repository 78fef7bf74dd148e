"""Admin for the workers: polling health and credentials, verification specs with their
queries, rollback policies, and the outbox (read-only, with a "retry now" action)."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.db import models
from django.utils import timezone

from core.models import (
    Notification,
    NotificationAttempt,
    NotificationPreference,
    NotificationStatus,
)
from core.outbound import OutboundRefused, check_outbound_url

from .worker_models import (
    IntegrationPollState,
    RollbackPolicy,
    RollbackRequest,
    VerificationQuery,
    VerificationRun,
    VerificationSpec,
)
from .worker_queue import enqueue_on_commit

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
