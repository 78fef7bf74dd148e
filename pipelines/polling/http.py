"""HTTP for pollers: every request bounded in time, attempts and size.

- A timeout on connect and on each read (``httpx.Timeout``), and a wall-clock deadline for
  the whole body, so a server trickling bytes cannot hold a worker.
- At most ``MAX_ATTEMPTS`` attempts per request, retrying only what may succeed later
  (connection errors, timeouts, 5xx, 429). Between attempts: ``Retry-After`` when the server
  sends one (capped; beyond the cap we give up and carry the wait to the next poll), else
  exponential backoff with full jitter.
- The body is streamed and abandoned past ``max_bytes`` (default 5 MB): a 20 MB answer is an
  error, never 20 MB in memory.
- A host that is (or resolves to) a private address, with a client from
  ``core.outbound.outbound_client``, is an error at once (not retried).
- A body that is not JSON is an error (``PollError``) with a readable message; nothing here
  raises anything else, so one bad integration never crashes the sweep.
"""

from __future__ import annotations

import email.utils
import json
import random
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

from core.outbound import OutboundRefused

MAX_ATTEMPTS = 3
DEFAULT_MAX_BYTES = 5 * 1024 * 1024
DEFAULT_TIMEOUT = httpx.Timeout(10.0, connect=5.0)
RETRY_AFTER_CAP = 30.0
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


class PollError(Exception):
    """A request that failed for good (after its attempts). ``retry_after`` carries a wait the
    server asked for, so the next poll is not scheduled before it."""

    def __init__(self, message: str, *, status: int | None = None, retry_after: float = 0.0):
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


@dataclass
class FetchStats:
    """Requests and attempts made, for health and for the benchmark's retry share."""

    requests: int = 0
    attempts: int = 0
    sleeps: list[float] = field(default_factory=list)

    @property
    def retries(self) -> int:
        return self.attempts - self.requests


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    current = now if now is not None else time.time()
    return max(0.0, when.timestamp() - current)


def _read_bounded(response: httpx.Response, max_bytes: int, deadline: float) -> bytes:
    declared = response.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise PollError(
            f"Response too large: {int(declared)} bytes declared (limit {max_bytes}).",
            status=response.status_code,
        )
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > max_bytes:
            raise PollError(
                f"Response too large: more than {max_bytes} bytes.", status=response.status_code
            )
        if time.monotonic() > deadline:
            raise PollError("Response body took too long.", status=response.status_code)
        chunks.append(chunk)
    return b"".join(chunks)


def get_json(
    client: httpx.Client,
    url: str,
    *,
    params: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
    auth: tuple[str, str] | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    body_deadline: float = 30.0,
    stats: FetchStats | None = None,
    backoff_base: float = 0.5,
    sleep=None,
) -> Any:
    """GET ``url`` and return its JSON, within the bounds above, or raise PollError."""
    stats = stats if stats is not None else FetchStats()
    stats.requests += 1
    last: PollError | None = None
    for attempt in range(MAX_ATTEMPTS):
        stats.attempts += 1
        wait: float | None = None
        try:
            with client.stream("GET", url, params=params, headers=headers, auth=auth) as response:
                status = response.status_code
                if status in RETRY_STATUSES:
                    retry_after = parse_retry_after(response.headers.get("retry-after"))
                    last = PollError(
                        f"HTTP {status} from {_host(url)}"
                        + (f" (Retry-After {retry_after:g}s)" if retry_after else ""),
                        status=status,
                        retry_after=retry_after or 0.0,
                    )
                    if retry_after is not None and retry_after > RETRY_AFTER_CAP:
                        raise last  # too long to wait in a worker: the next poll waits
                    wait = retry_after
                elif status >= 400:
                    raise PollError(f"HTTP {status} from {_host(url)}", status=status)
                else:
                    body = _read_bounded(response, max_bytes, time.monotonic() + body_deadline)
                    try:
                        return json.loads(body)
                    except (ValueError, UnicodeDecodeError) as exc:
                        snippet = body[:80].decode("utf-8", "replace")
                        raise PollError(
                            f"Malformed JSON from {_host(url)}: {exc} (body starts {snippet!r})",
                            status=status,
                        ) from None
        except OutboundRefused as exc:
            raise PollError(f"Refused: {exc}") from None  # another attempt would be refused too
        except httpx.TimeoutException as exc:
            last = PollError(f"Timeout talking to {_host(url)}: {type(exc).__name__}")
        except httpx.HTTPError as exc:
            last = PollError(f"Cannot reach {_host(url)}: {type(exc).__name__}: {exc}")
        if attempt + 1 < MAX_ATTEMPTS:
            delay = wait if wait is not None else random.uniform(0, backoff_base * 2**attempt)
            stats.sleeps.append(delay)
            (sleep or _sleep)(delay)
    assert last is not None
    raise last


def _sleep(seconds: float) -> None:
    """Wait between attempts (a seam tests replace to assert the waits instead)."""
    time.sleep(seconds)


def _host(url: str) -> str:
    return httpx.URL(url).host or url


def iso(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
