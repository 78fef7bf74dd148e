"""Admin of the governance app: configuration (gate policies, quorum policies, freeze
windows), each save and delete audited; decisions are read-only here."""

from __future__ import annotations

from django.contrib import admin

from .models import (
    BreakGlass,
    CABMeeting,
    ChangeRequest,
    FreezeException,
    FreezeWindow,
    GateCheck,
    GatePolicy,
    QuorumPolicyRecord,
    RiskAssessment,
    Vote,
)
from .services.configuration import (
    configuration_deleted,
    configuration_saved,
    configuration_snapshot,
)


class AuditedConfigurationAdmin(admin.ModelAdmin):
    """Configuration edited here is audited like the app's own services: the admin's
    change view runs in one transaction, and the audit event is written in it after the
    row and its many-to-many fields are saved."""

    def save_model(self, request, obj, form, change):
        stored = type(obj).objects.filter(pk=obj.pk).first() if change else None
        request._audit_before = configuration_snapshot(stored) if stored else None
        super().save_model(request, obj, form, change)

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        configuration_saved(
            actor=request.user,
            obj=form.instance,
            created=not change,
            before=getattr(request, "_audit_before", None),
        )

    def delete_model(self, request, obj):
        configuration_deleted(actor=request.user, obj=obj)
        super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            configuration_deleted(actor=request.user, obj=obj)
        super().delete_queryset(request, queryset)


@admin.register(GatePolicy)
class GatePolicyAdmin(AuditedConfigurationAdmin):
    """Gate policies are configuration: each saved change of the rules bumps the version;
    releases already planned keep their snapshot."""

    list_display = [
        "name",
        "version",
        "is_active",
        "priority",
        "release_types",
        "risk_levels",
        "promotion_path",
    ]
    list_filter = ["is_active"]
    readonly_fields = ["version", "updated_at"]


@admin.register(QuorumPolicyRecord)
class QuorumPolicyAdmin(AuditedConfigurationAdmin):
    list_display = ["change_type", "min_votes", "approval_share", "mandatory_roles", "veto"]


@admin.register(FreezeWindow)
class FreezeWindowAdmin(AuditedConfigurationAdmin):
    list_display = ["name", "kind", "tz", "description", "is_active"]
    filter_horizontal = ["environments", "services"]
    readonly_fields = ["created_by", "created_at"]

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)


class ReadOnlyAdmin(admin.ModelAdmin):
    """Decisions are made in the app (audited services), not edited in the admin."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


for model in (
    GateCheck,
    ChangeRequest,
    Vote,
    CABMeeting,
    FreezeException,
    BreakGlass,
    RiskAssessment,
):
    admin.site.register(model, ReadOnlyAdmin)
