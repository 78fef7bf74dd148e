"""manage.py grant_app_role ROLE: give the role the web and workers connect as only what the
application needs (PostgreSQL), after `migrate` has run as the owning role.

The owner (which runs migrations and owns the tables and the audit trail's append-only
trigger) and the application role are separate: the application role reads and writes rows,
may only append to the audit trail, and — not owning the tables — can neither disable the
trigger nor alter or truncate a table. Idempotent: run it after every `migrate`.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from core.models import AuditChainHead, AuditCheckpoint, AuditEvent


class Command(BaseCommand):
    help = "Grant the application role row access, and on the audit trail append only."

    def add_arguments(self, parser):
        parser.add_argument("role", help="The PostgreSQL role the web and workers use.")

    def handle(self, *args, role: str, **options):
        if connection.vendor != "postgresql":
            raise CommandError("grant_app_role is for PostgreSQL.")
        qn = connection.ops.quote_name
        events = qn(AuditEvent._meta.db_table)
        checkpoints = qn(AuditCheckpoint._meta.db_table)
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role])
            if cursor.fetchone() is None:
                raise CommandError(f"No such role: {role}.")
            if connection.settings_dict["USER"] == role:
                raise CommandError("Run this as the owning role, not as the application role.")
            r = qn(role)
            for statement in (
                f"GRANT USAGE ON SCHEMA public TO {r}",
                f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {r}",
                f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {r}",
                # The trail is append-only for the application (the trigger refuses it too).
                f"REVOKE UPDATE, DELETE, TRUNCATE ON {events} FROM {r}",
                f"REVOKE UPDATE, DELETE, TRUNCATE ON {checkpoints} FROM {r}",
                f"REVOKE TRUNCATE ON ALL TABLES IN SCHEMA public FROM {r}",
            ):
                cursor.execute(statement)
        self.stdout.write(
            f"{role}: rows of every table, append only on {AuditEvent._meta.db_table} and "
            f"{AuditCheckpoint._meta.db_table} "
            f"(and {AuditChainHead._meta.db_table} advanced by upsert); owns nothing."
        )
