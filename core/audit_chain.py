"""Verification of the audit trail's hash chains (read-only; ``manage.py verify_audit``).
Imports no project app.

Every event stores the hash of its own fields and the hash of the previous event of its
chain; the chain heads store the last link. Rewriting a row changes its hash; removing a
row leaves a gap in the sequence or a head that points past the end; re-hashing the rest of
the chain after a change would need to rewrite every later row *and* the head — and the
evidence packs already handed out embed the head they saw.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .models import AuditChainHead, AuditEvent


@dataclass
class ChainProblem:
    chain: str
    event_id: int | None
    seq: int | None
    message: str

    def __str__(self) -> str:
        where = f"audit event #{self.event_id} (chain {self.chain}, link {self.seq})"
        return f"{where if self.event_id else 'chain ' + self.chain}: {self.message}"


@dataclass
class ChainReport:
    events: int = 0
    chains: int = 0
    problems: list[ChainProblem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def chain_head(key: str) -> AuditChainHead | None:
    return AuditChainHead.objects.filter(key=key).first()


def verify_chains(*, chain: str | None = None, stop_at_first: bool = True) -> ChainReport:
    """Walk every chain (or one) in link order and report the first broken link of each.

    Streams the events, so memory does not grow with the size of the trail."""
    report = ChainReport()
    heads = AuditChainHead.objects.all()
    events = AuditEvent.objects.select_related("target_type").order_by("chain_key", "chain_seq")
    if chain:
        heads, events = heads.filter(key=chain), events.filter(chain_key=chain)
    expected_heads = {h.key: (h.seq, h.hash) for h in heads}
    seen: dict[str, tuple[int, str]] = {}
    broken: set[str] = set()
    current, last_seq, last_hash = None, 0, ""

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

    for event in events.iterator(chunk_size=2000):
        report.events += 1
        if event.chain_key != current:
            close_chain()
            seen[current] = (last_seq, last_hash)
            current, last_seq, last_hash = event.chain_key, 0, ""
            report.chains += 1
        if current in broken:
            continue
        problem = None
        if event.chain_seq != last_seq + 1:
            problem = f"link {last_seq + 1} is missing: an event was removed before this one."
        elif event.prev_hash != last_hash:
            problem = "it does not point at the previous event's hash: the chain was re-linked."
        elif event.compute_hash() != event.hash:
            problem = (
                "its contents no longer match its hash: the row was changed after it was written."
            )
        if problem:
            report.problems.append(ChainProblem(current, event.pk, event.chain_seq, problem))
            broken.add(current)
            if stop_at_first:
                return report
        last_seq, last_hash = event.chain_seq, event.hash
    close_chain()
    seen[current] = (last_seq, last_hash)
    for key in sorted(set(expected_heads) - set(seen)):
        report.problems.append(ChainProblem(key, None, None, "all of its events are missing."))
    return report
