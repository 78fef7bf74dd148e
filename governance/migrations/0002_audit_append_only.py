"""On PostgreSQL, refuse UPDATE, DELETE and TRUNCATE of audit events in the database itself,
so that raw SQL cannot rewrite history either. (SQLite relies on the ORM guard.)"""

from django.db import migrations

FORWARD = """
CREATE OR REPLACE FUNCTION governance_audit_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'audit events are append-only (% refused)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER governance_auditevent_no_update_delete
    BEFORE UPDATE OR DELETE ON governance_auditevent
    FOR EACH ROW EXECUTE FUNCTION governance_audit_append_only();
CREATE TRIGGER governance_auditevent_no_truncate
    BEFORE TRUNCATE ON governance_auditevent
    FOR EACH STATEMENT EXECUTE FUNCTION governance_audit_append_only();
"""

BACKWARD = """
DROP TRIGGER IF EXISTS governance_auditevent_no_truncate ON governance_auditevent;
DROP TRIGGER IF EXISTS governance_auditevent_no_update_delete ON governance_auditevent;
DROP FUNCTION IF EXISTS governance_audit_append_only();
"""


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FORWARD, params=None)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(BACKWARD, params=None)


class Migration(migrations.Migration):
    dependencies = [("governance", "0001_initial")]
    operations = [migrations.RunPython(forward, backward)]
