"""API tokens for CI/CD: created with their raw value shown once, revoked at once."""

from __future__ import annotations

from collections.abc import Iterable

from django.db import transaction
from django.utils import timezone

from core.audit import audit_record
from core.errors import InvalidInput, NotFound, PermissionDenied
from releases.models import Service
from releases.rules import is_administrator

from ..authentication import forget_token
from ..models import (
    ApiToken,
    TokenScope,
    hash_token,
)

DEFAULT_SCOPES = (TokenScope.RUNS_WRITE.value, TokenScope.DEPLOYMENTS_WRITE.value)


def _check_manages(actor, services) -> None:
    """A person (not the command line, whose actor is None) may manage only the tokens of
    services they manage: administrators all, release managers their teams'."""
    if actor is None:
        return
    from ..selectors import token_manageable_services

    allowed = set(token_manageable_services(actor).values_list("id", flat=True))
    foreign = sorted(s.slug for s in services if s.id not in allowed)
    if foreign or (not services and not is_administrator(actor)):
        raise PermissionDenied(
            "Only an administrator or a release manager of the service's team may manage "
            f"its CI tokens{': ' + ', '.join(foreign) if foreign else ''}."
        )


def api_token_create(
    *, actor, name: str, service_slugs: Iterable[str], scopes: Iterable[str] | None = None
) -> tuple[ApiToken, str]:
    """Create a token and return it with its raw value, which is never stored or shown again."""
    name = name.strip()
    if not name:
        raise InvalidInput("A token needs a name.")
    slugs = sorted(set(service_slugs))
    services = list(Service.objects.filter(slug__in=slugs))
    missing = set(slugs) - {s.slug for s in services}
    if missing:
        raise NotFound(f"Unknown service(s): {', '.join(sorted(missing))}.")
    _check_manages(actor, services)
    scopes = sorted(set(scopes or DEFAULT_SCOPES))
    unknown = set(scopes) - set(TokenScope.values)
    if unknown:
        raise InvalidInput(
            f"Unknown scope(s): {', '.join(sorted(unknown))}. "
            f"Known: {', '.join(TokenScope.values)}."
        )
    raw = ApiToken.generate_raw()
    with transaction.atomic():
        if ApiToken.objects.filter(name=name).exists():
            raise InvalidInput(f"A token named {name!r} already exists.")
        token = ApiToken.objects.create(
            name=name,
            key_hash=hash_token(raw),
            key_hint=raw[:8],
            scopes=scopes,
            created_by=actor if getattr(actor, "pk", None) else None,
        )
        token.services.set(services)
        audit_record(
            actor=actor,
            action="api_token.create",
            target=token,
            after={"name": name, "services": slugs, "scopes": scopes},
        )
    return token, raw


def api_token_revoke(*, actor, name: str, reason: str = "") -> ApiToken:
    """Revoke a token by name; revoking twice is a no-op that says so."""
    with transaction.atomic():
        token = ApiToken.objects.select_for_update().filter(name=name).first()
        if token is None:
            raise NotFound(f"No token named {name!r}.")
        _check_manages(actor, list(token.services.all()))
        if token.revoked_at is not None:
            return token
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
        # Forget the cached token now and again after commit (a request in between could
        # have cached it once more).
        forget_token(token.key_hash)
        transaction.on_commit(lambda: forget_token(token.key_hash))
        audit_record(actor=actor, action="api_token.revoke", target=token, reason=reason)
    return token
