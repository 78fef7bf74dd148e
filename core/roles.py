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

# A holder of each role in a sentence ("… needs a QA lead"): the article and the label's
# capitals (QA, CAB) are part of it, so messages never say "a operations" or "a qa lead".
_ROLE_PEOPLE = {
    Role.RELEASE_MANAGER: "a release manager",
    Role.QA_LEAD: "a QA lead",
    Role.SECURITY_LEAD: "a security lead",
    Role.OPERATIONS: "an operations engineer",
    Role.PRODUCT_OWNER: "a product owner",
    Role.CAB_MEMBER: "a CAB member",
    Role.CAB_CHAIR: "a CAB chair",
    Role.STAKEHOLDER: "a stakeholder",
    Role.ADMINISTRATOR: "an administrator",
}


def role_person(role: str) -> str:
    """``"a QA lead"``, ``"an operations engineer"``: a holder of ``role`` in a sentence."""
    return _ROLE_PEOPLE.get(role, f"someone with the role {role!r}")


def role_people(roles) -> str:
    """Holders of any of ``roles`` in a sentence: ``"a QA lead or a CAB chair"``."""
    return " or ".join(role_person(r) for r in roles if r in Role.values) or "nobody"


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
