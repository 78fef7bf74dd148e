"""The audit trail's keys: HMAC-SHA256 secrets the database does not hold (settings
``AUDIT_CHAIN_KEYS``, id -> secret, and ``AUDIT_CHAIN_KEY_ID``, the one new links and
checkpoints use). Imports no project app.

Each event and checkpoint records the id of the key it was made with, so after a rotation
(a new id first in the list, the old one kept) old links still verify with their own key.
Dropping a key from the list makes everything made with it unverifiable: keep every key
whose events you still hold.
"""

from __future__ import annotations

import hashlib
import hmac

from django.conf import settings


class UnknownAuditKey(LookupError):
    """An event or checkpoint names a key id this server does not hold."""


def current_key_id() -> str:
    return settings.AUDIT_CHAIN_KEY_ID


def secret(key_id: str) -> bytes:
    try:
        return settings.AUDIT_CHAIN_KEYS[key_id]
    except KeyError:
        raise UnknownAuditKey(key_id) from None


def sign(key_id: str, message: bytes) -> str:
    """HMAC-SHA256 of ``message`` with the key ``key_id``, as 64 hex digits."""
    return hmac.new(secret(key_id), message, hashlib.sha256).hexdigest()


def matches(signature: str, key_id: str, message: bytes) -> bool:
    """Whether ``signature`` is ``message``'s HMAC under ``key_id`` (constant time). False
    for a key this server does not hold."""
    try:
        expected = sign(key_id, message)
    except UnknownAuditKey:
        return False
    return hmac.compare_digest(expected, signature)
