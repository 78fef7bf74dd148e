"""What a pipeline run means for a release's gates: pipelines decides, governance records.

A run's status and checks become a verdict (passed or failed, with a detail a person
reads) for each automated gate of the releases the run concerns: the same service, and
the same version or a commit those gates already saw. The verdict goes to governance
through its one seam, ``gate_record_result``, which owns the gate's lifecycle and audit.
A newer build of another commit first invalidates what the old build decided
(``gates_invalidate``). Every function here is safe to run twice.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from core import metrics
from governance.choices import RUN_KINDS, GateKind, GateStatus
from governance.models import GateCheck
from governance.services import gate_record_result, gates_evaluate_for_release, gates_invalidate
from releases.choices import TERMINAL_STATES, ReleaseState
from releases.models import Deployment, Release

from .models import PipelineRun, RunStatus


def _check(run: PipelineRun, kind: str):
    for check in run.checks.all():
        if check.kind == kind:
            return check
    return None


def run_result(gate: GateCheck, run: PipelineRun) -> tuple[str, str] | None:
    """(status, detail) that ``run`` gives ``gate``, or None when the run says nothing yet."""
    kind = gate.kind
    if kind == GateKind.CI_GREEN:
        if run.status == RunStatus.SUCCEEDED:
            return GateStatus.PASSED, f"CI run {run.external_id} succeeded"
        if run.status in (RunStatus.FAILED, RunStatus.CANCELLED):
            return GateStatus.FAILED, f"CI run {run.external_id} {run.status}"
        return None
    source = {
        GateKind.TESTS_PASSED: "tests",
        GateKind.NO_CRITICAL_VULNS: "security_scan",
        GateKind.COVERAGE_MIN: "coverage",
        GateKind.PERFORMANCE_PASSED: "performance",
    }[kind]
    check = _check(run, source)
    if check is None or check.status in ("running", "skipped"):
        return None
    metrics: dict[str, Any] = check.metrics or {}
    if kind == GateKind.TESTS_PASSED:
        failed = int(metrics.get("failed") or 0)
        text = f"{metrics.get('passed', '?')} passed, {failed} failed"
        ok = check.status == "passed" and failed == 0
        return (GateStatus.PASSED if ok else GateStatus.FAILED), text
    if kind == GateKind.NO_CRITICAL_VULNS:
        critical = metrics.get("critical")
        if critical is None:
            ok = check.status == "passed"
            return (GateStatus.PASSED if ok else GateStatus.FAILED), f"security scan {check.status}"
        text = f"{critical} critical, {metrics.get('high', 0)} high"
        return (GateStatus.PASSED if int(critical) == 0 else GateStatus.FAILED), text
    if kind == GateKind.COVERAGE_MIN:
        percent = metrics.get("percent")
        if percent is None:
            return None
        threshold = gate.threshold or 0
        ok = float(percent) >= threshold
        return (GateStatus.PASSED if ok else GateStatus.FAILED), (
            f"coverage {float(percent):g}% (needs ≥ {threshold:g}%)"
        )
    ok = check.status == "passed"
    return (GateStatus.PASSED if ok else GateStatus.FAILED), f"performance test {check.status}"


# The releases whose gates a run can decide: open (neither a draft nor finished), of the run's
# service, with the run's version or a commit their gates already saw.
CLOSED_TO_RUNS = (*TERMINAL_STATES, ReleaseState.DRAFT)


def _releases_matching(service_id: int, version: str, commit_sha: str):
    match = Q(pk__in=[])
    if version:
        match |= Q(version=version)
    if commit_sha:
        match |= Q(gate_checks__commit_sha=commit_sha)
    return Release.objects.filter(match, services=service_id).exclude(state__in=CLOSED_TO_RUNS)


def releases_for_run(run: PipelineRun) -> list[Release]:
    return list(
        _releases_matching(run.service_id, run.version, run.commit_sha).distinct().order_by("id")
    )


def run_may_affect_gates(*, service_id: int, version: str, commit_sha: str) -> bool:
    """Whether a run of this service, version and commit concerns any open release: a run
    that does not is stored and never queued for gate evaluation. The ingest statement on
    PostgreSQL decides the same in SQL (``RUN_RELEVANCE_SQL``)."""
    return _releases_matching(service_id, version, commit_sha).exists()


def _run_relevance_sql() -> str:
    """``run_may_affect_gates`` as one SQL boolean over five parameters: service, version,
    version, commit, commit."""
    through = Release.services.through._meta
    states = ", ".join(f"'{state}'" for state in CLOSED_TO_RUNS if str(state).isidentifier())
    assert states.count(",") == len(CLOSED_TO_RUNS) - 1
    return (
        f"EXISTS (SELECT 1 FROM {Release._meta.db_table} r "
        f"JOIN {through.db_table} rs ON rs.{through.get_field('release').column} = r.id "
        f"WHERE rs.{through.get_field('service').column} = %s::bigint "
        f"AND r.state NOT IN ({states}) "
        "AND ((%s::text <> '' AND r.version = %s::text) OR (%s::text <> '' AND EXISTS "
        f"(SELECT 1 FROM {GateCheck._meta.db_table} g WHERE g.release_id = r.id "
        "AND g.commit_sha = %s::text))))"
    )


RUN_RELEVANCE_SQL = _run_relevance_sql()


def gates_evaluate_for_run(*, run_id: int, actor=None) -> int:
    """Re-evaluate the automated gate checks of the releases a pipeline run concerns (same
    service, and same version or a commit already seen by its gates), recording the run that
    decided each. A newer build of a different commit first invalidates what the old build
    decided (and sign-offs that depend on the build). Returns how many gate checks changed.

    Called after commit of every accepted run. Safe to run twice.
    """
    run = PipelineRun.objects.prefetch_related("checks").filter(pk=run_id).first()
    if run is None:
        return 0
    changed = 0
    for release in releases_for_run(run):
        verdicts: list[tuple[str, str, bool]] = []  # counted once the transaction committed
        with transaction.atomic():
            release = Release.objects.select_for_update().get(pk=release.pk)
            if release.state in TERMINAL_STATES:
                continue
            gates = list(release.gate_checks.filter(kind__in=RUN_KINDS).select_related("run"))
            old_commits = {
                g.commit_sha
                for g in gates
                if g.commit_sha and g.status != GateStatus.PENDING and g.run_id != run.pk
            }
            if run.commit_sha and old_commits and run.commit_sha not in old_commits:
                newest_old = max(
                    (g.run.created_at for g in gates if g.run_id and g.run_id != run.pk),
                    default=None,
                )
                if newest_old is not None and run.created_at < newest_old:
                    continue  # an older build arriving late decides nothing
                old = ", ".join(sorted(c[:10] for c in old_commits))
                changed += gates_invalidate(
                    release=release,
                    actor=actor,
                    what="build",
                    reason=f"New build {run.commit_sha[:10]} for a different commit than {old}.",
                )
            for gate in release.gate_checks.filter(kind__in=RUN_KINDS):
                result = run_result(gate, run)
                if result is None:
                    continue
                before, before_run = gate.status, gate.run_id
                updated = gate_record_result(
                    gate=gate,
                    status=result[0],
                    actor=actor,
                    run_id=run.pk,
                    commit_sha=run.commit_sha,
                    detail=result[1],
                )
                changed += int(updated.status != before)
                decided = updated.status == result[0] and (
                    updated.status != before or before_run != run.pk
                )
                verdicts.append((gate.kind, result[0], decided))
        _count_verdicts(run, verdicts)
    return changed


def _count_verdicts(run: PipelineRun, verdicts: list[tuple[str, str, bool]]) -> None:
    """Metrics of one release's evaluation: every verdict, and for each one this run newly
    decided, the time from the CI report that changed the run to now (the verdict)."""
    latency = max(0.0, (timezone.now() - run.updated_at).total_seconds())
    for kind, verdict, decided in verdicts:
        metrics.GATE_EVALUATIONS.labels(kind, verdict, "true" if decided else "false").inc()
        if decided:
            metrics.GATE_VERDICT_LATENCY.labels(kind).observe(latency)


def gates_evaluate_for_deployment(*, deployment_id: int, actor=None) -> int:
    """After a deployment report: evaluate the release-held evidence (staging validated) of
    the deployment's release, and the automated gates from the latest run of that service
    and version. Returns how many gates changed. Safe to run twice."""
    deployment = (
        Deployment.objects.filter(pk=deployment_id)
        .only("service_id", "version", "release_id")
        .first()
    )
    if deployment is None:
        return 0
    changed = 0
    if deployment.release_id:
        changed += gates_evaluate_for_release(release=deployment.release_id, actor=actor)
    run_id = (
        PipelineRun.objects.filter(service_id=deployment.service_id, version=deployment.version)
        .order_by("-created_at", "-id")
        .values_list("id", flat=True)
        .first()
    )
    if run_id:
        changed += gates_evaluate_for_run(run_id=run_id, actor=actor)
    return changed
