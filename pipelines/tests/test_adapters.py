"""Tests for the pure-Python webhook adapters (no database, no Django needed).

Fixtures follow the providers' documented payloads field for field, so these
tests double as a record of what each provider actually sends.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipelines.adapters import (
    AdapterError,
    AlertEvent,
    GateEvent,
    RunEvent,
    parse_alertmanager,
    parse_deployment_hook,
    parse_notification,
    parse_pipeline_hook,
    parse_protection_rule,
    parse_workflow_run,
    verify_any,
    verify_secret,
    verify_signature,
    verify_token,
)
from pipelines.adapters.timeparse import (
    parse_epoch_millis,
    parse_gitlab_time,
    parse_iso8601,
    parse_optional_go_time,
)

FIXTURES = Path(__file__).parent / "fixtures"
SHA = "3f1c0d9e8b7a6f5e4d3c2b1a09f8e7d6c5b4a392"


def load(name: str) -> dict[str, Any]:
    """A fresh copy of a fixture, safe to mutate."""
    return json.loads((FIXTURES / f"{name}.json").read_text())


def at(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


# --------------------------------------------------------------------------- GitHub


def test_github_requested_fixture() -> None:
    event = parse_workflow_run(load("github_workflow_run_requested"))
    assert event == RunEvent(
        provider="github_actions",
        external_id="11223344556",
        attempt=1,
        status="queued",
        commit_sha=SHA,
        ref="refs/heads/main",
        repository="octo-org/payments-api",
        version="",
        url="https://github.com/octo-org/payments-api/actions/runs/11223344556",
        started_at=at(2026, 11, 20, 10, 0, 0),
        finished_at=None,
        name="CI",
        waiting_approval=False,
        raw_status="queued",
    )
    assert not event.is_finished


def test_github_in_progress_fixture() -> None:
    event = parse_workflow_run(load("github_workflow_run_in_progress"))
    assert event is not None
    assert (event.status, event.finished_at, event.raw_status) == ("running", None, "in_progress")


def test_github_completed_fixture() -> None:
    event = parse_workflow_run(load("github_workflow_run_completed"))
    assert event is not None
    assert event.status == "succeeded"
    assert event.is_finished
    assert event.started_at == at(2026, 11, 20, 10, 0, 0)
    assert event.finished_at == at(2026, 11, 20, 10, 7, 12)
    assert event.raw_status == "completed/success"


@pytest.mark.parametrize(
    ("status", "conclusion", "expected", "waiting"),
    [
        ("requested", None, "queued", False),
        ("queued", None, "queued", False),
        ("pending", None, "queued", False),
        ("waiting", None, "queued", True),
        ("in_progress", None, "running", False),
        ("completed", "success", "succeeded", False),
        ("completed", "neutral", "succeeded", False),
        ("completed", "failure", "failed", False),
        ("completed", "timed_out", "failed", False),
        ("completed", "startup_failure", "failed", False),
        ("completed", "cancelled", "cancelled", False),
        ("completed", "skipped", "cancelled", False),
        ("completed", "stale", "cancelled", False),
        ("completed", "action_required", "queued", True),
    ],
)
def test_github_status_mapping(
    status: str, conclusion: str | None, expected: str, waiting: bool
) -> None:
    payload = load("github_workflow_run_completed")
    payload["workflow_run"].update(status=status, conclusion=conclusion)
    event = parse_workflow_run(payload)
    assert event is not None
    assert (event.status, event.waiting_approval) == (expected, waiting)
    # Only a real terminal state carries an end time.
    assert (event.finished_at is not None) == event.is_finished


def test_github_ping_is_ignored() -> None:
    ping = {"zen": "Design for failure.", "hook_id": 30, "hook": {"type": "Repository"}}
    assert parse_workflow_run(ping) is None


def test_github_rerun_keeps_run_id_and_bumps_attempt() -> None:
    payload = load("github_workflow_run_completed")
    payload["workflow_run"]["run_attempt"] = 2
    event = parse_workflow_run(payload)
    assert event is not None
    assert (event.external_id, event.attempt) == ("11223344556", 2)


def test_github_payload_without_run_attempt_is_first_attempt() -> None:
    """Deliveries from before GitHub added run_attempt (octokit's old examples)."""
    payload = load("github_workflow_run_completed")
    del payload["workflow_run"]["run_attempt"]
    del payload["workflow_run"]["run_started_at"]
    event = parse_workflow_run(payload)
    assert event is not None
    assert (event.attempt, event.started_at) == (1, None)


def test_github_empty_run_name_falls_back_to_workflow_name() -> None:
    payload = load("github_workflow_run_completed")
    payload["workflow_run"]["name"] = ""
    payload["workflow"]["name"] = "Build and test"
    event = parse_workflow_run(payload)
    assert event is not None and event.name == "Build and test"


def test_github_repository_falls_back_to_the_runs_repository() -> None:
    payload = load("github_workflow_run_completed")
    del payload["repository"]
    event = parse_workflow_run(payload)
    assert event is not None and event.repository == "octo-org/payments-api"


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda p: p["workflow_run"].pop("id"), "workflow_run.id"),
        (lambda p: p["workflow_run"].pop("head_sha"), "workflow_run.head_sha"),
        (lambda p: p["workflow_run"].pop("status"), "workflow_run.status"),
        (lambda p: p["workflow_run"].update(status="exploded"), "not a known status"),
        (lambda p: p["workflow_run"].update(conclusion=None), "conclusion is required"),
        (lambda p: p["workflow_run"].update(conclusion="meh"), "not a known conclusion"),
        (lambda p: p["workflow_run"].update(run_attempt="2"), "run_attempt"),
        (lambda p: p["workflow_run"].update(run_attempt=0), "run_attempt"),
        (lambda p: p["workflow_run"].update(id=True), "workflow_run.id"),
        (lambda p: p["workflow_run"].update(updated_at="yesterday"), "updated_at"),
        (lambda p: p.update(workflow_run=[1, 2]), "workflow_run must be a JSON object"),
        (lambda p: p["repository"].pop("full_name"), "full_name"),
    ],
)
def test_github_malformed_payloads_raise_adapter_error(
    mutate: Callable[[dict[str, Any]], Any], message: str
) -> None:
    payload = load("github_workflow_run_completed")
    mutate(payload)
    with pytest.raises(AdapterError, match=message):
        parse_workflow_run(payload)


@pytest.mark.parametrize("payload", [None, [], "workflow_run", 42])
def test_github_non_object_payload(payload: Any) -> None:
    with pytest.raises(AdapterError, match="payload must be a JSON object"):
        parse_workflow_run(payload)


# ------------------------------------------------------------- GitHub signatures

BODY = b'{"action":"completed","workflow_run":{"id":11223344556}}'


def sign(secret: str, body: bytes = BODY) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def test_signature_good() -> None:
    assert verify_signature("s3cret", BODY, sign("s3cret"))
    assert verify_signature(b"s3cret", BODY, sign("s3cret"))


def test_signature_accepts_uppercase_hex_and_surrounding_space() -> None:
    header = sign("s3cret")
    assert verify_signature("s3cret", BODY, "sha256=" + header[7:].upper())
    assert verify_signature("s3cret", BODY, f" {header} ")


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "sha256=",
        "sha256=deadbeef",
        "sha1=" + hmac.new(b"s3cret", BODY, hashlib.sha1).hexdigest(),  # legacy header
        sign("s3cret")[7:],  # no prefix
        "SHA256=" + sign("s3cret")[7:],
        "sha256=" + "é" * 64,  # non-ASCII must not raise
    ],
)
def test_signature_bad_missing_or_wrong_prefix(header: str | None) -> None:
    assert not verify_signature("s3cret", BODY, header)


def test_signature_tampered_body_or_wrong_secret() -> None:
    assert not verify_signature("s3cret", BODY + b" ", sign("s3cret"))
    assert not verify_signature("other", BODY, sign("s3cret"))


def test_signature_empty_secret_never_verifies() -> None:
    """An unset secret must not turn into 'HMAC with an empty key' that anyone can forge."""
    assert not verify_signature("", BODY, sign(""))
    assert not verify_signature(b"", BODY, sign(""))


def test_signature_rotated_secrets() -> None:
    secrets = ["new-secret", "old-secret"]
    assert verify_any(secrets, BODY, sign("old-secret"))
    assert verify_any(secrets, BODY, sign("new-secret"))
    assert not verify_any(secrets, BODY, sign("retired-secret"))
    assert not verify_any([], BODY, sign("new-secret"))
    assert not verify_any(["", "new-secret"], BODY, sign(""))
    assert not verify_any(secrets, BODY, None)


# --------------------------------------------------------------------------- GitLab


def test_gitlab_running_fixture() -> None:
    event = parse_pipeline_hook(load("gitlab_pipeline_running"))
    assert event == RunEvent(
        provider="gitlab",
        external_id="987654",
        attempt=1,
        status="running",
        commit_sha=SHA,
        ref="refs/heads/main",
        repository="octo-org/payments-api",
        version="2.4.0",
        url="https://gitlab.example.com/octo-org/payments-api/-/pipelines/987654",
        started_at=at(2026, 11, 20, 10, 0, 0),
        finished_at=None,
        name="Release 2.4.0",
        waiting_approval=False,
        raw_status="running",
    )


def test_gitlab_success_fixture() -> None:
    event = parse_pipeline_hook(load("gitlab_pipeline_success"))
    assert event is not None
    assert event.status == "succeeded"
    assert event.started_at == at(2026, 11, 20, 10, 0, 0)
    assert event.finished_at == at(2026, 11, 20, 10, 7, 12)


@pytest.mark.parametrize(
    ("status", "expected", "waiting"),
    [
        ("created", "queued", False),
        ("waiting_for_resource", "queued", False),
        ("preparing", "queued", False),
        ("pending", "queued", False),
        ("scheduled", "queued", False),
        ("manual", "queued", True),
        ("running", "running", False),
        ("canceling", "running", False),
        ("success", "succeeded", False),
        ("failed", "failed", False),
        ("canceled", "cancelled", False),
        ("skipped", "cancelled", False),
    ],
)
def test_gitlab_status_mapping(status: str, expected: str, waiting: bool) -> None:
    payload = load("gitlab_pipeline_success")
    payload["object_attributes"]["status"] = status
    event = parse_pipeline_hook(payload)
    assert event is not None
    assert (event.status, event.waiting_approval, event.raw_status) == (expected, waiting, status)
    assert (event.finished_at is not None) == event.is_finished


def test_gitlab_tag_pipeline_uses_tag_ref_and_version() -> None:
    payload = load("gitlab_pipeline_success")
    attrs = payload["object_attributes"]
    attrs.update(ref="v2.4.1", tag=True, variables=[])
    event = parse_pipeline_hook(payload)
    assert event is not None
    assert (event.ref, event.version) == ("refs/tags/v2.4.1", "2.4.1")


def test_gitlab_non_version_tag_gives_no_version() -> None:
    payload = load("gitlab_pipeline_success")
    payload["object_attributes"].update(ref="nightly", tag=True, variables=[])
    event = parse_pipeline_hook(payload)
    assert event is not None
    assert (event.ref, event.version) == ("refs/tags/nightly", "")


def test_gitlab_merge_request_ref_is_kept() -> None:
    payload = load("gitlab_pipeline_success")
    payload["object_attributes"]["ref"] = "refs/merge-requests/15/head"
    event = parse_pipeline_hook(payload)
    assert event is not None and event.ref == "refs/merge-requests/15/head"


def test_gitlab_iso_timestamps_are_accepted_too() -> None:
    payload = load("gitlab_pipeline_success")
    payload["object_attributes"].update(
        created_at="2026-11-20T11:00:00+01:00", finished_at="2026-11-20T10:07:12.250Z"
    )
    event = parse_pipeline_hook(payload)
    assert event is not None
    assert event.started_at == at(2026, 11, 20, 10, 0, 0)
    assert event.finished_at == datetime(2026, 11, 20, 10, 7, 12, 250000, tzinfo=UTC)


def test_gitlab_url_falls_back_to_project_web_url() -> None:
    payload = load("gitlab_pipeline_success")
    del payload["object_attributes"]["url"]  # GitLab < 15 did not send it
    event = parse_pipeline_hook(payload)
    assert event is not None
    assert event.url == "https://gitlab.example.com/octo-org/payments-api/-/pipelines/987654"


@pytest.mark.parametrize("kind", ["push", "build", "merge_request", None])
def test_gitlab_other_events_are_ignored(kind: str | None) -> None:
    assert parse_pipeline_hook({"object_kind": kind, "ref": "refs/heads/main"}) is None


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda p: p.pop("object_attributes"), "object_attributes is required"),
        (lambda p: p.pop("project"), "project is required"),
        (lambda p: p["project"].pop("path_with_namespace"), "path_with_namespace"),
        (lambda p: p["object_attributes"].pop("sha"), "object_attributes.sha"),
        (lambda p: p["object_attributes"].update(status="exploded"), "not a known status"),
        (lambda p: p["object_attributes"].update(tag="yes"), "tag must be a boolean"),
        (lambda p: p["object_attributes"].update(created_at="12/08/2016"), "created_at"),
        (lambda p: p["object_attributes"].update(id=None), "object_attributes.id"),
    ],
)
def test_gitlab_malformed_payloads_raise_adapter_error(
    mutate: Callable[[dict[str, Any]], Any], message: str
) -> None:
    payload = load("gitlab_pipeline_success")
    mutate(payload)
    with pytest.raises(AdapterError, match=message):
        parse_pipeline_hook(payload)


def test_gitlab_token_verification() -> None:
    assert verify_token(["tok-new", "tok-old"], "tok-old")
    assert verify_token(["tok-new", "tok-old"], "tok-new")
    assert not verify_token(["tok-new", "tok-old"], "tok-retired")
    assert not verify_token(["tok-new"], "tok-new ")
    assert not verify_token(["tok-new"], None)
    assert not verify_token(["tok-new"], "")
    assert not verify_token([], "tok-new")
    assert not verify_token([""], "")
    assert not verify_token(["tok-new"], "tök-new")  # non-ASCII must not raise


# -------------------------------------------------------------------------- Jenkins


def test_jenkins_started_fixture() -> None:
    event = parse_notification(load("jenkins_started"))
    assert event == RunEvent(
        provider="jenkins",
        external_id="payments-api#57",
        attempt=1,
        status="running",
        commit_sha=SHA,
        ref="refs/heads/main",
        repository="payments-api",
        version="2.4.0",
        url="https://jenkins.example.com/job/payments-api/57/",
        started_at=at(2026, 11, 20, 10, 0, 0),
        finished_at=None,
        name="payments-api",
        waiting_approval=False,
        raw_status="STARTED",
    )


def test_jenkins_completed_fixture_has_exact_times() -> None:
    event = parse_notification(load("jenkins_completed"))
    assert event is not None
    assert (event.status, event.raw_status) == ("succeeded", "COMPLETED/SUCCESS")
    assert event.started_at == at(2026, 11, 20, 10, 0, 0)
    assert event.finished_at == at(2026, 11, 20, 10, 7, 12)


def test_jenkins_finalized_fixture_is_terminal() -> None:
    event = parse_notification(load("jenkins_finalized"))
    assert event is not None
    assert (event.status, event.raw_status) == ("succeeded", "FINALIZED/SUCCESS")
    assert event.is_finished
    # The finalisation timestamp comes after the post-build steps.
    assert event.finished_at == at(2026, 11, 20, 10, 7, 13) + timedelta(milliseconds=850)
    assert event.finished_at - event.started_at == timedelta(minutes=7, seconds=12)


@pytest.mark.parametrize(
    ("phase", "status", "expected"),
    [
        ("QUEUED", None, "queued"),
        ("STARTED", None, "running"),
        ("COMPLETED", None, "running"),
        ("COMPLETED", "SUCCESS", "succeeded"),
        ("COMPLETED", "FAILURE", "failed"),
        ("COMPLETED", "UNSTABLE", "failed"),
        ("COMPLETED", "ABORTED", "cancelled"),
        ("COMPLETED", "NOT_BUILT", "cancelled"),
        ("FINALIZED", "SUCCESS", "succeeded"),
        ("FINALIZED", "FAILURE", "failed"),
        ("FINALIZED", "UNSTABLE", "failed"),
        ("FINALIZED", "ABORTED", "cancelled"),
        ("FINALIZED", "NOT_BUILT", "cancelled"),
    ],
)
def test_jenkins_status_mapping(phase: str, status: str | None, expected: str) -> None:
    payload = load("jenkins_completed")
    payload["build"]["phase"] = phase
    payload["build"].pop("status")
    if status is not None:
        payload["build"]["status"] = status
    event = parse_notification(payload)
    assert event is not None
    assert event.status == expected
    assert (event.finished_at is not None) == event.is_finished


def test_jenkins_queued_has_no_times() -> None:
    payload = load("jenkins_started")
    payload["build"]["phase"] = "QUEUED"
    event = parse_notification(payload)
    assert event is not None
    assert (event.status, event.started_at, event.finished_at) == ("queued", None, None)


def test_jenkins_finalized_without_result_is_malformed() -> None:
    payload = load("jenkins_finalized")
    del payload["build"]["status"]
    with pytest.raises(AdapterError, match="build.status is required"):
        parse_notification(payload)


def test_jenkins_manual_notification_phase_none_is_ignored() -> None:
    payload = load("jenkins_started")
    payload["build"]["phase"] = "NONE"
    assert parse_notification(payload) is None


def test_jenkins_folder_job_uses_full_name() -> None:
    """Multibranch jobs are all called 'main'; the run key needs the full path."""
    payload = load("jenkins_completed")
    payload.update(name="main", url="job/octo-org/job/payments%20api/job/main/")
    event = parse_notification(payload)
    assert event is not None
    assert event.repository == "octo-org/payments api/main"
    assert event.external_id == "octo-org/payments api/main#57"


def test_jenkins_legacy_iso_timestamp_with_unpadded_millis() -> None:
    """Older plugin versions format with SimpleDateFormat 'ss.S' (7 ms -> '.7')."""
    payload = load("jenkins_started")
    payload["build"]["timestamp"] = "2026-11-20T10:00:00.7+00:00"
    event = parse_notification(payload)
    assert event is not None
    assert event.started_at == at(2026, 11, 20, 10, 0, 0) + timedelta(milliseconds=7)


@pytest.mark.parametrize(
    ("branch", "ref"),
    [
        ("origin/main", "refs/heads/main"),
        ("main", "refs/heads/main"),
        ("origin/release/2.4", "refs/heads/release/2.4"),
        ("refs/tags/v2.4.0", "refs/tags/v2.4.0"),
        (None, ""),
    ],
)
def test_jenkins_branch_normalisation(branch: str | None, ref: str) -> None:
    payload = load("jenkins_completed")
    payload["build"]["scm"]["branch"] = branch
    event = parse_notification(payload)
    assert event is not None and event.ref == ref


def test_jenkins_version_parameter_and_url_fallback() -> None:
    payload = load("jenkins_completed")
    payload["build"]["parameters"] = {"version": "2.4.1", "RETRIES": 3}
    payload["build"]["full_url"] = None  # Jenkins root URL not configured
    event = parse_notification(payload)
    assert event is not None
    assert (event.version, event.url) == ("2.4.1", "job/payments-api/57/")
    payload["build"].pop("parameters")
    event = parse_notification(payload)
    assert event is not None and event.version == ""


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda p: p.pop("build"), "build is required"),
        (lambda p: p["build"].pop("phase"), "build.phase is required"),
        (lambda p: p["build"].update(phase="BUILDING"), "not a known phase"),
        (lambda p: p["build"].update(status="PASSED"), "not a known result"),
        (lambda p: p["build"].pop("number"), "build.number"),
        (lambda p: p.update(name=None, url="view/all/"), "payload.name is required"),
        (lambda p: p["build"].update(timestamp="last tuesday"), "build.timestamp"),
        (lambda p: p["build"].update(timestamp=-5), "build.timestamp"),
        (lambda p: p["build"].update(duration=10**30), "build.duration"),
        (lambda p: p["build"].update(scm="git"), "build.scm"),
    ],
)
def test_jenkins_malformed_payloads_raise_adapter_error(
    mutate: Callable[[dict[str, Any]], Any], message: str
) -> None:
    payload = load("jenkins_completed")
    mutate(payload)
    with pytest.raises(AdapterError, match=message):
        parse_notification(payload)


def test_jenkins_shared_secret() -> None:
    assert verify_secret(["jenkins-2026", "jenkins-2025"], "jenkins-2025")
    assert not verify_secret(["jenkins-2026"], "jenkins-2025")
    assert not verify_secret(["jenkins-2026"], None)
    assert not verify_secret([""], "")


# --------------------------------------------------------------------- Alertmanager


def test_alertmanager_firing_fixture() -> None:
    alerts = parse_alertmanager(load("alertmanager_firing"))
    assert [a.alertname for a in alerts] == ["HighErrorRate", "HighLatencyP99"]
    first = alerts[0]
    assert first == AlertEvent(
        fingerprint="5f2a4c81b0d3e96a",
        status="firing",
        alertname="HighErrorRate",
        labels=load("alertmanager_firing")["alerts"][0]["labels"],
        annotations=load("alertmanager_firing")["alerts"][0]["annotations"],
        # Go's nanoseconds are truncated to microseconds.
        starts_at=datetime(2026, 11, 20, 10, 21, 37, 128634, tzinfo=UTC),
        ends_at=None,  # Go zero time
        generator_url=first.generator_url,
        service="payments-api",
        environment="production",
    )
    assert first.generator_url.startswith("http://prometheus.example.com:9090/graph?g0.expr=")


def test_alertmanager_resolved_fixture() -> None:
    (alert,) = parse_alertmanager(load("alertmanager_resolved"))
    assert alert.status == "resolved"
    assert alert.fingerprint == "5f2a4c81b0d3e96a"
    assert alert.ends_at == datetime(2026, 11, 20, 10, 41, 52, 4000, tzinfo=UTC)


def test_alertmanager_label_fallbacks() -> None:
    payload = load("alertmanager_firing")
    payload["alerts"] = [payload["alerts"][0]]
    labels = payload["alerts"][0]["labels"]
    del labels["service"], labels["environment"]
    labels.update(app="payments-app", env="staging")
    (alert,) = parse_alertmanager(payload)
    assert (alert.service, alert.environment) == ("payments-app", "staging")
    del labels["app"], labels["env"]
    (alert,) = parse_alertmanager(payload)
    assert (alert.service, alert.environment) == ("payments-api", "")  # from "job"


def test_alertmanager_without_fingerprint_gets_a_stable_one() -> None:
    """Alertmanager < 0.19 sent no fingerprint; firing and resolved must still match."""
    firing = load("alertmanager_firing")
    resolved = load("alertmanager_resolved")
    del firing["alerts"][0]["fingerprint"], resolved["alerts"][0]["fingerprint"]
    a, b = parse_alertmanager(firing)[0], parse_alertmanager(resolved)[0]
    assert a.fingerprint == b.fingerprint
    assert len(a.fingerprint) == 16
    assert a.fingerprint != parse_alertmanager(firing)[1].fingerprint


def test_alertmanager_empty_alert_list() -> None:
    payload = load("alertmanager_firing")
    payload["alerts"] = []
    assert parse_alertmanager(payload) == []


@pytest.mark.parametrize("version", ["3", 4, None, "5"])
def test_alertmanager_rejects_other_versions(version: Any) -> None:
    payload = load("alertmanager_firing")
    payload["version"] = version
    with pytest.raises(AdapterError, match="version must be '4'"):
        parse_alertmanager(payload)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda p: p.pop("alerts"), "alerts must be an array"),
        (lambda p: p["alerts"].append("alert"), r"alerts\[2\] must be a JSON object"),
        (lambda p: p["alerts"][0].update(status="pending"), "'firing' or 'resolved'"),
        (lambda p: p["alerts"][1]["labels"].update(severity=2), r"alerts\[1\].labels.severity"),
        (lambda p: p["alerts"][0].update(annotations=["x"]), "annotations must be a JSON"),
        (lambda p: p["alerts"][0].update(startsAt="soon"), r"alerts\[0\].startsAt"),
    ],
)
def test_alertmanager_malformed_payloads_raise_adapter_error(
    mutate: Callable[[dict[str, Any]], Any], message: str
) -> None:
    payload = load("alertmanager_firing")
    mutate(payload)
    with pytest.raises(AdapterError, match=message):
        parse_alertmanager(payload)


# ------------------------------------------------------------------- time parsing


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-20T10:07:12Z", at(2026, 11, 20, 10, 7, 12)),
        ("2026-11-20T10:07:12z", at(2026, 11, 20, 10, 7, 12)),
        ("2026-11-20T11:07:12+01:00", at(2026, 11, 20, 10, 7, 12)),
        ("2026-11-20T10:07:12.000Z", at(2026, 11, 20, 10, 7, 12)),
        (
            "2018-08-03T09:52:26.739266876+02:00",
            datetime(2018, 8, 3, 7, 52, 26, 739266, tzinfo=UTC),
        ),
    ],
)
def test_parse_iso8601(text: str, expected: datetime) -> None:
    parsed = parse_iso8601(text)
    assert parsed == expected
    assert parsed.tzinfo is UTC


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2016-08-12 15:23:28 UTC", at(2016, 8, 12, 15, 23, 28)),
        ("2021-04-28 21:50:00 +0200", at(2021, 4, 28, 19, 50, 0)),
        ("2016-08-12T15:23:28Z", at(2016, 8, 12, 15, 23, 28)),
    ],
)
def test_parse_gitlab_time(text: str, expected: datetime) -> None:
    parsed = parse_gitlab_time(text)
    assert parsed == expected
    assert parsed.tzinfo is UTC


def test_parse_epoch_millis() -> None:
    assert parse_epoch_millis(1795168800000) == at(2026, 11, 20, 10, 0, 0)
    assert parse_epoch_millis("1795168800123") == at(2026, 11, 20, 10, 0, 0) + timedelta(
        milliseconds=123
    )
    assert parse_epoch_millis(0) == at(1970, 1, 1)


def test_go_zero_time_means_unset() -> None:
    assert parse_optional_go_time("0001-01-01T00:00:00Z") is None
    assert parse_optional_go_time("0001-01-01T00:00:00.000Z") is None
    assert parse_optional_go_time(None) is None
    assert parse_optional_go_time("") is None
    assert parse_optional_go_time("2026-11-20T10:41:52Z") == at(2026, 11, 20, 10, 41, 52)


@pytest.mark.parametrize(
    ("parser", "value"),
    [
        (parse_iso8601, "2026-11-20T10:07:12"),  # naive: zone would be a guess
        (parse_iso8601, "2026-02-30T10:00:00Z"),
        (parse_iso8601, "not a date"),
        (parse_iso8601, ""),
        (parse_iso8601, 1795168800),
        (parse_iso8601, "0001-01-01T00:00:00+01:00"),  # before year 1 in UTC
        (parse_gitlab_time, "2016-08-12 15:23:28 CEST"),
        (parse_gitlab_time, None),
        (parse_epoch_millis, -1),
        (parse_epoch_millis, 10**20),
        (parse_epoch_millis, float("nan")),
        (parse_epoch_millis, True),
        (parse_epoch_millis, "12e5"),
        (parse_epoch_millis, "²"),
        (parse_epoch_millis, "9" * 5000),
        (parse_optional_go_time, "yesterday"),
        (parse_optional_go_time, 0),
    ],
)
def test_time_garbage_raises_adapter_error(parser: Callable[[Any], Any], value: Any) -> None:
    with pytest.raises(AdapterError):
        parser(value)


# --------------------------------------------------------------- property tests

PARSERS: dict[str, Callable[[Any], Any]] = {
    "github": parse_workflow_run,
    "gitlab": parse_pipeline_hook,
    "jenkins": parse_notification,
    "alertmanager": parse_alertmanager,
    "github_protection_rule": parse_protection_rule,
    "gitlab_deployment": parse_deployment_hook,
}
FIXTURE_NAMES = {
    "github": [
        "github_workflow_run_requested",
        "github_workflow_run_in_progress",
        "github_workflow_run_completed",
    ],
    "gitlab": ["gitlab_pipeline_running", "gitlab_pipeline_success"],
    "jenkins": ["jenkins_started", "jenkins_completed", "jenkins_finalized"],
    "alertmanager": ["alertmanager_firing", "alertmanager_resolved"],
    "github_protection_rule": ["github_deployment_protection_rule_requested"],
    "gitlab_deployment": ["gitlab_deployment_blocked"],
}

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=30)
    | st.sampled_from(["0001-01-01T00:00:00Z", "2016-08-12 15:23:28 UTC", "completed", "4"])
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=20,
)


def run_parser(parser: Callable[[Any], Any], payload: Any) -> None:
    """Call a parser: any outcome but AdapterError or a value fails the test."""
    try:
        result = parser(payload)
    except AdapterError as error:
        assert str(error)  # an endpoint shows this message; it must say something
        return
    assert result is None or isinstance(result, RunEvent | GateEvent | list)


@pytest.mark.parametrize("provider", sorted(PARSERS))
@settings(max_examples=150, deadline=None)
@given(payload=json_values)
def test_arbitrary_json_only_raises_adapter_error(provider: str, payload: Any) -> None:
    run_parser(PARSERS[provider], payload)


@st.composite
def mutated_fixture(draw: st.DrawFn, provider: str) -> Any:
    """A real payload with a few nested values replaced or removed.

    Pure random JSON rarely gets past the first key check; mutating realistic
    payloads reaches the deep field handling (times, refs, labels...).
    """
    payload = copy.deepcopy(load(draw(st.sampled_from(FIXTURE_NAMES[provider]))))
    # Hypothesis favours first/small choices, which would keep mutating the
    # first key; a Random seeded from a drawn integer spreads them evenly.
    rnd = random.Random(draw(st.integers(min_value=0, max_value=2**32)))
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        node = payload
        while True:
            if isinstance(node, dict) and node:
                key: Any = rnd.choice(list(node))
            elif isinstance(node, list) and node:
                key = rnd.randrange(len(node))
            else:
                break
            child = node[key]
            if isinstance(child, dict | list) and child and rnd.random() < 0.75:
                node = child
                continue
            if isinstance(node, dict) and rnd.random() < 0.3:
                del node[key]
            else:
                node[key] = draw(json_values)
            break
    return payload


@pytest.mark.parametrize("provider", sorted(PARSERS))
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_mutated_fixtures_only_raise_adapter_error(provider: str, data: st.DataObject) -> None:
    run_parser(PARSERS[provider], data.draw(mutated_fixture(provider)))


@pytest.mark.parametrize("provider", sorted(PARSERS))
def test_every_fixture_parses(provider: str) -> None:
    for name in FIXTURE_NAMES[provider]:
        assert PARSERS[provider](load(name))


# --- held deployments (GitHub protection rules, GitLab blocked deployments) ------------------


def test_a_protection_rule_is_keyed_by_the_callback_run_and_environment() -> None:
    event = parse_protection_rule(load("github_deployment_protection_rule_requested"))
    assert event is not None
    assert (event.kind, event.repository, event.external_id, event.environment) == (
        "github_protection_rule",
        "octo-org/payments-api",
        "11223344556",
        "production",
    )
    assert event.sha == "3f1c0d9e8b7a6f5e4d3c2b1a09f8e7d6c5b4a392"
    assert event.ref == "refs/heads/main" and event.version == ""


def test_a_protection_rule_reads_the_version_from_the_payload_or_a_tag() -> None:
    body = load("github_deployment_protection_rule_requested")
    body["deployment"]["payload"] = {"version": "2.4.0"}
    assert parse_protection_rule(body).version == "2.4.0"
    body["deployment"]["payload"] = json.dumps({"version": "2.4.1"})
    assert parse_protection_rule(body).version == "2.4.1"
    body["deployment"]["payload"] = {}
    body["ref"] = "refs/tags/v2.5.0"
    assert parse_protection_rule(body).version == "2.5.0"
    body["action"] = "completed"
    assert parse_protection_rule(body) is None


def test_a_blocked_gitlab_deployment_reads_the_full_commit_and_a_version_tag() -> None:
    event = parse_deployment_hook(load("gitlab_deployment_blocked"))
    assert event is not None
    assert (event.project_id, event.external_id, event.environment) == (
        "4211",
        "7712",
        "production",
    )
    assert event.sha == "3f1c0d9e8b7a6f5e4d3c2b1a09f8e7d6c5b4a392" and event.version == "2.4.0"
    running = load("gitlab_deployment_blocked")
    running["status"] = "running"
    assert parse_deployment_hook(running) is None
