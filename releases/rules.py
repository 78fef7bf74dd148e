"""Object-level permissions (django-rules). Loaded by rules' autodiscovery.

- Every user holding a role reads releases; a user with no role (an outsider) sees nothing
  and gets 404s, so the existence of a release is not disclosed.
- Release managers edit and transition releases of services their team owns, and those they
  own; administrators everything.
- Machines (API tokens) act within their scopes and services.
"""

from __future__ import annotations

import rules

from core.roles import Role, has_role, user_roles


def _is_machine(user) -> bool:
    return getattr(user, "is_machine", False)


@rules.predicate
def is_administrator(user) -> bool:
    return bool(user and user.is_authenticated and not _is_machine(user)) and (
        user.is_superuser or has_role(user, Role.ADMINISTRATOR)
    )


@rules.predicate
def has_any_role(user) -> bool:
    return bool(user and user.is_authenticated and not _is_machine(user) and user_roles(user))


@rules.predicate
def is_release_manager(user) -> bool:
    return bool(user and user.is_authenticated) and has_role(user, Role.RELEASE_MANAGER)


def release_team_ids(release) -> set[int]:
    cached = getattr(release, "_team_ids", None)
    if cached is None:
        cached = {service.team_id for service in release.services.all()}
        release._team_ids = cached
    return cached


def user_team_ids(user) -> set[int]:
    cached = getattr(user, "_releasegate_team_ids", None)
    if cached is None:
        cached = set(user.teams.values_list("id", flat=True))
        user._releasegate_team_ids = cached
    return cached


@rules.predicate
def manages_release(user, release) -> bool:
    if release is None or _is_machine(user) or not has_role(user, Role.RELEASE_MANAGER):
        return False
    if release.owner_id == user.pk:
        return True
    return bool(release_team_ids(release) & user_team_ids(user))


def _token_predicate(scope: str):
    @rules.predicate(name=f"token_can_{scope}")
    def predicate(user, release=None) -> bool:
        if not _is_machine(user) or not user.has_scope(scope):
            return False
        if release is None:
            return True
        return bool({s.id for s in release.services.all()} & user.service_ids)

    return predicate


token_reads_releases = _token_predicate("releases:read")
token_writes_releases = _token_predicate("releases:write")


@rules.predicate
def reports_deployment_of_release(user, release) -> bool:
    """A CD token reporting a deployment (pipelines' DeploymentReporter, only built by the
    deployment service) moves the release it deploys: deploying, deployed, rolled back."""
    if not getattr(user, "reports_deployment", False) or release is None:
        return False
    if not user.has_scope("deployments:write"):
        return False
    return bool({s.id for s in release.services.all()} & user.service_ids)


rules.add_perm("releases.view_release", has_any_role | token_reads_releases)
rules.add_perm("releases.add_release", is_administrator | is_release_manager)
rules.add_perm(
    "releases.change_release", is_administrator | manages_release | token_writes_releases
)
rules.add_perm(
    "releases.transition_release",
    is_administrator | manages_release | reports_deployment_of_release,
)
rules.add_perm("releases.export_audit", has_any_role)
