"""Bearer-token authentication for machines (CI/CD jobs)."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone
from rest_framework import authentication, exceptions

from .models import ApiToken, hash_token

# Writing last_used_at on every request would turn each read into a write; a minute's
# resolution is enough to see which tokens are alive.
LAST_USED_RESOLUTION = timedelta(seconds=60)


class TokenPrincipal:
    """The request.user of a token-authenticated request: a machine, not a person."""

    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_superuser = False
    is_staff = False
    is_machine = True
    pk = None
    id = None

    def __init__(self, token: ApiToken):
        self.token = token
        self.service_ids = frozenset(token.services.values_list("id", flat=True))

    def get_username(self) -> str:
        return f"token:{self.token.name}"

    def __str__(self) -> str:
        return self.get_username()

    def has_perm(self, perm: str, obj=None) -> bool:
        from rules import has_perm

        return has_perm(perm, self, obj)

    def has_scope(self, scope: str) -> bool:
        return self.token.has_scope(scope)


class BearerTokenAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.lower().encode():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Malformed Authorization header.")
        try:
            raw = header[1].decode("ascii")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed("Malformed token.") from None
        token = ApiToken.objects.active().filter(key_hash=hash_token(raw)).first()
        if token is None:
            raise exceptions.AuthenticationFailed("Invalid or revoked token.")
        now = timezone.now()
        if token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION:
            ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
            token.last_used_at = now
        return TokenPrincipal(token), token

    def authenticate_header(self, request) -> str:
        return self.keyword
