"""Admin of the shared records: the audit trail, read-only; login lockouts and second factors,
whose removal is audited. Imports no project app.

(The notification outbox's admin stays with the workers that deliver it, in pipelines.)"""

from allauth.mfa.admin import AuthenticatorAdmin
from allauth.mfa.models import Authenticator
from axes.admin import AccessAttemptAdmin
from axes.models import AccessAttempt
from django.contrib import admin, messages
from django.db import transaction

from .accounts import account_unlock, mfa_authenticator_record
from .models import AuditCheckpoint, AuditEvent


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


@admin.register(AuditCheckpoint)
class AuditCheckpointAdmin(AuditEventAdmin):
    """Signed chain heads (core.audit_checkpoints): append-only like the trail."""

    list_display = ["created_at", "name", "kind", "key_id"]
    list_filter = ["kind"]
    search_fields = ["name"]


# Login lockouts (django-axes): ending one early is the audited "Unlock" action, never a
# plain delete of the attempt rows.
admin.site.unregister(AccessAttempt)


@admin.register(AccessAttempt)
class LockoutAdmin(AccessAttemptAdmin):
    actions = ["unlock"]

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(description="Unlock (audited): clear these failed logins")
    def unlock(self, request, queryset):
        cleared = 0
        for attempt in queryset:
            cleared += account_unlock(
                actor=request.user,
                username=attempt.username or "",
                ip_address="" if attempt.username else (attempt.ip_address or ""),
                reason=f"Unlocked in the admin by {request.user.get_username()}.",
            )
        messages.success(request, f"Unlocked: {cleared} lockout record(s) cleared.")


# Second factors (allauth.mfa): deleting one is how an administrator resets a lost factor
# (the user enrols again at next login); every deletion goes on the audit trail.
admin.site.unregister(Authenticator)


@admin.register(Authenticator)
class AuditedAuthenticatorAdmin(AuthenticatorAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def delete_model(self, request, obj):
        with transaction.atomic():
            mfa_authenticator_record(
                actor=request.user, authenticator=obj, added=False, reason="reset in the admin"
            )
            super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        for authenticator in queryset:
            self.delete_model(request, authenticator)
