"""Jenkins Notification plugin webhooks.

The plugin posts a JobState object (``name``, ``url``, ``build``) at each phase
of a build: QUEUED, STARTED, COMPLETED (result known, post-build steps still
running) and FINALIZED (everything done; authoritative). Jenkins has no
signing, so the endpoint checks a shared token (the ``X-Releasegate-Token`` header
or a bearer Authorization; never the query string) with :func:`verify_secret`.

``build.timestamp`` is the time of the event itself (queue entry, start,
start + duration, finalisation) as epoch milliseconds in current plugin
versions and as an ISO string in older ones; ``build.duration`` is in ms.
FINALIZED times are therefore shifted by the post-build steps (seconds);
COMPLETED's are exact, so the upsert should keep times it already has.

The run is keyed on the job's *full* name taken from ``url`` (``folder/job``),
not the bare ``name``: multibranch jobs are all called ``main``.

Status mapping (``build.phase`` / ``build.status`` -> RunEvent.status):

=================================  ===========  ====================================
Jenkins                            Releasegate  Why
=================================  ===========  ====================================
QUEUED                             queued
STARTED                            running
COMPLETED without status           running      result not known yet
COMPLETED/FINALIZED + SUCCESS      succeeded
COMPLETED/FINALIZED + FAILURE      failed
COMPLETED/FINALIZED + UNSTABLE     failed       Jenkins marks test failures UNSTABLE;
                                                a release must not pass on them
COMPLETED/FINALIZED + ABORTED      cancelled
COMPLETED/FINALIZED + NOT_BUILT    cancelled    the build did not run
FINALIZED without status           error        malformed: a finished build has one
NONE                               (None)       manual notification, not a run state
=================================  ===========  ====================================
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import unquote

from .gitlab import verify_token
from .timeparse import parse_epoch_millis, parse_iso8601
from .types import (
    AdapterError,
    Ignored,
    RunEvent,
    RunStatus,
    get_dict,
    get_id,
    get_int,
    get_str,
    require_dict,
)

_RESULT_MAP: dict[str, RunStatus] = {
    "SUCCESS": "succeeded",
    "FAILURE": "failed",
    "UNSTABLE": "failed",
    "ABORTED": "cancelled",
    "NOT_BUILT": "cancelled",
}
_MAX_DURATION_MS = 366 * 24 * 3600 * 1000  # a build longer than a year is garbage
_PHASES = ("QUEUED", "STARTED", "COMPLETED", "FINALIZED")
# What a notification may carry that the webhook does not record, and why.
_UNMAPPED = (
    (
        "artifacts",
        "Archived files carry no content digest: artefacts are recorded with their digest "
        "through POST /api/v1/pipeline-runs/.",
    ),
    (
        "test_summary",
        "Test results are recorded as checks through POST /api/v1/pipeline-runs/; the "
        "webhook records the run.",
    ),
)
_VERSION_PARAMETERS = ("VERSION", "version", "RELEASE_VERSION")
# Old plugin versions print milliseconds unpadded ("...:05.7+00:00" is 7 ms).
_UNPADDED_MILLIS = re.compile(r"(T\d{2}:\d{2}:\d{2})\.(\d{1,3})(?=[+-]|Z|$)")


def parse_notification(payload: Any) -> RunEvent | None:
    """Map a Notification plugin delivery to a RunEvent (None for phase NONE)."""
    body = require_dict(payload, "payload")
    build = get_dict(body, "build", "payload")
    where = "build"

    phase = get_str(build, "phase", where)
    if phase == "NONE":
        return None
    if phase not in _PHASES:
        raise AdapterError(f"build.phase {phase!r} is not a known phase")
    result = get_str(build, "status", where, required=False)
    status = _map_status(phase, result)

    job = _job_full_name(body)
    number = get_id(build, "number", where)
    scm = get_dict(build, "scm", where, required=False)
    parameters = _parameters(build.get("parameters"))
    # A version parameter that is not a string is not guessed at; the answer names it, and
    # the evidence the plugin sends that a run does not hold.
    ignored = tuple(
        Ignored(f"build.parameters.{key}", "Not a string: the version is not read from it.")
        for key in _VERSION_PARAMETERS
        if isinstance(build.get("parameters"), dict)
        and key in build["parameters"]
        and key not in parameters
    ) + tuple(Ignored(f"build.{key}", reason) for key, reason in _UNMAPPED if build.get(key))

    event_time = _event_time(build.get("timestamp"))
    duration_ms = get_int(build, "duration", where, required=False)
    duration = _duration(duration_ms)
    started_at, finished_at = _times(phase, status, event_time, duration)

    return RunEvent(
        provider="jenkins",
        external_id=f"{job}#{number}",
        # A Jenkins "rebuild" is a new build number; there are no attempts.
        attempt=1,
        status=status,
        commit_sha=get_str(scm, "commit", "build.scm", required=False),
        ref=_full_ref(get_str(scm, "branch", "build.scm", required=False)),
        repository=job,
        version=next((parameters[k] for k in _VERSION_PARAMETERS if parameters.get(k)), ""),
        url=get_str(build, "full_url", where, required=False)
        or get_str(build, "url", where, required=False),
        started_at=started_at,
        finished_at=finished_at,
        name=job,
        waiting_approval=False,
        raw_status=f"{phase}/{result}" if result else phase,
        ignored=ignored,
    )


def verify_secret(expected: Iterable[str], provided: str | None) -> bool:
    """Constant-time check of the shared token; same scheme as GitLab's X-Gitlab-Token."""
    return verify_token(expected, provided)


def _map_status(phase: str, result: str) -> RunStatus:
    """Map phase + result; the result only counts once the build has completed."""
    if phase == "QUEUED":
        return "queued"
    if phase == "STARTED":
        return "running"
    if not result:
        if phase == "FINALIZED":
            raise AdapterError("build.status is required when build.phase is FINALIZED")
        return "running"
    try:
        return _RESULT_MAP[result]
    except KeyError:
        raise AdapterError(f"build.status {result!r} is not a known result") from None


def _job_full_name(body: dict[str, Any]) -> str:
    """The job's full name: ``folder/job`` from ``url`` (``job/folder/job/job/``), else ``name``.

    ``name`` alone is ambiguous for folders and multibranch pipelines (every
    branch job of every repository is called ``main``), and the run key is
    built from it, so the path in ``url`` wins when present.
    """
    name = get_str(body, "name", "payload", required=False)
    url = get_str(body, "url", "payload", required=False)
    parts = [p for p in url.strip("/").split("/") if p]
    if len(parts) >= 2 and len(parts) % 2 == 0 and all(p == "job" for p in parts[::2]):
        return "/".join(unquote(p) for p in parts[1::2])
    if not name:
        raise AdapterError("payload.name is required")
    return name


def _parameters(value: Any) -> dict[str, str]:
    """String-valued build parameters (the plugin sends an env-var map).

    Non-string values from hand-rolled senders are skipped rather than
    rejecting the whole run over a parameter we do not need (a version
    parameter skipped so is named in the answer's ``ignored``).
    """
    if value is None:
        return {}
    params = require_dict(value, "build.parameters")
    return {k: v for k, v in params.items() if isinstance(k, str) and isinstance(v, str)}


def _event_time(value: Any) -> datetime | None:
    """Parse ``build.timestamp`` in either of the plugin's historical formats."""
    if value is None or value == "":
        return None
    if isinstance(value, str) and not value.strip().isdecimal():
        text = _UNPADDED_MILLIS.sub(lambda m: f"{m.group(1)}.{m.group(2).zfill(3)}", value)
        return parse_iso8601(text, "build.timestamp")
    return parse_epoch_millis(value, "build.timestamp")


def _duration(duration_ms: int | None) -> timedelta | None:
    """Build duration; 0 (the plugin's value before completion) means unknown."""
    if not duration_ms or duration_ms < 0:
        return None
    if duration_ms > _MAX_DURATION_MS:
        raise AdapterError("build.duration is out of range")
    return timedelta(milliseconds=duration_ms)


def _times(
    phase: str, status: RunStatus, event_time: datetime | None, duration: timedelta | None
) -> tuple[datetime | None, datetime | None]:
    """Derive (started_at, finished_at) from the phase's event time and the duration.

    COMPLETED's timestamp is exactly start + duration. FINALIZED's is the
    finalisation time, a little after the end (post-build steps), so start is
    then approximated as timestamp - duration.
    """
    if event_time is None:
        return None, None
    if phase == "QUEUED":
        return None, None
    if phase == "STARTED" or status == "running":
        return (event_time if phase == "STARTED" else None), None
    started = None
    if duration is not None:
        try:
            started = event_time - duration
        except OverflowError:
            raise AdapterError("build.duration is out of range") from None
    return started, event_time


def _full_ref(branch: str) -> str:
    """Turn Jenkins' ``GIT_BRANCH`` (``origin/main``, ``main``) into ``refs/heads/main``."""
    if not branch or branch.startswith("refs/"):
        return branch
    if branch.startswith("origin/"):
        branch = branch[len("origin/") :]
    return f"refs/heads/{branch}"
