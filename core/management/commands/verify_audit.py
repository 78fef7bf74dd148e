"""``manage.py verify_audit``: walk the audit trail's hash chains (``core.audit_chain``)."""

from django.core.management.base import BaseCommand, CommandError

from core.audit_chain import verify_chains


class Command(BaseCommand):
    help = "Verify the audit trail's hash chains; name the first broken link. Exits 1 if broken."

    def add_arguments(self, parser):
        parser.add_argument("--chain", help="Verify one chain only, e.g. release:42.")
        parser.add_argument(
            "--all-problems", action="store_true", help="Report the first problem of every chain."
        )

    def handle(self, *args, chain=None, all_problems=False, **options):
        report = verify_chains(chain=chain, stop_at_first=not all_problems)
        if report.ok:
            self.stdout.write(
                f"OK: {report.events} audit events in {report.chains} chains verified."
            )
            return
        for problem in report.problems:
            self.stderr.write(f"BROKEN: {problem}")
        raise CommandError(f"Audit trail verification failed ({len(report.problems)} problem(s)).")
