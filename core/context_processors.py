"""Template context every page needs. Imports no project app."""

from __future__ import annotations

from django.conf import settings


def accounts(request) -> dict[str, bool]:
    """Whether the header offers a local password change (LOCAL_PASSWORDS_ENABLED)."""
    return {"local_passwords_enabled": settings.LOCAL_PASSWORDS_ENABLED}
