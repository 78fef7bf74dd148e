from django.core.management.base import BaseCommand, CommandError

from core.errors import DomainError
from pipelines.models import Integration, IntegrationProvider
from pipelines.services import integration_api_set, integration_create, integration_secret_add


class Command(BaseCommand):
    help = (
        "Configure a webhook integration (GitHub, GitLab, Jenkins, Alertmanager) for services. "
        "Run again with the same name to add a secret for rotation (both verify until the old "
        "one is revoked in the admin), or to change the API URL, token or gate timeout. "
        "GitHub and GitLab integrations with an API token answer held deployments and publish "
        "commit statuses (docs/deployment-checks.md)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--provider", required=True, choices=IntegrationProvider.values)
        parser.add_argument("--name", required=True)
        parser.add_argument(
            "--service", action="append", dest="services", default=[], help="Service slug."
        )
        parser.add_argument("--secret", help="The webhook secret or token.")
        parser.add_argument(
            "--api-url",
            help="API base URL (default https://api.github.com or https://gitlab.com/api/v4; "
            "GitHub Enterprise Server: https://HOST/api/v3).",
        )
        parser.add_argument(
            "--api-token",
            help="Token for the provider's API (GitHub App installation or fine-grained token, "
            "GitLab access token). Stored as a secret, never shown again.",
        )
        parser.add_argument("--github-app-id", help="GitHub App id (instead of --api-token).")
        parser.add_argument(
            "--github-app-key-file",
            help="Path of the GitHub App's private key (PEM); read once, stored write-only.",
        )
        parser.add_argument(
            "--github-app-installation-id",
            default="",
            help="Installation used for commit statuses (protection rules name their own).",
        )
        parser.add_argument(
            "--gate-timeout",
            type=int,
            dest="gate_timeout",
            help="Minutes a held deployment may wait for allow before it is rejected.",
        )

    def handle(self, *args, provider, name, services, secret, **options):
        api_url = options.get("api_url")
        api_token = options.get("api_token")
        timeout = options.get("gate_timeout")
        github_app = None
        if options.get("github_app_id") or options.get("github_app_key_file"):
            if not (options.get("github_app_id") and options.get("github_app_key_file")):
                raise CommandError("A GitHub App needs --github-app-id and --github-app-key-file.")
            try:
                with open(options["github_app_key_file"], encoding="utf-8") as handle:
                    key = handle.read()
            except OSError as exc:
                raise CommandError(f"Cannot read the key file: {exc.strerror}.") from None
            github_app = (
                options["github_app_id"],
                key,
                options.get("github_app_installation_id") or "",
            )
        try:
            existing = Integration.objects.filter(name=name.strip()).first()
            if existing is None:
                if not secret or not services:
                    raise CommandError("A new integration needs --secret and --service.")
                integration = integration_create(
                    actor=None,
                    provider=provider,
                    name=name,
                    service_slugs=services,
                    secret=secret,
                    api_url=api_url or "",
                    api_token=api_token or "",
                    gate_timeout_minutes=timeout,
                    github_app=github_app,
                )
                self.stdout.write(
                    f"Created {integration.get_provider_display()} integration {name!r} for "
                    f"{', '.join(sorted(services))}. Webhook URL: "
                    f"/api/v1/webhooks/{provider}/"
                )
                if integration.api_token:
                    self.stdout.write(
                        f"API: {integration.api_base_url} (token {integration.api_token_hint}…)."
                    )
                if integration.is_github_app:
                    self.stdout.write(
                        f"API: {integration.api_base_url} as GitHub App "
                        f"{integration.github_app_id}."
                    )
                return
            if existing.provider != provider:
                raise CommandError(
                    f"Integration {name!r} exists for provider {existing.provider}, not {provider}."
                )
            if secret:
                integration_secret_add(actor=None, integration=existing, secret=secret)
                self.stdout.write(
                    f"Added a secret to integration {name!r}: old and new secrets both verify "
                    "until the old one is revoked."
                )
            changes_api = api_url is not None or api_token is not None or timeout is not None
            if changes_api or github_app is not None:
                updated = integration_api_set(
                    actor=None,
                    integration=existing,
                    api_url=api_url,
                    api_token=api_token,
                    gate_timeout_minutes=timeout,
                    github_app=github_app,
                )
                self.stdout.write(
                    f"Updated the API settings of integration {name!r}: {updated.api_base_url}"
                    + (f" (token {updated.api_token_hint}…)." if updated.api_token else ".")
                )
            if not secret and not changes_api and github_app is None:
                raise CommandError("Nothing to change: give --secret or --api-url/--api-token.")
        except DomainError as exc:
            raise CommandError(exc.message) from exc
