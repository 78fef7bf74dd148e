"""Read the environment in one place, with small typed helpers that fail loudly.

Every setting that comes from the environment is read through these helpers so that a bad
value (``DJANGO_DEBUG=maybe``) stops the process at start-up with a message that names the
variable, instead of surfacing later as odd behaviour.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
import os
import re

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return default if value is None else value


def env_required(name: str) -> str:
    value = os.environ.get(name, "").strip()
    if not value:
        raise ImproperlyConfigured(f"The environment variable {name} is required and is not set.")
    return value


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (1/0, true/false), got {value!r}.")


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, got {value!r}.") from None


def env_float(name: str, default: float) -> float:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    try:
        return float(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number, got {value!r}.") from None


def env_list(name: str, default: list[str] | None = None) -> list[str]:
    value = os.environ.get(name)
    if value is None:
        return list(default or [])
    return [item.strip() for item in value.split(",") if item.strip()]


def env_networks(name: str) -> list[str]:
    """Comma-separated CIDRs (``10.20.0.0/16, fd00::/8``), each checked now."""
    networks = env_list(name)
    for cidr in networks:
        try:
            ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            raise ImproperlyConfigured(f"{name} must list CIDRs, got {cidr!r}.") from None
    return networks


_KEY_ID = re.compile(r"^[A-Za-z0-9_.-]{1,16}$")


def env_secret_keys(name: str) -> dict[str, bytes] | None:
    """Named secrets, ``id:base64,id:base64`` (the newest first, by convention): each id is
    1-16 of ``A-Za-z0-9_.-`` and each secret decodes to at least 32 bytes. None when unset."""
    value = os.environ.get(name, "").strip()
    if not value:
        return None
    keys: dict[str, bytes] = {}
    for item in value.split(","):
        key_id, sep, encoded = item.strip().partition(":")
        if not sep or not _KEY_ID.match(key_id):
            raise ImproperlyConfigured(
                f"{name} must list id:base64-secret pairs separated by commas "
                f"(ids of 1-16 letters, digits, '_', '.', '-'), got {key_id or item!r}."
            )
        try:
            secret = base64.b64decode(encoded.strip(), altchars=b"-_", validate=True)
        except (binascii.Error, ValueError):
            raise ImproperlyConfigured(f"{name}: the secret of {key_id!r} is not base64.") from None
        if len(secret) < 32:
            raise ImproperlyConfigured(
                f"{name}: the secret of {key_id!r} is {len(secret)} bytes; use at least 32 "
                "(e.g. `openssl rand -base64 32`)."
            )
        if key_id in keys:
            raise ImproperlyConfigured(f"{name} lists the key id {key_id!r} twice.")
        keys[key_id] = secret
    return keys


def env_json_map(name: str) -> dict[str, object]:
    """A JSON object (``{"rg-qa": "qa_lead"}``); empty when unset. Anything else stops start-up."""
    value = os.environ.get(name, "").strip()
    if not value:
        return {}
    try:
        parsed = json.loads(value)
    except ValueError as error:
        raise ImproperlyConfigured(f"{name} must be a JSON object: {error}") from None
    if not isinstance(parsed, dict):
        raise ImproperlyConfigured(f"{name} must be a JSON object, got {type(parsed).__name__}.")
    return parsed
