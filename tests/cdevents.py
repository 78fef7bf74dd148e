"""The vendored CDEvents v0.5.1 JSON schemas (tests/fixtures/cdevents/), as validators.

Every schema is registered under its ``$id`` (``https://cdevents.dev/0.5.1/schema/…``), so
the relative ``$ref``s between them (``links/embeddedlinksarray``) resolve offline. Formats
are checked (``date-time``, ``uri``, ``uri-reference``) with the standard library, so an
emitted timestamp that is not RFC 3339 fails the test.
"""

from __future__ import annotations

import json
from datetime import datetime
from functools import cache
from pathlib import Path
from urllib.parse import urlsplit

from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource

FIXTURES = Path(__file__).parent / "fixtures" / "cdevents"
SPEC_VERSION = "0.5.1"

_formats = FormatChecker(formats=())


@_formats.checks("date-time", raises=ValueError)
def _date_time(value) -> bool:
    if not isinstance(value, str):
        return True
    if "T" not in value.upper() or not (value.endswith(("Z", "z")) or value[-6] in "+-"):
        raise ValueError(f"{value!r} is not an RFC 3339 date-time with an offset")
    datetime.fromisoformat(value.replace("z", "Z"))
    return True


@_formats.checks("uri", raises=ValueError)
def _uri(value) -> bool:
    if isinstance(value, str) and not urlsplit(value).scheme:
        raise ValueError(f"{value!r} is not an absolute URI")
    return True


@_formats.checks("uri-reference", raises=ValueError)
def _uri_reference(value) -> bool:
    if isinstance(value, str) and any(c.isspace() for c in value):
        raise ValueError(f"{value!r} is not a URI reference")
    return True


def _load(path: Path) -> dict:
    return json.loads(path.read_text())


@cache
def _registry() -> tuple[Registry, dict[str, dict]]:
    """Every schema by ``$id``, and the event schemas by the event type they accept."""
    resources, by_type = [], {}
    paths = [*(FIXTURES / "schemas").rglob("*.json"), FIXTURES / "custom" / "schema.json"]
    for path in paths:
        schema = _load(path)
        resources.append((schema["$id"], Resource.from_contents(schema)))
        event_type = schema.get("properties", {}).get("context", {}).get("properties", {})
        for name in event_type.get("type", {}).get("enum", []):
            by_type[name] = schema
    return Registry().with_resources(resources), by_type


def schema_for(event_type: str) -> dict:
    """The vendored schema of ``event_type``; ``dev.cdeventsx.*`` gets the custom one."""
    registry, by_type = _registry()
    if event_type.startswith("dev.cdeventsx."):
        return _load(FIXTURES / "custom" / "schema.json")
    return by_type[event_type]


def errors(event: dict) -> list[str]:
    """Every way ``event`` breaks its type's schema (empty when it conforms)."""
    registry, by_type = _registry()
    event_type = event.get("context", {}).get("type", "")
    if not event_type.startswith("dev.cdeventsx.") and event_type not in by_type:
        return [f"context/type: no vendored v{SPEC_VERSION} schema accepts {event_type!r}"]
    validator = Draft202012Validator(
        schema_for(event_type), registry=registry, format_checker=_formats
    )
    return [
        f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}"
        for e in validator.iter_errors(event)
    ]


def assert_conforms(event: dict) -> None:
    problems = errors(event)
    assert not problems, f"{event['context']['type']} does not conform: {problems}"


def examples() -> list[Path]:
    """The spec's example of every event type, and of a custom event."""
    return [
        *sorted((FIXTURES / "conformance").glob("*.json")),
        FIXTURES / "custom" / "conformance.json",
    ]


def example(name: str) -> dict:
    """One example by file name (``service_deployed``) or ``custom``."""
    if name == "custom":
        return _load(FIXTURES / "custom" / "conformance.json")
    return _load(FIXTURES / "conformance" / f"{name}.json")
