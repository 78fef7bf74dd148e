from django.core.management.base import BaseCommand, CommandError

from core.errors import DomainError
from pipelines.models import TokenScope
from pipelines.services import DEFAULT_SCOPES, api_token_create


class Command(BaseCommand):
    help = "Create an API token for a CI/CD system. The token is printed once, on the last line."

    def add_arguments(self, parser):
        parser.add_argument("--name", required=True)
        parser.add_argument(
            "--service", action="append", required=True, dest="services", help="Service slug."
        )
        parser.add_argument(
            "--scope",
            action="append",
            dest="scopes",
            choices=TokenScope.values,
            help=f"Repeatable. Default: {' '.join(DEFAULT_SCOPES)}.",
        )

    def handle(self, *args, name, services, scopes, **options):
        try:
            token, raw = api_token_create(
                actor=None, name=name, service_slugs=services, scopes=scopes
            )
        except DomainError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(
            f"Created token {token.name!r} for {', '.join(sorted(services))} "
            f"with scopes {', '.join(token.scopes)}. Store it now: it is not shown again."
        )
        self.stdout.write(raw)
