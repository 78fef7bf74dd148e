"""Integrations configured in the Django admin leave the same audit trail as the services:
who may report deployments for which service is governance data, wherever it is changed."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from core.models import AuditEvent
from pipelines.models import Integration, IntegrationSecret

pytestmark = pytest.mark.django_db

ADD = "/admin/pipelines/integration/add/"


def _form(service, *, enabled: bool = True, secrets: list[dict] | None = None, initial: int = 0):
    data = {
        "name": "GitHub main",
        "provider": "github",
        "services": [service.pk],
        "secrets-TOTAL_FORMS": str(len(secrets or [])),
        "secrets-INITIAL_FORMS": str(initial),
        "secrets-MIN_NUM_FORMS": "0",
        "secrets-MAX_NUM_FORMS": "1000",
    }
    if enabled:
        data["enabled"] = "on"
    for i, secret in enumerate(secrets or []):
        data.update({f"secrets-{i}-{key}": value for key, value in secret.items()})
    return data


def _trail(integration) -> list[tuple[str, str, dict, dict]]:
    events = AuditEvent.objects.filter(target_id=str(integration.pk)).order_by("chain_seq")
    return [(e.action, e.actor_label, e.before or {}, e.after or {}) for e in events]


def test_integration_created_changed_and_deleted_in_the_admin_is_audited(
    client, service, other_service
):
    root = get_user_model().objects.create_superuser("root", "root@example.test", "pw")
    client.force_login(root)
    response = client.post(ADD, _form(service, secrets=[{"secret": "first-secret-value"}]))
    assert response.status_code == 302, response.content
    integration = Integration.objects.get(name="GitHub main")
    first = integration.secrets.get()

    change = _form(
        other_service,
        enabled=False,
        initial=1,
        secrets=[
            {"id": str(first.pk), "integration": str(integration.pk), "DELETE": "on"},
            {"integration": str(integration.pk), "secret": "second-secret-value"},
        ],
    )
    response = client.post(f"/admin/pipelines/integration/{integration.pk}/change/", change)
    assert response.status_code == 302, response.content
    second = integration.secrets.get()

    response = client.post(
        f"/admin/pipelines/integration/{integration.pk}/delete/", {"post": "yes"}
    )
    assert response.status_code == 302
    assert not Integration.objects.exists() and not IntegrationSecret.objects.exists()

    trail = _trail(integration)
    assert [(action, actor) for action, actor, _, _ in trail] == [
        ("integration.create", "root"),
        ("integration.secret_add", "root"),
        ("integration.update", "root"),
        ("integration.secret_add", "root"),
        ("integration.secret_delete", "root"),
        ("integration.delete", "root"),
    ]
    assert trail[0][3] == {
        "provider": "github",
        "name": "GitHub main",
        "enabled": True,
        "services": [service.slug],
    }
    assert trail[2][3]["enabled"] is False and trail[2][3]["services"] == [other_service.slug]
    assert trail[3][3] == {"secret_hint": second.hint + "…"}
    assert trail[4][2] == {"secret_hint": first.hint + "…"}
    assert trail[5][2]["services"] == [other_service.slug]
    # No secret value reaches the trail.
    text = repr(list(AuditEvent.objects.values()))
    assert "first-secret-value" not in text and "second-secret-value" not in text


def test_saving_an_unchanged_integration_writes_no_update_event(client, service):
    root = get_user_model().objects.create_superuser("root", "root@example.test", "pw")
    client.force_login(root)
    client.post(ADD, _form(service, secrets=[{"secret": "first-secret-value"}]))
    integration = Integration.objects.get()
    secret = integration.secrets.get()
    unchanged = _form(
        service,
        initial=1,
        secrets=[{"id": str(secret.pk), "integration": str(integration.pk), "secret": ""}],
    )
    response = client.post(f"/admin/pipelines/integration/{integration.pk}/change/", unchanged)
    assert response.status_code == 302, response.content
    assert [action for action, *_ in _trail(integration)] == [
        "integration.create",
        "integration.secret_add",
    ]
