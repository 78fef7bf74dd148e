"""``manage.py seed_demo``: load the demo portfolio (idempotent; see releases/demo.py)."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from releases import demo


class Command(BaseCommand):
    help = (
        "Load a realistic demo portfolio: teams, services, environments, one user per role "
        "and about 40 releases in every state with a genuine audit history. Safe to re-run."
    )

    def add_arguments(self, parser):
        parser.add_argument("--quiet-users", action="store_true", help="Do not print the logins.")

    def handle(self, *args, **options):
        verbose = options["verbosity"] > 1
        result = demo.seed(stdout=self.stdout if verbose else None)
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo portfolio ready: {result.created} release(s) created, "
                f"{result.skipped} already present."
            )
        )
        if not options["quiet_users"]:
            self.stdout.write(demo_logins())


def demo_logins() -> str:
    lines = [f"Demo logins (password for all: {demo.DEMO_PASSWORD}):"]
    for username, first, last, roles, teams in demo.DEMO_USERS:
        what = ", ".join(roles) + (f" — {', '.join(t.title() for t in teams)}" if teams else "")
        lines.append(f"  {username:<7} {first} {last} ({what})")
    return "\n".join(lines)
