"""Accounts: unlocking a user or address that django-axes locked after too many wrong
passwords. The lockout itself is django-axes' (settings: LOGIN_FAILURE_LIMIT,
LOGIN_COOLOFF_MINUTES); ending it early is a decision, so it is audited.

Imports no project app.
"""

from __future__ import annotations

from axes.models import AccessAttempt
from axes.utils import reset as axes_reset
from django.contrib.auth import get_user_model
from django.db import transaction

from .audit import audit_record
from .errors import InvalidInput, PermissionDenied
from .roles import Role, has_role


def account_unlock(*, actor, username: str = "", ip_address: str = "", reason: str) -> int:
    """Clear the failed logins of a username and/or an address, so they may try again now.

    Permissions: administrators (or the system, ``actor=None``, for the management command).
    Side effects: one ``account.unlock`` audit event on the user (or on each attempt row when
    only an address is named), with how many failed attempts were cleared. Returns that count.
    """
    reason = (reason or "").strip()
    if not reason:
        raise InvalidInput("A reason is required to unlock.", details={"reason": ["Required."]})
    if not (username or ip_address):
        raise InvalidInput("Name the username or the address to unlock.")
    if actor is not None and not has_role(actor, Role.ADMINISTRATOR):
        raise PermissionDenied("Only an administrator can unlock an account.")
    with transaction.atomic():
        attempts = AccessAttempt.objects.all()
        if username:
            attempts = attempts.filter(username=username)
        if ip_address:
            attempts = attempts.filter(ip_address=ip_address)
        rows = list(attempts.select_for_update())
        failures = sum(row.failures_since_start for row in rows)
        cleared = axes_reset(username=username or None, ip=ip_address or None)
        user = get_user_model().objects.filter(username=username).first() if username else None
        for target in [user] if user is not None else rows:
            audit_record(
                actor=actor,
                action="account.unlock",
                target=target,
                reason=reason,
                before={
                    "username": username,
                    "ip_address": ip_address,
                    "failed_logins": failures,
                    "attempt_rows": cleared,
                },
            )
    return cleared


def mfa_authenticator_record(*, actor, authenticator, added: bool, reason: str = "") -> None:
    """Put a second factor added or removed on the record (``account.mfa_added`` /
    ``account.mfa_removed`` on its user, with its kind: totp, webauthn, recovery_codes).

    Permissions: checked by whoever made the change (allauth's own pages for the user,
    the admin for an administrator resetting a lost factor). Side effects: the audit event.
    """
    with transaction.atomic():
        kind = {"type": authenticator.type}
        audit_record(
            actor=actor,
            action="account.mfa_added" if added else "account.mfa_removed",
            target=authenticator.user,
            reason=reason,
            before=None if added else kind,
            after=kind if added else None,
        )


def on_authenticator_added(sender, request, user, authenticator, **kwargs) -> None:
    """allauth.mfa's signal, after the user's own enrolment committed."""
    mfa_authenticator_record(actor=user, authenticator=authenticator, added=True)


def on_authenticator_removed(sender, request, user, authenticator, **kwargs) -> None:
    mfa_authenticator_record(actor=user, authenticator=authenticator, added=False)
