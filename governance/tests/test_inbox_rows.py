"""The compact inbox: one row per waiting item, sorted by due date, age or risk, filtered by
kind, release and service, each opening in place; the page's queries do not grow with the
rows, whatever the filters."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from core.roles import Role
from governance import services
from governance.models import GateCheck
from tests.factories import ReleaseFactory, ServiceFactory, UserFactory, make_ready

pytestmark = pytest.mark.django_db

ROW = re.compile(r'<details class="inbox-row inbox-row-(\w+)" id="row-([\w-]+)"')


@pytest.fixture
def approver(db):
    """Signs off security gates and votes in the CAB."""
    return UserFactory(username="sec", roles=[Role.SECURITY_LEAD, Role.CAB_MEMBER])


def _release(policy, release_manager, service, *, days: int, risk: str = "low"):
    from releases import services as release_services

    release = make_ready(
        ReleaseFactory(
            services=[service],
            owner=release_manager,
            risk_level=risk,
            window_start=timezone.now() + timedelta(days=days),
            window_end=timezone.now() + timedelta(days=days, hours=1),
        )
    )
    release = release_services.release_plan(release=release, actor=release_manager)
    return release_services.release_start_work(release=release, actor=release_manager)


def _cr(requester, days: int):
    now = timezone.now()
    cr = services.change_request_create(
        actor=requester,
        title=f"Change in {days} days",
        reason="r",
        implementation_plan="i",
        backout_plan="b",
        window_start=now + timedelta(days=days),
        window_end=now + timedelta(days=days, hours=1),
    )
    return services.change_request_submit(change_request=cr, actor=requester)


def _rows(client, query: str = "") -> list[tuple[str, str]]:
    response = client.get(f"/governance/inbox/{query}")
    assert response.status_code == 200
    return ROW.findall(response.content.decode())


@pytest.fixture
def waiting(policy, quorum_policy, release_manager, service, team, approver):
    other = ServiceFactory(name="ledger", slug="ledger", team=team)
    soon = _release(policy, release_manager, service, days=2)
    later = _release(policy, release_manager, other, days=9, risk="critical")
    cr = _cr(release_manager, days=5)
    # The later release's sign-off has waited longest.
    GateCheck.objects.filter(release=later).update(pending_since=timezone.now() - timedelta(days=3))
    return {"soon": soon, "later": later, "cr": cr}


def test_rows_sort_by_due_age_and_risk(waiting, approver):
    client = Client()
    client.force_login(approver)
    soon = waiting["soon"].gate_checks.get(role="security_lead").pk
    later = waiting["later"].gate_checks.get(role="security_lead").pk
    cr = waiting["cr"].pk
    by_due = [key for _, key in _rows(client)]
    assert by_due == [f"signoff-{soon}", f"cr-{cr}", f"signoff-{later}"]
    assert [key for _, key in _rows(client, "?sort=age")][0] == f"signoff-{later}"
    assert [key for _, key in _rows(client, "?sort=risk")][0] == f"signoff-{later}"


def test_rows_filter_by_kind_release_and_service(waiting, approver):
    client = Client()
    client.force_login(approver)
    assert {kind for kind, _ in _rows(client, "?kind=vote")} == {"vote"}
    assert len(_rows(client, "?kind=signoff")) == 2
    only = _rows(client, f"?release={waiting['later'].pk}")
    assert only == [
        ("signoff", f"signoff-{waiting['later'].gate_checks.get(role='security_lead').pk}")
    ]
    assert len(_rows(client, "?service=ledger")) == 1
    # An unknown value is an error on its field, and the rest still applies.
    response = client.get("/governance/inbox/?kind=nonsense&service=ledger")
    assert response.status_code == 200
    assert 'role="alert"' in response.content.decode()
    assert len(ROW.findall(response.content.decode())) == 1


def test_a_filter_change_redraws_only_the_rows(waiting, approver):
    client = Client()
    client.force_login(approver)
    response = client.get(
        "/governance/inbox/?kind=vote", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="inbox-list"
    )
    body = response.content.decode()
    assert '<div id="inbox-list"' in body
    assert "<html" not in body and "1 of 3 items shown" in body


@pytest.mark.parametrize("query", ["", "?sort=risk&kind=signoff"])
def test_the_query_count_does_not_grow_with_the_rows(
    query, policy, quorum_policy, release_manager, service, approver
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = Client()
    client.force_login(approver)

    def count() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert client.get(f"/governance/inbox/{query}").status_code == 200
        return len(queries)

    _release(policy, release_manager, service, days=1)
    _cr(release_manager, days=1)
    client.get("/governance/inbox/")  # warm the session
    few = count()
    for n in range(2, 6):
        _release(policy, release_manager, service, days=n)
        _cr(release_manager, days=n)
    assert len(_rows(client, query)) >= 5
    assert count() <= few


def test_deciding_an_item_in_place_refreshes_the_count(waiting, approver):
    """The count asks for itself again after an item is decided in place (issue 15, item 10):
    the decision answers with the htmx event, the count's own request is fresh."""
    client = Client()
    client.force_login(approver)
    page = client.get("/governance/inbox/?sort=risk").content.decode()
    assert "3 of 3 items shown" in page
    assert 'hx-trigger="inbox-changed from:body"' in page
    assert "sort=risk&amp;part=count" in page  # the count keeps the filters it was drawn with
    gate = GateCheck.objects.filter(release=waiting["soon"], role=Role.SECURITY_LEAD).first()
    decided = client.post(
        f"/governance/gates/{gate.pk}/decide/",
        {"decision": "sign_off", "comment": "Scanned.", "panel": "inbox"},
        HTTP_HX_REQUEST="true",
    )
    assert decided.status_code == 200 and decided["HX-Trigger"] == "inbox-changed"
    count = client.get("/governance/inbox/?sort=risk&part=count", HTTP_HX_REQUEST="true")
    body = count.content.decode()
    assert "<html" not in body and "2 of 2 items shown" in body
    assert "part=count&amp;part=count" not in body
    # A refused decision changes nothing and sends no event.
    refused = client.post(
        f"/governance/gates/{gate.pk}/decide/",
        {"decision": "sign_off", "comment": "Again.", "panel": "inbox"},
        HTTP_HX_REQUEST="true",
    )
    assert "HX-Trigger" not in refused
