"""A release manager on the release board, in a real browser: moves a card from the
keyboard, and sees why a move is blocked before pressing it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from releases.models import Release
from tests.browser.conftest import ARTIFACTS
from tests.factories import ReleaseFactory, force_state, make_ready

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_release_manager_moves_cards_and_reads_why_a_move_is_blocked(
    page, screenshot, release_manager, service
):
    planned = force_state(
        make_ready(
            ReleaseFactory(
                name="Wallet top-ups", version="3.1.0", services=[service], owner=release_manager
            )
        ),
        "planned",
    )
    approved = force_state(
        make_ready(
            ReleaseFactory(
                name="Refund flow",
                version="2.9.0",
                services=[service],
                owner=release_manager,
                window_start=timezone.now() + timedelta(days=6),
            )
        ),
        "approved",
    )

    page.goto("/accounts/login/")
    page.get_by_label("Username").fill("rita")
    page.get_by_label("Password").fill("pw-for-tests")
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("link", name="Board").click()
    expect(page.get_by_role("heading", name="Release board")).to_be_visible()
    # htmx wires the menus when the document has loaded; a keypress before that opens a
    # menu no listener loads (it then offers its link to the move page instead).
    page.wait_for_load_state("load")

    # The approved card already says what blocks it.
    refund = page.locator(f"#card-{approved.pk}")
    expect(refund.locator(".card-blocker")).to_contain_text("The deployment window opens at")

    # The board carries no move buttons: a card's menu is fetched when it is opened.
    card = page.locator(f"#card-{planned.pk}")
    expect(page.locator(".column-planned")).to_contain_text("Wallet top-ups")
    expect(page.locator("#board .move-option")).to_have_count(0)

    # Move the planned card with the keyboard: open "Move to…", Tab to "Start work", Enter.
    summary = card.locator("summary", has_text="Move to")
    summary.focus()
    page.keyboard.press("Enter")
    option = card.get_by_role("button", name="Start work → In progress")
    expect(option).to_be_visible()
    expect(summary).to_be_focused()  # focus stays on the menu's toggle while it loads
    expect(card.get_by_role("button", name="Approve → Approved")).to_have_count(0)
    screenshot("dashboards-board-menu")
    page.keyboard.press("Tab")
    expect(option).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator(".column-in_progress")).to_contain_text("Wallet top-ups")
    expect(page.locator(".column-planned")).not_to_contain_text("Wallet top-ups")
    assert Release.objects.get(pk=planned.pk).state == "in_progress"
    # htmx wires the redrawn board's menus when the swap settles (~20 ms after the new
    # cards appear); a click before that would open a menu nobody loads.
    expect(page.locator("#board .htmx-added")).to_have_count(0)

    # A blocked move: the deployment window has not opened yet. The menu shows it disabled
    # with why (the release page's rule, releases.actions), rather than offering it and
    # then refusing it.
    refund.locator("summary", has_text="Move to").click()
    blocked = refund.get_by_role("button", name="Start deployment → Deploying")
    expect(blocked).to_be_disabled()
    expect(refund.locator(".move-blockers")).to_contain_text("The deployment window opens at")
    assert Release.objects.get(pk=approved.pk).state == "approved"
    screenshot("dashboards-board-refusal")


def test_without_javascript_the_menu_is_a_page(
    chromium_browser, live_server, release_manager, service
):
    """No JavaScript: "Move to…" still opens (a <details>), its link leads to the move form
    as a page, and the move brings the release manager back to the board."""
    planned = force_state(
        make_ready(
            ReleaseFactory(
                name="Ledger export", version="1.4.0", services=[service], owner=release_manager
            )
        ),
        "planned",
    )
    context = chromium_browser.new_context(
        base_url=live_server.url, viewport={"width": 1280, "height": 900}, java_script_enabled=False
    )
    context.set_default_timeout(10_000)
    page = context.new_page()
    try:
        page.goto("/accounts/login/")
        page.get_by_label("Username").fill("rita")
        page.get_by_label("Password").fill("pw-for-tests")
        page.get_by_role("button", name="Log in").click()
        page.goto("/dashboards/board/")
        card = page.locator(f"#card-{planned.pk}")
        card.locator("summary", has_text="Move to").click()
        card.get_by_role("link", name="Choose a move for Ledger export 1.4.0").click()
        expect(page.get_by_role("heading", name="Move Ledger export 1.4.0")).to_be_visible()
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "dashboards-board-move-page.png"), full_page=True)
        page.get_by_role("button", name="Start work → In progress").click()
        expect(page.get_by_role("heading", name="Release board")).to_be_visible()
        expect(page.locator(".column-in_progress")).to_contain_text("Ledger export")
        assert Release.objects.get(pk=planned.pk).state == "in_progress"
    finally:
        context.close()


def test_names_with_markup_show_as_text(page, screenshot, release_manager, service):
    """The cards are built in Python (dashboards/templatetags/board_html.py): a name with
    markup in it is shown as text, and its card still opens its menu."""
    name = '<img src=x onerror="window.pwned=1"> Tom\'s & "co"'
    release = force_state(
        make_ready(
            ReleaseFactory(
                name=name, version="<b>1.0</b>", services=[service], owner=release_manager
            )
        ),
        "planned",
    )
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill("rita")
    page.get_by_label("Password").fill("pw-for-tests")
    page.get_by_role("button", name="Log in").click()
    page.goto("/dashboards/board/")
    card = page.locator(f"#card-{release.pk}")
    expect(card.locator(".card-title a")).to_have_text(name)
    expect(card.locator(".card-version")).to_have_text("<b>1.0</b>")
    expect(page.locator("#board img, #board b")).to_have_count(0)
    card.locator("summary", has_text="Move to").click()
    expect(card.get_by_role("button", name="Start work → In progress")).to_be_visible()
    assert page.evaluate("window.pwned") is None
    screenshot("dashboards-board-escaped-names")
