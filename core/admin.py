"""Admin of the shared records: the audit trail, read-only. Imports no project app.

(The notification outbox's admin stays with the workers that deliver it, in pipelines.)"""

from django.contrib import admin

from .models import AuditEvent


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    """Append-only: readable, never editable or deletable."""

    list_display = ["created_at", "actor_label", "action", "target_repr", "from_state", "to_state"]
    list_filter = ["action"]
    search_fields = ["target_repr", "actor_label", "reason"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
