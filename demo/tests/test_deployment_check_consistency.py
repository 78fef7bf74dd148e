"""The release page, the board and the deployment check give the same answer for every
seeded release and environment: they read the same readiness code, and this holds them to
it on the demo portfolio (every release state, gates, CAB, freezes, promotion and soak)."""

from __future__ import annotations

import io

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from rest_framework.test import APIClient

from dashboards.selectors.board import BoardFilters, board_columns
from governance.readiness import release_blockers
from pipelines import promotion
from pipelines.services import api_token_create
from releases.choices import ReleaseState
from releases.models import Environment, Release, Service

pytestmark = pytest.mark.django_db

BEFORE_APPROVAL = {"draft", "planned", "in_progress", "awaiting_approval"}
FINISHED = {"closed", "rolled_back", "cancelled"}


def _governing(service: Service, version: str) -> Release | None:
    return (
        Release.objects.filter(services=service, version=version)
        .exclude(state=ReleaseState.CANCELLED)
        .order_by("-created_at", "-id")
        .first()
    )


def test_page_board_and_endpoint_agree_for_every_seeded_release_and_environment():
    call_command("seed_demo", stdout=io.StringIO())
    _, raw = api_token_create(
        actor=None,
        name="consistency",
        service_slugs=list(Service.objects.values_list("slug", flat=True)),
        scopes=["deployments:check"],
    )
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    admin = get_user_model().objects.filter(is_superuser=True).first()
    cards = {
        card.release.pk: card
        for column in board_columns(viewer=admin, filters=BoardFilters(), per_column=500)
        for card in column.cards
    }
    environments = list(Environment.objects.order_by("order"))
    releases = list(Release.objects.prefetch_related("services").order_by("id"))
    assert {r.state for r in releases} == set(ReleaseState.values)
    asked = decisions = 0
    for release in releases:
        page = release_blockers(release)
        page_messages = [b["message"] for t in page["transitions"] for b in t["blockers"]]
        card = cards.get(release.pk)
        if card is not None:
            # The board's card and the page: the same blockers of the same next move (the
            # page adds, before the window opens, the freezes in force at its opening).
            assert (card.blocker_count == 0) == (not page["blocked"]), release
            assert card.blocker_count <= len(page_messages), release
            if page_messages:
                assert card.top_blocker == page_messages[0], release
        for service in release.services.all():
            if _governing(service, release.version) != release:
                continue  # a newer release carries this version; it answers for it
            for environment in environments:
                response = client.post(
                    "/api/v1/deployment-checks/",
                    {
                        "service": service.slug,
                        "version": release.version,
                        "environment": environment.slug,
                    },
                    format="json",
                )
                assert response.status_code == 201, response.content
                answer = response.json()
                asked += 1
                assert answer["release"]["id"] == release.pk
                messages = [b["message"] for b in answer["blockers"]]
                codes = [b["code"] for b in answer["blockers"]]
                # allow iff nothing blocks; wait only with time-bound blockers and resume_at.
                assert (answer["decision"] == "allow") == (not messages), answer
                if answer["decision"] == "wait":
                    assert answer["resume_at"] and all(b["until"] for b in answer["blockers"])
                if release.state in FINISHED:
                    assert codes == ["release_finished"], answer
                elif environment.is_production:
                    if release.state == ReleaseState.APPROVED:
                        # The page's start_deployment blockers, word for word.
                        assert messages == page_messages, (release, answer)
                        assert (answer["decision"] == "allow") == (not page["blocked"])
                        if card is not None:
                            assert (answer["decision"] == "allow") == (card.blocker_count == 0)
                    elif release.state in BEFORE_APPROVAL:
                        assert codes[0] == "not_approved" and messages[1:] == page_messages
                    else:  # deploying, deployed: its deployment already passed governance
                        assert answer["decision"] == "allow", answer
                elif release.state == ReleaseState.DRAFT:
                    assert codes == ["not_planned"]
                else:
                    expected = promotion.promotion_blockers(release, environment)
                    assert messages == [b.message for b in expected], (release, answer)
                decisions += answer["decision"] == "allow"
    assert asked > 50 and 0 < decisions < asked
