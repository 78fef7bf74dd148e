"""What a CI/CD system reports, once validated: plain frozen dataclasses the services take.

Runs arrive as ``adapters.types.RunEvent`` (from webhooks or the REST endpoint alike), with
the checks and artefacts of a REST post beside them; deployments as ``DeploymentReport``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

from .adapters.types import Ignored, RunEvent


@dataclass(frozen=True)
class CheckReport:
    kind: str
    status: str
    name: str = ""
    metrics: dict[str, Any] = field(default_factory=dict, hash=False)


@dataclass(frozen=True)
class ArtefactReport:
    name: str
    version: str
    digest: str
    uri: str = ""


@dataclass(frozen=True)
class DeploymentReport:
    service: str
    environment: str
    version: str
    status: str
    provider: str
    external_id: str
    url: str = ""
    started_at: datetime | None = None
    finished_at: datetime | None = None
    # The rollout: "" when the report does not say (the deployment keeps what it has).
    strategy: str = ""
    canary_stages: tuple[float, ...] = ()
    # Keys of the body the contract does not know, named in the answer (not stored).
    ignored: tuple[Ignored, ...] = field(default=(), compare=False)


def _default(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(type(value).__name__)


_RUN_FIELDS = tuple(f.name for f in fields(RunEvent) if f.name != "ignored")


def report_hash(
    event: RunEvent, checks: tuple[CheckReport, ...], artefacts: tuple[ArtefactReport, ...]
) -> str:
    """A stable fingerprint of a normalised report: the same report twice hashes the same."""
    # Plain tuples: dataclasses.asdict deep-copies every value and measured slow here.
    payload = (
        [getattr(event, f) for f in _RUN_FIELDS],
        [(c.kind, c.name, c.status, c.metrics) for c in checks],
        [(a.name, a.version, a.digest, a.uri) for a in artefacts],
    )
    blob = json.dumps(payload, sort_keys=True, default=_default, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()
