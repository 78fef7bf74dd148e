"""Single sign-on (OpenID Connect through django-allauth) and the MFA policy.

Every SSO login makes the user's roles match what their identity provider (IdP) says:
``OIDC_GROUP_ROLE_MAP`` maps IdP groups (the ``OIDC_GROUPS_CLAIM`` claim of the ID token or
userinfo) to roles, which are granted, and every other role is revoked, so a group removed
at the IdP removes the role at the next login. Higher apps add their own mapping through
``register_login_listener`` (the releases app maps groups to teams). One audited service,
``sso_login_sync``, does it all in one transaction.

``mfa_required(user)`` says whether a user's roles oblige them to enrol a second factor
(``MFA_REQUIRED_ROLES``); ``core.middleware.MfaEnrolmentMiddleware`` enforces it.

Imports no project app.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from allauth.account.adapter import DefaultAccountAdapter
from allauth.socialaccount.adapter import DefaultSocialAccountAdapter
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction

from .audit import audit_record
from .roles import ALL_ROLES, Role, user_roles

# A listener takes (user, idp_groups) inside the login's transaction, applies its own mapping
# and returns {"field": (before, after)} for what it changed (the audit event records it).
LoginListener = Callable[..., dict[str, tuple[list[str], list[str]]]]
_login_listeners: list[LoginListener] = []


def register_login_listener(listener: LoginListener) -> None:
    """Called by a higher app's AppConfig.ready(); idempotent."""
    if listener not in _login_listeners:
        _login_listeners.append(listener)


def mapped_values(mapping: dict[str, Any], groups: Iterable[str]) -> set[str]:
    """The values a ``{"group": "value" | ["value", ...]}`` map gives a user in ``groups``."""
    found: set[str] = set()
    for group in groups:
        value = mapping.get(group)
        if value is None:
            continue
        found.update([value] if isinstance(value, str) else value)
    return found


def groups_from_claims(extra_data: dict[str, Any]) -> list[str]:
    """The user's IdP groups: the groups claim of the ID token and of userinfo, together.

    A claim may be a list (Keycloak, Okta, Entra) or a single string; anything else is
    ignored rather than guessed at.
    """
    claim = settings.OIDC_GROUPS_CLAIM
    groups: set[str] = set()
    for source in ("id_token", "userinfo"):
        data = extra_data.get(source)
        if not isinstance(data, dict):
            continue
        value = data.get(claim)
        if isinstance(value, str):
            groups.add(value)
        elif isinstance(value, list):
            groups.update(str(item) for item in value if isinstance(item, str | int))
    return sorted(groups)


def sso_login_sync(*, user, groups: Iterable[str], provider: str) -> dict[str, Any]:
    """Make a user's roles (and, through the listeners, teams) match their IdP groups.

    Permissions: none to check: the IdP is the authority, this runs for the user who has
    just proved who they are to it. With an empty ``OIDC_GROUP_ROLE_MAP`` roles are left
    as they are (managed in the admin). An administrator is staff (may open the admin).
    Side effects: one ``account.sso_sync`` audit event when anything changed, with the
    groups the IdP sent and the roles before and after. Returns the changes.
    """
    groups = sorted(set(groups))
    with transaction.atomic():
        user = get_user_model().objects.select_for_update().get(pk=user.pk)
        current = set(user.groups.filter(name__in=ALL_ROLES).values_list("name", flat=True))
        role_map = settings.OIDC_GROUP_ROLE_MAP
        wanted = mapped_values(role_map, groups) if role_map else set(current)
        changes: dict[str, tuple[list[str], list[str]]] = {}
        if wanted != current:
            if grant := wanted - current:
                for name in grant:
                    Group.objects.get_or_create(name=name)
                user.groups.add(*Group.objects.filter(name__in=grant))
            if revoke := current - wanted:
                user.groups.remove(*Group.objects.filter(name__in=revoke))
            changes["roles"] = (sorted(current), sorted(wanted))
        staff = user.is_superuser or Role.ADMINISTRATOR.value in wanted
        if role_map and user.is_staff != staff:
            changes["is_staff"] = ([str(user.is_staff)], [str(staff)])
            user.is_staff = staff
            user.save(update_fields=["is_staff"])
        for listener in _login_listeners:
            changes.update(listener(user=user, groups=groups) or {})
        if changes:
            audit_record(
                actor=None,
                action="account.sso_sync",
                target=user,
                reason=f"signed in through {provider}",
                before={field: old for field, (old, _new) in changes.items()},
                after={
                    "idp_groups": groups,
                    **{field: new for field, (_old, new) in changes.items()},
                },
            )
    return changes


def mfa_required(user) -> bool:
    """Whether the user's roles oblige them to use a second factor (MFA_REQUIRED_ROLES)."""
    required = settings.MFA_REQUIRED_ROLES
    return bool(required) and bool(user_roles(user) & set(required))


def sso_providers(request) -> list[dict[str, str]]:
    """The configured OpenID Connect providers, as (name, login URL) for the login page."""
    from allauth.socialaccount.adapter import get_adapter

    providers = []
    for app in get_adapter().list_apps(request, provider="openid_connect"):
        provider = app.get_provider(request)
        providers.append({"name": app.name, "url": provider.get_login_url(request)})
    return providers


class AccountAdapter(DefaultAccountAdapter):
    """Local sign-up is closed (accounts come from the admin or the IdP); every SSO login
    syncs roles and teams before the login's stages (MFA) run, so the MFA policy sees the
    roles the IdP grants today."""

    def is_open_for_signup(self, request) -> bool:
        return False

    def pre_login(self, request, user, **kwargs):
        sociallogin = (kwargs.get("signal_kwargs") or {}).get("sociallogin")
        if sociallogin is not None:
            sso_login_sync(
                user=user,
                groups=groups_from_claims(sociallogin.account.extra_data or {}),
                provider=sociallogin.account.get_provider(request).name,
            )
            user._releasegate_roles = None  # the roles just changed
        return super().pre_login(request, user, **kwargs)


class SocialAccountAdapter(DefaultSocialAccountAdapter):
    """A person the IdP vouches for gets an account on first login (local sign-up stays
    closed); an existing local account is never taken over by a matching e-mail."""

    def is_open_for_signup(self, request, sociallogin) -> bool:
        return True
