"""Bearer-token authentication for machines (CI/CD jobs)."""

from __future__ import annotations

import time
from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone
from rest_framework import authentication, exceptions

from core.shared_cache import guarded

from .models import ApiToken, hash_token

# Writing last_used_at on every request would turn each read into a write; a minute's
# resolution is enough to see which tokens are alive.
LAST_USED_RESOLUTION = timedelta(seconds=60)
_REVOKED = "revoked"


def token_cache_key(key_hash: str) -> str:
    return f"pipelines:apitoken:{key_hash}"


# A few seconds of per-process memory in front of the shared cache: the steady state of a
# busy CI token costs no round trip at all. Revocation reaches other processes within this.
LOCAL_TOKEN_SECONDS = 5.0
_local_tokens: dict[str, tuple[float, tuple]] = {}
_local_touched: dict[str, float] = {}


def forget_token(key_hash: str) -> None:
    """Drop a token from the caches (on revocation or a change of its services/scopes)."""
    _local_tokens.pop(key_hash, None)
    # With the cache down the entry cannot be deleted; it then ends with its TTL
    # (API_TOKEN_CACHE_SECONDS), the bound a revocation has anyway across processes.
    guarded(lambda: cache.delete(token_cache_key(key_hash)), None)


def _load_token(key_hash: str) -> tuple[ApiToken, dict[str, int]] | None:
    """The active token with this hash and its services (slug → id), cached.

    CI posts arrive by the thousand: looking the token and its services up in the database
    on every request would cost two queries per post. Entries live API_TOKEN_CACHE_SECONDS;
    revoking deletes the entry at once (with a shared cache such as Redis, everywhere; with
    the per-process default cache, other processes notice within that TTL). Unknown hashes
    are not cached, so the cache cannot be filled by guessing. When the shared cache is
    down, the token is read from the database (core.shared_cache).
    """
    ttl = settings.API_TOKEN_CACHE_SECONDS
    key = token_cache_key(key_hash)
    cached = None
    now = time.monotonic()
    if ttl:
        local = _local_tokens.get(key_hash)
        if local is not None and local[0] > now:
            cached = local[1]
        else:
            cached = guarded(lambda: cache.get(key), None)
            if cached is not None:
                _local_tokens[key_hash] = (now + min(ttl, LOCAL_TOKEN_SECONDS), cached)
    if cached is None:
        token = ApiToken.objects.active().filter(key_hash=key_hash).first()
        if token is None:
            return None
        services = dict(token.services.values_list("slug", "id"))
        cached = (
            {
                "id": token.pk,
                "name": token.name,
                "scopes": list(token.scopes or []),
                "last_used_at": token.last_used_at,
            },
            services,
        )
        if ttl:
            guarded(lambda: cache.set(key, cached, ttl), None)
            _local_tokens[key_hash] = (now + min(ttl, LOCAL_TOKEN_SECONDS), cached)
    fields, services = cached
    token = ApiToken(key_hash=key_hash, **fields)
    token._state.adding = False
    return token, services


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

    def __init__(self, token: ApiToken, services: dict[str, int] | None = None):
        self.token = token
        if services is None:
            services = dict(token.services.values_list("slug", "id"))
        self.service_slugs = services
        self.service_ids = frozenset(services.values())

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
        if len(raw) > 200:
            raise exceptions.AuthenticationFailed("Invalid or revoked token.")
        loaded = _load_token(hash_token(raw))
        if loaded is None:
            raise exceptions.AuthenticationFailed("Invalid or revoked token.")
        token, services = loaded
        self._touch(token)
        return TokenPrincipal(token, services), token

    @staticmethod
    def _touch(token: ApiToken) -> None:
        # At most one write per token and minute: this process checks its memory first, then
        # the shared cache (cache.add is atomic across processes).
        now = time.monotonic()
        if _local_touched.get(token.key_hash, 0.0) > now:
            return
        _local_touched[token.key_hash] = now + 60
        # Without the shared cache this process's own minute (above) still bounds the writes.
        if guarded(lambda: cache.add(f"pipelines:apitoken-used:{token.key_hash}", 1, 60), True):
            now = timezone.now()
            if token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION:
                ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
                token.last_used_at = now

    def authenticate_header(self, request) -> str:
        return self.keyword


class IntegrationPrincipal:
    """The acting principal of a verified webhook delivery: an integration, a machine that
    may report runs for its services."""

    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_superuser = False
    is_staff = False
    is_machine = True
    token = None
    pk = None
    id = None

    def __init__(self, integration, service_ids: frozenset[int]):
        self.integration = integration
        self.service_ids = service_ids

    def get_username(self) -> str:
        return f"integration:{self.integration.name}"

    def __str__(self) -> str:
        return self.get_username()

    def has_perm(self, perm: str, obj=None) -> bool:
        return False

    def has_scope(self, scope: str) -> bool:
        # CI webhooks report runs; a CDEvents integration also reports deployments (its
        # service.* events), as a CD system's token would.
        if scope == "deployments:write":
            return self.integration.provider == "cdevents"
        return scope == "runs:write"


class DeploymentReporter:
    """A token acting as the CD system that reports a deployment. Built only by the
    deployment service, so the release transitions it may drive (releases.rules'
    ``reports_deployment_of_release``) are reachable only through a deployment report, never
    through the release transition endpoints."""

    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_superuser = False
    is_staff = False
    is_machine = True
    reports_deployment = True
    pk = None
    id = None

    def __init__(self, principal: TokenPrincipal):
        self.token = principal.token
        self.service_ids = principal.service_ids
        self._principal = principal

    def get_username(self) -> str:
        return self._principal.get_username()

    def __str__(self) -> str:
        return self.get_username()

    def has_perm(self, perm: str, obj=None) -> bool:
        from rules import has_perm

        return has_perm(perm, self, obj)

    def has_scope(self, scope: str) -> bool:
        return self._principal.has_scope(scope)
