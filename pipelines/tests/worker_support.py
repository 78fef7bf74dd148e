"""Helpers shared by the worker tests: provider response shapes (as documented by GitHub,
GitLab and Jenkins), polled integrations, deployments with verification specs."""

from __future__ import annotations

import copy
import json
from datetime import timedelta
from pathlib import Path

from django.utils import timezone

from pipelines.models import Integration
from pipelines.worker_models import IntegrationPollState

FIXTURES = Path(__file__).parent / "fixtures"


def github_run(**overrides) -> dict:
    """A workflow run object as GET /repos/{owner}/{repo}/actions/runs lists it (the same
    object the workflow_run webhook carries)."""
    run = copy.deepcopy(
        json.loads((FIXTURES / "github_workflow_run_completed.json").read_text())["workflow_run"]
    )
    run.update(overrides)
    return run


def github_runs_page(*runs: dict) -> dict:
    return {"total_count": len(runs), "workflow_runs": list(runs)}


def gitlab_list_item(pid: int, status: str = "success", updated="2026-11-20T10:07:12.000Z"):
    """An item of GET /projects/:id/pipelines."""
    return {
        "id": pid,
        "iid": pid - 1000,
        "project_id": 7,
        "sha": "a91957a858320c0e17f3a0eca7cfacbff50ea29a",
        "ref": "main",
        "status": status,
        "source": "push",
        "created_at": "2026-11-20T10:00:00.000Z",
        "updated_at": updated,
        "web_url": f"https://gitlab.example.com/acme/shop/-/pipelines/{pid}",
    }


def gitlab_detail(pid: int, status: str = "success") -> dict:
    """GET /projects/:id/pipelines/:pipeline_id."""
    finished = status in ("success", "failed", "canceled", "skipped")
    return {
        **gitlab_list_item(pid, status),
        "name": "Build pipeline",
        "before_sha": "0000000000000000000000000000000000000000",
        "tag": False,
        "yaml_errors": None,
        "user": {"id": 1, "username": "root"},
        "started_at": "2026-11-20T10:00:30.000Z",
        "finished_at": "2026-11-20T10:06:30.000Z" if finished else None,
        "committed_at": None,
        "duration": 360 if finished else None,
        "queued_duration": 0.01,
        "coverage": "87.5",
        "detailed_status": {"icon": f"status_{status}", "text": status, "label": status},
    }


def jenkins_job(*builds: dict) -> dict:
    """GET /job/NAME/api/json?tree=builds[…]."""
    return {"_class": "org.jenkinsci.plugins.workflow.job.WorkflowJob", "builds": list(builds)}


def jenkins_build(number: int, result="SUCCESS", building=False, version="2.4.0") -> dict:
    return {
        "_class": "org.jenkinsci.plugins.workflow.job.WorkflowRun",
        "number": number,
        "result": None if building else result,
        "building": building,
        "timestamp": 1_795_000_000_000 + number * 1000,
        "duration": 0 if building else 420_000,
        "url": f"https://jenkins.example.com/job/shop/{number}/",
        "actions": [
            {"_class": "hudson.model.CauseAction"},
            {
                "_class": "hudson.model.ParametersAction",
                "parameters": [{"name": "VERSION", "value": version}],
            },
            {
                "_class": "hudson.plugins.git.util.BuildData",
                "lastBuiltRevision": {
                    "SHA1": "5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e",
                    "branch": [{"name": "origin/main"}],
                },
            },
        ],
    }


def polled_integration(
    service, provider: str, base_url: str, target: str, *, name: str = "", **fields
) -> IntegrationPollState:
    integration = Integration.objects.create(
        provider=provider, name=name or f"{provider}-{target}"[:100]
    )
    integration.services.add(service)
    return IntegrationPollState.objects.create(
        integration=integration,
        service=service,
        base_url=base_url,
        target=target,
        next_poll_at=timezone.now() - timedelta(seconds=1),
        **fields,
    )
