"""CDEvents (v0.5) carried by CloudEvents over HTTP: the envelope and the six events mapped.

Two CloudEvents HTTP modes (CloudEvents HTTP protocol binding 1.0):

- **binary**: the CloudEvents attributes are ``ce-*`` headers (``ce-specversion: 1.0``,
  ``ce-id``, ``ce-source``, ``ce-type``), ``Content-Type: application/json`` and the body is
  the CDEvent itself (``context``, ``subject``, ``customData``);
- **structured**: ``Content-Type: application/cloudevents+json`` and the body is the
  CloudEvent (``specversion``, ``id``, ``source``, ``type``, ``data`` = the CDEvent, or
  ``data_base64``).

The CDEvents binding requires the CloudEvent's id, source and type to be the CDEvent
context's; a difference is refused (it would make the idempotency key ambiguous). The batched
mode is refused with 415.

Pure (no models, no database), like the other adapters: ``parse_cloudevent`` returns the
envelope and its CDEvent, ``parse_*`` read one event type's subject into plain values, and
every problem is an ``AdapterError`` naming the field. The endpoint's services decide what
the values mean (which service, which deployment). The vendored JSON schemas are not used
here: they are the tests' yardstick (tests/fixtures/cdevents/).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import unquote

from .timeparse import parse_iso8601
from .types import AdapterError, get_dict, get_str, require_dict

CLOUDEVENTS_SPEC_VERSION = "1.0"
STRUCTURED = "application/cloudevents+json"
BATCH = "application/cloudevents-batch+json"

# The event types read, at the version of the CDEvents v0.5 spec (any patch release of it).
PIPELINERUN_FINISHED = "dev.cdevents.pipelinerun.finished"
SERVICE_DEPLOYED = "dev.cdevents.service.deployed"
SERVICE_UPGRADED = "dev.cdevents.service.upgraded"
SERVICE_ROLLEDBACK = "dev.cdevents.service.rolledback"
INCIDENT_DETECTED = "dev.cdevents.incident.detected"
INCIDENT_RESOLVED = "dev.cdevents.incident.resolved"
EVENT_VERSIONS = {
    PIPELINERUN_FINISHED: "0.3",
    SERVICE_DEPLOYED: "0.3",
    SERVICE_UPGRADED: "0.3",
    SERVICE_ROLLEDBACK: "0.3",
    INCIDENT_DETECTED: "0.3",
    INCIDENT_RESOLVED: "0.3",
}
_TYPE = re.compile(r"^(?P<name>dev\.cdevents\.[a-z]+\.[a-z]+)\.(?P<version>\d+\.\d+)\.\d+$")
MAX_TEXT = 500


class UnsupportedMode(AdapterError):
    """A CloudEvents mode or content type the endpoint does not read (answered 415)."""


@dataclass(frozen=True)
class CloudEvent:
    """The envelope of one delivery and its CDEvent (``event``)."""

    mode: str  # "binary" or "structured"
    id: str
    source: str
    type: str
    event: dict[str, Any]
    timestamp: datetime

    @property
    def subject(self) -> dict[str, Any]:
        return self.event["subject"]

    @property
    def content(self) -> dict[str, Any]:
        return self.event["subject"].get("content") or {}

    @property
    def subject_id(self) -> str:
        return self.event["subject"]["id"]

    @property
    def subject_source(self) -> str:
        """The subject's source, which defaults to the context's (CDEvents spec)."""
        return self.event["subject"].get("source") or self.source


def mapped_type(event_type: str) -> tuple[str, str]:
    """(the type without its version, why it is not read — "" when it is)."""
    match = _TYPE.match(event_type)
    if not match:
        return "", f"{event_type!r} is not a CDEvents core event type; it is not read."
    name, version = match["name"], match["version"]
    wanted = EVENT_VERSIONS.get(name)
    if wanted is None:
        return name, f"{name} events are not read by Releasegate."
    if version != wanted:
        return name, (
            f"{event_type} is not read: Releasegate reads {name} {wanted}.x (CDEvents v0.5)."
        )
    return name, ""


def check_media_type(content_type: str) -> str:
    """The media type of a delivery, if it is a CloudEvents mode read here (else
    ``UnsupportedMode``, before the body is even parsed)."""
    media = content_type.split(";", 1)[0].strip().lower()
    if media == BATCH:
        raise UnsupportedMode("The batched CloudEvents mode is not read: send one event a request.")
    if media not in (STRUCTURED, "application/json", ""):
        raise UnsupportedMode(
            f"Content-Type {media!r} is not a CloudEvents mode read here: application/json "
            f"with ce-* headers, or {STRUCTURED}."
        )
    return media


def parse_cloudevent(headers: dict[str, str], body: Any, content_type: str) -> CloudEvent:
    """The envelope and CDEvent of a delivery. ``headers`` are the ``ce-*`` headers, by
    lower-case name; ``body`` the decoded JSON."""
    media = check_media_type(content_type)
    if media == STRUCTURED:
        envelope = require_dict(body, "body")
        attrs = {k: envelope.get(k) for k in ("specversion", "id", "source", "type", "time")}
        event = _structured_data(envelope)
        mode, where = "structured", ""
    else:
        if "ce-specversion" not in headers:
            raise AdapterError(
                "Neither CloudEvents mode: send ce-* headers with a JSON body (binary mode) or "
                f"Content-Type: {STRUCTURED} (structured mode)."
            )
        attrs = {k: headers.get(f"ce-{k}") for k in ("specversion", "id", "source", "type")}
        event = require_dict(body, "body")
        mode, where = "binary", "ce-"
    if attrs["specversion"] != CLOUDEVENTS_SPEC_VERSION:
        raise AdapterError(
            f"{where}specversion must be {CLOUDEVENTS_SPEC_VERSION!r}, got {attrs['specversion']!r}"
        )
    for key in ("id", "source", "type"):
        value = attrs[key]
        if not isinstance(value, str) or not value.strip():
            raise AdapterError(f"{where}{key} is required (a non-empty string)")
        _storable(value, f"{where}{key}")
        if len(value) > MAX_TEXT:
            raise AdapterError(f"{where}{key} must be at most {MAX_TEXT} characters")
    context = get_dict(event, "context", "data" if mode == "structured" else "body")
    subject = get_dict(event, "subject", "data" if mode == "structured" else "body")
    for key in ("id", "source", "type"):
        if context.get(key) != attrs[key]:
            raise AdapterError(
                f"context.{key} ({context.get(key)!r}) must equal the CloudEvent's "
                f"{where}{key} ({attrs[key]!r}), as the CDEvents CloudEvents binding requires"
            )
    get_str(context, "specversion", "context")
    timestamp = parse_iso8601(get_str(context, "timestamp", "context"), "context.timestamp")
    subject_id = get_str(subject, "id", "subject")
    if not subject_id:
        raise AdapterError("subject.id must not be empty")
    for key in ("id", "source"):
        if subject.get(key) is not None:
            _storable(get_str(subject, key, "subject"), f"subject.{key}")
    if subject.get("content") is not None:
        require_dict(subject["content"], "subject.content")
    return CloudEvent(
        mode=mode,
        id=attrs["id"],
        source=attrs["source"],
        type=attrs["type"],
        event=event,
        timestamp=timestamp,
    )


def _structured_data(envelope: dict[str, Any]) -> dict[str, Any]:
    if "data_base64" in envelope and envelope.get("data") is None:
        try:
            raw = base64.b64decode(get_str(envelope, "data_base64", "body"), validate=True)
            return require_dict(json.loads(raw), "data_base64")
        except (binascii.Error, ValueError) as exc:
            raise AdapterError(f"data_base64 must be base64 of a JSON CDEvent ({exc})") from None
    datacontenttype = envelope.get("datacontenttype")
    if datacontenttype is not None and not str(datacontenttype).lower().startswith(
        "application/json"
    ):
        raise AdapterError(f"datacontenttype must be application/json, got {datacontenttype!r}")
    return get_dict(envelope, "data", "body")


def _storable(value: str, where: str) -> str:
    if "\x00" in value:
        raise AdapterError(f"{where} must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise AdapterError(f"{where} must be valid Unicode (no lone surrogates)") from None
    return value


def _text(obj: dict[str, Any], key: str, where: str, *, required: bool = False) -> str:
    value = get_str(obj, key, where, required=required)
    if required and not value:
        raise AdapterError(f"{where}.{key} must not be empty")
    return _storable(value, f"{where}.{key}")


# --- the subjects --------------------------------------------------------------------------------

_OUTCOMES = {"success": "succeeded", "failure": "failed", "error": "failed", "cancel": "cancelled"}


@dataclass(frozen=True)
class PipelineRunFinished:
    pipeline_name: str
    url: str
    status: str  # a run status
    outcome: str  # the event's own word
    errors: str


def parse_pipelinerun_finished(ce: CloudEvent) -> PipelineRunFinished:
    where = "subject.content"
    content = ce.content
    outcome = _text(content, "outcome", where)
    if outcome and outcome not in _OUTCOMES:
        known = ", ".join(_OUTCOMES)
        raise AdapterError(f"{where}.outcome must be one of {known}, got {outcome!r}")
    return PipelineRunFinished(
        pipeline_name=_text(content, "pipelineName", where),
        url=_text(content, "uri", where),
        # A finished run without an outcome is neither a success nor a failure we can
        # vouch for: recorded as failed, so that no gate passes on it.
        status=_OUTCOMES.get(outcome, "failed"),
        outcome=outcome,
        errors=_text(content, "errors", where),
    )


@dataclass(frozen=True)
class ServiceEvent:
    """``service.deployed``/``upgraded``/``rolledback``: where, and which artefact."""

    environment: str
    environment_source: str
    artifact: Purl


@dataclass(frozen=True)
class Purl:
    """A package URL (``pkg:type/namespace/name@version?qualifiers#subpath``), as much of it
    as a deployment needs."""

    raw: str
    type: str
    name: str
    version: str
    qualifiers: dict[str, str]

    @property
    def digest(self) -> str:
        """The content digest the purl names (``sha256:…`` as its version), else ""."""
        return self.version if _DIGEST.match(self.version) else ""

    @property
    def tag(self) -> str:
        return self.qualifiers.get("tag", "")


_DIGEST = re.compile(r"^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-fA-F0-9]{32,}$")
_PURL = re.compile(
    r"^pkg:(?P<type>[A-Za-z.+-][A-Za-z0-9.+-]*)/(?P<path>[^?#@]+)"
    r"(?:@(?P<version>[^?#]+))?(?:\?(?P<qualifiers>[^#]*))?(?:#.*)?$"
)


def parse_purl(value: str, where: str) -> Purl:
    match = _PURL.match(value.strip())
    if not match:
        raise AdapterError(f"{where} must be a package URL (pkg:type/name@version), got {value!r}")
    qualifiers = {}
    for pair in (match["qualifiers"] or "").split("&"):
        if "=" in pair:
            key, _, item = pair.partition("=")
            qualifiers[key.lower()] = unquote(item)
    return Purl(
        raw=value,
        type=match["type"].lower(),
        name=unquote(match["path"].rstrip("/").rsplit("/", 1)[-1]),
        version=unquote(match["version"] or ""),
        qualifiers=qualifiers,
    )


def _environment(content: dict[str, Any], where: str) -> tuple[str, str]:
    environment = get_dict(content, "environment", where)
    return (
        _text(environment, "id", f"{where}.environment", required=True),
        _text(environment, "source", f"{where}.environment"),
    )


def parse_service_event(ce: CloudEvent) -> ServiceEvent:
    where = "subject.content"
    environment, source = _environment(ce.content, where)
    artifact = _text(ce.content, "artifactId", where, required=True)
    return ServiceEvent(
        environment=environment,
        environment_source=source,
        artifact=parse_purl(artifact, f"{where}.artifactId"),
    )


@dataclass(frozen=True)
class IncidentEvent:
    environment: str
    service: str
    description: str
    artifact: Purl | None


def parse_incident(ce: CloudEvent) -> IncidentEvent:
    where = "subject.content"
    content = ce.content
    environment, _ = _environment(content, where)
    service = get_dict(content, "service", where, required=False)
    artifact = _text(content, "artifactId", where)
    return IncidentEvent(
        environment=environment,
        service=_text(service, "id", f"{where}.service", required=bool(service)),
        description=_text(content, "description", where),
        artifact=parse_purl(artifact, f"{where}.artifactId") if artifact else None,
    )
