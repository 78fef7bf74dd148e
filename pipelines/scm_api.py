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

import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

import httpx
import jwt

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
    into: dict | None = None,
) -> Outcome:
    """POST ``body`` as JSON within the bounds above; never raises. With ``into``, a 2xx
    answer's JSON object is copied into it."""
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
                    if into is not None:
                        into.update(_json_object(response))
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


def _json_object(response: httpx.Response) -> dict:
    try:
        data = response.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _message(response: httpx.Response) -> str:
    """GitHub's and GitLab's error bodies carry ``message`` (a string, or GitLab's object of
    field errors); at most 200 characters of it are kept."""
    try:
        data = response.json()
    except ValueError:
        return ""
    message = data.get("message") if isinstance(data, dict) else None
    return str(message)[:200] if message else ""


# --- GitHub App authentication ----------------------------------------------------------------

# Installation tokens live an hour; one is reused until five minutes before it expires.
_TOKEN_MARGIN = 300.0
_tokens: dict[tuple[str, str, str], tuple[str, float]] = {}
_tokens_lock = threading.Lock()


def github_app_jwt(app_id: str, private_key: str, *, now: float | None = None) -> str:
    """The app's own credential, as GitHub documents it: an RS256 JWT with ``iss`` the app
    id, issued a minute in the past (clock drift) and valid for nine minutes (at most ten)."""
    current = int(now if now is not None else time.time())
    return jwt.encode(
        {"iat": current - 60, "exp": current + 540, "iss": str(app_id)},
        private_key,
        algorithm="RS256",
    )


def github_installation_token(
    api_url: str, app_id: str, private_key: str, installation_id: str
) -> tuple[str | None, Outcome]:
    """An installation access token of the app (``POST {api_url}/app/installations/{id}/
    access_tokens``), cached per process until shortly before it expires. Returns (token,
    outcome); the token is None when it could not be minted (the outcome says why)."""
    key = (api_url.rstrip("/"), str(app_id), str(installation_id))
    now = time.time()
    with _tokens_lock:
        cached = _tokens.get(key)
    if cached is not None and cached[1] - _TOKEN_MARGIN > now:
        return cached[0], Outcome(ok=True)
    url = (
        f"{api_url.rstrip('/')}/app/installations/"
        f"{quote(str(installation_id), safe='')}/access_tokens"
    )
    try:
        credential = github_app_jwt(app_id, private_key, now=now)
    except (ValueError, TypeError, jwt.PyJWTError) as exc:
        return None, Outcome(
            ok=False,
            error=f"The GitHub App's key cannot sign: {type(exc).__name__}",
            permanent=True,
        )
    body: dict[str, Any] = {}
    outcome = post_json(url, {}, headers=github_headers(credential), into=body)
    token = body.get("token") if outcome.ok else None
    if not isinstance(token, str) or not token:
        if outcome.ok:
            outcome = Outcome(ok=False, status=outcome.status, error="No token in GitHub's answer.")
        return None, outcome
    expires = _expiry(body.get("expires_at"), default=now + 3600)
    with _tokens_lock:
        _tokens[key] = (token, expires)
    return token, outcome


def _expiry(value: Any, *, default: float) -> float:
    if not isinstance(value, str):
        return default
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return default


def forget_installation_tokens() -> None:
    """Drop the cached installation tokens (a rotated key, tests)."""
    with _tokens_lock:
        _tokens.clear()
