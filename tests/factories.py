"""factory_boy factories shared by every app's tests."""

from __future__ import annotations

from datetime import timedelta

import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.utils import timezone

from releases.models import Environment, Release, RollbackPlan, ScopeItem, Service, Team


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.test")
    password = factory.django.Password("pw-for-tests")

    @factory.post_generation
    def roles(self, create, extracted, **kwargs):
        for name in extracted or []:
            self.groups.add(Group.objects.get_or_create(name=name)[0])

    @factory.post_generation
    def teams(self, create, extracted, **kwargs):
        for team in extracted or []:
            team.members.add(self)


class TeamFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Team
        django_get_or_create = ("slug",)

    name = factory.Sequence(lambda n: f"Team {n}")
    slug = factory.Sequence(lambda n: f"team-{n}")


class ServiceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Service
        django_get_or_create = ("slug",)

    name = factory.Sequence(lambda n: f"service-{n}")
    slug = factory.LazyAttribute(lambda s: s.name)
    team = factory.SubFactory(TeamFactory)
    criticality = "medium"


class EnvironmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Environment
        django_get_or_create = ("slug",)

    name = factory.Sequence(lambda n: f"env{n}")
    slug = factory.LazyAttribute(lambda e: e.name)
    order = factory.Sequence(lambda n: n)
    is_production = False


class ReleaseFactory(factory.django.DjangoModelFactory):
    """A draft release with one service. Use ``ready_release`` for one that can be planned."""

    class Meta:
        model = Release
        skip_postgeneration_save = True

    name = factory.Sequence(lambda n: f"Release {n}")
    version = factory.Sequence(lambda n: f"1.{n}.0")
    release_type = "minor"
    risk_level = "low"
    owner = None
    window_start = factory.LazyFunction(lambda: timezone.now() + timedelta(days=2))
    window_end = factory.LazyAttribute(lambda r: r.window_start + timedelta(hours=2))

    @factory.post_generation
    def services(self, create, extracted, **kwargs):
        self.services.set(extracted or [ServiceFactory()])


def make_ready(release: Release) -> Release:
    """Give a draft release what planning needs: scope and a rollback plan."""
    ScopeItem.objects.create(release=release, title="Checkout redesign", external_key="PAY-1")
    RollbackPlan.objects.create(release=release, steps="Redeploy the previous image.")
    return release


def force_state(release: Release, state: str) -> Release:
    """Put a release in a state directly, for tests of transitions from that state.

    The state field is protected, so this writes the column with a queryset update."""
    Release.objects.filter(pk=release.pk).update(state=state)
    return Release.objects.get(pk=release.pk)


# --- dashboards: deployments and pipeline runs for metrics and calendar tests ----------------


class DeploymentFactory(factory.django.DjangoModelFactory):
    """A finished, successful deployment; pass ``state`` and the times to shape history."""

    class Meta:
        model = "releases.Deployment"

    service = factory.SubFactory(ServiceFactory)
    environment = factory.SubFactory(EnvironmentFactory)
    version = factory.Sequence(lambda n: f"1.{n}.0")
    state = "succeeded"
    started_at = factory.LazyFunction(timezone.now)
    finished_at = factory.LazyAttribute(lambda d: d.started_at + timedelta(minutes=5))


class PipelineRunFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "pipelines.PipelineRun"

    service = factory.SubFactory(ServiceFactory)
    provider = "github_actions"
    external_id = factory.Sequence(lambda n: f"run-{n}")
    status = "succeeded"
    version = factory.Sequence(lambda n: f"1.{n}.0")
    started_at = factory.LazyFunction(timezone.now)
    finished_at = factory.LazyAttribute(lambda r: r.started_at + timedelta(minutes=7))
