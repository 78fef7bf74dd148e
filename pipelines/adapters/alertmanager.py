"""Prometheus Alertmanager webhooks (``webhook_config``, payload version "4").

One delivery is a notification for an alert *group*; each alert inside has its
own status, so the adapter returns one AlertEvent per alert and the caller
decides what a firing alert for a service/environment means (e.g. failing a
deployment's verification gate). Alertmanager has no payload signing; the
endpoint authenticates it like the other machines (bearer token or shared
secret configured in ``http_config``).
"""

from __future__ import annotations

import hashlib
from typing import Any

from .timeparse import parse_optional_go_time
from .types import (
    AdapterError,
    AlertEvent,
    AlertStatus,
    get_str,
    require_dict,
    string_map,
)

SUPPORTED_VERSION = "4"
_ALERT_STATUSES: tuple[AlertStatus, ...] = ("firing", "resolved")
_SERVICE_LABELS = ("service", "app", "job")
_ENVIRONMENT_LABELS = ("environment", "env")


def parse_alertmanager(payload: Any) -> list[AlertEvent]:
    """Map an Alertmanager notification to one AlertEvent per alert.

    Any other payload version is refused: the format is only guaranteed for
    version 4, and a silent misread could resolve or fire the wrong alert.
    """
    body = require_dict(payload, "payload")
    version = body.get("version")
    if version != SUPPORTED_VERSION:
        raise AdapterError(
            f"payload.version must be {SUPPORTED_VERSION!r} (Alertmanager webhook format), "
            f"got {version!r}"
        )
    alerts = body.get("alerts")
    if not isinstance(alerts, list):
        raise AdapterError("payload.alerts must be an array")
    return [_parse_alert(alert, index) for index, alert in enumerate(alerts)]


def _parse_alert(value: Any, index: int) -> AlertEvent:
    """Map one entry of ``alerts``."""
    where = f"alerts[{index}]"
    alert = require_dict(value, where)

    raw_status = get_str(alert, "status", where)
    if raw_status not in _ALERT_STATUSES:
        raise AdapterError(f"{where}.status must be 'firing' or 'resolved', got {raw_status!r}")
    status: AlertStatus = "firing" if raw_status == "firing" else "resolved"

    labels = string_map(alert.get("labels"), f"{where}.labels")
    annotations = string_map(alert.get("annotations"), f"{where}.annotations")

    fingerprint = get_str(alert, "fingerprint", where, required=False) or _label_fingerprint(labels)
    return AlertEvent(
        fingerprint=fingerprint,
        status=status,
        alertname=labels.get("alertname", ""),
        labels=labels,
        annotations=annotations,
        starts_at=parse_optional_go_time(alert.get("startsAt"), f"{where}.startsAt"),
        ends_at=parse_optional_go_time(alert.get("endsAt"), f"{where}.endsAt"),
        generator_url=get_str(alert, "generatorURL", where, required=False),
        service=_first_label(labels, _SERVICE_LABELS),
        environment=_first_label(labels, _ENVIRONMENT_LABELS),
    )


def _first_label(labels: dict[str, str], names: tuple[str, ...]) -> str:
    """The first non-empty label among ``names`` (conventions differ per team)."""
    return next((labels[name] for name in names if labels.get(name)), "")


def _label_fingerprint(labels: dict[str, str]) -> str:
    """Stable stand-in id for Alertmanager < 0.19, which sent no ``fingerprint``.

    Like Alertmanager's own, it depends only on the label set, so the firing
    and the resolved notification of one alert get the same id.
    """
    canonical = "\xff".join(f"{k}\xff{v}" for k, v in sorted(labels.items()))
    return hashlib.sha256(canonical.encode("utf-8", "replace")).hexdigest()[:16]
