"""The pipelines app's models, one module per purpose:

- ingest: API tokens, pipeline runs with checks and artefacts, integrations and their webhook
  deliveries, incidents (what CI/CD and monitoring systems report);
- polling: the poll state of integrations that cannot reach us;
- verification: deployment verification against Prometheus and rollback policies;
- outbox: durable markers of tasks whose enqueue failed; CDEvents subscriptions and the
  outbox of the events emitted to them;
- checks: deployment checks asked at the deploy boundary and their answers;
- scm: deployments held at a GitHub/GitLab gate until answered, and commit statuses;
- retention: summaries of pruned runs and the record of each pruning batch.
"""

from __future__ import annotations

from .checks import CheckDecision, DeploymentCheck
from .ingest import (
    DEFAULT_API_URLS,
    FINISHED_RUN_STATUSES,
    TOKEN_PREFIX,
    ApiToken,
    ApiTokenQuerySet,
    Artefact,
    ArtefactTag,
    CheckKind,
    CheckStatus,
    Incident,
    IncidentStatus,
    Integration,
    IntegrationProvider,
    IntegrationSecret,
    PipelineCheck,
    PipelineRun,
    Provider,
    RunStatus,
    TokenScope,
    WebhookDelivery,
    hash_token,
)
from .outbox import (
    CDEventDelivery,
    CDEventDeliveryStatus,
    CDEventSubscription,
    TaskOutbox,
)
from .polling import (
    IntegrationPollState,
)
from .retention import PruneBatch, RunDaySummary
from .scm import (
    CommitStatus,
    CommitStatusState,
    DeploymentGateRequest,
    GateAnswer,
    GateRequestKind,
    GateRequestState,
)
from .verification import (
    Comparator,
    RollbackAction,
    RollbackPolicy,
    RollbackRequest,
    VerificationQuery,
    VerificationRun,
    VerificationSample,
    VerificationSpec,
    VerificationStatus,
)

__all__ = [
    "GateRequestState",
    "GateRequestKind",
    "GateAnswer",
    "DeploymentGateRequest",
    "DEFAULT_API_URLS",
    "CommitStatusState",
    "CommitStatus",
    "ApiToken",
    "ApiTokenQuerySet",
    "Artefact",
    "CDEventDelivery",
    "CDEventDeliveryStatus",
    "CDEventSubscription",
    "ArtefactTag",
    "CheckDecision",
    "CheckKind",
    "CheckStatus",
    "Comparator",
    "DeploymentCheck",
    "FINISHED_RUN_STATUSES",
    "Incident",
    "IncidentStatus",
    "Integration",
    "IntegrationPollState",
    "IntegrationProvider",
    "IntegrationSecret",
    "PipelineCheck",
    "PipelineRun",
    "Provider",
    "PruneBatch",
    "RollbackAction",
    "RollbackPolicy",
    "RollbackRequest",
    "RunDaySummary",
    "RunStatus",
    "TOKEN_PREFIX",
    "TaskOutbox",
    "TokenScope",
    "VerificationQuery",
    "VerificationRun",
    "VerificationSample",
    "VerificationSpec",
    "VerificationStatus",
    "WebhookDelivery",
    "hash_token",
]
