"""Break-glass on the release page's governance panel: the form (field errors next to the
fields), the notes where the freeze is shown, Approve review for those allowed."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from governance import services
from governance.models import BreakGlass
from tests.factories import force_state

pytestmark = pytest.mark.django_db
HTMX = {"HTTP_HX_REQUEST": "true"}
REASON = "Hotfix PAY-88: card payments time out for every customer"


def browser(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def freeze(operations, production):
    now = timezone.now()
    return services.freeze_window_create(
        actor=operations,
        name="Year-end freeze",
        kind="once",
        tz="UTC",
        start=now - timedelta(hours=1),
        end=now + timedelta(days=1),
        environments=[production],
    )


@pytest.fixture
def approved(make_release):
    return force_state(make_release("in_progress"), "approved")


def _expiry(hours: float = 2) -> str:
    return (timezone.now() + timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M")


def _field(html: str, name: str) -> str:
    """The field's wrapper (label, errors, input) as the panel renders it."""
    match = re.search(
        r'<div class="field[^"]*">(?:(?!<div class="field).)*?name="' + name + '"',
        html,
        re.S,
    )
    assert match, f"no field {name}"
    return match.group(0)


def test_the_form_shows_field_errors_next_to_the_fields(freeze, approved, release_manager):
    url = f"/governance/releases/{approved.pk}/break-glass/"
    response = browser(release_manager).post(
        url, {"kind": "rollback", "reason": "oops", "expires_at": _expiry(9)}, **HTMX
    )
    assert response.status_code == 422
    html = response.content.decode()
    assert "field-has-error" in _field(html, "reason") and "at least 20" in _field(html, "reason")
    assert "At most 4 hours" in _field(html, "expires_at")
    assert not BreakGlass.objects.exists()


def test_breaking_the_glass_lifts_the_freeze_and_shows_it_in_the_panel(
    freeze, approved, release_manager, administrator
):
    page = browser(release_manager).get(f"/governance/releases/{approved.pk}/panel/")
    assert "Freeze “Year-end freeze”" in page.content.decode()
    response = browser(release_manager).post(
        f"/governance/releases/{approved.pk}/break-glass/",
        {"kind": "hotfix", "reason": REASON, "expires_at": _expiry()},
        **HTMX,
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert "Nothing blocks" in html
    assert "Break-glass (hotfix) by rita lifts freeze “Year-end freeze”" in html
    # The requester is offered no Approve review (separation of duties); someone else is.
    assert "Approve review" not in html
    glass = BreakGlass.objects.get()
    other = browser(administrator).get(f"/governance/releases/{approved.pk}/panel/")
    assert "Approve review" in other.content.decode()
    own = browser(release_manager).post(
        f"/governance/releases/{approved.pk}/break-glass/{glass.pk}/review/",
        {"note": "Looks fine"},
        **HTMX,
    )
    assert own.status_code == 403 and "Separation of duties" in own.content.decode()
    done = browser(administrator).post(
        f"/governance/releases/{approved.pk}/break-glass/{glass.pk}/review/",
        {"note": "Hotfix verified; PAY-88 closed."},
        **HTMX,
    )
    assert done.status_code == 200 and "Review approved" in done.content.decode()


def test_a_role_without_permission_sees_no_form_and_is_refused(freeze, approved, qa_lead):
    page = browser(qa_lead).get(f"/governance/releases/{approved.pk}/panel/")
    assert "Break glass…" not in page.content.decode()
    response = browser(qa_lead).post(
        f"/governance/releases/{approved.pk}/break-glass/",
        {"kind": "hotfix", "reason": REASON, "expires_at": _expiry()},
        **HTMX,
    )
    assert response.status_code == 403
    assert not BreakGlass.objects.exists()


def test_revoking_from_the_panel_restores_the_freeze(freeze, approved, release_manager):
    glass = services.break_glass_create(
        release=approved,
        actor=release_manager,
        kind="rollback",
        reason=REASON,
        expires_at=timezone.now() + timedelta(hours=1),
    )
    response = browser(release_manager).post(
        f"/governance/releases/{approved.pk}/break-glass/{glass.pk}/revoke/",
        {"reason": "Fixed forward instead"},
        **HTMX,
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert "Freeze “Year-end freeze”" in html and "was revoked" in html


def test_the_inbox_lists_reviews_for_others_not_for_the_requester(
    approved, release_manager, administrator
):
    services.break_glass_create(
        release=approved,
        actor=release_manager,
        kind="hotfix",
        reason=REASON,
        expires_at=timezone.now() + timedelta(hours=1),
    )
    other = browser(administrator).get("/governance/inbox/").content.decode()
    assert "Break-glass reviews" in other and REASON in other
    own = browser(release_manager).get("/governance/inbox/").content.decode()
    assert "Break-glass reviews" not in own
