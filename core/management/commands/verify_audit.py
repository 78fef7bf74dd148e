"""``manage.py verify_audit``: verify the audit trail (``core.audit_chain``): the keyed
hashes and links of every chain, the signed checkpoints in the database and exported to
``AUDIT_CHECKPOINT_DIR``, and the chain heads frozen into evidence packs."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from core.audit_chain import verify_chains


class Command(BaseCommand):
    help = (
        "Verify the audit trail's keyed hash chains against its signed checkpoints (database "
        "and exported files) and the heads frozen into evidence packs; name the first event "
        "where they disagree. Exits 1 if broken."
    )

    def add_arguments(self, parser):
        parser.add_argument("--chain", help="Verify one chain only, e.g. release:42.")
        parser.add_argument(
            "--all-problems", action="store_true", help="Report the first problem of every chain."
        )
        parser.add_argument(
            "--checkpoint-dir",
            type=Path,
            help="Read the exported checkpoints from here (e.g. a synced copy) instead of "
            "AUDIT_CHECKPOINT_DIR.",
        )

    def handle(self, *args, chain=None, all_problems=False, checkpoint_dir=None, **options):
        report = verify_chains(
            chain=chain, stop_at_first=not all_problems, checkpoint_dir=checkpoint_dir
        )
        if report.ok:
            self.stdout.write(
                f"OK: {report.events} audit events in {report.chains} chains verified."
            )
            remote = f", {report.remote} checkpoints in the S3 bucket" if report.remote else ""
            self.stdout.write(
                f"Checked against {report.checkpoints} signed checkpoints, {report.files} "
                f"exported checkpoint files{remote} and {report.frozen_heads} frozen evidence "
                "heads."
            )
            return
        for problem in report.problems:
            self.stderr.write(f"BROKEN: {problem}")
        raise CommandError(f"Audit trail verification failed ({len(report.problems)} problem(s)).")
