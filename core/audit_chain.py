"""Verification of the audit trail (read-only; ``manage.py verify_audit``). Imports no
project app: the higher apps add the heads they froze (evidence packs) through
``register_head_source``.

Every event stores the HMAC of its own fields (with the key its ``key_id`` names, which the
database does not hold; core.audit_keys) and the hash of the previous event of its chain;
the chain heads store the last link. Rewriting a row changes its hash, and without the key
nobody can compute a hash that verifies; removing a row leaves a gap in the sequence or a
head that points past the end. Signed checkpoints (core.audit_checkpoints), kept in the
database *and* as files outside it, and the heads frozen into evidence packs state what a
chain looked like at their time: an event that disagrees with one of them was rewritten,
even by someone holding the key.

Events written before the trail was keyed (no ``key_id``, plain SHA-256) are accepted only
up to the link a re-anchoring checkpoint (``manage.py reanchor_audit``) vouches for.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from . import audit_checkpoints, audit_keys
from .models import AuditChainHead, AuditCheckpoint, AuditEvent, CheckpointKind

# A source of frozen heads: called with a chain key (or None for all), it yields
# (chain key, seq, hash, label) — e.g. ("release:4", 12, "ab…", "evidence pack #7").
HeadSource = Callable[[str | None], Iterable[tuple[str, int, str, str]]]
_head_sources: dict[str, HeadSource] = {}


def register_head_source(name: str, source: HeadSource) -> None:
    """Let verification compare the trail with heads another app froze (idempotent)."""
    _head_sources[name] = source


@dataclass
class ChainProblem:
    chain: str
    event_id: int | None
    seq: int | None
    message: str

    def __str__(self) -> str:
        if self.event_id:
            where = f"audit event #{self.event_id} (chain {self.chain}, link {self.seq})"
            return f"{where}: {self.message}"
        return f"{'chain ' + self.chain if self.chain else 'checkpoints'}: {self.message}"


@dataclass
class ChainReport:
    events: int = 0
    chains: int = 0
    checkpoints: int = 0
    files: int = 0
    remote: int = 0
    frozen_heads: int = 0
    problems: list[ChainProblem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def chain_head(key: str) -> AuditChainHead | None:
    return AuditChainHead.objects.filter(key=key).first()


class _Claims:
    """What checkpoints and frozen heads say each chain looked like: chain -> seq -> hash ->
    the first source that said so; and how far each chain's unkeyed prefix is anchored."""

    def __init__(self) -> None:
        self.by_chain: dict[str, dict[int, dict[str, str]]] = defaultdict(dict)
        self.anchored: dict[str, int] = {}

    def add(self, chain: str, seq: int, hash_: str, source: str) -> None:
        self.by_chain[chain].setdefault(int(seq), {}).setdefault(str(hash_), source)

    def add_document(self, document: dict, source: str, chain: str | None) -> None:
        for key, link in document["heads"].items():
            if chain and key != chain:
                continue
            try:
                seq, hash_ = int(link[0]), str(link[1])
            except (TypeError, ValueError, IndexError):
                continue
            self.add(key, seq, hash_, source)
            if document.get("kind") == CheckpointKind.ANCHOR:
                self.anchored[key] = max(self.anchored.get(key, 0), seq)


def _collect_claims(report: ChainReport, chain: str | None, directory: Path | None) -> _Claims:
    """Read every checkpoint (rows and exported files) and frozen head; a checkpoint whose
    signature does not verify, a file without its row or a row without its file is a
    problem of its own, and its heads are not trusted."""
    claims = _Claims()
    stored: dict[str, dict] = {}
    for checkpoint in AuditCheckpoint.objects.order_by("id").iterator(chunk_size=200):
        report.checkpoints += 1
        document = audit_checkpoints.checkpoint_document(checkpoint)
        stored[checkpoint.name] = document
        if not audit_checkpoints.document_is_signed(document):
            report.problems.append(
                ChainProblem(
                    "",
                    None,
                    None,
                    f"checkpoint {checkpoint.name} in the database does not carry a valid "
                    f"signature (key {checkpoint.key_id!r}): it was altered, or signed with a key "
                    "this server does not hold.",
                )
            )
            continue
        claims.add_document(document, f"checkpoint {checkpoint.name}", chain)
    exported: set[str] = set()
    directory = directory or audit_checkpoints.checkpoint_dir()
    copies = [(str(path), doc) for path, doc in audit_checkpoints.exported_documents(directory)]
    report.files = len(copies)
    if audit_checkpoints.s3_enabled():
        # The bucket's copies: checked like the files, but a row the bucket lacks is no
        # problem (the beat task copies within the hour).
        remote = list(audit_checkpoints.s3_documents())
        report.remote = len(remote)
        copies += remote
    for where, document in copies:
        if document is None or not audit_checkpoints.document_is_signed(document):
            report.problems.append(
                ChainProblem(
                    "",
                    None,
                    None,
                    f"the exported checkpoint {where} is not a validly signed checkpoint.",
                )
            )
            continue
        name = str(document.get("name"))
        if not where.startswith("s3://"):
            exported.add(name)
        if name not in stored:
            report.problems.append(
                ChainProblem(
                    "",
                    None,
                    None,
                    f"checkpoint {name} was exported to {where} but is missing from the "
                    "database: checkpoints were removed.",
                )
            )
        claims.add_document(document, f"exported checkpoint {where}", chain)
    for name in sorted(set(stored) - exported):
        report.problems.append(
            ChainProblem(
                "",
                None,
                None,
                f"checkpoint {name} has no exported file in {directory}: the file was removed "
                "(or the checkpoint was added to the database by hand).",
            )
        )
    for source in _head_sources.values():
        for key, seq, hash_, label in source(chain):
            report.frozen_heads += 1
            claims.add(key, seq, hash_, label)
    return claims


def _hash_problem(event: AuditEvent, anchored: int) -> str | None:
    if not event.key_id:
        if event.chain_seq > anchored:
            return (
                "it carries an unkeyed hash (the algorithm before the trail was keyed) after "
                "the re-anchoring point"
                + (f" (link {anchored})" if anchored else "; this chain was never re-anchored")
                + ": the row was rewritten without the key."
            )
    else:
        try:
            audit_keys.secret(event.key_id)
        except audit_keys.UnknownAuditKey:
            return (
                f"it was hashed with key {event.key_id!r}, which AUDIT_CHAIN_KEYS does not list "
                "(a key was dropped, or the row was forged)."
            )
    if event.compute_hash() != event.hash:
        return "its contents no longer match its hash: the row was changed after it was written."
    return None


def verify_chains(
    *,
    chain: str | None = None,
    stop_at_first: bool = True,
    require_anchor: bool = True,
    checkpoint_dir: Path | None = None,
) -> ChainReport:
    """Walk every chain (or one) in link order and report the first event of each where the
        hashes, the links, a checkpoint or a frozen head disagree; then what the checkpoints
        and heads say beyond the trail's end. ``require_anchor=False`` accepts unkeyed events
        that no re-anchoring checkpoint covers (``reanchor_audit`` checks before anchoring).
    ``checkpoint_dir`` reads the exported files from elsewhere (a synced copy) than
    ``AUDIT_CHECKPOINT_DIR``.

        Streams the events, so memory grows with the number of claims, not of events."""
    report = ChainReport()
    claims = _collect_claims(report, chain, checkpoint_dir)
    heads = AuditChainHead.objects.all()
    events = AuditEvent.objects.select_related("target_type").order_by("chain_key", "chain_seq")
    if chain:
        heads, events = heads.filter(key=chain), events.filter(chain_key=chain)
    expected_heads = {h.key: (h.seq, h.hash) for h in heads}
    seen: set[str] = set()
    broken: set[str] = set()
    current, last_seq, last_hash, agreed = None, 0, "", 0

    def close_chain() -> None:
        if current is None or current in broken:
            return
        head = expected_heads.get(current)
        if head is None:
            report.problems.append(ChainProblem(current, None, None, "its chain head is missing."))
        elif head != (last_seq, last_hash):
            report.problems.append(
                ChainProblem(
                    current,
                    None,
                    None,
                    f"the head says {head[0]} links but the trail ends at link {last_seq}: "
                    "events were removed from the end, or the head was altered.",
                )
            )
        beyond = [s for s in claims.by_chain.get(current, {}) if s > last_seq]
        if beyond:
            seq = min(beyond)
            source = next(iter(claims.by_chain[current][seq].values()))
            report.problems.append(
                ChainProblem(
                    current,
                    None,
                    None,
                    f"{source} records link {seq}, but the trail ends at link {last_seq}: "
                    "events were removed from the end.",
                )
            )

    for event in events.iterator(chunk_size=2000):
        report.events += 1
        if event.chain_key != current:
            close_chain()
            seen.add(current)
            current, last_seq, last_hash, agreed = event.chain_key, 0, "", 0
            report.chains += 1
        if current in broken:
            continue
        problem = None
        if event.chain_seq != last_seq + 1:
            problem = f"link {last_seq + 1} is missing: an event was removed before this one."
        elif event.prev_hash != last_hash:
            problem = "it does not point at the previous event's hash: the chain was re-linked."
        else:
            anchored = claims.anchored.get(current, 0) if require_anchor else event.chain_seq
            problem = _hash_problem(event, anchored)
        if problem is None:
            stated = claims.by_chain.get(current, {}).get(event.chain_seq, {})
            wrong = [source for h, source in stated.items() if h != event.hash]
            if wrong:
                problem = (
                    f"it disagrees with {wrong[0]}, which recorded another hash for link "
                    f"{event.chain_seq}: this event, or one after link {agreed} (the last that "
                    "a checkpoint confirms), was rewritten."
                )
            elif stated:
                agreed = event.chain_seq
        if problem:
            report.problems.append(ChainProblem(current, event.pk, event.chain_seq, problem))
            broken.add(current)
            if stop_at_first:
                return report
        last_seq, last_hash = event.chain_seq, event.hash
    close_chain()
    seen.add(current)
    for key in sorted(set(expected_heads) - seen):
        report.problems.append(ChainProblem(key, None, None, "all of its events are missing."))
    for key in sorted(set(claims.by_chain) - seen - set(expected_heads)):
        if claims.by_chain[key]:
            source = next(iter(next(iter(claims.by_chain[key].values())).values()))
            report.problems.append(
                ChainProblem(
                    key, None, None, f"{source} records it, but all of its events are missing."
                )
            )
    return report
