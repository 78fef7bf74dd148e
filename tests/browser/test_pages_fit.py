"""Every page in the navigation fits the screen and passes axe, for each demo role, at a
desktop width (1400 px) and a phone width (390 px).

For each page it checks that the document does not scroll sideways (`scrollWidth <=
innerWidth`; a wide table may scroll inside its own box), that the browser logged no console
error, and that axe-core finds no serious or critical accessibility violation. A screenshot
of every page at both widths is saved under test-artifacts/pages/ (CI prints the folder).
"""

from __future__ import annotations

import pytest
from axe_playwright_python.sync_playwright import Axe
from django.core.management import call_command
from django.urls import reverse
from playwright.sync_api import expect

from tests.browser.conftest import ARTIFACTS, CHROMIUM_ARGS  # noqa: F401

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

USERS = ("rita", "quinn", "chris", "stella")
WIDTHS = (1400, 390)
PAGES = {  # name: (url name, query)
    "releases": ("releases:list", ""),
    "release": None,  # the first release in the list, filled in at run time
    "actions": ("postrelease:actions", ""),
    "calendar-month": ("dashboards:calendar", ""),
    "calendar-week": ("dashboards:calendar", "?view=week"),
    "board": ("dashboards:board", ""),
    "metrics": ("dashboards:metrics", ""),
    "inbox": ("governance:inbox", ""),
    "cab": ("governance:cab", ""),
    "meeting": None,  # the first CAB meeting on the workbench, filled in at run time
    "notifications": ("pipelines:notifications", ""),
    "integrations": ("pipelines:integrations", ""),
    "password": ("password_change", ""),
    "tokens": ("pipelines:tokens", ""),
    "profile": ("profile", ""),
}
ONLY_FOR = {"tokens": {"rita"}}  # pages the other roles may not open (403)
SHOTS = ARTIFACTS / "pages"


@pytest.fixture
def demo(db):
    call_command("seed_demo", verbosity=0)


def _login(page, username: str) -> None:
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill("releasegate-demo")
    page.get_by_role("button", name="Log in").click()
    expect(page.locator(".user-name")).to_be_visible()


def _problems(page, axe: Axe, errors: list[str]) -> list[str]:
    found = []
    width = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    if width[0] > width[1]:
        wide = page.evaluate(
            """() => [...document.querySelectorAll('body *')]
                .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1)
                .filter(e => !e.closest('.table-scroll, .scroll-x'))
                .slice(0, 3).map(e => e.tagName.toLowerCase() + '.' + e.className)"""
        )
        found.append(f"document {width[0]} px wide in a {width[1]} px window ({wide})")
    found += [f"console: {text}" for text in errors]
    results = axe.run(page, options={"resultTypes": ["violations"]})
    for violation in results.response["violations"]:
        if violation["impact"] in ("serious", "critical"):
            targets = [node["target"] for node in violation["nodes"][:3]]
            found.append(f"axe {violation['impact']} {violation['id']}: {targets}")
    return found


def test_every_page_fits_and_passes_axe(chromium_browser, live_server, demo):
    """One seeded demo for all four roles: seeding is the slow part."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    axe = Axe()
    failures: list[str] = []
    for username in USERS:
        failures += _check_user(chromium_browser, live_server, axe, username)
    assert failures == [], "\n".join(failures)


def _check_user(chromium_browser, live_server, axe: Axe, username: str) -> list[str]:
    failures: list[str] = []
    for width in WIDTHS:
        context = chromium_browser.new_context(
            base_url=live_server.url, viewport={"width": width, "height": 900}
        )
        context.set_default_timeout(15_000)
        try:
            failures += _check_pages(context.new_page(), axe, username, width)
        finally:
            context.close()
    return failures


def _check_pages(page, axe: Axe, username: str, width: int) -> list[str]:
    failures: list[str] = []
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    _login(page, username)
    pages = {
        name: reverse(url[0]) + url[1]
        for name, url in PAGES.items()
        if url and username in ONLY_FOR.get(name, {username})
    }
    page.goto(pages["releases"])
    pages["release"] = page.locator("#results a[href^='/releases/']").first.get_attribute("href")
    page.goto(pages["cab"])
    pages["meeting"] = page.locator(".gov-meeting h2 a").first.get_attribute("href")
    for name, path in pages.items():
        errors.clear()
        response = page.goto(path)
        assert response is not None and response.ok, f"{username} {path}: {response.status}"
        page.wait_for_load_state("load")
        page.screenshot(path=str(SHOTS / f"{username}-{width}-{name}.png"), full_page=True)
        failures += [
            f"{username} @{width}px {name}: {problem}" for problem in _problems(page, axe, errors)
        ]
    return failures
