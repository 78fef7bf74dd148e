"""Shared fixtures: named personas, each with what it may do.

With REQUIRE_SERVICES=1 (CI), tests marked ``postgres`` fail instead of skipping when the
database is not PostgreSQL.
"""

from __future__ import annotations

import os

import pytest
from django.db import connection


def _f():
    """The factories, imported lazily so that Django-free test runs can load this file."""
    from tests import factories

    return factories


def _role():
    from core.roles import Role

    return Role


def pytest_collection_modifyitems(config, items):
    skip_pg = pytest.mark.skip(reason="needs PostgreSQL (set DATABASE_URL)")
    on_pg = os.environ.get("DATABASE_URL", "").startswith(("postgres", "postgresql"))
    if on_pg or os.environ.get("REQUIRE_SERVICES") == "1":
        return
    for item in items:
        if "postgres" in item.keywords:
            item.add_marker(skip_pg)


@pytest.fixture(autouse=True)
def _audit_truncate_guard(request):
    """Keep the audit trail's TRUNCATE trigger on during every PostgreSQL test, but let
    pytest-django flush the tables after a transactional test (the flush uses TRUNCATE).

    Enabled at set-up (rolled back with the test transaction, or committed for transactional
    tests) and disabled at the teardown of transactional tests, which runs before the flush.
    """
    if "django_db" not in request.keywords or connection.vendor != "postgresql":
        yield
        return
    request.getfixturevalue("db")
    transactional = request.node.get_closest_marker("django_db").kwargs.get("transaction")
    with connection.cursor() as cursor:
        cursor.execute(_TRUNCATE_TRIGGER.format("ENABLE"))
    yield
    if transactional:
        with connection.cursor() as cursor:
            cursor.execute(_TRUNCATE_TRIGGER.format("DISABLE"))


@pytest.fixture(autouse=True)
def _audit_checkpoint_dir(request, tmp_path_factory):
    """Each database test exports its audit checkpoints to a directory of its own, so that
    verify_audit never reads the files of another test's (flushed) database."""
    if "django_db" not in request.keywords:
        yield
        return
    settings = request.getfixturevalue("settings")
    settings.AUDIT_CHECKPOINT_DIR = tmp_path_factory.mktemp("audit-checkpoints")
    yield


_TRUNCATE_TRIGGER = "ALTER TABLE governance_auditevent {} TRIGGER governance_auditevent_no_truncate"


@pytest.fixture
def require_postgres(db):
    if connection.vendor != "postgresql":
        pytest.fail("This test needs PostgreSQL: set DATABASE_URL=postgres://…")


@pytest.fixture
def team(db):
    return _f().TeamFactory(name="Payments", slug="payments")


@pytest.fixture
def other_team(db):
    return _f().TeamFactory(name="Identity", slug="identity")


@pytest.fixture
def service(team):
    return _f().ServiceFactory(
        name="payments-api", slug="payments-api", team=team, criticality="high"
    )


@pytest.fixture
def other_service(other_team):
    return _f().ServiceFactory(name="identity-api", slug="identity-api", team=other_team)


@pytest.fixture
def production(db):
    return _f().EnvironmentFactory(
        name="production", slug="production", order=4, is_production=True
    )


@pytest.fixture
def staging(db):
    return _f().EnvironmentFactory(name="staging", slug="staging", order=3)


@pytest.fixture
def release_manager(team):
    """Manages (edits, transitions) releases of the Payments team's services."""
    return _f().UserFactory(username="rita", roles=[_role().RELEASE_MANAGER], teams=[team])


@pytest.fixture
def other_release_manager(other_team):
    """A release manager of another team: reads Payments releases, cannot change them."""
    return _f().UserFactory(username="oscar", roles=[_role().RELEASE_MANAGER], teams=[other_team])


@pytest.fixture
def security_approver(db):
    """Signs off security gates; reads releases."""
    return _f().UserFactory(username="sam", roles=[_role().SECURITY_LEAD])


@pytest.fixture
def qa_lead(db):
    """Signs off QA gates; reads releases."""
    return _f().UserFactory(username="quinn", roles=[_role().QA_LEAD])


@pytest.fixture
def cab_member(db):
    """Votes on change requests."""
    return _f().UserFactory(username="carla", roles=[_role().CAB_MEMBER])


@pytest.fixture
def cab_chair(db):
    """Chairs CAB meetings, records decisions; also votes."""
    return _f().UserFactory(username="chris", roles=[_role().CAB_CHAIR, _role().CAB_MEMBER])


@pytest.fixture
def viewer(db):
    """A stakeholder: reads everything, changes nothing."""
    return _f().UserFactory(username="stella", roles=[_role().STAKEHOLDER])


@pytest.fixture
def administrator(db):
    """May do everything a release manager may, for every team."""
    return _f().UserFactory(username="ada", roles=[_role().ADMINISTRATOR])


@pytest.fixture
def outsider(db):
    """Logged in but holds no role: sees nothing (404s)."""
    return _f().UserFactory(username="otto")
