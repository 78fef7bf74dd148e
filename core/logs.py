"""Log lines that say which request or task they belong to, and who acted (docs/operations.md,
"Logs"). Imports no project app.

- A **request id** is taken from the ``X-Request-ID`` header when it looks like one (letters,
  digits and ``._:=+/-``, 8 to 128 characters), else generated, echoed in the response's
  ``X-Request-ID`` and put on every log line written while the request runs
  (``RequestLogMiddleware``).
- Celery carries it: a task published while a request runs gets it as the message header
  ``request_id`` (``before_task_publish``), and the worker puts it, with the task's id and
  name, on every line the task logs (``task_prerun`` / ``task_postrun``).
- **Who**: the acting user's username, or ``token:<name>`` / ``integration:<name>`` for
  machines; read only when the request already loaded it, so logging costs no query.
- **Never** secrets: no header, cookie, body or query string is logged; URL parts named like a
  token are replaced; ``extra`` fields named like a secret are redacted by the formatters.
- ``LOG_FORMAT=json`` writes one JSON object per line (python-json-logger); ``text`` is for
  people (``make run``). ``logging_config`` builds the LOGGING setting for either.
"""

from __future__ import annotations

import contextvars
import logging
import re
import time
import uuid
from typing import Any

from django.utils.functional import SimpleLazyObject, empty
from pythonjsonlogger.json import JsonFormatter as _JsonFormatter

REQUEST_ID_HEADER = "X-Request-ID"
TASK_HEADER = "request_id"
_SANE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:=+/-]{7,127}")
# Names of log fields and URL parts whose values are never written.
_SECRET = re.compile(r"pass|secret|token|authori[sz]ation|cookie|session|csrf|api_?key", re.I)
REDACTED = "[redacted]"

request_logger = logging.getLogger("releasegate.request")
task_logger = logging.getLogger("releasegate.task")


class _Context:
    __slots__ = ("request", "request_id", "task_id", "task_name")

    def __init__(self, request_id="", request=None, task_id="", task_name=""):
        self.request_id = request_id
        self.request = request
        self.task_id = task_id
        self.task_name = task_name


_current: contextvars.ContextVar[_Context | None] = contextvars.ContextVar(
    "releasegate_log_context", default=None
)


def current_request_id() -> str:
    context = _current.get()
    return context.request_id if context else ""


def sane_request_id(offered: str | None) -> str:
    """The offered id when it looks like one, else a new one (32 hex digits)."""
    if offered and _SANE_ID.fullmatch(offered):
        return offered
    return uuid.uuid4().hex


def actor_of(request) -> str:
    """Who the request acts as, without loading a user the request did not load itself."""
    user = getattr(request, "__dict__", {}).get("user")
    if user is None:
        return ""
    if isinstance(user, SimpleLazyObject):
        if user._wrapped is empty:  # nobody asked: reading it now would cost a query
            return ""
        user = user._wrapped
    if not getattr(user, "is_authenticated", False):
        return ""
    return str(user.get_username())


# --- log records ----------------------------------------------------------------------------


class ContextFilter(logging.Filter):
    """Puts ``request_id``, ``task_id``, ``task_name`` and ``user`` on every record a handler
    writes (empty strings outside a request or task), so formatters can always name them."""

    def filter(self, record: logging.LogRecord) -> bool:
        context = _current.get()
        if context is None:
            record.request_id = getattr(record, "request_id", "")
            record.task_id = getattr(record, "task_id", "")
            record.task_name = getattr(record, "task_name", "")
            record.user = getattr(record, "user", "")
            return True
        record.request_id = context.request_id
        record.task_id = context.task_id
        record.task_name = context.task_name
        record.user = actor_of(context.request) if context.request is not None else ""
        return True


class JsonFormatter(_JsonFormatter):
    """python-json-logger, with fields named like a secret redacted."""

    def process_log_record(self, log_data: dict[str, Any]) -> dict[str, Any]:
        return {
            key: (REDACTED if _SECRET.search(key) and value not in ("", None) else value)
            for key, value in log_data.items()
        }


class TextFormatter(logging.Formatter):
    """Human-readable lines, the request or task id in brackets when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        ids = " ".join(
            part
            for part in (
                getattr(record, "request_id", ""),
                getattr(record, "task_name", ""),
                getattr(record, "user", ""),
            )
            if part
        )
        record.context = f" [{ids}]" if ids else ""
        return super().format(record)


JSON_FIELDS = (
    "%(asctime)s %(levelname)s %(name)s %(message)s "
    "%(request_id)s %(task_id)s %(task_name)s %(user)s"
)
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s%(context)s %(message)s"


def logging_config(log_format: str, level: str) -> dict:
    """The LOGGING setting: one console handler, JSON or text, with the context filter."""
    if log_format not in ("json", "text"):
        raise ValueError(f"LOG_FORMAT must be json or text, got {log_format!r}.")
    formatters = {
        "json": {
            "()": "core.logs.JsonFormatter",
            "fmt": JSON_FIELDS,
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
        "text": {"()": "core.logs.TextFormatter", "format": TEXT_FORMAT},
    }
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"context": {"()": "core.logs.ContextFilter"}},
        "formatters": {log_format: formatters[log_format]},
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "formatter": log_format,
                "filters": ["context"],
            }
        },
        "root": {"handlers": ["console"], "level": level},
    }


# --- requests -------------------------------------------------------------------------------


def _loggable_path(request) -> str:
    """The path without its query string, URL parts named like a token replaced (the
    calendar feed's URL is its credential)."""
    path = request.path
    match = getattr(request, "resolver_match", None)
    for name, value in (getattr(match, "kwargs", None) or {}).items():
        if _SECRET.search(name) and isinstance(value, str) and value:
            path = path.replace(value, REDACTED)
    return path


class RequestLogMiddleware:
    """First in the chain: sets the request id, echoes it, and writes one line per request
    (method, path, status, duration, user) when it is answered."""

    def __init__(self, get_response):
        from django.conf import settings

        self.get_response = get_response
        # Text logs sit beside runserver's and gunicorn's own access lines: this one is then
        # a debug line, not a second copy of each request.
        self.level = logging.INFO if settings.LOG_FORMAT == "json" else logging.DEBUG

    def __call__(self, request):
        request_id = sane_request_id(request.META.get("HTTP_X_REQUEST_ID"))
        request.request_id = request_id
        token = _current.set(_Context(request_id=request_id, request=request))
        started = time.monotonic()
        try:
            response = self.get_response(request)
            response[REQUEST_ID_HEADER] = request_id
            request_logger.log(
                self.level,
                "%s %s %s",
                request.method,
                _loggable_path(request),
                response.status_code,
                extra={
                    "method": request.method,
                    "path": _loggable_path(request),
                    "status": response.status_code,
                    "duration_ms": round((time.monotonic() - started) * 1000, 1),
                },
            )
            return response
        finally:
            _current.reset(token)


# --- Celery ---------------------------------------------------------------------------------


def _on_publish(headers=None, **_):
    """The publishing request's id travels as a message header."""
    request_id = current_request_id()
    if request_id and headers is not None and TASK_HEADER not in headers:
        headers[TASK_HEADER] = request_id


_task_tokens: dict[str, contextvars.Token] = {}
_task_started: dict[str, float] = {}


def _on_prerun(task_id=None, task=None, **_):
    # A worker puts a message's own headers on the task's request; an eager call
    # (apply(headers=…)) keeps them under ``headers``.
    request_id = (
        getattr(task.request, TASK_HEADER, None)
        or (getattr(task.request, "headers", None) or {}).get(TASK_HEADER)
        or ""
    )
    if not isinstance(request_id, str) or not _SANE_ID.fullmatch(request_id):
        request_id = ""
    _task_tokens[task_id] = _current.set(
        _Context(request_id=request_id, task_id=task_id or "", task_name=task.name)
    )
    _task_started[task_id] = time.monotonic()
    task_logger.info("task started", extra={"retries": task.request.retries or 0})


def _on_postrun(task_id=None, task=None, state=None, **_):
    started = _task_started.pop(task_id, None)
    extra: dict[str, Any] = {"state": state or ""}
    if started is not None:
        extra["duration_ms"] = round((time.monotonic() - started) * 1000, 1)
    task_logger.info("task finished", extra=extra)
    token = _task_tokens.pop(task_id, None)
    if token is not None:
        try:
            _current.reset(token)
        except ValueError:  # set in another context (an eager task): leave it
            _current.set(None)


def connect_celery_signals() -> None:
    from celery import signals

    signals.before_task_publish.connect(_on_publish, weak=False, dispatch_uid="rg-logs-publish")
    signals.task_prerun.connect(_on_prerun, weak=False, dispatch_uid="rg-logs-prerun")
    signals.task_postrun.connect(_on_postrun, weak=False, dispatch_uid="rg-logs-postrun")
