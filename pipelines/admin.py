from django.contrib import admin, messages
from django.db import transaction

from .models import ApiToken
from .services import api_token_revoke


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
