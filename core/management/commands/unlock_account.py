"""manage.py unlock_account USERNAME --reason "…" [--ip ADDRESS]: end a login lockout early
(audited as the system; administrators can also use the admin's "Unlock" action)."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from core.accounts import account_unlock
from core.errors import DomainError


class Command(BaseCommand):
    help = "Clear the failed logins of a username (and/or an address) locked by django-axes."

    def add_arguments(self, parser):
        parser.add_argument("username", nargs="?", default="")
        parser.add_argument("--ip", default="", help="Also (or only) this client address.")
        parser.add_argument("--reason", required=True, help="Why; written to the audit trail.")

    def handle(self, *args, username: str, ip: str, reason: str, **options):
        try:
            cleared = account_unlock(actor=None, username=username, ip_address=ip, reason=reason)
        except DomainError as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(f"Unlocked: {cleared} lockout record(s) cleared.")
