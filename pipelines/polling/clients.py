"""Provider clients: ask GitHub Actions, GitLab CI or Jenkins for recent runs and turn the
answers into the same RunEvents the webhooks produce (so the one upsert service keys them
identically and polling plus webhooks never duplicate a run).

Pure network + parsing: no database. A client returns a PollResult; it raises PollError
only when the provider could not be asked at all. A malformed single run is skipped and
reported in ``errors`` without losing the others.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import httpx

from ..adapters import AdapterError, RunEvent, parse_pipeline_hook, parse_workflow_run
from ..adapters.timeparse import parse_epoch_millis, parse_gitlab_time, parse_iso8601
from .http import FetchStats, PollError, get_json, iso

PAGE_SIZE = 100
MAX_PAGES = 5
JENKINS_BUILDS = 50
# Re-read a little of the past each time: clocks differ and a run may be written late.
OVERLAP = timedelta(minutes=2)
FIRST_LOOKBACK = timedelta(days=1)


@dataclass
class PollTarget:
    """What a client needs, copied out of IntegrationPollState (threads share no models)."""

    provider: str
    base_url: str
    target: str
    branch: str = ""
    username: str = ""
    token: str = ""
    cursor: str = ""


@dataclass
class PollResult:
    events: list[RunEvent] = field(default_factory=list)
    next_cursor: str = ""
    errors: list[str] = field(default_factory=list)


def resolve_token(token: str, token_env: str) -> str:
    """The credential: from the named environment variable when set, else the admin field."""
    if token_env:
        return os.environ.get(token_env, "")
    return token


def _since(cursor: str, now: datetime) -> datetime:
    if cursor:
        try:
            return parse_iso8601(cursor, "cursor")
        except AdapterError:
            pass
    return now - FIRST_LOOKBACK


def _require(obj: Any, kind: type, what: str) -> Any:
    if not isinstance(obj, kind):
        raise PollError(f"Unexpected response shape: {what} is not a {kind.__name__}.")
    return obj


# --- GitHub Actions ---------------------------------------------------------------------------


def poll_github(
    client: httpx.Client, t: PollTarget, stats: FetchStats, now: datetime
) -> PollResult:
    """GET /repos/{owner}/{repo}/actions/runs?created=>=SINCE[&branch=…]: the REST API returns
    the same workflow_run objects as the webhook, so the webhook parser reads them. Status
    ``waiting`` (an environment approval pending) arrives as waiting_approval."""
    since = _since(t.cursor, now)
    headers = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28"}
    if t.token:
        headers["Authorization"] = f"Bearer {t.token}"
    result = PollResult()
    oldest_open = now - OVERLAP
    url = f"{t.base_url.rstrip('/')}/repos/{t.target}/actions/runs"
    for page in range(1, MAX_PAGES + 1):
        params: dict[str, Any] = {"created": f">={iso(since)}", "per_page": PAGE_SIZE, "page": page}
        if t.branch:
            params["branch"] = t.branch
        body = _require(
            get_json(client, url, params=params, headers=headers, stats=stats), dict, "body"
        )
        runs = _require(body.get("workflow_runs", []), list, "workflow_runs")
        for run in runs:
            try:
                event = parse_workflow_run({"workflow_run": run})
            except AdapterError as exc:
                result.errors.append(f"run {_id_of(run)}: {exc}")
                continue
            if event is None:
                continue
            result.events.append(event)
            if not event.is_finished:
                created = _created(run)
                if created is not None:
                    oldest_open = min(oldest_open, created)
        if len(runs) < PAGE_SIZE:
            break
    else:
        # Newest first: what did not fit is the oldest part of the range. Say so (health
        # shows it) rather than pretend; a branch filter or a shorter interval narrows it.
        result.errors.append(
            f"More than {MAX_PAGES * PAGE_SIZE} runs since {iso(since)}: older ones skipped."
        )
    result.next_cursor = iso(max(since, oldest_open) if oldest_open < now else now - OVERLAP)
    return result


def _created(run: Any) -> datetime | None:
    try:
        return parse_iso8601(run.get("created_at"), "created_at")
    except (AdapterError, AttributeError):
        return None


def _id_of(obj: Any) -> str:
    return str(obj.get("id", "?")) if isinstance(obj, dict) else "?"


# --- GitLab CI --------------------------------------------------------------------------------


def poll_gitlab(
    client: httpx.Client, t: PollTarget, stats: FetchStats, now: datetime
) -> PollResult:
    """GET /api/v4/projects/:id/pipelines?updated_after=SINCE, then /pipelines/:id of each for
    started_at, finished_at and duration (the list has neither). Read through the webhook
    parser (same keys, statuses and refs), with the API's real start time."""
    since = _since(t.cursor, now)
    headers = {"PRIVATE-TOKEN": t.token} if t.token else {}
    project = quote(t.target, safe="")
    base = f"{t.base_url.rstrip('/')}/api/v4/projects/{project}/pipelines"
    params: dict[str, Any] = {
        "updated_after": iso(since),
        "per_page": PAGE_SIZE,
        "order_by": "updated_at",
        "sort": "asc",
    }
    if t.branch:
        params["ref"] = t.branch
    items = _require(
        get_json(client, base, params=params, headers=headers, stats=stats), list, "body"
    )
    result = PollResult()
    newest = since
    for item in items:
        if not isinstance(item, dict) or "id" not in item:
            result.errors.append("pipeline list item without id")
            continue
        try:
            detail = _require(
                get_json(client, f"{base}/{item['id']}", headers=headers, stats=stats),
                dict,
                "pipeline",
            )
            event = _gitlab_event(detail, t.target)
        except (PollError, AdapterError) as exc:
            result.errors.append(f"pipeline {item['id']}: {exc}")
            continue
        if event is not None:
            result.events.append(event)
        with contextlib.suppress(AdapterError):
            newest = max(newest, parse_gitlab_time(item.get("updated_at"), "updated_at"))
    result.next_cursor = iso(min(newest, now) - timedelta(seconds=1))
    return result


def _gitlab_event(detail: dict, project_path: str) -> RunEvent | None:
    hook = {
        "object_kind": "pipeline",
        "object_attributes": {
            "id": detail.get("id"),
            "status": detail.get("status"),
            "ref": detail.get("ref"),
            "tag": detail.get("tag") or False,
            "sha": detail.get("sha"),
            "created_at": detail.get("created_at"),
            "finished_at": detail.get("finished_at"),
            "url": detail.get("web_url"),
            "name": detail.get("name"),
        },
        "project": {"path_with_namespace": project_path},
    }
    event = parse_pipeline_hook(hook)
    started_raw = detail.get("started_at")
    if event is not None and started_raw:
        event = dataclasses.replace(
            event, started_at=parse_gitlab_time(started_raw, "pipeline.started_at")
        )
    return event


# --- Jenkins ----------------------------------------------------------------------------------

_JENKINS_RESULTS = {
    "SUCCESS": "succeeded",
    "FAILURE": "failed",
    "UNSTABLE": "failed",
    "ABORTED": "cancelled",
    "NOT_BUILT": "cancelled",
}
JENKINS_TREE = (
    "builds[number,result,building,timestamp,duration,url,"
    "actions[parameters[name,value],lastBuiltRevision[SHA1,branch[name]]]]{0,%d}"
)


def jenkins_job_path(job: str) -> str:
    """``folder/job`` → ``job/folder/job/job`` (the URL path Jenkins uses for nested jobs)."""
    return "/".join(f"job/{quote(part, safe='')}" for part in job.strip("/").split("/"))


def poll_jenkins(
    client: httpx.Client, t: PollTarget, stats: FetchStats, now: datetime
) -> PollResult:
    """GET /job/NAME/api/json?tree=builds[…]{0,N}: the last N builds with result, building,
    timestamp (epoch ms) and duration (ms). Keyed ``<job full name>#<number>`` like the
    Notification plugin's webhooks."""
    url = f"{t.base_url.rstrip('/')}/{jenkins_job_path(t.target)}/api/json"
    auth = (t.username, t.token) if t.username and t.token else None
    body = _require(
        get_json(
            client, url, params={"tree": JENKINS_TREE % JENKINS_BUILDS}, auth=auth, stats=stats
        ),
        dict,
        "body",
    )
    result = PollResult(next_cursor="")
    for build in _require(body.get("builds", []), list, "builds"):
        try:
            event = _jenkins_event(build, t.target)
        except (AdapterError, KeyError, TypeError, ValueError) as exc:
            result.errors.append(
                f"build {_id_of(build) if isinstance(build, dict) else '?'}: {exc}"
            )
            continue
        if event is not None and (not t.branch or event.ref.endswith(f"/{t.branch}")):
            result.events.append(event)
    return result


def _jenkins_event(build: Any, job: str) -> RunEvent | None:
    if not isinstance(build, dict):
        raise AdapterError("build is not an object")
    number = build.get("number")
    if isinstance(number, bool) or not isinstance(number, int):
        raise AdapterError("build.number must be an integer")
    building = bool(build.get("building"))
    result = build.get("result")
    if building:
        status, raw = "running", "BUILDING"
    elif result is None:
        status, raw = "queued", "QUEUED"
    elif result in _JENKINS_RESULTS:
        status, raw = _JENKINS_RESULTS[result], f"FINALIZED/{result}"
    else:
        raise AdapterError(f"build.result {result!r} is not a known result")
    started = (
        parse_epoch_millis(build["timestamp"], "build.timestamp")
        if build.get("timestamp")
        else None
    )
    finished = None
    duration = build.get("duration") or 0
    if status not in ("running", "queued") and started is not None:
        if isinstance(duration, bool) or not isinstance(duration, int) or duration < 0:
            raise AdapterError("build.duration must be milliseconds")
        finished = started + timedelta(milliseconds=duration)
    params: dict[str, str] = {}
    sha, branch = "", ""
    for action in build.get("actions") or []:
        if not isinstance(action, dict):
            continue
        for p in action.get("parameters") or []:
            if isinstance(p, dict) and isinstance(p.get("value"), str):
                params[str(p.get("name"))] = p["value"]
        revision = action.get("lastBuiltRevision")
        if isinstance(revision, dict):
            sha = str(revision.get("SHA1") or "")
            branches = revision.get("branch") or []
            if branches and isinstance(branches[0], dict):
                branch = str(branches[0].get("name") or "")
    if branch.startswith("origin/"):
        branch = branch[len("origin/") :]
    return RunEvent(
        provider="jenkins",
        external_id=f"{job.strip('/')}#{number}",
        attempt=1,
        status=status,
        commit_sha=sha,
        ref=f"refs/heads/{branch}" if branch and not branch.startswith("refs/") else branch,
        repository=job.strip("/"),
        version=next(
            (params[k] for k in ("VERSION", "version", "RELEASE_VERSION") if params.get(k)), ""
        ),
        url=str(build.get("url") or ""),
        started_at=started,
        finished_at=finished,
        name=job.strip("/"),
        waiting_approval=False,
        raw_status=raw,
    )


CLIENTS: dict[str, Callable[[httpx.Client, PollTarget, FetchStats, datetime], PollResult]] = {
    "github": poll_github,
    "gitlab": poll_gitlab,
    "jenkins": poll_jenkins,
}


def now_utc() -> datetime:
    return datetime.now(UTC)
