"""Two people pressing the same button at once produce one transition (PostgreSQL)."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from core.models import AuditEvent
from releases.choices import ReleaseState
from releases.models import Release
from tests.concurrency import race
from tests.factories import ReleaseFactory, force_state, make_ready


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_threads_planning_the_same_release_one_wins_one_gets_409(
    require_postgres, service, release_manager, administrator
):
    release = make_ready(ReleaseFactory(services=[service], owner=release_manager))
    actors = [release_manager, administrator]

    def post(i: int) -> int:
        api = APIClient()
        api.force_login(actors[i])
        return api.post(f"/api/v1/releases/{release.pk}/plan/", {}, format="json").status_code

    codes = sorted(race(2, post))
    assert codes == [200, 409]
    assert Release.objects.get(pk=release.pk).state == ReleaseState.PLANNED
    assert AuditEvent.objects.filter(action="release.plan").count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_racing_cancel_and_approve_leave_one_consistent_outcome(
    require_postgres, service, release_manager, administrator
):
    release = make_ready(ReleaseFactory(services=[service], owner=release_manager))
    release = force_state(release, ReleaseState.AWAITING_APPROVAL)

    def act(i: int) -> int:
        api = APIClient()
        api.force_login([release_manager, administrator][i])
        name = ["cancel", "approve"][i]
        return api.post(
            f"/api/v1/releases/{release.pk}/{name}/", {"reason": "race"}, format="json"
        ).status_code

    results = race(2, act)
    final = Release.objects.get(pk=release.pk).state
    # Either may win; whoever lost saw the new state and got a conflict — unless cancel ran
    # after approve, which is legal (approved releases can still be cancelled).
    assert AuditEvent.objects.filter(release_id=release.pk).count() == results.count(200)
    assert final in (ReleaseState.CANCELLED, ReleaseState.APPROVED)
    assert all(code in (200, 409) for code in results)
