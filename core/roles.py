"""Roles are Django groups with these names. Object-level rules live in releases/rules.py.

Shared by every app; imports no project app."""

from django.db import models


class Role(models.TextChoices):
    RELEASE_MANAGER = "release_manager", "Release manager"
    QA_LEAD = "qa_lead", "QA lead"
    SECURITY_LEAD = "security_lead", "Security lead"
    OPERATIONS = "operations", "Operations"
    PRODUCT_OWNER = "product_owner", "Product owner"
    CAB_MEMBER = "cab_member", "CAB member"
    CAB_CHAIR = "cab_chair", "CAB chair"
    STAKEHOLDER = "stakeholder", "Stakeholder (read-only)"
    ADMINISTRATOR = "administrator", "Administrator"


ALL_ROLES = [role.value for role in Role]


def user_roles(user) -> frozenset[str]:
    """The role names of a user, cached on the instance for the request."""
    if not getattr(user, "is_authenticated", False) or getattr(user, "is_machine", False):
        return frozenset()
    cached = getattr(user, "_releasegate_roles", None)
    if cached is None:
        cached = frozenset(user.groups.filter(name__in=ALL_ROLES).values_list("name", flat=True))
        if user.is_superuser:
            cached = cached | {Role.ADMINISTRATOR.value}
        user._releasegate_roles = cached
    return cached


def has_role(user, *roles: str) -> bool:
    return bool(user_roles(user) & set(roles))
