from django.core.management.base import BaseCommand, CommandError

from core.errors import DomainError
from pipelines.services import api_token_revoke


class Command(BaseCommand):
    help = "Revoke an API token by name."

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument("--reason", default="")

    def handle(self, *args, name, reason, **options):
        try:
            token = api_token_revoke(actor=None, name=name, reason=reason)
        except DomainError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(f"Token {token.name!r} revoked at {token.revoked_at:%Y-%m-%d %H:%M:%S}.")
