"""After a deployment, in a real browser: a release manager records the retrospective with
an action item, publishes the customer notes, and downloads the evidence pack."""

from __future__ import annotations

import io
import json
import re
import zipfile
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from releases import services
from releases.choices import ReleaseState
from releases.models import ActionItem, ReleaseNotes, Retrospective
from tests.factories import ReleaseFactory, force_state, make_ready

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def deployed(service, release_manager):
    release = make_ready(
        ReleaseFactory(
            name="Card vault",
            version="4.2.0",
            services=[service],
            owner=release_manager,
            risk_level="medium",
        )
    )
    release = force_state(release, ReleaseState.DEPLOYING)
    return services.release_mark_deployed(release=release, actor=release_manager)


def test_release_manager_reviews_a_deployed_release(page, screenshot, deployed, release_manager):
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill("rita")
    page.get_by_label("Password").fill("pw-for-tests")
    page.get_by_role("button", name="Log in").click()

    # The release page loads the review lazily when it scrolls into view.
    page.goto(f"/releases/{deployed.pk}/")
    review = page.locator("#post-release")
    review.scroll_into_view_if_needed()
    expect(review.get_by_role("heading", name="Retrospective")).to_be_visible()
    expect(review).to_contain_text("retrospective is required for medium risk")

    # Retrospective.
    review.get_by_label("What went well").fill("Canary caught a slow query before 5% traffic.")
    review.get_by_label("What did not").fill("Rollback rehearsal happened the night before.")
    review.get_by_label("What to change").fill("Rehearse rollbacks a week ahead.")
    review.get_by_label("Lessons learned").fill("Canaries pay for themselves.")
    review.get_by_role("button", name="Save retrospective").click()
    expect(page.locator("#post-release")).to_contain_text("Canary caught a slow query")

    # An action item, owned by rita, due next week.
    review = page.locator("#post-release")
    review.locator("summary", has_text="Add action item").click()
    review.get_by_label("Action").fill("Schedule rollback rehearsals in the release template")
    review.get_by_label("Owner").select_option(value=str(release_manager.pk))
    due = (timezone.localdate() + timedelta(days=7)).isoformat()
    review.get_by_label("Due").fill(due)
    review.get_by_role("button", name="Add action item").click()
    expect(page.locator("#post-release")).to_contain_text("Schedule rollback rehearsals")
    screenshot("postrelease-01-retrospective")

    # Customer-facing notes: drafted from scope, edited, previewed, published (confirm dialog).
    review = page.locator("#post-release")
    customer = review.get_by_role("article", name="Customer-facing notes")
    customer.get_by_label("Markdown").fill("# Card vault 4.2.0\n\n- **Faster** card checks")
    customer.get_by_role("button", name="Preview").click()
    expect(customer.locator(".preview strong")).to_have_text("Faster")
    customer.get_by_role("button", name="Save draft").click()
    expect(page.locator("#messages")).to_contain_text("Release notes saved.")
    expect(
        page.locator("#post-release").get_by_role("article", name="Customer-facing notes")
    ).to_contain_text("Draft")
    page.once("dialog", lambda dialog: dialog.accept())
    page.locator("#post-release").get_by_role("article", name="Customer-facing notes").get_by_role(
        "button", name="Publish customer-facing notes"
    ).click()
    expect(page.locator("#post-release")).to_contain_text("Published")
    screenshot("postrelease-02-notes-published")

    # Evidence pack download.
    with page.expect_download() as download_info:
        page.locator("#post-release").get_by_role(
            "button", name="Download evidence pack (captured now)"
        ).click()
    download = download_info.value
    assert re.fullmatch(r"evidence-release-\d+-\d{8}T\d{6}Z\.zip", download.suggested_filename)
    archive = zipfile.ZipFile(io.BytesIO(Path(download.path()).read_bytes()))
    data = json.loads(archive.read("evidence.json"))
    assert data["retrospective"]["action_items"][0]["owner"] == "rita"
    assert data["audit_chain_head"]["hash"] == data["audit_events"][-1]["hash"]

    assert Retrospective.objects.get(release=deployed).lessons_learned.startswith("Canaries")
    assert ActionItem.objects.get(release=deployed).owner == release_manager
    notes = ReleaseNotes.objects.get(release=deployed, audience="customer")
    assert notes.state == "published" and "Faster" in notes.body
