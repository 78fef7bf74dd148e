"""Request metadata (IP, user agent) for the audit trail, carried in a context variable.

The middleware sets it for browser and API requests so that services need not thread the
request through every call; management commands and workers leave it empty. Imports no
project app.
"""

from __future__ import annotations

import contextvars
from dataclasses import dataclass


@dataclass(frozen=True)
class RequestMeta:
    ip_address: str | None = None
    user_agent: str = ""


_EMPTY = RequestMeta()
_current: contextvars.ContextVar[RequestMeta | None] = contextvars.ContextVar(
    "releasegate_request_meta", default=None
)


def current_request_meta() -> RequestMeta:
    return _current.get() or _EMPTY


def set_request_meta(meta: RequestMeta) -> contextvars.Token:
    return _current.set(meta)


def reset_request_meta(token: contextvars.Token) -> None:
    _current.reset(token)
