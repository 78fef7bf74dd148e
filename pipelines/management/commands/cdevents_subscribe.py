from django.core.management.base import BaseCommand, CommandError

from core.errors import DomainError
from pipelines.services import cdevent_subscription_save


class Command(BaseCommand):
    help = (
        "Subscribe a CDEvents consumer to the events Releasegate emits (docs/cdevents.md): "
        "deliveries are POSTed in CloudEvents binary mode, signed with the secret. Run again "
        "with the same name to change it (without --secret the secret is kept)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--name", required=True)
        parser.add_argument("--url", required=True, help="Where to POST the events.")
        parser.add_argument("--secret", default="", help="HMAC key of X-Releasegate-Signature.")
        parser.add_argument(
            "--type",
            action="append",
            default=[],
            dest="types",
            help="An event type prefix to send (repeatable; default: all), "
            "e.g. dev.cdevents.service. or dev.cdeventsx.releasegate-approval.",
        )
        parser.add_argument("--disable", action="store_true", help="Stop sending (kept).")

    def handle(self, *args, name, url, secret, types, disable, **options):
        try:
            subscription = cdevent_subscription_save(
                actor=None,
                name=name,
                url=url,
                secret=secret,
                event_types=types,
                enabled=not disable,
            )
        except DomainError as exc:
            raise CommandError(exc.message) from exc
        state = "enabled" if subscription.enabled else "disabled"
        kinds = ", ".join(subscription.event_types) or "every event type"
        self.stdout.write(f"CDEvents subscription {name!r} → {subscription.url}: {kinds}, {state}.")
