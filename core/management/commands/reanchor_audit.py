"""``manage.py reanchor_audit``: the one-time migration of an unkeyed audit trail.

Events written before the trail was keyed carry plain SHA-256 hashes, which anyone who can
write the table can recompute. This command verifies them as they are, then signs the final
head of each chain's unkeyed prefix in one ``anchor`` checkpoint (stored and exported like
every checkpoint). From then on ``verify_audit`` accepts an unkeyed event only up to its
chain's anchored link, and every later link is keyed. It runs once: a second run refuses.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.db import IntegrityError

from core.audit_chain import verify_chains
from core.audit_checkpoints import checkpoint_dir, checkpoint_write, sync_to_s3
from core.models import AuditCheckpoint, AuditEvent, CheckpointKind


class Command(BaseCommand):
    help = "Sign the final heads of the unkeyed audit trail once (docs/operations.md)."

    def handle(self, *args, **options):
        anchor = AuditCheckpoint.objects.filter(kind=CheckpointKind.ANCHOR).first()
        if anchor is not None:
            raise CommandError(
                f"The trail was already re-anchored by checkpoint {anchor.name} "
                f"({anchor.created_at:%Y-%m-%d %H:%M} UTC); it is keyed from there."
            )
        # The unkeyed prefix of each chain: (number of unkeyed events, last seq, its hash).
        prefixes: dict[str, list] = {}
        rows = (
            AuditEvent.objects.filter(key_id="")
            .order_by("chain_key", "chain_seq")
            .values_list("chain_key", "chain_seq", "hash")
        )
        for key, seq, hash_ in rows.iterator(chunk_size=5000):
            prefix = prefixes.setdefault(key, [0, 0, ""])
            prefix[0] += 1
            prefix[1:] = [seq, hash_]
        if not prefixes:
            self.stdout.write("Nothing to re-anchor: every audit event is keyed.")
            return
        gaps = sorted(k for k, (count, last, _) in prefixes.items() if count != last)
        if gaps:
            raise CommandError(
                "These chains have keyed events before unkeyed ones, which the old algorithm "
                f"never wrote; investigate before anchoring: {', '.join(gaps[:20])}."
            )
        report = verify_chains(stop_at_first=False, require_anchor=False)
        if not report.ok:
            for problem in report.problems:
                self.stderr.write(f"BROKEN: {problem}")
            raise CommandError(
                "The trail does not verify as it is: anchoring it would vouch for a broken "
                "history. Investigate (verify_audit --all-problems) before re-anchoring."
            )
        heads = {key: [last, hash_] for key, (_, last, hash_) in sorted(prefixes.items())}
        try:
            checkpoint = checkpoint_write(kind=CheckpointKind.ANCHOR, heads=heads)
        except IntegrityError:  # audit_one_anchor: a concurrent run anchored first
            raise CommandError("The trail was re-anchored by another run meanwhile.") from None
        sync_to_s3()  # the anchor matters most: copy it off-site now, not within the hour
        events = sum(count for count, _, _ in prefixes.values())
        self.stdout.write(
            f"Re-anchored {len(heads)} chains ({events} unkeyed events) in checkpoint "
            f"{checkpoint.name}, exported to {checkpoint_dir()}. Later links are keyed."
        )
