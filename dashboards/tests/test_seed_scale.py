"""seed_scale: a realistic history, quickly — what the pages benchmark measures."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from dashboards.models import DeliveryFact
from pipelines.models import PipelineRun
from releases.models import Release


@pytest.mark.django_db
def test_seed_scale_writes_a_history_whose_last_touches_are_its_own_events():
    call_command("seed_scale", "--releases", "60", "--runs", "600", verbosity=0)

    releases = Release.objects.filter(name__startswith="scale ")
    assert releases.count() == 60
    assert PipelineRun.objects.count() == 600
    assert DeliveryFact.objects.exists()  # the metrics read model is built too
    now = timezone.now()
    for release in releases:
        # Not the moment of the bulk insert: the last thing that happened to the release.
        assert release.updated_at <= now
        if release.state == "closed":
            assert release.updated_at == release.closed_at
        elif release.deployed_at:
            assert release.updated_at == min(release.deployed_at, now)
    # So the board's "recent" finished columns hold recent work, not two years of it.
    old_closed = releases.filter(state="closed", updated_at__lt=now - timedelta(days=30))
    assert old_closed.exists()
