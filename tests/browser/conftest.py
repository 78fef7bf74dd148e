"""Browser tests: Playwright's sync API driving Debian's chromium against live_server.

Playwright's sync API runs an event loop in this thread, which makes Django refuse ORM
calls from it unless async-unsafe access is allowed; the tests only touch the ORM to set
up data and to assert afterwards, never concurrently with a request.

Without /usr/bin/chromium the tests are skipped with the reason, unless REQUIRE_SERVICES=1
(CI), where a missing browser is a failure.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import pytest

os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parent.parent.parent / "test-artifacts"


@pytest.fixture(scope="session")
def chromium_browser():
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} is missing: apt-get install -y chromium"
        if os.environ.get("REQUIRE_SERVICES") == "1":
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        yield browser
        browser.close()


@pytest.fixture
def page(chromium_browser, live_server):
    context = chromium_browser.new_context(
        base_url=live_server.url, viewport={"width": 1280, "height": 900}
    )
    context.set_default_timeout(10_000)
    page = context.new_page()
    # The Content-Security-Policy must never refuse anything our own pages load or run.
    refused = []
    page.on(
        "console",
        lambda message: (
            refused.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    yield page
    context.close()
    assert refused == [], f"the page broke its Content-Security-Policy: {refused}"


@pytest.fixture
def screenshot(page):
    """screenshot("name") saves test-artifacts/<name>.png of the whole page."""
    ARTIFACTS.mkdir(exist_ok=True)

    def take(name: str) -> Path:
        path = ARTIFACTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    """Keep a screenshot of the page as it was when a browser test failed."""
    report = yield
    if report.when == "call" and report.failed and "page" in item.funcargs:
        ARTIFACTS.mkdir(exist_ok=True)
        # The browser may be gone; the report matters more than the picture.
        with contextlib.suppress(Exception):
            item.funcargs["page"].screenshot(
                path=str(ARTIFACTS / f"FAILED-{item.name}.png"), full_page=True
            )
    return report


@pytest.fixture
def page_on_port(chromium_browser, transactional_db):
    """page_on_port(port): like ``page``, against a live server of the test's own on a fixed
    loopback port (an OpenID provider must know the app's callback URL before it starts)."""
    from pytest_django.live_server_helper import LiveServer

    opened = []

    def open_page(port: int, host: str = "127.0.0.1"):
        # host="localhost": the same loopback server under a name (WebAuthn refuses IPs).
        server = LiveServer(f"127.0.0.1:{port}")
        context = chromium_browser.new_context(
            base_url=f"http://{host}:{port}", viewport={"width": 1280, "height": 900}
        )
        context.set_default_timeout(15_000)
        page = context.new_page()
        refused: list[str] = []
        page.on(
            "console",
            lambda message: (
                refused.append(message.text) if "Content Security Policy" in message.text else None
            ),
        )
        opened.append((server, context, refused))
        return page

    yield open_page
    for server, context, refused in opened:
        context.close()
        server.stop()
        assert refused == [], f"the page broke its Content-Security-Policy: {refused}"
