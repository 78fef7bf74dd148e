"""GitLab "Pipeline Hook" webhooks, and "Deployment Hook" deliveries of deployments blocked
on a protected environment (``parse_deployment_hook``).

GitLab posts the whole pipeline on every status change and authenticates the
delivery with a plain shared token in ``X-Gitlab-Token`` (no body signature),
so verification is a constant-time comparison against the configured tokens.

Status mapping (``object_attributes.status`` -> RunEvent.status):

==========================================  ===========  ===============================
GitLab                                      Releasegate  Why
==========================================  ===========  ===============================
created, waiting_for_resource, preparing,   queued       not executing yet
pending, scheduled
manual                                      queued       waiting_approval=True: blocked
                                                         on a manual job (a human gate)
running                                     running
canceling                                   running      still winding down; the
                                                         ``canceled`` event follows
success                                     succeeded
failed                                      failed
canceled                                    cancelled
skipped                                     cancelled    nothing ran: not evidence, not
                                                         a failure
==========================================  ===========  ===============================

GitLab pipeline hooks carry no pipeline start time, only ``created_at``; it is
used as ``started_at`` because it is stable across all events of the pipeline,
which keeps repeated deliveries idempotent.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable
from typing import Any

from .timeparse import parse_gitlab_time
from .types import (
    AdapterError,
    GateEvent,
    Ignored,
    RunEvent,
    RunStatus,
    get_bool,
    get_dict,
    get_id,
    get_str,
    require_dict,
)

_STATUS_MAP: dict[str, RunStatus] = {
    "created": "queued",
    "waiting_for_resource": "queued",
    "preparing": "queued",
    "pending": "queued",
    "scheduled": "queued",
    "manual": "queued",
    "running": "running",
    "canceling": "running",
    "success": "succeeded",
    "failed": "failed",
    "canceled": "cancelled",
    "skipped": "cancelled",
}

_VERSION_VARIABLES = ("VERSION", "version", "RELEASE_VERSION")
_JOBS_NOT_RECORDED = (
    "Jobs are not recorded: the pipeline is one run. Test results and artefacts are "
    "recorded through POST /api/v1/pipeline-runs/."
)
# "v2.4.0" / "2.4.0-rc.1" are versions; "nightly" or "deploy-prod" tags are not.
_VERSION_TAG = re.compile(r"^[vV]?(?P<version>[0-9][0-9A-Za-z.+_-]*)$")


def parse_pipeline_hook(payload: Any) -> RunEvent | None:
    """Map a Pipeline Hook delivery to a RunEvent.

    Returns None for other object kinds (push, job, merge_request...) so a hook
    subscribed to more events than needed is acknowledged, not rejected.
    """
    body = require_dict(payload, "payload")
    if body.get("object_kind") != "pipeline":
        return None
    attrs = get_dict(body, "object_attributes", "payload")
    project = get_dict(body, "project", "payload")
    where = "object_attributes"

    external_id = get_id(attrs, "id", where)
    raw_status = get_str(attrs, "status", where)
    try:
        status = _STATUS_MAP[raw_status]
    except KeyError:
        raise AdapterError(f"{where}.status {raw_status!r} is not a known status") from None

    ref_name = get_str(attrs, "ref", where, required=False)
    is_tag = get_bool(attrs, "tag", where)
    ref = _full_ref(ref_name, is_tag)

    created_raw = attrs.get("created_at")
    started_at = (
        None if created_raw in (None, "") else parse_gitlab_time(created_raw, f"{where}.created_at")
    )
    finished_at = None
    finished_raw = attrs.get("finished_at")
    if status in ("succeeded", "failed", "cancelled") and finished_raw not in (None, ""):
        finished_at = parse_gitlab_time(finished_raw, f"{where}.finished_at")

    repository = get_str(project, "path_with_namespace", "project")
    url = get_str(attrs, "url", where, required=False)
    if not url:
        web_url = get_str(project, "web_url", "project", required=False)
        url = f"{web_url.rstrip('/')}/-/pipelines/{external_id}" if web_url else ""

    return RunEvent(
        provider="gitlab",
        external_id=external_id,
        # GitLab retries jobs inside the same pipeline; a "retry" of the whole
        # pipeline is a new pipeline id, so every pipeline is attempt 1.
        attempt=1,
        status=status,
        commit_sha=get_str(attrs, "sha", where),
        ref=ref,
        repository=repository,
        version=_version(attrs, ref_name, is_tag),
        ignored=_unread_versions(attrs)
        + (
            (Ignored("builds", _JOBS_NOT_RECORDED),)
            if isinstance(body.get("builds"), list) and body["builds"]
            else ()
        ),
        url=url,
        started_at=started_at,
        finished_at=finished_at,
        name=get_str(attrs, "name", where, required=False),
        waiting_approval=raw_status == "manual",
        raw_status=raw_status,
    )


_COMMIT_IN_URL = re.compile(r"/-/commit/(?P<sha>[0-9a-fA-F]{7,64})/?$")


def parse_deployment_hook(payload: Any) -> GateEvent | None:
    """Map a Deployment Hook delivery (``object_kind`` ``deployment``) of status ``blocked`` —
    a deployment to a protected environment waiting for approval — to a GateEvent, keyed by
    the deployment id. Other statuses (created, running, success, failed, canceled) and other
    object kinds return None: acknowledged, nothing to answer.

    The hook carries ``short_sha`` only; the full commit is read from ``commit_url``
    (``…/-/commit/<sha>``). The version is a version-looking ``ref`` (a tag ``v2.4.0``).
    """
    body = require_dict(payload, "payload")
    if body.get("object_kind") != "deployment":
        return None
    if get_str(body, "status", "payload") != "blocked":
        return None
    project = get_dict(body, "project", "payload")
    deployment_id = get_id(body, "deployment_id", "payload")
    environment = get_str(body, "environment", "payload").strip()
    if not environment:
        raise AdapterError("payload.environment must name the environment")
    commit_url = get_str(body, "commit_url", "payload", required=False)
    match = _COMMIT_IN_URL.search(commit_url.split("?", 1)[0])
    sha = match.group("sha") if match else get_str(body, "short_sha", "payload", required=False)
    ref_name = get_str(body, "ref", "payload", required=False)
    version_match = _VERSION_TAG.match(ref_name)
    return GateEvent(
        kind="gitlab_approval",
        repository=get_str(project, "path_with_namespace", "project"),
        project_id=get_id(project, "id", "project"),
        external_id=deployment_id,
        environment=environment,
        sha=sha.lower(),
        ref=ref_name,
        version=version_match.group("version") if version_match else "",
    )


def verify_token(expected_tokens: Iterable[str], header: str | None) -> bool:
    """Compare a presented shared token with every configured one in constant time.

    Both sides are hashed first so the comparison time does not depend on the
    token lengths either; all tokens are checked so rotation overlap is cheap
    to support and timing does not reveal which one matched. Empty configured
    tokens never match (an unset secret must not open the endpoint).
    """
    if not header:
        return False
    presented = hashlib.sha256(header.encode("utf-8", "replace")).digest()
    matched = False
    for token in expected_tokens:
        if not isinstance(token, str) or not token:
            continue
        candidate = hashlib.sha256(token.encode("utf-8", "replace")).digest()
        matched |= hmac.compare_digest(candidate, presented)
    return matched


def _unread_versions(attrs: dict[str, Any]) -> tuple[Ignored, ...]:
    """VERSION variables the version is not read from (not a non-empty string), named in
    the answer rather than dropped in silence."""
    variables = attrs.get("variables")
    return tuple(
        Ignored(
            f"object_attributes.variables[{index}]",
            "Not a non-empty string: the version is not read from it.",
        )
        for index, variable in enumerate(variables if isinstance(variables, list) else ())
        if isinstance(variable, dict)
        and variable.get("key") in _VERSION_VARIABLES
        and not (isinstance(variable.get("value"), str) and variable["value"])
    )


def _full_ref(ref_name: str, is_tag: bool) -> str:
    """Qualify GitLab's short ref (``main``/``v1.2.0``) the way git and GitHub do."""
    if not ref_name or ref_name.startswith("refs/"):
        # Merge request pipelines already send refs/merge-requests/<iid>/head.
        return ref_name
    return f"refs/tags/{ref_name}" if is_tag else f"refs/heads/{ref_name}"


def _version(attrs: dict[str, Any], ref_name: str, is_tag: bool) -> str:
    """A version from a VERSION pipeline variable, else from a version-looking tag."""
    variables = attrs.get("variables")
    if isinstance(variables, list):
        for variable in variables:
            if (
                isinstance(variable, dict)
                and variable.get("key") in _VERSION_VARIABLES
                and isinstance(variable.get("value"), str)
                and variable["value"]
            ):
                return variable["value"]
    if is_tag:
        match = _VERSION_TAG.match(ref_name)
        if match:
            return match.group("version")
    return ""
