"""Integrations (GitHub, GitLab, Jenkins, Alertmanager), their secrets, and the
runs their webhooks report."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from django.db import IntegrityError, transaction
from django.utils import timezone

from core.audit import audit_record
from core.errors import InvalidInput, NotFound, PermissionDenied
from core.outbound import OutboundRefused, check_outbound_url
from releases.models import Service

from ..adapters.types import Ignored, RunEvent
from ..authentication import IntegrationPrincipal
from ..models import (
    Integration,
    IntegrationProvider,
    IntegrationSecret,
    PipelineRun,
    WebhookDelivery,
)
from ..scm_api import github_app_jwt
from .runs import pipeline_run_upsert

# --- integrations and their webhooks ----------------------------------------------------------


def integration_create(
    *,
    actor,
    provider: str,
    name: str,
    service_slugs: Iterable[str],
    secret: str,
    api_url: str = "",
    api_token: str = "",
    gate_timeout_minutes: int | None = None,
    github_app: tuple[str, str, str] | None = None,
) -> Integration:
    """Configure a webhook sender for some services, with its first secret, and (GitHub,
    GitLab) the API it is answered through: ``api_url`` (blank: the provider's cloud API)
    and ``api_token``, or for GitHub ``github_app`` = (app id, private key PEM, installation
    id or ""). Administrators (and management commands, actor=None). Audited; no secret,
    token or key is written to the trail, only the token's hint and the app id.
    """
    _require_admin(actor)
    name = name.strip()
    if provider not in IntegrationProvider.values:
        raise InvalidInput(
            f"Unknown provider {provider!r}. Known: {', '.join(IntegrationProvider.values)}."
        )
    if not name or len(name) > 100:
        raise InvalidInput("An integration needs a name of at most 100 characters.")
    _check_secret(secret)
    api_url, api_token = _checked_api(provider, api_url, api_token)
    app = _checked_github_app(provider, github_app) if github_app else ("", "", "")
    if gate_timeout_minutes is not None and not 1 <= gate_timeout_minutes <= 43200:
        raise InvalidInput("The gate timeout is 1 to 43200 minutes (30 days, GitHub's limit).")
    slugs = sorted(set(service_slugs))
    services = list(Service.objects.filter(slug__in=slugs))
    missing = set(slugs) - {s.slug for s in services}
    if missing or not slugs:
        raise NotFound(f"Unknown service(s): {', '.join(sorted(missing)) or '(none given)'}.")
    with transaction.atomic():
        if Integration.objects.filter(name=name).exists():
            raise InvalidInput(f"An integration named {name!r} already exists.")
        integration = Integration.objects.create(
            provider=provider,
            name=name,
            api_url=api_url,
            api_token=api_token,
            github_app_id=app[0],
            github_app_private_key=app[1],
            github_app_installation_id=app[2],
        )
        if gate_timeout_minutes is not None:
            integration.gate_timeout_minutes = gate_timeout_minutes
            integration.save(update_fields=["gate_timeout_minutes"])
        integration.services.set(services)
        IntegrationSecret.objects.create(integration=integration, secret=secret)
        audit_record(
            actor=actor,
            action="integration.create",
            target=integration,
            after=_integration_state(integration),
        )
    return integration


def integration_api_set(
    *,
    actor,
    integration: Integration | int,
    api_url: str | None = None,
    api_token: str | None = None,
    gate_timeout_minutes: int | None = None,
    github_app: tuple[str, str, str] | None = None,
) -> Integration:
    """Change where and with which token (or GitHub App) an integration calls its provider's
    API (new credentials replace the old ones at once), or its gate timeout. Administrators.
    Audited (``integration.update``) with the token's hint and the app id only."""
    _require_admin(actor)
    with transaction.atomic():
        integration = Integration.objects.select_for_update().get(
            pk=integration.pk if isinstance(integration, Integration) else integration
        )
        before = _integration_state(integration)
        url, token = _checked_api(
            integration.provider,
            integration.api_url if api_url is None else api_url,
            integration.api_token if api_token is None else api_token,
        )
        integration.api_url, integration.api_token = url, token
        if github_app is not None:
            (
                integration.github_app_id,
                integration.github_app_private_key,
                integration.github_app_installation_id,
            ) = _checked_github_app(integration.provider, github_app)
        if gate_timeout_minutes is not None:
            if not 1 <= gate_timeout_minutes <= 43200:
                raise InvalidInput("The gate timeout is 1 to 43200 minutes.")
            integration.gate_timeout_minutes = gate_timeout_minutes
        integration.save()
        audit_record(
            actor=actor,
            action="integration.update",
            target=integration,
            reason="API settings changed.",
            before=before,
            after=_integration_state(integration),
        )
    return integration


def _checked_github_app(provider: str, app: tuple[str, str, str]) -> tuple[str, str, str]:
    """(app id, private key, installation id): a GitHub integration's, the key able to sign
    the app's JWT (checked by signing one)."""
    app_id, key, installation = (str(v or "").strip() for v in app)
    if provider != IntegrationProvider.GITHUB:
        raise InvalidInput("Only GitHub integrations authenticate as a GitHub App.")
    if not app_id.isdigit() or len(app_id) > 20:
        raise InvalidInput("A GitHub App id is a number.")
    if installation and (not installation.isdigit() or len(installation) > 20):
        raise InvalidInput("A GitHub App installation id is a number.")
    try:
        github_app_jwt(app_id, key)
    except Exception:  # noqa: BLE001 - whatever the key is, it cannot sign
        raise InvalidInput("The GitHub App private key must be an RSA key in PEM.") from None
    return app_id, key + ("\n" if not key.endswith("\n") else ""), installation


def _checked_api(provider: str, api_url: str, api_token: str) -> tuple[str, str]:
    api_url = (api_url or "").strip()
    api_token = (api_token or "").strip()
    if (api_url or api_token) and provider not in (
        IntegrationProvider.GITHUB,
        IntegrationProvider.GITLAB,
    ):
        raise InvalidInput("Only GitHub and GitLab integrations call their provider's API.")
    if api_url:
        if len(api_url) > 300:
            raise InvalidInput("The API URL is at most 300 characters.")
        try:
            check_outbound_url(api_url)
        except OutboundRefused as exc:
            raise InvalidInput(f"API URL refused: {exc}") from None
    if len(api_token) > 300 or any(c.isspace() or c == "\x00" for c in api_token):
        raise InvalidInput("An API token is at most 300 characters, without spaces.")
    return api_url, api_token


def integration_secret_add(
    *, actor, integration: Integration | int, secret: str
) -> IntegrationSecret:
    """Add a secret (rotation): old and new both verify until the old one is revoked."""
    _require_admin(actor)
    _check_secret(secret)
    with transaction.atomic():
        integration = Integration.objects.select_for_update().get(
            pk=integration.pk if isinstance(integration, Integration) else integration
        )
        added = IntegrationSecret.objects.create(integration=integration, secret=secret)
        audit_record(
            actor=actor,
            action="integration.secret_add",
            target=integration,
            after=_secret_hint(added),
        )
    return added


def integration_secret_revoke(*, actor, secret: IntegrationSecret | int) -> IntegrationSecret:
    """Revoke a secret; deliveries signed with it are refused from now on."""
    _require_admin(actor)
    with transaction.atomic():
        secret = IntegrationSecret.objects.select_for_update().get(
            pk=secret.pk if isinstance(secret, IntegrationSecret) else secret
        )
        if secret.revoked_at is None:
            secret.revoked_at = timezone.now()
            secret.save(update_fields=["revoked_at"])
            audit_record(
                actor=actor,
                action="integration.secret_revoke",
                target=secret.integration,
                before=_secret_hint(secret),
            )
    return secret


def integration_admin_saved(
    *,
    actor,
    integration: Integration,
    created: bool,
    changed_fields: Iterable[str],
    secrets_added: Iterable[IntegrationSecret],
    secrets_replaced: Iterable[IntegrationSecret],
    secrets_deleted: Iterable[IntegrationSecret],
) -> None:
    """Audit what the Django admin just saved of an integration (its form and its secrets'
    inline), inside the admin's own transaction: ``integration.create`` or ``.update`` with
    the fields changed (nothing when none changed), and one ``.secret_add``,
    ``.secret_replace`` or ``.secret_delete`` per secret row, by its hint only."""
    changed_fields = list(changed_fields)
    if created or changed_fields:
        audit_record(
            actor=actor,
            action="integration.create" if created else "integration.update",
            target=integration,
            reason="Added in the admin."
            if created
            else "Changed in the admin: " + ", ".join(changed_fields),
            after=_integration_state(integration),
        )
    for action, secrets in (
        ("integration.secret_add", secrets_added),
        ("integration.secret_replace", secrets_replaced),
    ):
        for secret in secrets:
            audit_record(actor=actor, action=action, target=integration, after=_secret_hint(secret))
    for secret in secrets_deleted:
        audit_record(
            actor=actor,
            action="integration.secret_delete",
            target=integration,
            before=_secret_hint(secret),
        )


def integration_delete(*, actor, integration: Integration) -> None:
    """Delete an integration and its secrets: its deliveries are refused from now on.
    Administrators. Audited with what it was (``integration.delete``)."""
    _require_admin(actor)
    with transaction.atomic():
        audit_record(
            actor=actor,
            action="integration.delete",
            target=integration,
            before=_integration_state(integration),
        )
        integration.delete()


def _integration_state(integration: Integration) -> dict:
    state = {
        "provider": integration.provider,
        "name": integration.name,
        "enabled": integration.enabled,
        "services": sorted(integration.services.values_list("slug", flat=True)),
    }
    if integration.api_url or integration.api_token or integration.github_app_id:
        # The token itself never reaches the trail: its first characters say which one.
        state["api_url"] = integration.api_base_url
        state["api_token_hint"] = (integration.api_token[:4] + "…") if integration.api_token else ""
    if integration.github_app_id:
        state["github_app_id"] = integration.github_app_id
        state["github_app_installation_id"] = integration.github_app_installation_id
    return state


def _secret_hint(secret: IntegrationSecret) -> dict:
    return {"secret_hint": secret.hint + "…"}


def _require_admin(actor) -> None:
    if actor is None or getattr(actor, "is_superuser", False):
        return
    if getattr(actor, "is_machine", False) or not actor.has_perm("pipelines.add_integration"):
        raise PermissionDenied("Only administrators configure integrations.")


def _check_secret(secret: str) -> None:
    if not secret or len(secret) > 200 or "\x00" in secret:
        raise InvalidInput("A secret must be 1 to 200 characters.")


def integrations_verifying(provider: str, verify) -> Integration | None:
    """The enabled integration of this provider with an active secret that ``verify`` accepts
    (``verify`` gets the list of an integration's secrets, so rotation overlaps verify)."""
    by_integration: dict[int, tuple[Integration, list[str]]] = {}
    for secret in IntegrationSecret.objects.filter(
        integration__provider=provider, integration__enabled=True, revoked_at__isnull=True
    ).select_related("integration"):
        entry = by_integration.setdefault(secret.integration_id, (secret.integration, []))
        entry[1].append(secret.secret)
    for integration, secrets in by_integration.values():
        if verify(secrets):
            return integration
    return None


def service_for_repository(integration: Integration, repository: str) -> Service:
    """Map a payload's repository (``owner/name``, a GitLab path, a Jenkins job) to one of the
    integration's services: its only service, else by Service.repository_url, else by slug."""
    services = list(integration.services.all())
    if len(services) == 1:
        return services[0]
    repo = repository.strip("/").lower().removesuffix(".git")
    for service in services:
        url = service.repository_url.lower().rstrip("/").removesuffix(".git")
        if url and repo and url.endswith("/" + repo):
            return service
    parts = set(repo.split("/"))
    for service in services:
        if service.slug.lower() in parts:
            return service
    raise InvalidInput(
        f"Repository {repository!r} is not mapped to a service of integration "
        f"{integration.name!r}: set the service's repository URL.",
        details={"repository": [f"Not mapped: {repository!r}."]},
    )


@dataclass
class DeliveryResult:
    duplicate: bool
    run: PipelineRun | None = None
    created: bool = False
    changed: bool = False
    ignored: list[Ignored] = field(default_factory=list)


def webhook_run_receive(
    *, integration: Integration, delivery_id: str, event_name: str, event: RunEvent
) -> DeliveryResult:
    """Record a verified CI webhook delivery and upsert its run, in one transaction.

    The delivery row (unique per provider and delivery id) is written first, so the same
    delivery sent twice — or fifty times at once — is processed once: the others wait on the
    unique index and find it taken. A delivery whose processing fails is rolled back with it,
    so the provider's redelivery is processed. Without a delivery id the run upsert's own
    idempotency applies.
    """
    event = _webhook_event_checked(event)
    service = service_for_repository(integration, event.repository)
    principal = IntegrationPrincipal(
        integration, frozenset(integration.services.values_list("id", flat=True))
    )
    with transaction.atomic():
        delivery = None
        if delivery_id:
            try:
                with transaction.atomic():
                    delivery = WebhookDelivery.objects.create(
                        provider=integration.provider,
                        delivery_id=delivery_id,
                        integration=integration,
                        event=event_name[:50],
                    )
            except IntegrityError:
                return DeliveryResult(duplicate=True)
        result = pipeline_run_upsert(actor=principal, service=service, event=event)
        if delivery is not None:
            WebhookDelivery.objects.filter(pk=delivery.pk).update(run=result.run.pk)
    return DeliveryResult(
        duplicate=False,
        run=result.run,
        created=result.created,
        changed=result.changed,
        ignored=result.ignored,
    )


# The largest attempt number a run can be stored under (PostgreSQL integer).
MAX_ATTEMPT = 2**31 - 1
_HTTP_URL = re.compile(r"^https?://\S+$", re.IGNORECASE)


def _webhook_event_checked(event: RunEvent) -> RunEvent:
    """Hold a native payload to the rules a REST report meets (pipelines/api/validation.py):
    an attempt the database can store (else a 400 naming it, nothing written), and a link
    the pages may render: anything but an http(s) URL (``javascript:``, ``data:``) is not
    stored, and the answer's ``ignored`` says so."""
    if not 1 <= event.attempt <= MAX_ATTEMPT:
        raise InvalidInput(
            f"The run attempt must be between 1 and {MAX_ATTEMPT}.",
            details={"attempt": [f"Must be between 1 and {MAX_ATTEMPT}."]},
        )
    if event.url and not _HTTP_URL.match(event.url):
        return replace(
            event,
            url="",
            ignored=(*event.ignored, Ignored("url", "Only http(s) links are stored.")),
        )
    return event
