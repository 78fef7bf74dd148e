"""Writes of the pipelines app, one module per purpose; import the use cases from here.

- tokens: API tokens (created, shown once, revoked);
- runs: pipeline runs with their checks and artefacts (the idempotent upsert);
- artefacts: artefacts and the versions naming them, recorded with runs;
- deployments: deployments reported by CD systems, moving their release along;
- integrations: integrations, their secrets and the runs their webhooks report;
- incidents: incidents opened and resolved by Alertmanager;
- cdevents: CDEvents received, mapped onto runs, deployments and incidents;
- subscriptions: who receives the CDEvents Releasegate emits.

Every service follows the project's order: atomic → lock → permission → change → audit →
side effects on commit.
"""

from __future__ import annotations

from .artefacts import ArtefactTampered
from .cdevents import CDEventResult, cdevent_receive
from .deployments import DeploymentResult, deployment_report_upsert
from .incidents import AlertsResult, alerts_receive
from .integrations import (
    DeliveryResult,
    integration_admin_saved,
    integration_api_set,
    integration_create,
    integration_delete,
    integration_secret_add,
    integration_secret_revoke,
    integrations_verifying,
    service_for_repository,
    webhook_run_receive,
)
from .runs import RunUpsertResult, pipeline_run_upsert
from .subscriptions import cdevent_subscription_delete, cdevent_subscription_save
from .tokens import DEFAULT_SCOPES, api_token_create, api_token_revoke

__all__ = [
    "DEFAULT_SCOPES",
    "AlertsResult",
    "CDEventResult",
    "ArtefactTampered",
    "DeliveryResult",
    "DeploymentResult",
    "RunUpsertResult",
    "alerts_receive",
    "api_token_create",
    "api_token_revoke",
    "cdevent_receive",
    "cdevent_subscription_delete",
    "cdevent_subscription_save",
    "deployment_report_upsert",
    "integration_admin_saved",
    "integration_api_set",
    "integration_create",
    "integration_delete",
    "integration_secret_add",
    "integration_secret_revoke",
    "integrations_verifying",
    "pipeline_run_upsert",
    "service_for_repository",
    "webhook_run_receive",
]
