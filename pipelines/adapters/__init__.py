"""Webhook adapters: native CI/monitoring payloads in, normalized events out.

Pure Python on purpose (no models, no database): the DRF endpoints verify the
delivery, call a parser here, and hand the RunEvent/AlertEvent to the upsert
services. Parsers raise only AdapterError on bad input, so an endpoint can map
it to a 400 and never a 500.
"""

from __future__ import annotations

from . import cdevents
from .alertmanager import parse_alertmanager
from .github import parse_protection_rule, parse_workflow_run, verify_any, verify_signature
from .gitlab import parse_deployment_hook, parse_pipeline_hook, verify_token
from .jenkins import parse_notification, verify_secret
from .types import AdapterError, AlertEvent, GateEvent, RunEvent

__all__ = [
    "AdapterError",
    "AlertEvent",
    "GateEvent",
    "RunEvent",
    "cdevents",
    "parse_alertmanager",
    "parse_deployment_hook",
    "parse_notification",
    "parse_pipeline_hook",
    "parse_protection_rule",
    "parse_workflow_run",
    "verify_any",
    "verify_secret",
    "verify_signature",
    "verify_token",
]
