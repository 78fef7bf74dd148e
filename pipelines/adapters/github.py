"""GitHub Actions ``workflow_run`` webhooks.

GitHub sends one delivery per state change of a workflow run (actions
``requested``, ``in_progress``, ``completed``), signed with HMAC-SHA256 in
``X-Hub-Signature-256``. Re-runs keep the run id and bump ``run_attempt``, which
is why attempts are part of the idempotency key.

Status mapping (``status`` / ``conclusion`` -> RunEvent.status):

=============================================  ===========  ==========================
GitHub                                         Releasegate  Why
=============================================  ===========  ==========================
requested, queued, pending                     queued
waiting                                        queued       waiting_approval=True
                                                            (environment protection)
in_progress                                    running
completed + success                            succeeded
completed + neutral                            succeeded    GitHub itself counts neutral
                                                            as passing for required checks
completed + failure, timed_out,                failed
startup_failure
completed + cancelled                          cancelled
completed + skipped, stale                     cancelled    nothing ran to completion, so
                                                            it cannot be release evidence,
                                                            but nothing failed either
completed + action_required                    queued       waiting_approval=True: the run
                                                            starts (same id) once someone
                                                            approves it, so it must not be
                                                            recorded as finished
=============================================  ===========  ==========================

Unknown statuses/conclusions raise AdapterError rather than guessing.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Iterable
from typing import Any

from .timeparse import parse_iso8601
from .types import (
    AdapterError,
    GateEvent,
    RunEvent,
    RunStatus,
    get_dict,
    get_id,
    get_int,
    get_str,
    require_dict,
)

SIGNATURE_PREFIX = "sha256="

_STATUS_MAP: dict[str, RunStatus] = {
    "requested": "queued",
    "queued": "queued",
    "pending": "queued",
    "waiting": "queued",
    "in_progress": "running",
}

_CONCLUSION_MAP: dict[str, RunStatus] = {
    "success": "succeeded",
    "neutral": "succeeded",
    "failure": "failed",
    "timed_out": "failed",
    "startup_failure": "failed",
    "cancelled": "cancelled",
    "skipped": "cancelled",
    "stale": "cancelled",
    "action_required": "queued",
}


def parse_workflow_run(payload: Any) -> RunEvent | None:
    """Map a ``workflow_run`` delivery to a RunEvent.

    Returns None for deliveries that are not about a workflow run (``ping``,
    or another event sent to the same hook) so the endpoint can acknowledge
    them with 2xx without GitHub disabling the hook.
    """
    body = require_dict(payload, "payload")
    if "workflow_run" not in body:
        return None
    run = get_dict(body, "workflow_run", "payload")
    where = "workflow_run"

    raw_status = get_str(run, "status", where)
    conclusion = get_str(run, "conclusion", where, required=False)
    status, waiting = _map_status(raw_status, conclusion)

    # run_attempt arrived in 2021; older deliveries describe the first attempt.
    attempt = get_int(run, "run_attempt", where, required=False)
    if attempt is None:
        attempt = 1
    if attempt < 1:
        raise AdapterError("workflow_run.run_attempt must be 1 or more")

    head_branch = get_str(run, "head_branch", where, required=False)
    started_raw = run.get("run_started_at")
    started_at = (
        None
        if started_raw in (None, "")
        else parse_iso8601(started_raw, "workflow_run.run_started_at")
    )
    finished_at = None
    if raw_status == "completed" and status != "queued":
        finished_at = parse_iso8601(run.get("updated_at"), "workflow_run.updated_at")

    return RunEvent(
        provider="github_actions",
        external_id=get_id(run, "id", where),
        attempt=attempt,
        status=status,
        commit_sha=get_str(run, "head_sha", where),
        ref=f"refs/heads/{head_branch}" if head_branch else "",
        repository=_repository_name(body, run),
        version="",
        url=get_str(run, "html_url", where, required=False),
        started_at=started_at,
        finished_at=finished_at,
        name=_workflow_name(body, run),
        waiting_approval=waiting,
        raw_status=raw_status if raw_status != "completed" else f"completed/{conclusion}",
    )


_CALLBACK_RUN = re.compile(r"/actions/runs/(?P<run_id>[0-9]+)/deployment_protection_rule/?$")
_VERSION_TAG = re.compile(r"^refs/tags/[vV]?(?P<version>[0-9][0-9A-Za-z.+_-]*)$")


def parse_protection_rule(payload: Any) -> GateEvent | None:
    """Map a ``deployment_protection_rule`` delivery to a GateEvent.

    GitHub sends it (action ``requested``) when a job of a workflow run targets an
    environment whose custom protection rule is this integration's GitHub App; it waits
    until the app answers through ``deployment_callback_url``
    (``…/repos/{owner}/{repo}/actions/runs/{run_id}/deployment_protection_rule``), whose run
    id keys the request. Other actions return None (acknowledged, nothing to answer).
    """
    body = require_dict(payload, "payload")
    action = get_str(body, "action", "payload", required=False)
    if action != "requested":
        return None
    environment = get_str(body, "environment", "payload")
    if not environment.strip():
        raise AdapterError("payload.environment must name the environment")
    callback = get_str(body, "deployment_callback_url", "payload")
    match = _CALLBACK_RUN.search(callback.split("?", 1)[0])
    if match is None:
        raise AdapterError(
            "payload.deployment_callback_url must end in "
            "/actions/runs/{run_id}/deployment_protection_rule"
        )
    deployment = get_dict(body, "deployment", "payload", required=False)
    sha = get_str(body, "sha", "payload", required=False) or get_str(
        deployment, "sha", "deployment", required=False
    )
    ref = get_str(body, "ref", "payload", required=False) or get_str(
        deployment, "ref", "deployment", required=False
    )
    if ref and not ref.startswith("refs/"):
        ref = f"refs/heads/{ref}"
    installation = get_dict(body, "installation", "payload", required=False)
    installation_id = installation.get("id")
    return GateEvent(
        installation_id=str(installation_id)
        if isinstance(installation_id, int) and not isinstance(installation_id, bool)
        else "",
        kind="github_protection_rule",
        repository=_repository_name(body, {}),
        external_id=match.group("run_id"),
        environment=environment.strip(),
        sha=sha.strip().lower(),
        ref=ref,
        version=_deployment_version(deployment, ref),
        callback_url=callback,
    )


def _deployment_version(deployment: dict[str, Any], ref: str) -> str:
    """The version a deployment names: ``payload.version`` (a workflow's ``deployment``
    payload, or the Deployments API's), else a version tag being deployed, else ""."""
    payload = deployment.get("payload")
    if isinstance(payload, str) and payload.strip().startswith("{"):
        try:
            payload = json.loads(payload)
        except ValueError:
            payload = None
    if isinstance(payload, dict):
        version = payload.get("version")
        if isinstance(version, str) and version.strip():
            return version.strip()[:64]
    match = _VERSION_TAG.match(ref or "")
    return match.group("version")[:64] if match else ""


def verify_signature(secret: str | bytes, body: bytes, header: str | None) -> bool:
    """Check ``X-Hub-Signature-256: sha256=<hex>`` against ``body`` in constant time.

    An empty secret never verifies: an HMAC keyed with nothing is forgeable.
    """
    key = secret.encode("utf-8") if isinstance(secret, str) else secret
    if not key or header is None or not isinstance(body, bytes | bytearray):
        return False
    header = header.strip()
    if not header.startswith(SIGNATURE_PREFIX):
        return False
    provided = header[len(SIGNATURE_PREFIX) :].lower().encode("utf-8", "replace")
    expected = hmac.new(key, bytes(body), hashlib.sha256).hexdigest().encode("ascii")
    return hmac.compare_digest(expected, provided)


def verify_any(secrets: Iterable[str | bytes], body: bytes, header: str | None) -> bool:
    """Accept a delivery signed with any configured secret.

    Secrets rotate with an overlap window (old and new both valid), so every
    candidate is checked, without stopping at the first match.
    """
    results = [verify_signature(secret, body, header) for secret in secrets]
    return any(results)


def _map_status(raw_status: str, conclusion: str) -> tuple[RunStatus, bool]:
    """Return (status, waiting_approval) for a GitHub status/conclusion pair."""
    if raw_status == "completed":
        if not conclusion:
            raise AdapterError("workflow_run.conclusion is required when status is completed")
        try:
            status = _CONCLUSION_MAP[conclusion]
        except KeyError:
            raise AdapterError(
                f"workflow_run.conclusion {conclusion!r} is not a known conclusion"
            ) from None
        return status, conclusion == "action_required"
    try:
        return _STATUS_MAP[raw_status], raw_status == "waiting"
    except KeyError:
        raise AdapterError(f"workflow_run.status {raw_status!r} is not a known status") from None


def _repository_name(body: dict[str, Any], run: dict[str, Any]) -> str:
    """``owner/name`` of the repository the run belongs to (top-level, else the run's)."""
    repo = get_dict(body, "repository", "payload", required=False) or get_dict(
        run, "repository", "workflow_run", required=False
    )
    name = get_str(repo, "full_name", "repository", required=False)
    if not name:
        raise AdapterError("repository.full_name is required")
    return name


def _workflow_name(body: dict[str, Any], run: dict[str, Any]) -> str:
    """The run's name, falling back to the workflow's (older payloads send "")."""
    name = get_str(run, "name", "workflow_run", required=False)
    if not name:
        workflow = get_dict(body, "workflow", "payload", required=False)
        name = get_str(workflow, "name", "workflow", required=False)
    return name
