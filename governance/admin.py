from django.contrib import admin

from .models import (
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


@admin.register(GatePolicy)
class GatePolicyAdmin(admin.ModelAdmin):
    """Gate policies are configuration: each saved change of the rules bumps the version;
    releases already planned keep their snapshot."""

    list_display = ["name", "version", "is_active", "priority", "release_types", "risk_levels"]
    list_filter = ["is_active"]
    readonly_fields = ["version", "updated_at"]


@admin.register(QuorumPolicyRecord)
class QuorumPolicyAdmin(admin.ModelAdmin):
    list_display = ["change_type", "min_votes", "approval_share", "mandatory_roles", "veto"]


@admin.register(FreezeWindow)
class FreezeWindowAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "tz", "description", "is_active"]
    filter_horizontal = ["environments", "services"]


class ReadOnlyAdmin(admin.ModelAdmin):
    """Decisions are made in the app (audited services), not edited in the admin."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


for model in (GateCheck, ChangeRequest, Vote, CABMeeting, FreezeException, RiskAssessment):
    admin.site.register(model, ReadOnlyAdmin)
