"""Carries the request's IP and user agent to the audit trail (``core.context``) while the
request runs. Imports no project app."""

from __future__ import annotations

import ipaddress

from .context import RequestMeta, reset_request_meta, set_request_meta


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
