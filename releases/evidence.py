"""Evidence packs: what an auditor asks about a release, captured at deployment and on
demand, downloadable as a ZIP (an HTML summary for people, JSON for machines).

The pack is built from sections: the releases app's own (the release, its scope, deployments,
post-release work, audit events) and those the higher apps register (``register_section``),
so the releases app lists gates or incidents without importing the apps that own them.

The snapshot embeds every audit event of the release with its hash, the head of the
release's audit chain at capture time and a signed checkpoint of that head (also exported
outside the database), so a later change to the history is detectable: ``manage.py
verify_audit`` compares every pack's frozen head with the trail (``frozen_heads`` below).
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from collections.abc import Callable
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone

from core.audit_checkpoints import checkpoint_document, checkpoint_write
from core.errors import PermissionDenied
from core.models import AuditChainHead, AuditEvent, CheckpointKind

from .choices import (
    ActionStatus,
    DeploymentState,
    EvidenceTrigger,
    ReleaseState,
    ReleaseType,
    RiskLevel,
    ScopeKind,
    ScopeStatus,
)
from .models import EvidencePack, Release
from .risk import current_governing_level

SNAPSHOT_VERSION = 1

Section = Callable[[Release], Any]
# key -> (position, builder). The pack lists its sections by position, whichever app
# registered them and whenever.
_sections: dict[str, tuple[int, Section]] = {}


def register_section(key: str, build: Section, *, position: int) -> Section:
    """Add the section ``key`` to every pack, built by ``build(release)`` (plain JSON-ready
    data, read-only). Sections go in ``position`` order; the releases app holds the tens
    below, and the higher apps register theirs in their AppConfig.ready() (governance: risk
    assessment, gates, change requests, freeze exceptions; pipelines: artefacts, incidents,
    verification samples). Idempotent; a key or position already taken by another section
    is an error, so no app silently replaces another's evidence."""
    for other, (at, builder) in _sections.items():
        if (other == key or at == position) and (other, at, builder) != (key, position, build):
            raise ValueError(f"Evidence section {key!r} at {position} clashes with {other!r}.")
    _sections[key] = (position, build)
    return build


def unregister_section(key: str) -> None:
    _sections.pop(key, None)


# kind -> {value: label}: the words the HTML summary shows for the values a pack stores
# (the JSON keeps the values). The higher apps register their kinds (gate stage, change
# state, ...) next to their sections.
_labels: dict[str, dict[str, str]] = {}


def register_labels(kind: str, choices) -> None:
    """Name the values of ``kind`` (``choices``: a TextChoices class or (value, label)
    pairs) in the pack's summary. Idempotent."""
    _labels[kind] = dict(getattr(choices, "choices", choices))


def label(kind: str, value: Any) -> Any:
    """The label of ``value`` of ``kind``; the value itself when it has none."""
    return _labels.get(kind, {}).get(value, value)


def section_keys() -> list[str]:
    """The keys of the registered sections, in the order the pack lists them."""
    return [key for key, _ in sorted(_sections.items(), key=lambda item: item[1][0])]


def person(user) -> str | None:
    """How a pack names a person: the username, or None."""
    return user.get_username() if user else None


def iso(value) -> str | None:
    """How a pack writes a date or time: ISO 8601, or None."""
    return value.isoformat() if value else None


def plain(value):
    """``value`` as the pack's JSON will hold it (dates as strings, decimals as text)."""
    return json.loads(json.dumps(value, cls=DjangoJSONEncoder))


def collect_evidence(release: Release) -> dict[str, Any]:
    """Everything the pack holds, as plain JSON-ready data. Read-only."""
    snapshot: dict[str, Any] = {"format": "releasegate-evidence", "version": SNAPSHOT_VERSION}
    for key in section_keys():
        snapshot[key] = _sections[key][1](release)
    return snapshot


# --- the releases app's own sections -------------------------------------------------------


def _release(release: Release) -> dict[str, Any]:
    services = release.services.select_related("team").order_by("slug")
    return {
        "id": release.pk,
        "name": release.name,
        "version": release.version,
        "type": release.release_type,
        "state": release.state,
        "risk_level": release.risk_level,
        # The level gates, CAB and closing used (releases.risk): what the summary shows.
        "governing_risk_level": current_governing_level(release),
        "owner": person(release.owner),
        "product_owner": person(release.product_owner),
        "services": [
            {"slug": s.slug, "team": s.team.name, "criticality": s.criticality} for s in services
        ],
        "window": [iso(release.window_start), iso(release.window_end)],
        "code_freeze_at": iso(release.code_freeze_at),
        "planned_at": iso(release.planned_at),
        "approved_at": iso(release.approved_at),
        "deployed_at": iso(release.deployed_at),
    }


def _scope(release: Release) -> list[dict]:
    return [
        {
            "kind": i.kind,
            "key": i.external_key,
            "title": i.title,
            "url": i.url,
            "status": i.status,
        }
        for i in release.scope_items.all()
    ]


def _risk_register(release: Release) -> list[dict]:
    return [
        {
            "description": r.description,
            "likelihood": r.likelihood,
            "impact": r.impact,
            "mitigation": r.mitigation,
            "status": r.status,
        }
        for r in release.risks.all()
    ]


def _rollback_plan(release: Release) -> dict | None:
    if not hasattr(release, "rollback_plan"):
        return None
    return {
        "steps": release.rollback_plan.steps,
        "rehearsed_at": iso(release.rollback_plan.rehearsed_at),
        "evidence_url": release.rollback_plan.evidence_url,
    }


def _deployments(release: Release) -> list[dict]:
    deployments = release.deployments.select_related("environment", "service").order_by(
        "created_at", "id"
    )
    return [
        {
            "service": d.service.slug,
            "environment": d.environment.name,
            "version": d.version,
            "state": d.state,
            "strategy": d.strategy,
            "started_at": iso(d.started_at),
            "finished_at": iso(d.finished_at),
            "url": d.url,
        }
        for d in deployments
    ]


def _validation(release: Release) -> list[dict]:
    return [
        {
            "title": v.title,
            "done_by": person(v.done_by),
            "done_at": iso(v.done_at),
            "note": v.note,
        }
        for v in release.validation_items.select_related("done_by")
    ]


def _retrospective(release: Release) -> dict | None:
    retro = getattr(release, "retrospective", None)
    if retro is None:
        return None
    return {
        "went_well": retro.went_well,
        "went_badly": retro.went_badly,
        "to_change": retro.to_change,
        "lessons_learned": retro.lessons_learned,
        "runbook_links": retro.runbook_links,
        "action_items": [
            {
                "title": a.title,
                "owner": person(a.owner),
                "due_date": iso(a.due_date),
                "status": a.status,
            }
            for a in release.action_items.select_related("owner")
        ],
    }


def _impact_assessment(release: Release) -> dict | None:
    impact = getattr(release, "impact_assessment", None)
    if impact is None:
        return None
    return {
        "expected_outcome": impact.expected_outcome,
        "observed_outcome": impact.observed_outcome,
        "customer_impact": impact.customer_impact,
    }


def _audit_events(release: Release) -> list[dict]:
    events = AuditEvent.objects.filter(release_id=release.pk).order_by("chain_seq")
    return [
        {
            "id": e.pk,
            "seq": e.chain_seq,
            "at": iso(e.created_at),
            "actor": e.actor_label,
            "action": e.action,
            "target": e.target_repr,
            "from_state": e.from_state,
            "to_state": e.to_state,
            "reason": e.reason,
            "before": e.before,
            "after": e.after,
            "prev_hash": e.prev_hash,
            "hash": e.hash,
        }
        for e in events
    ]


# Between them, the higher apps' sections (see register_section): risk_assessment 40,
# gates 60, change_requests 70, freeze_exceptions 80, artefacts 90, incidents 110,
# verification_samples 120.
register_labels("release_state", ReleaseState)
register_labels("release_type", ReleaseType)
register_labels("risk_level", RiskLevel)
register_labels("scope_kind", ScopeKind)
register_labels("scope_status", ScopeStatus)
register_labels("deployment_state", DeploymentState)
register_labels("action_status", ActionStatus)
register_section("release", _release, position=10)
register_section("scope", _scope, position=20)
register_section("risk_register", _risk_register, position=30)
register_section("rollback_plan", _rollback_plan, position=50)
register_section("deployments", _deployments, position=100)
register_section("validation", _validation, position=130)
register_section("retrospective", _retrospective, position=140)
register_section("impact_assessment", _impact_assessment, position=150)
register_section("audit_events", _audit_events, position=160)


def _canonical(snapshot: dict) -> bytes:
    return json.dumps(snapshot, cls=DjangoJSONEncoder, sort_keys=True, indent=2).encode()


def evidence_pack_capture(*, release: Release | int, actor, trigger: str) -> EvidencePack:
    """Capture a pack now. Anyone who may read the release may capture one on demand (it
    only records what is already there); the deployment capture runs as the system."""
    with transaction.atomic():
        pk = release.pk if isinstance(release, Release) else release
        release = Release.objects.get(pk=pk)
        if trigger == EvidenceTrigger.ON_DEMAND and not actor.has_perm(
            "releases.view_release", release
        ):
            raise PermissionDenied("You may not read this release.")
        key = f"release:{release.pk}"
        # Lock the chain head so no event of this release lands between the snapshot of
        # the events and the head recorded with them.
        head = AuditChainHead.objects.select_for_update().filter(key=key).first()
        snapshot = collect_evidence(release)
        snapshot["captured_at"] = timezone.now().isoformat()
        snapshot["trigger"] = trigger
        snapshot["audit_chain_head"] = {
            "key": key,
            "seq": head.seq if head else 0,
            "hash": head.hash if head else "",
        }
        # A signed checkpoint of that head, stored and exported outside the database too
        # (core.audit_checkpoints): the pack carries the proof, verify_audit checks it.
        snapshot["audit_checkpoint"] = (
            checkpoint_document(
                checkpoint_write(
                    kind=CheckpointKind.EVIDENCE,
                    heads={key: [head.seq, head.hash]},
                    # The head includes this transaction's events: export once they
                    # commit. A full disk must not stop a deployment being recorded;
                    # verify_audit reports the checkpoint without its file.
                    after_commit=True,
                )
            )
            if head and head.seq
            else None
        )
        body = _canonical(snapshot)
        return EvidencePack.objects.create(
            release=release,
            trigger=trigger,
            created_by=actor if getattr(actor, "pk", None) else None,
            snapshot=json.loads(body),
            chain_key=key,
            chain_head_seq=snapshot["audit_chain_head"]["seq"],
            chain_head_hash=snapshot["audit_chain_head"]["hash"],
            sha256=hashlib.sha256(body).hexdigest(),
        )


def evidence_pack_zip(pack: EvidencePack) -> bytes:
    """The downloadable ZIP: evidence.json, summary.html and a SHA256SUMS file."""
    body = _canonical(pack.snapshot)
    summary = render_to_string(
        "releases/evidence/summary.html", {"pack": pack, "s": pack.snapshot}
    ).encode()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("evidence.json", body)
        archive.writestr("summary.html", summary)
        sums = "".join(
            f"{hashlib.sha256(data).hexdigest()}  {name}\n"
            for name, data in (("evidence.json", body), ("summary.html", summary))
        )
        archive.writestr("SHA256SUMS", sums)
    return buffer.getvalue()


def capture_on_deployment(*, release: Release, actor, name: str, from_state: str) -> None:
    """Transition listener: freeze the evidence the moment a release is deployed."""
    if name == "mark_deployed":
        evidence_pack_capture(release=release, actor=None, trigger=EvidenceTrigger.DEPLOYMENT)


def frozen_heads(chain: str | None):
    """The chain heads the packs froze, for ``core.audit_chain.register_head_source``:
    (chain key, seq, hash, label) of every pack (of one chain), read by column."""
    packs = EvidencePack.objects.filter(chain_head_seq__gt=0)
    if chain:
        packs = packs.filter(chain_key=chain)
    rows = packs.order_by("id").values_list("id", "chain_key", "chain_head_seq", "chain_head_hash")
    for pk, key, seq, hash_ in rows.iterator(chunk_size=2000):
        yield key, seq, hash_, f"evidence pack #{pk}"
