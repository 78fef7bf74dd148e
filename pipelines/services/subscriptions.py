"""CDEvents subscriptions: who receives the CDEvents Releasegate emits (pipelines/cdevents.py)."""

from __future__ import annotations

from collections.abc import Iterable

from django.db import transaction

from core.audit import audit_record
from core.errors import InvalidInput, PermissionDenied
from core.outbound import OutboundRefused, check_outbound_url

from ..models import CDEventSubscription

_PREFIXES = ("dev.cdevents.", "dev.cdeventsx.")


def _require_admin(actor) -> None:
    if actor is None or getattr(actor, "is_superuser", False):
        return
    if getattr(actor, "is_machine", False) or not actor.has_perm(
        "pipelines.change_cdeventsubscription"
    ):
        raise PermissionDenied("Only administrators configure CDEvents subscriptions.")


def _state(subscription: CDEventSubscription) -> dict:
    return {
        "url": subscription.url,
        "enabled": subscription.enabled,
        "event_types": list(subscription.event_types or []),
        "secret_hint": (subscription.secret[:4] + "…") if subscription.secret else "",
    }


def cdevent_subscription_save(
    *,
    actor,
    name: str,
    url: str,
    secret: str = "",
    event_types: Iterable[str] = (),
    enabled: bool = True,
) -> CDEventSubscription:
    """Create the subscription ``name`` or change it (a blank secret keeps the current one).

    Permissions: administrators (the command runs as the system). The URL must be one the
    workers may call (``core.outbound``: no private address unless allowed); event types are
    CDEvents type prefixes. Audited (``cdevents_subscription.create``/``.update``, the secret
    only as its hint)."""
    _require_admin(actor)
    name = (name or "").strip()
    if not name or len(name) > 100:
        raise InvalidInput("A subscription needs a name of 1 to 100 characters.")
    try:
        check_outbound_url(url)
    except OutboundRefused as exc:
        raise InvalidInput(str(exc), details={"url": [str(exc)]}) from None
    if len(url) > 500:
        raise InvalidInput("The URL is over 500 characters.", details={"url": ["Too long."]})
    types = sorted({t.strip() for t in event_types if t and t.strip()})
    wrong = [t for t in types if not t.startswith(_PREFIXES)]
    if wrong:
        raise InvalidInput(
            f"Event types are CDEvents type prefixes (dev.cdevents.…, dev.cdeventsx.…): {wrong}",
            details={"event_types": ["Not a CDEvents type prefix."]},
        )
    if len(secret) > 200 or "\x00" in secret:
        raise InvalidInput("A secret is at most 200 characters.")
    with transaction.atomic():
        subscription = CDEventSubscription.objects.select_for_update().filter(name=name).first()
        created = subscription is None
        if created:
            if not secret:
                raise InvalidInput("A new subscription needs a secret to sign its deliveries.")
            subscription = CDEventSubscription(name=name)
            before = None
        else:
            before = _state(subscription)
        subscription.url = url
        subscription.event_types = types
        subscription.enabled = enabled
        if secret:
            subscription.secret = secret
        subscription.save()
        after = _state(subscription)
        if created or after != before:
            audit_record(
                actor=actor,
                action="cdevents_subscription.create"
                if created
                else "cdevents_subscription.update",
                target=subscription,
                before=before,
                after=after,
            )
    return subscription


def cdevent_subscription_delete(*, actor, subscription: CDEventSubscription) -> None:
    """Delete a subscription and its undelivered events. Administrators; audited."""
    _require_admin(actor)
    with transaction.atomic():
        audit_record(
            actor=actor,
            action="cdevents_subscription.delete",
            target=subscription,
            before=_state(subscription),
        )
        subscription.delete()
