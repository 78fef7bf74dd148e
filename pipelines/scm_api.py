"""Outbound calls to GitHub and GitLab: answering held deployments and publishing commit
statuses. Pure HTTP, no database: the services (``pipelines.services.scm``) decide what to
send and record the outcome.

- Requests go through ``core.outbound.outbound_client`` (the address guard; GitHub
  Enterprise Server or a self-managed GitLab on a private network needs
  ``OUTBOUND_ALLOWED_NETWORKS``), with a timeout on connect and on each read.
- At most ``MAX_ATTEMPTS`` attempts in one call, retrying only what may succeed later
  (connection errors, timeouts, 5xx, 429), spaced by ``core.backoff.backoff_seconds`` (full
  jitter). What still fails is retried by the row's own schedule (the beat sweep).
- The token goes in a header only; no message built here contains it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

from core.backoff import backoff_seconds
from core.outbound import OutboundRefused, outbound_client

MAX_ATTEMPTS = 3
TIMEOUT = httpx.Timeout(10.0, connect=5.0)
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
GITHUB_API_VERSION = "2022-11-28"
USER_AGENT = "Releasegate"

# Releasegate's commit status words → each platform's.
GITHUB_STATES = {"pending": "pending", "success": "success", "failure": "failure"}
GITLAB_STATES = {"pending": "pending", "success": "success", "failure": "failed"}


@dataclass(frozen=True)
class Outcome:
    """How a call ended: ``ok`` on 2xx; ``permanent`` when another attempt cannot help (a
    4xx other than 408/429, a refused address); ``status`` the last HTTP status."""

    ok: bool
    status: int | None = None
    error: str = ""
    permanent: bool = False


def github_headers(token: str) -> dict[str, str]:
    """The headers GitHub's REST API documents: its media type, a bearer token (an
    installation token of the GitHub App, or a fine-grained token) and the API version."""
    return {
        "Accept": "application/vnd.github+json",
        "Authorization": f"Bearer {token}",
        "X-GitHub-Api-Version": GITHUB_API_VERSION,
        "User-Agent": USER_AGENT,
    }


def gitlab_headers(token: str) -> dict[str, str]:
    """GitLab's REST API: a personal, project or group access token in PRIVATE-TOKEN."""
    return {"Accept": "application/json", "PRIVATE-TOKEN": token, "User-Agent": USER_AGENT}


def _repo_path(repository: str) -> str:
    owner, _, name = repository.strip("/").partition("/")
    return f"{quote(owner, safe='')}/{quote(name, safe='')}"


def github_protection_rule_url(api_url: str, repository: str, run_id: str) -> str:
    return (
        f"{api_url.rstrip('/')}/repos/{_repo_path(repository)}/actions/runs/"
        f"{quote(str(run_id), safe='')}/deployment_protection_rule"
    )


def github_status_url(api_url: str, repository: str, sha: str) -> str:
    return f"{api_url.rstrip('/')}/repos/{_repo_path(repository)}/statuses/{quote(sha, safe='')}"


def gitlab_project(project: str) -> str:
    """A project id, or its URL-encoded path (``group/sub/name`` → ``group%2Fsub%2Fname``)."""
    return quote(str(project), safe="")


def gitlab_approval_url(api_url: str, project: str, deployment_id: str) -> str:
    return (
        f"{api_url.rstrip('/')}/projects/{gitlab_project(project)}/deployments/"
        f"{quote(str(deployment_id), safe='')}/approval"
    )


def gitlab_status_url(api_url: str, project: str, sha: str) -> str:
    project_path = gitlab_project(project)
    return f"{api_url.rstrip('/')}/projects/{project_path}/statuses/{quote(sha, safe='')}"


def _sleep(seconds: float) -> None:
    """Wait between attempts (a seam tests replace)."""
    time.sleep(seconds)


def post_json(
    url: str,
    body: dict[str, Any],
    *,
    headers: dict[str, str],
    client: httpx.Client | None = None,
    sleep=None,
) -> Outcome:
    """POST ``body`` as JSON within the bounds above; never raises."""
    own = client is None
    client = client or outbound_client(timeout=TIMEOUT)
    host = httpx.URL(url).host or url
    last = Outcome(ok=False, error="not sent")
    try:
        for attempt in range(MAX_ATTEMPTS):
            try:
                response = client.post(url, json=body, headers=headers)
            except OutboundRefused as exc:
                return Outcome(ok=False, error=f"Refused: {exc}"[:500], permanent=True)
            except httpx.TimeoutException as exc:
                last = Outcome(ok=False, error=f"Timeout talking to {host}: {type(exc).__name__}")
            except httpx.HTTPError as exc:
                last = Outcome(ok=False, error=f"Cannot reach {host}: {type(exc).__name__}")
            else:
                status = response.status_code
                if 200 <= status < 300:
                    return Outcome(ok=True, status=status)
                message = _message(response)
                last = Outcome(
                    ok=False,
                    status=status,
                    error=f"HTTP {status} from {host}" + (f": {message}" if message else ""),
                    permanent=status not in RETRY_STATUSES,
                )
                if last.permanent:
                    return last
            if attempt + 1 < MAX_ATTEMPTS:
                (sleep or _sleep)(backoff_seconds(attempt, base=0.5, cap=5.0))
        return last
    finally:
        if own:
            client.close()


def _message(response: httpx.Response) -> str:
    """GitHub's and GitLab's error bodies carry ``message`` (a string, or GitLab's object of
    field errors); at most 200 characters of it are kept."""
    try:
        data = response.json()
    except ValueError:
        return ""
    message = data.get("message") if isinstance(data, dict) else None
    return str(message)[:200] if message else ""
