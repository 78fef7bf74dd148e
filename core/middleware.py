"""Carries the request's IP and user agent to the audit trail (``core.context``) while the
request runs, and holds users whose role requires MFA to enrolment. Imports no project app."""

from __future__ import annotations

import ipaddress

from allauth.mfa.models import Authenticator
from django.conf import settings
from django.contrib import messages
from django.http import JsonResponse
from django.shortcuts import redirect
from django.urls import reverse

from .context import RequestMeta, reset_request_meta, set_request_meta
from .sso import mfa_required


def _client_ip(request) -> str | None:
    # REMOTE_ADDR only: X-Forwarded-For is client-controlled unless a trusted proxy strips it.
    raw = request.META.get("REMOTE_ADDR", "")
    try:
        return str(ipaddress.ip_address(raw))
    except ValueError:
        return None


class AuditContextMiddleware:
    """Records the request's IP and user agent for audit events written while it runs."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        meta = RequestMeta(
            ip_address=_client_ip(request),
            user_agent=request.META.get("HTTP_USER_AGENT", "")[:300],
        )
        token = set_request_meta(meta)
        try:
            return self.get_response(request)
        finally:
            reset_request_meta(token)


class MfaEnrolmentMiddleware:
    """Sends a signed-in user whose roles require MFA (``MFA_REQUIRED_ROLES``) and who has no
    authenticator app or security key yet to enrol one, before any other page. The account
    pages (``/accounts/``: enrolment, re-authentication, logout) stay reachable; an API call
    made with the session gets a JSON 403 instead of a redirect. Bearer tokens are machines
    and are not concerned (they authenticate in the API view, after this)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if self._must_enrol(request):
            if request.path.startswith("/api/"):
                return JsonResponse(
                    {
                        "detail": "Your role requires two-factor authentication: enrol an "
                        "authenticator app or a security key first.",
                        "code": "mfa_enrolment_required",
                    },
                    status=403,
                )
            # The MFA page offers both kinds: an authenticator app (TOTP) or a security key.
            messages.warning(request, _ENROL_MESSAGE)
            return redirect(reverse("mfa_index"))
        return self.get_response(request)

    @staticmethod
    def _must_enrol(request) -> bool:
        if not settings.MFA_REQUIRED_ROLES or request.path.startswith(_EXEMPT_PREFIXES):
            return False
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated or not mfa_required(user):
            return False
        return not Authenticator.objects.filter(
            user=user, type__in=[Authenticator.Type.TOTP, Authenticator.Type.WEBAUTHN]
        ).exists()


_ENROL_MESSAGE = (
    "Your role requires two-factor authentication. Set up an authenticator app or a security "
    "key to continue."
)
# Where a user who must enrol may still go: the account pages, the probes, static files.
_EXEMPT_PREFIXES = ("/accounts/", "/static/", "/healthz/", "/readyz/", "/favicon.ico")
