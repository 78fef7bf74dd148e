"""Normalized, provider-neutral events produced by the webhook adapters.

The adapters turn each CI or monitoring system's native payload into these
frozen dataclasses so the upsert services and gates only ever see one shape,
whatever sent the webhook.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

Provider = Literal["github_actions", "gitlab", "jenkins", "cdevents"]
RunStatus = Literal["queued", "running", "succeeded", "failed", "cancelled"]
AlertStatus = Literal["firing", "resolved"]

RUN_STATUSES: frozenset[str] = frozenset({"queued", "running", "succeeded", "failed", "cancelled"})
FINISHED_RUN_STATUSES: frozenset[str] = frozenset({"succeeded", "failed", "cancelled"})


class AdapterError(ValueError):
    """A payload could not be understood.

    The only exception an adapter raises for bad input, so an endpoint can turn
    it into a 400 with ``str(error)`` as the message and never a 500.
    """


@dataclass(frozen=True)
class Ignored:
    """A reported value that was not stored, and why: a 2xx answer lists these (``ignored``)
    so that it never acknowledges more than was recorded (docs/ingestion.md)."""

    field: str
    reason: str

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "reason": self.reason}


@dataclass(frozen=True)
class RunEvent:
    """One state of one CI run attempt, keyed by (provider, external_id, attempt).

    ``raw_status`` keeps the provider's own words for audit and display
    (GitHub ``completed/<conclusion>``, GitLab's status, Jenkins
    ``PHASE/RESULT``); ``status`` is the normalized one gates rely on.
    """

    provider: Provider
    external_id: str
    attempt: int
    status: RunStatus
    commit_sha: str
    ref: str
    repository: str
    version: str
    url: str
    started_at: datetime | None
    finished_at: datetime | None
    name: str
    waiting_approval: bool
    raw_status: str
    # What the adapter or the validation could not map (an unknown key, a parameter of the
    # wrong type): not part of the run, only of the answer.
    ignored: tuple[Ignored, ...] = field(default=(), compare=False)

    @property
    def is_finished(self) -> bool:
        """Whether the run reached a terminal status (the upsert must not reopen it)."""
        return self.status in FINISHED_RUN_STATUSES


@dataclass(frozen=True)
class AlertEvent:
    """One alert out of an Alertmanager notification group."""

    fingerprint: str
    status: AlertStatus
    alertname: str
    labels: dict[str, str] = field(hash=False)
    annotations: dict[str, str] = field(hash=False)
    starts_at: datetime | None
    ends_at: datetime | None
    generator_url: str
    service: str
    environment: str


# Small, shared readers for untrusted JSON. Every adapter goes through these so
# that a wrong type turns into an AdapterError that names the offending field,
# never a KeyError/TypeError/AttributeError.


def require_dict(value: Any, where: str) -> dict[str, Any]:
    """Return ``value`` if it is a JSON object, else fail naming ``where``."""
    if not isinstance(value, dict):
        raise AdapterError(f"{where} must be a JSON object, got {_type_name(value)}")
    return value


def get_dict(obj: dict[str, Any], key: str, where: str, *, required: bool = True) -> dict[str, Any]:
    """Read a nested object; a missing optional one (or null) reads as ``{}``."""
    if key not in obj or obj[key] is None:
        if required:
            raise AdapterError(f"{where}.{key} is required")
        return {}
    return require_dict(obj[key], f"{where}.{key}")


def get_str(
    obj: dict[str, Any], key: str, where: str, *, required: bool = True, default: str = ""
) -> str:
    """Read a string field; null or a missing optional field reads as ``default``."""
    value = obj.get(key)
    if value is None:
        if required:
            raise AdapterError(f"{where}.{key} is required")
        return default
    if not isinstance(value, str):
        raise AdapterError(f"{where}.{key} must be a string, got {_type_name(value)}")
    return value


def get_int(
    obj: dict[str, Any], key: str, where: str, *, required: bool = True, default: int | None = None
) -> int | None:
    """Read an integer field (JSON booleans are rejected, they are not counts or ids)."""
    value = obj.get(key)
    if value is None:
        if required:
            raise AdapterError(f"{where}.{key} is required")
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise AdapterError(f"{where}.{key} must be an integer, got {_type_name(value)}")
    return value


def get_bool(obj: dict[str, Any], key: str, where: str, *, default: bool = False) -> bool:
    """Read an optional boolean field."""
    value = obj.get(key)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise AdapterError(f"{where}.{key} must be a boolean, got {_type_name(value)}")
    return value


def get_id(obj: dict[str, Any], key: str, where: str) -> str:
    """Read a provider id (integer or non-empty string) as the string we key runs on."""
    value = obj.get(key)
    if isinstance(value, bool) or not isinstance(value, int | str) or value == "":
        raise AdapterError(f"{where}.{key} must be an integer or non-empty string id")
    return str(value)


def string_map(value: Any, where: str) -> dict[str, str]:
    """Read a JSON object of string values (labels, annotations, parameters)."""
    if value is None:
        return {}
    obj = require_dict(value, where)
    for key, item in obj.items():
        if not isinstance(key, str):
            raise AdapterError(f"{where} keys must be strings")
        if not isinstance(item, str):
            raise AdapterError(f"{where}.{key} must be a string, got {_type_name(item)}")
    return dict(obj)


def _type_name(value: Any) -> str:
    """Name a value's JSON type for error messages (``null``, ``array``...)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


@dataclass(frozen=True)
class GateEvent:
    """A deployment the platform holds until Releasegate answers: a GitHub custom deployment
    protection rule (``deployment_protection_rule`` requested) or a GitLab deployment
    blocked on a protected environment. Keyed by (repository, external_id, environment).

    ``external_id`` is the GitHub workflow run id or the GitLab deployment id;
    ``project_id`` the GitLab project id (the API's ``:id``); ``version`` a version the
    platform names (the deployment payload's ``version``, a version tag), else "".
    """

    kind: Literal["github_protection_rule", "gitlab_approval"]
    repository: str
    external_id: str
    environment: str
    sha: str
    ref: str
    version: str = ""
    project_id: str = ""
    callback_url: str = ""
    installation_id: str = ""
