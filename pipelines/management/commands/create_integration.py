from django.core.management.base import BaseCommand, CommandError

from core.errors import DomainError
from pipelines.models import Integration, IntegrationProvider
from pipelines.services import integration_create, integration_secret_add


class Command(BaseCommand):
    help = (
        "Configure a webhook integration (GitHub, GitLab, Jenkins, Alertmanager) for services. "
        "Run again with the same name to add a secret for rotation: both verify until the old "
        "one is revoked (in the admin)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--provider", required=True, choices=IntegrationProvider.values)
        parser.add_argument("--name", required=True)
        parser.add_argument(
            "--service", action="append", required=True, dest="services", help="Service slug."
        )
        parser.add_argument("--secret", required=True, help="The webhook secret or token.")

    def handle(self, *args, provider, name, services, secret, **options):
        try:
            existing = Integration.objects.filter(name=name.strip()).first()
            if existing is None:
                integration = integration_create(
                    actor=None, provider=provider, name=name, service_slugs=services, secret=secret
                )
                self.stdout.write(
                    f"Created {integration.get_provider_display()} integration {name!r} for "
                    f"{', '.join(sorted(services))}. Webhook URL: "
                    f"/api/v1/webhooks/{provider}/"
                )
                return
            if existing.provider != provider:
                raise CommandError(
                    f"Integration {name!r} exists for provider {existing.provider}, not {provider}."
                )
            integration_secret_add(actor=None, integration=existing, secret=secret)
            self.stdout.write(
                f"Added a secret to integration {name!r}: old and new secrets both verify "
                "until the old one is revoked."
            )
        except DomainError as exc:
            raise CommandError(exc.message) from exc
