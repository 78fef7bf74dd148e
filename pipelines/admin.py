from django import forms
from django.contrib import admin, messages
from django.db import transaction

from .models import (
    ApiToken,
    Artefact,
    Incident,
    Integration,
    IntegrationSecret,
    PipelineCheck,
    PipelineRun,
    WebhookDelivery,
)
from .services import (
    api_token_revoke,
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


@admin.register(Integration)
class IntegrationAdmin(admin.ModelAdmin):
    """Webhook senders: provider, services they may report for, enabled, their secrets.

    Every change made here is audited like the services' (``integration.create`` /
    ``.update`` / ``.delete``, ``.secret_add`` / ``.secret_replace`` / ``.secret_delete``):
    who may report deployments for which service is governance data. Django's admin saves
    the form, its inlines and the change message in one transaction, which the audit
    events join; no secret value reaches the trail, only its hint."""

    list_display = ["name", "provider", "enabled", "created_at"]
    list_filter = ["provider", "enabled"]
    filter_horizontal = ["services"]
    readonly_fields = ["created_at"]  # a record of when, not a setting
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


@admin.register(Artefact)
class ArtefactAdmin(ReadOnlyAdmin):
    list_display = ["name", "version", "digest", "service", "created_at"]
    list_filter = ["service"]
    search_fields = ["name", "version", "digest"]


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdmin):
    list_display = ["provider", "delivery_id", "integration", "event", "run", "received_at"]
    list_filter = ["provider"]


@admin.register(Incident)
class IncidentAdmin(ReadOnlyAdmin):
    list_display = ["__str__", "service", "status", "started_at", "resolved_at"]
    list_filter = ["status", "service"]


from . import worker_admin  # noqa: E402, F401  (polling, verification, outbox)
