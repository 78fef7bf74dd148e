from django.contrib import admin

from .models import (
    Deployment,
    Environment,
    Release,
    ReleaseRisk,
    RollbackPlan,
    ScopeItem,
    Service,
    Team,
)


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    list_display = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    filter_horizontal = ["members"]


@admin.register(Service)
class ServiceAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "team", "criticality"]
    list_filter = ["team", "criticality"]
    prepopulated_fields = {"slug": ["name"]}


@admin.register(Environment)
class EnvironmentAdmin(admin.ModelAdmin):
    list_display = ["name", "order", "is_production", "soak_minutes"]
    prepopulated_fields = {"slug": ["name"]}


class ScopeItemInline(admin.TabularInline):
    model = ScopeItem
    extra = 0


class RiskInline(admin.TabularInline):
    model = ReleaseRisk
    extra = 0


@admin.register(Release)
class ReleaseAdmin(admin.ModelAdmin):
    """Read-mostly: lifecycle changes go through the pages and API so they are audited."""

    list_display = [
        "name",
        "version",
        "state",
        "release_type",
        "risk_level",
        "owner",
        "window_start",
    ]
    list_filter = ["state", "release_type", "risk_level"]
    search_fields = ["name", "version"]
    readonly_fields = ["state", "planned_at", "approved_at", "deployed_at", "closed_at"]
    inlines = [ScopeItemInline, RiskInline]

    def has_change_permission(self, request, obj=None):
        return False

    def has_add_permission(self, request):
        return False


admin.site.register(RollbackPlan)


@admin.register(Deployment)
class DeploymentAdmin(admin.ModelAdmin):
    list_display = ["service", "version", "environment", "state", "started_at", "finished_at"]
    list_filter = ["environment", "state"]
    readonly_fields = ["state"]
