"""Validation of the ingestion bodies, by hand on purpose.

This is the hottest path of the application (every CI job posts here, several times per
run). A DRF serializer with nested lists costs several times what these few checks cost, so
the serializers in ``serializers.py`` only *describe* the contract for the OpenAPI schema and
this module enforces it; ``pipelines/tests/test_api_schemathesis.py`` keeps the two in step
(every response to generated input must match the schema).

Every string is checked for NUL characters and lone surrogates (PostgreSQL stores neither in
text or jsonb, and would answer with a 500), every number for finiteness, every list and
string for its length: bad input is a 400 naming the field, never a database error.
"""

from __future__ import annotations

import json
import math
import re
from datetime import datetime
from typing import Any

from rest_framework.exceptions import ParseError, ValidationError

from releases.choices import DeploymentStrategy

from ..adapters.timeparse import parse_iso8601
from ..adapters.types import AdapterError, Ignored, RunEvent
from ..models import CheckKind, CheckStatus, Provider, RunStatus
from ..reports import ArtefactReport, CheckReport, DeploymentReport

MAX_CHECKS = 50
MAX_ARTEFACTS = 50
MAX_METRICS = 30
MAX_ATTEMPT = 2_147_483_647
DEPLOYMENT_STATUSES = ("pending", "in_progress", "succeeded", "failed", "rolled_back")

_RUN_STATUSES = frozenset(RunStatus.values)
_PROVIDERS = frozenset(Provider.values)
_CHECK_KINDS = frozenset(CheckKind.values)
_CHECK_STATUSES = frozenset(CheckStatus.values)
_CHECK_KEYS = frozenset({"kind", "status", "name"})
_ARTEFACT_KEYS = frozenset({"name", "version", "digest", "uri"})
_RUN_KEYS = frozenset(
    {
        "service",
        "provider",
        "external_id",
        "attempt",
        "status",
        "commit_sha",
        "ref",
        "version",
        "url",
        "name",
        "repository",
        "started_at",
        "finished_at",
        "checks",
        "artefacts",
    }
)
_DEPLOYMENT_KEYS = frozenset(
    {
        "service",
        "environment",
        "version",
        "status",
        "provider",
        "external_id",
        "url",
        "started_at",
        "finished_at",
        "strategy",
        "canary_stages",
    }
)
DEPLOYMENT_STRATEGIES = frozenset(DeploymentStrategy.values)
MAX_CANARY_STAGES = 20
# OCI digest grammar: algorithm ":" encoded (sha256:…, sha512:…).
_DIGEST = re.compile(r"^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]{8,}$")
_SLUG = re.compile(r"^[-a-zA-Z0-9_]+$")
_URL = re.compile(r"^https?://[^\s]+$")
_SHA = re.compile(r"^[0-9a-fA-F]{7,64}$")


def parse_json(body: bytes) -> Any:
    """Decode a request body; anything that is not one JSON value is a 400, never a 500."""
    if not body:
        raise ParseError("The request body is empty: send a JSON object.")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise ParseError("The request body is not valid UTF-8.") from None
    try:
        return json.loads(text, parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as exc:
        raise ParseError(f"Malformed JSON: {exc}") from None


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


class _Errors:
    """Collects field errors so one response names every problem, not only the first."""

    def __init__(self) -> None:
        self.errors: dict[str, Any] = {}

    def add(self, field: str, message: str) -> None:
        self.errors.setdefault(field, []).append(message)

    def raise_if_any(self) -> None:
        if self.errors:
            raise ValidationError(self.errors)


def _clean_text(value: str) -> str | None:
    """An error message if the string cannot be stored, else None."""
    if "\x00" in value:
        return "Must not contain NUL characters."
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "Must be valid Unicode (no lone surrogates)."
    return None


def _string(
    data: dict,
    key: str,
    errors: _Errors,
    *,
    max_length: int,
    required: bool = False,
    pattern: re.Pattern | None = None,
    choices: frozenset[str] | tuple[str, ...] | None = None,
    prefix: str = "",
) -> str:
    value = data.get(key)
    name = prefix + key
    if value is None or value == "":
        if required:
            errors.add(name, "This field is required.")
        return ""
    if not isinstance(value, str):
        errors.add(name, f"Must be a string, got {_type_name(value)}.")
        return ""
    problem = _clean_text(value)
    if problem:
        errors.add(name, problem)
        return ""
    if len(value) > max_length:
        errors.add(name, f"Must be at most {max_length} characters (got {len(value)}).")
        return ""
    if choices is not None and value not in choices:
        errors.add(name, f"Must be one of: {', '.join(sorted(choices))}.")
        return ""
    if pattern is not None and not pattern.match(value):
        errors.add(name, "Has an invalid format.")
        return ""
    return value


def _datetime(data: dict, key: str, errors: _Errors) -> datetime | None:
    value = data.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > 40 or _clean_text(value):
        errors.add(key, "Must be an ISO 8601 date-time with a timezone.")
        return None
    try:
        parsed = parse_iso8601(value, key)
    except AdapterError:
        errors.add(key, "Must be an ISO 8601 date-time with a timezone, e.g. 2026-11-20T10:00:00Z.")
        return None
    if not 1970 <= parsed.year <= 9998:
        errors.add(key, "Is out of range.")
        return None
    return parsed


def _type_name(value: Any) -> str:
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
    return "object"


def _object(data: Any) -> dict:
    if not isinstance(data, dict):
        raise ValidationError(
            {"non_field_errors": [f"Expected a JSON object, got {_type_name(data)}."]}
        )
    return data


def _metric(value: Any) -> str | None:
    if value is None or isinstance(value, bool | int):
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 2**53:
            return "Must be an integer between -2^53 and 2^53."
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else "Must be a finite number."
    if isinstance(value, str):
        return _clean_text(value) or (None if len(value) <= 200 else "At most 200 characters.")
    return "Must be a number, a string, a boolean or null."


def _checks(data: dict, errors: _Errors) -> tuple[CheckReport, ...]:
    raw = data.get("checks")
    if raw is None:
        return ()
    if not isinstance(raw, list):
        errors.add("checks", f"Must be an array, got {_type_name(raw)}.")
        return ()
    if len(raw) > MAX_CHECKS:
        errors.add("checks", f"At most {MAX_CHECKS} checks per run.")
        return ()
    checks, seen = [], set()
    for index, item in enumerate(raw):
        prefix = f"checks[{index}]."
        if not isinstance(item, dict):
            errors.add(f"checks[{index}]", "Must be an object.")
            continue
        kind = _string(
            item, "kind", errors, max_length=20, required=True, choices=_CHECK_KINDS, prefix=prefix
        )
        status = _string(
            item,
            "status",
            errors,
            max_length=10,
            required=True,
            choices=_CHECK_STATUSES,
            prefix=prefix,
        )
        name = _string(item, "name", errors, max_length=100, prefix=prefix)
        metrics = {}
        extra = [k for k in item if k not in _CHECK_KEYS]
        if len(extra) > MAX_METRICS:
            errors.add(f"checks[{index}]", f"At most {MAX_METRICS} metrics per check.")
            continue
        for key in extra:
            if len(key) > 50 or _clean_text(key):
                errors.add(f"checks[{index}]", "Metric names are at most 50 plain characters.")
                continue
            problem = _metric(item[key])
            if problem:
                errors.add(prefix + key, problem)
                continue
            metrics[key] = item[key]
        if (kind, name) in seen:
            errors.add(f"checks[{index}]", f"Duplicate check {kind!r} {name!r} in this run.")
        seen.add((kind, name))
        checks.append(CheckReport(kind=kind, status=status, name=name, metrics=metrics))
    return tuple(checks)


def unknown_keys(data: dict, known: frozenset[str], prefix: str = "") -> list[Ignored]:
    """Keys the contract does not know: not an error (a CI script may send more than we
    read), but never silently dropped — the answer lists them as ignored (a misspelt
    ``artifacts`` would otherwise answer 201 and lose the artefacts)."""
    return [
        Ignored(prefix + str(key)[:100], "Unknown field: not part of the contract, not stored.")
        for key in data
        if key not in known
    ]


def _artefacts(data: dict, errors: _Errors, ignored: list[Ignored]) -> tuple[ArtefactReport, ...]:
    raw = data.get("artefacts")
    if raw is None:
        return ()
    if not isinstance(raw, list):
        errors.add("artefacts", f"Must be an array, got {_type_name(raw)}.")
        return ()
    if len(raw) > MAX_ARTEFACTS:
        errors.add("artefacts", f"At most {MAX_ARTEFACTS} artefacts per run.")
        return ()
    artefacts, seen = [], set()
    for index, item in enumerate(raw):
        prefix = f"artefacts[{index}]."
        if not isinstance(item, dict):
            errors.add(f"artefacts[{index}]", "Must be an object.")
            continue
        ignored += unknown_keys(item, _ARTEFACT_KEYS, prefix)
        artefacts.append(
            ArtefactReport(
                name=_string(item, "name", errors, max_length=200, required=True, prefix=prefix),
                version=_string(
                    item, "version", errors, max_length=64, required=True, prefix=prefix
                ),
                digest=_string(
                    item,
                    "digest",
                    errors,
                    max_length=100,
                    required=True,
                    pattern=_DIGEST,
                    prefix=prefix,
                ),
                uri=_string(item, "uri", errors, max_length=500, prefix=prefix),
            )
        )
        # One version names one digest: twice in a body, one of them could not be stored.
        key = (artefacts[-1].name, artefacts[-1].version)
        if key in seen:
            errors.add(f"artefacts[{index}]", f"Duplicate artefact {key[0]!r} {key[1]!r}.")
        seen.add(key)
    return tuple(artefacts)


def _attempt(data: dict, errors: _Errors) -> int:
    value = data.get("attempt", 1)
    if value is None:
        return 1
    if isinstance(value, bool) or not isinstance(value, int):
        errors.add("attempt", f"Must be an integer, got {_type_name(value)}.")
        return 1
    if not 1 <= value <= MAX_ATTEMPT:
        errors.add("attempt", f"Must be between 1 and {MAX_ATTEMPT}.")
        return 1
    return value


def run_report(
    data: Any,
) -> tuple[str, RunEvent, tuple[CheckReport, ...], tuple[ArtefactReport, ...]]:
    """Validate a ``POST /api/v1/pipeline-runs/`` body: (service slug, run, checks, artefacts)."""
    data = _object(data)
    errors = _Errors()
    service = _string(data, "service", errors, max_length=100, required=True, pattern=_SLUG)
    provider = _string(data, "provider", errors, max_length=20, required=True, choices=_PROVIDERS)
    external_id = _string(data, "external_id", errors, max_length=200, required=True)
    status = _string(data, "status", errors, max_length=10, required=True, choices=_RUN_STATUSES)
    event_fields = {
        "commit_sha": _string(data, "commit_sha", errors, max_length=64, pattern=_SHA),
        "ref": _string(data, "ref", errors, max_length=255),
        "version": _string(data, "version", errors, max_length=64),
        "url": _string(data, "url", errors, max_length=500, pattern=_URL),
        "name": _string(data, "name", errors, max_length=200),
        "repository": _string(data, "repository", errors, max_length=255),
    }
    attempt = _attempt(data, errors)
    started_at = _datetime(data, "started_at", errors)
    finished_at = _datetime(data, "finished_at", errors)
    if started_at and finished_at and finished_at < started_at:
        errors.add("finished_at", "Must not be before started_at.")
    checks = _checks(data, errors)
    ignored = unknown_keys(data, _RUN_KEYS)
    artefacts = _artefacts(data, errors, ignored)
    errors.raise_if_any()
    event = RunEvent(
        provider=provider,  # type: ignore[arg-type]
        external_id=external_id,
        attempt=attempt,
        status=status,  # type: ignore[arg-type]
        started_at=started_at,
        finished_at=finished_at,
        waiting_approval=False,
        raw_status="",
        ignored=tuple(ignored),
        **event_fields,
    )
    return service, event, checks, artefacts


def deployment_report(data: Any) -> DeploymentReport:
    """Validate a ``POST /api/v1/deployments/`` body."""
    data = _object(data)
    errors = _Errors()
    report = {
        "service": _string(data, "service", errors, max_length=100, required=True, pattern=_SLUG),
        "environment": _string(
            data, "environment", errors, max_length=50, required=True, pattern=_SLUG
        ),
        "version": _string(data, "version", errors, max_length=64, required=True),
        "status": _string(
            data, "status", errors, max_length=20, required=True, choices=DEPLOYMENT_STATUSES
        ),
        "provider": _string(data, "provider", errors, max_length=40, required=True),
        "external_id": _string(data, "external_id", errors, max_length=200, required=True),
        "url": _string(data, "url", errors, max_length=500, pattern=_URL),
        "started_at": _datetime(data, "started_at", errors),
        "finished_at": _datetime(data, "finished_at", errors),
    }
    if (
        report["started_at"]
        and report["finished_at"]
        and report["finished_at"] < report["started_at"]
    ):
        errors.add("finished_at", "Must not be before started_at.")
    report["strategy"] = _string(
        data, "strategy", errors, max_length=12, choices=DEPLOYMENT_STRATEGIES
    )
    report["canary_stages"] = _canary_stages(data, report["strategy"], errors)
    errors.raise_if_any()
    return DeploymentReport(**report, ignored=tuple(unknown_keys(data, _DEPLOYMENT_KEYS)))


def _canary_stages(data: dict, strategy: str, errors: _Errors) -> tuple[float, ...]:
    """A canary's traffic percentages, rising, each above 0 and at most 100 ([5, 25, 100]);
    only for the canary strategy."""
    value = data.get("canary_stages")
    if value is None or value == []:
        return ()
    if not isinstance(value, list):
        errors.add("canary_stages", f"Must be a list of percentages, got {_type_name(value)}.")
        return ()
    if strategy != DeploymentStrategy.CANARY:
        errors.add("canary_stages", "Only a canary deployment (strategy: canary) has stages.")
        return ()
    if len(value) > MAX_CANARY_STAGES:
        errors.add("canary_stages", f"At most {MAX_CANARY_STAGES} stages.")
        return ()
    stages: list[float] = []
    for item in value:
        if isinstance(item, bool) or not isinstance(item, int | float) or item != item:
            errors.add("canary_stages", f"Each stage is a number, got {_type_name(item)}.")
            return ()
        if not 0 < item <= 100:
            errors.add("canary_stages", "Each stage is a percentage above 0 and at most 100.")
            return ()
        if stages and item <= stages[-1]:
            errors.add("canary_stages", "Stages must rise: each above the one before.")
            return ()
        stages.append(int(item) if float(item).is_integer() else float(item))
    return tuple(stages)
