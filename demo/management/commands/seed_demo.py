"""``manage.py seed_demo``: load the demo portfolio (idempotent; see demo/seed.py)."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from demo.seed import seed
from demo.users import demo_logins


class Command(BaseCommand):
    help = (
        "Load a realistic demo portfolio: teams, services, environments, one user per role "
        "and about 40 releases in every state with a genuine audit history. Safe to re-run."
    )

    def add_arguments(self, parser):
        parser.add_argument("--quiet-users", action="store_true", help="Do not print the logins.")

    def handle(self, *args, **options):
        verbose = options["verbosity"] > 1
        result = seed(stdout=self.stdout if verbose else None)
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo portfolio ready: {result.created} release(s) created, "
                f"{result.skipped} already present."
            )
        )
        if not options["quiet_users"]:
            self.stdout.write(demo_logins())
