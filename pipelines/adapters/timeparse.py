"""Time parsing for webhook payloads.

Each provider writes timestamps differently (GitHub ISO 8601 with ``Z``, GitLab
``2016-08-12 15:23:28 UTC``, Jenkins epoch milliseconds, Alertmanager Go RFC 3339
with nanoseconds and a zero time for "unset"). Everything is normalised here to
timezone-aware UTC datetimes so comparisons and storage never mix naive and
aware values, and garbage becomes an AdapterError instead of a crash.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from .types import AdapterError

# Go's time.Time{} serialised by Alertmanager for "no end time yet".
GO_ZERO_TIME = datetime(1, 1, 1, tzinfo=UTC)

_GITLAB_FORMAT = re.compile(
    r"^(?P<stamp>\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(?:\.\d+)?) (?P<zone>UTC|[+-]\d{4})$"
)
_FRACTION = re.compile(r"\.(\d+)")
# Epoch milliseconds beyond year 9999 cannot be represented as a datetime.
_MAX_EPOCH_MS = 253_402_300_799_999


def parse_iso8601(value: Any, field: str = "timestamp") -> datetime:
    """Parse an ISO 8601 / RFC 3339 string that carries an offset or ``Z``.

    Naive strings are refused: guessing a zone would silently shift run times.
    Fractions longer than microseconds (Go emits nanoseconds) are truncated.
    """
    if not isinstance(value, str):
        raise AdapterError(f"{field} must be an ISO 8601 string")
    text = value.strip()
    # Python 3.11 accepts "Z" and long fractions, but be explicit about both so
    # behaviour does not depend on the interpreter's leniency.
    if text[-1:] in ("z", "Z"):
        text = text[:-1] + "+00:00"
    text = _FRACTION.sub(lambda m: "." + m.group(1)[:6].ljust(6, "0"), text, count=1)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise AdapterError(f"{field} is not an ISO 8601 timestamp: {value!r}") from None
    return _as_utc(parsed, field, value)


def parse_gitlab_time(value: Any, field: str = "timestamp") -> datetime:
    """Parse GitLab's ``YYYY-MM-DD HH:MM:SS UTC`` (or ``+0200``), falling back to ISO 8601.

    GitLab hooks use the legacy Rails format while its API and newer fields
    use ISO 8601, so both must be accepted for the same field.
    """
    if not isinstance(value, str):
        raise AdapterError(f"{field} must be a timestamp string")
    match = _GITLAB_FORMAT.match(value.strip())
    if match is None:
        return parse_iso8601(value, field)
    zone = match.group("zone")
    offset = "+00:00" if zone == "UTC" else f"{zone[:3]}:{zone[3:]}"
    return parse_iso8601(match.group("stamp").replace(" ", "T") + offset, field)


def parse_epoch_millis(value: Any, field: str = "timestamp") -> datetime:
    """Parse Jenkins-style milliseconds since the Unix epoch (int, float or digit string)."""
    if isinstance(value, str):
        digits = value.strip()
        if not (digits.isascii() and digits.isdecimal() and len(digits) <= 20):
            raise AdapterError(f"{field} must be epoch milliseconds, got {value!r}")
        value = int(digits)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise AdapterError(f"{field} must be epoch milliseconds")
    if isinstance(value, float) and not math.isfinite(value):
        raise AdapterError(f"{field} must be a finite number of epoch milliseconds")
    if not 0 <= value <= _MAX_EPOCH_MS:
        raise AdapterError(f"{field} is out of range for epoch milliseconds: {value!r}")
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=value)


def parse_optional_go_time(value: Any, field: str = "timestamp") -> datetime | None:
    """Parse an RFC 3339 time where null, ``""`` or Go's zero time mean "not set"."""
    if value is None or value == "":
        return None
    if isinstance(value, str) and value.startswith("0001-01-01T00:00:00"):
        # Any zero time, whatever fraction/offset Go chose to print.
        return None
    parsed = parse_iso8601(value, field)
    return None if parsed == GO_ZERO_TIME else parsed


def _as_utc(parsed: datetime, field: str, original: Any) -> datetime:
    """Convert an aware datetime to UTC; refuse naive ones and out-of-range shifts."""
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise AdapterError(f"{field} has no timezone offset: {original!r}")
    try:
        return parsed.astimezone(UTC)
    except (OverflowError, ValueError):
        raise AdapterError(f"{field} is out of range: {original!r}") from None
