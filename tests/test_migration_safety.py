"""Upgrade safety: new migrations take no long locks on the big tables, stay compatible with
the release still running while they apply, and a database of the previous release, with its
data, migrates to head with that data intact (docs/operations.md, "Upgrade safety").

While a release rolls out, the previous one keeps serving on the same database (the migration
Job runs first, old pods serve until new ones are ready: docs/kubernetes.md). So a migration
must neither hold an ACCESS EXCLUSIVE lock on a big table for long (every request touching it
queues behind the lock) nor remove or rename what the previous release still reads.

The review reads each migration newer than the previous release's (BASELINE) operation by
operation, against the project state just before it, without a database: the same findings on
SQLite and PostgreSQL. Column types are compared as PostgreSQL would create them.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import dj_database_url
import psycopg2
import pytest
from django.contrib.postgres.operations import AddConstraintNotValid, AddIndexConcurrently
from django.db import models
from django.db.backends.postgresql.base import DatabaseWrapper as PostgreSQLWrapper
from django.db.migrations import operations as ops
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.state import ProjectState

ROOT = Path(__file__).resolve().parent.parent

# The last landed release: the latest migration of each app at commit 649fe3b. A database in
# production is at this state when the next release's migrations run.
BASELINE_COMMIT = "649fe3b"
BASELINE = {
    "core": "0001_initial",
    "releases": "0012_admin_plurals",
    "governance": "0007_gate_policy_promotion_path",
    "pipelines": "0013_retention_summaries",
    "dashboards": "0007_refresh_metrics_facts_schedule",
}
PROJECT_APPS = {"core", "releases", "governance", "pipelines", "dashboards", "demo"}

# Tables that grow with CI traffic, deliveries and time: millions of rows in a busy
# installation, so a lock held while the table is rewritten, scanned or indexed stops ingest
# and the pages for minutes.
BIG_TABLES = {
    "pipelines.pipelinerun",
    "pipelines.pipelinecheck",
    "pipelines.webhookdelivery",
    "pipelines.artefact",
    "pipelines.artefacttag",
    "pipelines.rundaysummary",
    "pipelines.verificationsample",
    "core.auditevent",
    "core.notification",
    "core.notificationattempt",
    "releases.deployment",
    "dashboards.deliveryfact",
}

# Findings accepted after review: (app, migration, operation as Django describes it) -> why
# it is safe. Each entry must still match a finding (stale entries fail the test). Listed
# in docs/operations.md, "Upgrade safety".
ALLOWED: dict[tuple[str, str, str], str] = {
    ("core", "0002_audit_keys_checkpoints", "Add field key_id to auditevent"): (
        "a constant default ('') on PostgreSQL 11 and later is stored in the catalogue: no "
        "rewrite and no scan, the ACCESS EXCLUSIVE lock lasts a catalogue update (bounded by "
        "the migration Job's lock_timeout); the column keeps its database default "
        "(db_default), so the release still running goes on inserting events without it"
    ),
}


@dataclass(frozen=True)
class Finding:
    app: str
    migration: str
    operation: str
    reason: str

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.app, self.migration, self.operation)

    def __str__(self) -> str:
        return f"{self.app}.{self.migration}: {self.operation}: {self.reason}"


# Column types as PostgreSQL creates them, without connecting to one.
_PG = PostgreSQLWrapper(
    {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": "migration_review",
        "USER": "",
        "PASSWORD": "",
        "HOST": "",
        "PORT": "",
        "OPTIONS": {},
        "TIME_ZONE": None,
        "CONN_MAX_AGE": 0,
        "CONN_HEALTH_CHECKS": False,
        "AUTOCOMMIT": True,
        "ATOMIC_REQUESTS": False,
        "TEST": {},
    },
    alias="migration_review",
)

_VARCHAR = re.compile(r"^varchar\((\d+)\)$")
# Gone or renamed under the previous release's feet, whatever the table's size.
_INCOMPATIBLE = (
    ops.RemoveField,
    ops.RenameField,
    ops.RenameModel,
    ops.DeleteModel,
    ops.AlterModelTable,
)


def _table(state: ProjectState, app: str, model: str) -> str:
    model_state = state.models[(app, model.lower())]
    return model_state.options.get("db_table") or f"{app}_{model.lower()}"


def _big_table_names(state: ProjectState) -> dict[str, str]:
    names = {}
    for label in BIG_TABLES:
        app, model = label.split(".")
        if (app, model) in state.models:
            names[_table(state, app, model)] = label
    return names


def _is_big(app: str, model: str) -> bool:
    return f"{app}.{model.lower()}" in BIG_TABLES


def _widening(old: str, new: str) -> bool:
    """varchar(n) to varchar(m >= n) or text: PostgreSQL changes the catalogue only."""
    old_match = _VARCHAR.match(old)
    if not old_match:
        return False
    if new == "text":
        return True
    new_match = _VARCHAR.match(new)
    return bool(new_match) and int(new_match.group(1)) >= int(old_match.group(1))


def _db_type(field: models.Field) -> str | None:
    if field.is_relation:
        return None
    return field.db_type(_PG)


def _relation_target(field: models.Field) -> tuple[str, str] | None:
    if not field.is_relation:
        return None
    path, _args, kwargs = field.deconstruct()[1:]
    return (path, str(kwargs.get("to", "")).lower())


def _has_default(field: models.Field) -> bool:
    return (field.has_default() and field.default is not None) or (
        field.db_default is not models.NOT_PROVIDED
    )


def _model_of(operation) -> str | None:
    """The model an operation changes, lower-cased (`name` for the *_together options)."""
    if isinstance(operation, ops.AlterUniqueTogether | ops.AlterIndexTogether):
        return operation.name_lower
    model = getattr(operation, "model_name", None)
    return model.lower() if model else None


def _sql_texts(operation: ops.RunSQL) -> list[str]:
    statements = operation.sql if isinstance(operation.sql, list | tuple) else [operation.sql]
    return [s[0] if isinstance(s, list | tuple) else str(s) for s in statements]


def review_operation(app: str, operation, state: ProjectState) -> list[str]:
    """Why this operation, applied to `state`, is unsafe while the previous release runs (an
    empty list when it is safe)."""
    reasons: list[str] = []
    if isinstance(operation, _INCOMPATIBLE):
        reasons.append(
            "the previous release still reads and writes it while this one rolls out: "
            "stop using it in one release, remove or rename it in the next"
        )
        return reasons
    if isinstance(operation, ops.RunSQL):
        for sql in _sql_texts(operation):
            text = " ".join(sql.lower().split())
            for table in _big_table_names(state):
                if not re.search(rf'\b"?{re.escape(table)}"?\b', text):
                    continue
                if re.search(r"\balter table\b", text):
                    reasons.append(f"ALTER TABLE on the big table {table}")
                if re.search(r"\bcreate (unique )?index\b", text) and "concurrently" not in text:
                    reasons.append(f"CREATE INDEX without CONCURRENTLY on {table}")
                if re.search(r"^\s*(update|delete)\b|;\s*(update|delete)\b", text):
                    reasons.append(f"UPDATE/DELETE over the big table {table} in one transaction")
        return reasons
    model = _model_of(operation)
    if model is None or not _is_big(app, model):
        return reasons
    if isinstance(operation, ops.AddField):
        field = operation.field
        if field.many_to_many:
            return reasons  # a new table
        if field.is_relation:
            reasons.append(
                "a foreign key is validated against every row, and its index is built "
                "without CONCURRENTLY"
            )
        elif field.unique or field.db_index:
            reasons.append("its index is built without CONCURRENTLY, blocking writes")
        if _has_default(field) or not field.null:
            reasons.append(
                "a column with a default or NOT NULL: ACCESS EXCLUSIVE while it is added "
                "(a table rewrite before PostgreSQL 11 or with a volatile default); add it "
                "nullable without a default, backfill in batches, then constrain"
            )
    elif isinstance(operation, ops.AlterField):
        old = state.models[(app, model)].fields[operation.name]
        new = operation.field
        if _relation_target(old) != _relation_target(new):
            reasons.append("changes a relation: a new constraint validated against every row")
        old_type, new_type = _db_type(old), _db_type(new)
        if old_type != new_type and not (old_type and new_type and _widening(old_type, new_type)):
            reasons.append(
                f"changes the column type ({old_type} -> {new_type}): the table is rewritten "
                "under ACCESS EXCLUSIVE"
            )
        if old.null and not new.null:
            reasons.append("SET NOT NULL scans the whole table under ACCESS EXCLUSIVE")
        if (new.unique and not old.unique) or (
            new.db_index and not old.db_index and not new.unique
        ):
            reasons.append("builds an index without CONCURRENTLY, blocking writes")
    elif isinstance(operation, AddIndexConcurrently | AddConstraintNotValid):
        pass  # built without blocking writes / validated later by ValidateConstraint
    elif isinstance(operation, ops.AddIndex):
        reasons.append("builds an index without CONCURRENTLY (use AddIndexConcurrently)")
    elif isinstance(operation, ops.AddConstraint):
        reasons.append(
            "a constraint is validated (or its unique index built) against every row under "
            "lock; add it NOT VALID with RunSQL and VALIDATE it separately, or build the unique "
            "index CONCURRENTLY first"
        )
    elif isinstance(operation, ops.AlterUniqueTogether | ops.AlterIndexTogether):
        reasons.append("builds an index without CONCURRENTLY")
    return reasons


def _loader() -> MigrationLoader:
    return MigrationLoader(None, ignore_no_migrations=True)


def new_migrations(loader: MigrationLoader) -> list[tuple[str, str]]:
    """The project's migrations that the previous release did not have, in apply order."""
    graph = loader.graph
    known = set()
    for app, name in BASELINE.items():
        known.update(graph.forwards_plan((app, name)))
    plan = []
    for leaf in sorted(graph.leaf_nodes()):
        for node in graph.forwards_plan(leaf):
            if node[0] in PROJECT_APPS and node not in known and node not in plan:
                plan.append(node)
    return plan


def review(loader: MigrationLoader) -> list[Finding]:
    findings = []
    created: set[tuple[str, str]] = set()  # tables new since the baseline: empty on upgrade
    for app, name in new_migrations(loader):
        state = loader.project_state((app, name), at_end=False)
        migration = loader.graph.nodes[(app, name)]
        for operation in migration.operations:
            # SeparateDatabaseAndState: what runs on the database is what locks.
            for db_operation in getattr(operation, "database_operations", [operation]):
                if isinstance(db_operation, ops.CreateModel):
                    created.add((app, db_operation.name_lower))
                if (app, _model_of(db_operation)) not in created:
                    for reason in review_operation(app, db_operation, state):
                        findings.append(Finding(app, name, db_operation.describe(), reason))
            operation.state_forwards(app, state)
    return findings


# --- the review of the real migrations ----------------------------------------------------------


def test_the_baseline_names_migrations_that_exist():
    loader = _loader()
    for app, name in BASELINE.items():
        assert (app, name) in loader.graph.nodes, f"{app}.{name} (baseline) is gone"
    apps_with_migrations = {app for app, _ in loader.graph.nodes if app in PROJECT_APPS}
    # A new app's migrations are all new: they are reviewed, and the upgrade test starts it
    # from nothing.
    assert set(BASELINE) <= apps_with_migrations
    state = loader.project_state()
    for label in BIG_TABLES:
        assert tuple(label.split(".")) in state.models, f"{label} in BIG_TABLES is no model"


def test_new_migrations_take_no_long_locks_and_keep_the_previous_release_working():
    findings = review(_loader())
    unexplained = [f for f in findings if f.key not in ALLOWED]
    assert not unexplained, (
        "Migrations newer than the last release that lock a big table or break the release "
        "still running (make them online-safe, or add them to ALLOWED in this file and to "
        'docs/operations.md "Upgrade safety" with the reason they are safe):\n'
        + "\n".join(f"  {f}" for f in unexplained)
    )
    stale = set(ALLOWED) - {f.key for f in findings}
    assert not stale, f"ALLOWED entries that match no finding any more: {sorted(stale)}"


# --- the rules, on operations made up for the purpose ---------------------------------------------


@pytest.fixture(scope="module")
def head_state() -> ProjectState:
    return _loader().project_state()


def _reasons(operation, state, app="pipelines"):
    return review_operation(app, operation, state.clone())


def test_adding_a_nullable_column_without_default_to_a_big_table_is_safe(head_state):
    op = ops.AddField("pipelinerun", "note", models.CharField(max_length=20, null=True))
    assert _reasons(op, head_state) == []


def test_adding_a_column_with_a_default_to_a_big_table_is_flagged(head_state):
    op = ops.AddField("pipelinerun", "note", models.CharField(max_length=20, default=""))
    assert any("default" in r for r in _reasons(op, head_state))
    # On a small table the same is fine.
    small = ops.AddField("team", "note", models.CharField(max_length=20, default=""))
    assert _reasons(small, head_state, app="releases") == []


def test_adding_a_foreign_key_or_an_indexed_column_to_a_big_table_is_flagged(head_state):
    fk = ops.AddField(
        "pipelinerun",
        "team",
        models.ForeignKey("releases.Team", on_delete=models.SET_NULL, null=True),
    )
    assert any("foreign key" in r for r in _reasons(fk, head_state))
    indexed = ops.AddField("pipelinecheck", "k", models.IntegerField(null=True, db_index=True))
    assert any("CONCURRENTLY" in r for r in _reasons(indexed, head_state))


def test_changing_choices_or_widening_a_varchar_is_safe(head_state):
    choices = ops.AlterField(
        "pipelinerun",
        "provider",
        models.CharField(max_length=20, choices=[("github_actions", "GitHub"), ("new", "New")]),
    )
    assert _reasons(choices, head_state) == []
    wider = ops.AlterField("pipelinerun", "external_id", models.CharField(max_length=400))
    assert _reasons(wider, head_state) == []
    to_text = ops.AlterField("pipelinerun", "external_id", models.TextField())
    assert _reasons(to_text, head_state) == []


def test_type_changes_not_null_and_new_indexes_on_a_big_table_are_flagged(head_state):
    narrower = ops.AlterField("pipelinerun", "external_id", models.CharField(max_length=50))
    assert any("column type" in r for r in _reasons(narrower, head_state))
    retyped = ops.AlterField("pipelinerun", "attempt", models.BigIntegerField(default=1))
    assert any("column type" in r for r in _reasons(retyped, head_state))
    not_null = ops.AlterField("pipelinerun", "started_at", models.DateTimeField())
    assert any("NOT NULL" in r for r in _reasons(not_null, head_state))
    indexed = ops.AlterField("pipelinerun", "ref", models.CharField(max_length=255, db_index=True))
    assert any("CONCURRENTLY" in r for r in _reasons(indexed, head_state))


def test_indexes_must_be_built_concurrently_on_a_big_table(head_state):
    index = models.Index(fields=["ref"], name="run_ref_idx")
    assert _reasons(ops.AddIndex("pipelinerun", index), head_state)
    assert _reasons(AddIndexConcurrently("pipelinerun", index), head_state) == []
    constraint = models.UniqueConstraint(fields=["ref", "version"], name="run_ref_version")
    assert _reasons(ops.AddConstraint("pipelinerun", constraint), head_state)
    together = ops.AlterUniqueTogether("pipelinerun", {("ref", "version")})
    assert any("CONCURRENTLY" in r for r in _reasons(together, head_state))
    check = models.CheckConstraint(condition=models.Q(attempt__gte=1), name="run_attempt")
    assert _reasons(AddConstraintNotValid("pipelinerun", check), head_state) == []


def test_removing_or_renaming_breaks_the_running_release_on_any_table(head_state):
    for op in (
        ops.RemoveField("team", "name"),
        ops.RenameField("team", "name", "title"),
        ops.DeleteModel("team"),
        ops.RenameModel("team", "squad"),
    ):
        assert any("previous release" in r for r in _reasons(op, head_state, app="releases")), op


def test_raw_sql_on_a_big_table_is_read(head_state):
    assert _reasons(ops.RunSQL("CREATE INDEX run_x ON pipelines_pipelinerun (ref)"), head_state)
    assert (
        _reasons(
            ops.RunSQL("CREATE INDEX CONCURRENTLY run_x ON pipelines_pipelinerun (ref)"),
            head_state,
        )
        == []
    )
    assert _reasons(ops.RunSQL("UPDATE pipelines_pipelinerun SET ref = ''"), head_state)
    assert _reasons(ops.RunSQL('ALTER TABLE "governance_auditevent" ADD x int'), head_state)
    assert _reasons(ops.RunSQL("UPDATE releases_team SET name = name"), head_state) == []


def test_a_new_migration_is_reviewed_against_the_state_before_it(head_state):
    """review() walks the migrations after the baseline; a made-up migration after the head
    of pipelines is read like a real one would be."""
    loader = _loader()
    (leaf,) = [n for n in loader.graph.leaf_nodes() if n[0] == "pipelines"]

    class Migration:
        operations = [
            ops.AddField("pipelinerun", "note", models.TextField(null=True)),
            ops.AddIndex("pipelinerun", models.Index(fields=["note"], name="run_note_idx")),
        ]

    state = loader.project_state(leaf)
    found = []
    for operation in Migration.operations:
        found += review_operation("pipelines", operation, state)
        operation.state_forwards("pipelines", state)
    assert found == ["builds an index without CONCURRENTLY (use AddIndexConcurrently)"]


def test_a_table_created_since_the_baseline_is_empty_and_not_reviewed_for_locks(monkeypatch):
    """Indexes and defaults on a table the new migrations create cost nothing: it is empty
    when they run. Reviewed from an older baseline, pipelines.0010 (which creates ArtefactTag,
    a big table, then adds its foreign keys and unique constraint) has no finding, while
    pipelines.0008 (indexes on the existing pipeline runs table) has."""
    monkeypatch.setitem(BASELINE, "pipelines", "0007_notification_external_destination")
    findings = [f for f in review(_loader()) if f.app == "pipelines"]
    migrations = {f.migration for f in findings}
    assert "0008_newest_first_indexes" in migrations
    assert "0010_artefact_tags" not in migrations


# --- the previous release's database, with data, migrated to head -------------------------------

# Run with DATABASE_URL pointing at a fresh database: migrate it to the baseline (the
# project's apps at BASELINE, the others at their latest), then write rows through the
# historical models of that state, and print what was written.
SEED = r"""
import datetime, json
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, models
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.recorder import MigrationRecorder

BASELINE = json.loads(__BASELINE__)
PROJECT_APPS = set(json.loads(__PROJECT_APPS__))
executor = MigrationExecutor(connection)
graph = executor.loader.graph
targets = [(app, name) for app, name in BASELINE.items()]
# Django's and the libraries' apps at their latest; a project app newer than the baseline
# is left out (its tables come with the upgrade).
targets += [leaf for leaf in graph.leaf_nodes() if leaf[0] not in PROJECT_APPS]
executor.migrate(targets)
applied = MigrationRecorder(connection).applied_migrations()
for app, name in BASELINE.items():
    mine = sorted(n for a, n in applied if a == app)
    assert mine[-1] == name, (app, mine[-1], name)
apps = executor.loader.project_state(targets).apps
now = datetime.datetime(2026, 11, 30, 12, 0, tzinfo=datetime.timezone.utc)
written = {}

def make(model_label, /, **values):
    # Required fields the data does not name get a plain value of their type, so the seed
    # keeps working for models of a later baseline.
    model = apps.get_model(model_label)
    for field in model._meta.concrete_fields:
        if field.attname in values or field.name in values or field.primary_key:
            continue
        if field.null or field.has_default() or field.db_default is not models.NOT_PROVIDED:
            continue
        if isinstance(field, (models.DateTimeField,)):
            values[field.name] = now
        elif isinstance(field, models.DateField):
            values[field.name] = now.date()
        elif isinstance(field, (models.IntegerField, models.FloatField, models.DecimalField)):
            values[field.name] = 1
        elif isinstance(field, models.BooleanField):
            values[field.name] = False
        elif isinstance(field, models.JSONField):
            values[field.name] = {}
        elif isinstance(field, (models.CharField, models.TextField)):
            values[field.name] = "x"
    obj = model.objects.create(**values)
    written.setdefault(model_label, {})[obj.pk] = {
        f.attname: getattr(obj, f.attname) for f in model._meta.concrete_fields
    }
    return obj

user = make("auth.User", username="upgrade-rita", email="rita@example.com", password="!")
team = make("releases.Team", name="Payments", slug="payments")
api = make("releases.Service", name="payments-api", slug="payments-api", team=team,
           criticality="high")
web = make("releases.Service", name="checkout-web", slug="checkout-web", team=team)
staging = make("releases.Environment", name="staging", slug="staging", order=3)
production = make("releases.Environment", name="production", slug="production", order=4,
                  is_production=True)
release = make("releases.Release", name="Payments 4.2", version="4.2.0", state="in_progress",
               risk_level="high", owner=user, window_start=now,
               window_end=now + datetime.timedelta(hours=2), description="Upgrade drill")
release.services.add(api, web)
make("releases.Deployment", release=release, service=api, environment=staging,
     version="4.2.0", state="succeeded", provider="argo", external_id="dep-1",
     started_at=now, finished_at=now + datetime.timedelta(minutes=5))
make("governance.GateCheck", release=release, policy_name="standard", policy_version=1,
     key="pre_approval:ci_green", stage="pre_approval", kind="ci_green",
     label="CI build green", requirement={"min_coverage": 80}, status="pending")
run = make("pipelines.PipelineRun", service=api, provider="github_actions",
           external_id="run-4242", attempt=1, status="succeeded", commit_sha="a" * 40,
           ref="refs/heads/main", version="4.2.0", url="https://ci.example/run/4242",
           started_at=now, finished_at=now + datetime.timedelta(minutes=7), gates_pending=True,
           created_at=now, updated_at=now)
make("pipelines.PipelineCheck", run=run, kind="tests", name="unit", status="passed",
     metrics={"passed": 120, "failed": 0})
make("pipelines.PipelineCheck", run=run, kind="coverage", name="", status="passed",
     metrics={"coverage": 87.5})
make("core.Notification", recipient=user, event="gate_failed", channel="email",
     idempotency_key="upgrade-drill-1", subject="A gate failed", body="CI is red",
     status="pending", next_attempt_at=now, created_at=now)
written["auth.User"][user.pk].pop("last_login", None)
written["releases.Release"][release.pk]["services"] = sorted([api.pk, web.pk])
print(json.dumps(written, cls=DjangoJSONEncoder, sort_keys=True))
"""

# Run at head: read back the same rows through today's models.
CHECK = r"""
import json
from django.apps import apps
from django.core.serializers.json import DjangoJSONEncoder

written = json.loads(__WRITTEN__)
found = {}
for label, rows in written.items():
    model = apps.get_model(label)
    columns = {f.attname for f in model._meta.concrete_fields}
    for pk, values in rows.items():
        obj = model.objects.get(pk=int(pk))
        row = {name: getattr(obj, name) for name in values if name in columns}
        if "services" in values:
            row["services"] = sorted(obj.services.values_list("pk", flat=True))
        found.setdefault(label, {})[pk] = row
print(json.dumps(found, cls=DjangoJSONEncoder, sort_keys=True))
"""


@pytest.mark.postgres
def test_the_previous_releases_database_with_data_migrates_to_head(tmp_path):
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres", "postgresql")):
        pytest.skip("needs PostgreSQL (set DATABASE_URL)")
    base = dj_database_url.parse(url)
    name = f"{base['NAME']}_upgrade"
    auth = base["USER"] + (f":{base['PASSWORD']}" if base.get("PASSWORD") else "")
    server = f"postgres://{auth}@{base['HOST'] or '127.0.0.1'}:{base['PORT'] or 5432}"

    def admin(statement: str) -> None:
        conn = psycopg2.connect(f"{server}/postgres")
        conn.autocommit = True
        try:
            with conn.cursor() as cursor:
                cursor.execute(statement)
        finally:
            conn.close()

    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": f"{server}/{name}",
        "RELEASEGATE_VAR_DIR": str(tmp_path),
    }
    env.pop("REDIS_URL", None)  # nothing here needs Redis

    def manage(*args: str) -> str:
        result = subprocess.run(
            ["timeout", "-s", "KILL", "300", sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
        )
        assert result.returncode == 0, f"manage.py {args[0]}:\n{result.stdout}\n{result.stderr}"
        return result.stdout

    def shell(code: str) -> dict:
        return json.loads(manage("shell", "--no-imports", "-c", code).strip().splitlines()[-1])

    admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin(f'CREATE DATABASE "{name}"')
    try:
        seed = SEED.replace("__BASELINE__", repr(json.dumps(BASELINE)))
        seed = seed.replace("__PROJECT_APPS__", repr(json.dumps(sorted(PROJECT_APPS))))
        written = shell(seed)
        manage("migrate", "--noinput", "-v0")
        manage("migrate", "--check")
        found = shell(CHECK.replace("__WRITTEN__", repr(json.dumps(written))))
    finally:
        admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    assert set(found) == set(written)
    for label, rows in written.items():
        for pk, values in rows.items():
            survived = found[label][pk]
            lost = {k: v for k, v in values.items() if k in survived and survived[k] != v}
            assert not lost, f"{label} {pk}: {lost} became {[survived[k] for k in lost]}"
