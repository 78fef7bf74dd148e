"""Nothing acknowledged is lost (issue 19), as a property over sequences of posts.

Random runs, attempts, statuses, checks and artefacts, re-using names, versions and digests,
posted in order and out of order (sequentially, on SQLite and PostgreSQL) and all at once
(threads with their own connections, on PostgreSQL). Whatever the sequence:

- every refusal is a 4xx naming the conflicting field (``errors``), and the refusals are
  exactly those the rules predict (a version twice in a body, a version bound to another
  digest);
- everything a 2xx answer acknowledged — each reported value the answer does not list as
  ``ignored`` — is in the answer and reads back through ``GET /api/v1/pipeline-runs/<id>/``
  and ``/api/v1/artefacts/``;
- nothing acknowledged is changed later except as docs/ingestion.md's merge rules allow: the
  run holds the last acknowledged value of each field, statuses never move back, an
  out-of-order report only fills blanks, times once known are kept, a version keeps its
  digest and its URI.

The example budget is small and derandomised, so that CI is reproducible and each database
takes seconds.
"""

from __future__ import annotations

import itertools
import json
import threading
from collections import defaultdict
from datetime import datetime

import pytest
from django.db import connection
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .conftest import make_token

pytestmark = pytest.mark.django_db

RANK = {"queued": 0, "running": 1, "succeeded": 2, "failed": 2, "cancelled": 2}
TEXT_FIELDS = ("commit_sha", "version", "url", "name")
TIMES = ("started_at", "finished_at")
RUNS = "/api/v1/pipeline-runs/"
ARTEFACTS = "/api/v1/artefacts/"
DIGESTS = ("sha256:aaaaaaaa", "sha256:bbbbbbbb", "sha256:cccccccc")

_namespaces = itertools.count()

check = st.fixed_dictionaries(
    {
        "kind": st.sampled_from(["tests", "lint", "coverage"]),
        "status": st.sampled_from(["passed", "failed", "running"]),
        "passed": st.integers(0, 2),
    }
)
artefact = st.fixed_dictionaries(
    {
        "name": st.sampled_from(["img", "db"]),
        "version": st.sampled_from(["1.0", "1.1", "latest"]),
        "digest": st.sampled_from(DIGESTS),
        "uri": st.sampled_from(["", "registry/a", "registry/b"]),
    }
)
report = st.fixed_dictionaries(
    {
        "run": st.sampled_from(["r1", "r2", "r3"]),
        "attempt": st.sampled_from([1, 2]),
        "status": st.sampled_from(list(RANK)),
        "commit_sha": st.sampled_from(["", "abcdef1", "1234567"]),
        "version": st.sampled_from(["", "1.0", "1.1"]),
        "url": st.sampled_from(["", "https://ci.example/a", "https://ci.example/b"]),
        "name": st.sampled_from(["", "build", "deploy"]),
        # Every start is before every finish, so no body is refused for its times.
        "started_at": st.sampled_from([None, "2026-11-20T10:00:00Z", "2026-11-20T10:01:00Z"]),
        "finished_at": st.sampled_from([None, "2026-11-20T10:05:00Z", "2026-11-20T10:06:00Z"]),
        "checks": st.lists(check, max_size=2, unique_by=lambda c: c["kind"]),
        "artefacts": st.lists(artefact, max_size=3),
        "extra": st.booleans(),
    }
)


def body(ns: int, r: dict) -> dict:
    """The POST body of a generated report, in namespace ``ns`` (examples share a database)."""
    data = {
        "service": "payments-api",
        "provider": "generic",
        "external_id": f"{ns}-{r['run']}",
        "attempt": r["attempt"],
        "status": r["status"],
        "checks": r["checks"],
        "artefacts": [{**a, "name": f"{ns}-{a['name']}"} for a in r["artefacts"]],
        **{f: r[f] for f in (*TEXT_FIELDS, *TIMES) if r[f]},
    }
    if r["extra"]:
        data["colour"] = "blue"
    return data


def moment(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


class Ledger:
    """What the answers acknowledged, and the checks that it still stands."""

    def __init__(self, client: Client, token: str):
        self.client, self.token = client, token
        self.ids: dict[tuple, int] = {}
        # run key → field → acknowledged values, in the order of the answers
        self.fields: dict[tuple, dict[str, list]] = defaultdict(lambda: defaultdict(list))
        self.checks: dict[tuple, dict[str, list]] = defaultdict(lambda: defaultdict(list))
        self.versions: dict[tuple[str, str], str] = {}
        self.uris: dict[tuple[str, str], str] = {}
        self.created: list[tuple] = []

    def get(self, path: str) -> dict:
        response = self.client.get(path, HTTP_AUTHORIZATION=f"Bearer {self.token}")
        assert response.status_code == 200, (path, response.content)
        return response.json()

    # --- one answer ---------------------------------------------------------------------

    def refusal(self, data: dict, response) -> None:
        answer = response.json()
        assert 400 <= response.status_code < 500 and answer.get("errors"), answer
        if response.status_code == 400:  # the only 400 generated: a version twice in a body
            pairs = [(a["name"], a["version"]) for a in data["artefacts"]]
            assert any(key.startswith("artefacts[") for key in answer["errors"]), answer
            assert len(set(pairs)) < len(pairs)
        else:
            assert response.status_code == 409
            assert set(answer["errors"]) <= {"artefacts", "external_id"}, answer

    def acknowledged(self, data: dict, response, *, read_back: bool) -> None:
        """Record what a 2xx answer acknowledged; with ``read_back``, read it back now."""
        answer = response.json()
        key = (data["external_id"], data["attempt"])
        ignored = {i["field"] for i in answer["ignored"]}
        assert ("colour" in ignored) == ("colour" in data)
        if response.status_code == 201:
            self.created.append(key)
        self.ids[key] = answer["id"]
        # In order only (``read_back``): concurrent answers do not come in commit order.
        stale = bool(self.fields[key]["status"]) and (
            RANK[data["status"]] < RANK[self.fields[key]["status"][-1]]
        )
        ack = {}
        for field in ("status", *TEXT_FIELDS, *TIMES):
            if data.get(field) and field not in ignored:
                value = moment(data[field]) if field in TIMES else data[field]
                shown = moment(answer[field]) if field in TIMES else answer[field]
                assert shown == value, (field, answer)
                if read_back and stale and field in TEXT_FIELDS:
                    # Out of order, a report only fills in what is still blank.
                    assert not self.fields[key][field] or self.fields[key][field][-1] == value
                ack[field] = value
                self.fields[key][field].append(value)
        shown_checks = {c["kind"]: (c["status"], c["metrics"]) for c in answer["checks"]}
        acked_checks = {}
        for c in data["checks"]:
            if f"checks[{c['kind']}]" not in ignored:
                value = (c["status"], {"passed": c["passed"]})
                assert shown_checks[c["kind"]] == value, answer
                acked_checks[c["kind"]] = value
                self.checks[key][c["kind"]].append(value)
        for a in data["artefacts"]:
            pair = (a["name"], a["version"])
            # A version acknowledged once is bound to that digest for good.
            assert self.versions.setdefault(pair, a["digest"]) == a["digest"], pair
            if a["uri"] and f"artefacts[{a['name']} {a['version']}].uri" not in ignored:
                assert self.uris.setdefault(pair, a["uri"]) == a["uri"], pair
        if read_back:
            self.read_back(key, ack, acked_checks, data["artefacts"])

    def read_back(self, key, ack: dict, checks: dict, artefacts: list) -> None:
        run = self.get(f"{RUNS}{self.ids[key]}/")
        for field, value in ack.items():
            assert (moment(run[field]) if field in TIMES else run[field]) == value, field
        stored = {c["kind"]: (c["status"], c["metrics"]) for c in run["checks"]}
        for kind, value in checks.items():
            assert stored[kind] == value, kind
        for a in artefacts:
            self.artefact_reads_back((a["name"], a["version"]))

    def artefact_reads_back(self, pair: tuple[str, str]) -> None:
        name, version = pair
        (found,) = self.get(f"{ARTEFACTS}?name={name}&version={version}")["results"]
        assert found["digest"] == self.versions[pair], pair
        (tag,) = [t for t in found["tags"] if t["version"] == version]
        if pair in self.uris:
            assert tag["uri"] == self.uris[pair], pair

    # --- at the end ---------------------------------------------------------------------

    def still_stands(self, *, ordered: bool) -> None:
        """Everything acknowledged still stands; ``ordered``: the answers came one by one,
        so each field holds the last value acknowledged (else one of those acknowledged,
        and the status the highest ranked)."""
        assert len(self.created) == len(set(self.created)) == len(self.ids)
        for key, fields in self.fields.items():
            run = self.get(f"{RUNS}{self.ids[key]}/")
            ranks = [RANK[s] for s in fields["status"]]
            if ordered:
                assert ranks == sorted(ranks), "a status moved back"
            assert RANK[run["status"]] == max(ranks)
            for field, values in fields.items():
                final = moment(run[field]) if field in TIMES else run[field]
                if field in TIMES:
                    assert set(values) == {final}, f"{field} changed once known"
                elif ordered:
                    assert final == values[-1], field
                else:
                    assert final in values, field
            stored = {c["kind"]: (c["status"], c["metrics"]) for c in run["checks"]}
            for kind, values in self.checks[key].items():
                assert stored[kind] == values[-1] if ordered else stored[kind] in values
        for pair in self.versions:
            self.artefact_reads_back(pair)


def expected_refusal(data: dict, ledger: Ledger) -> int | None:
    pairs = [(a["name"], a["version"]) for a in data["artefacts"]]
    if len(set(pairs)) < len(pairs):
        return 400
    for a in data["artefacts"]:
        bound = ledger.versions.get((a["name"], a["version"]))
        if bound is not None and bound != a["digest"]:
            return 409
    return None


@pytest.fixture
def token(service, settings):
    settings.INGEST_RATE_LIMIT = 0
    return make_token("ci-properties", [service])


@settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(reports=st.lists(report, min_size=1, max_size=8))
def test_posts_in_any_order_lose_nothing_they_acknowledged(token, reports):
    ns = next(_namespaces)
    client = Client()
    ledger = Ledger(client, token)
    for r in reports:
        data = body(ns, r)
        refusal = expected_refusal(data, ledger)
        response = client.post(
            RUNS, json.dumps(data), "application/json", HTTP_AUTHORIZATION=f"Bearer {token}"
        )
        if refusal is not None:
            assert response.status_code == refusal, response.json()
            ledger.refusal(data, response)
            continue
        key = (data["external_id"], data["attempt"])
        assert response.status_code == (200 if key in ledger.ids else 201), response.json()
        ledger.acknowledged(data, response, read_back=True)
    ledger.still_stands(ordered=True)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@settings(
    max_examples=10,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(reports=st.lists(report, min_size=2, max_size=6))
def test_concurrent_posts_lose_nothing_they_acknowledged(require_postgres, token, reports):
    ns = next(_namespaces)
    bodies = [body(ns, r) for r in reports]
    barrier = threading.Barrier(len(bodies))
    answers: list = [None] * len(bodies)

    def send(index: int) -> None:
        try:
            barrier.wait()
            answers[index] = Client().post(
                RUNS,
                json.dumps(bodies[index]),
                "application/json",
                HTTP_AUTHORIZATION=f"Bearer {token}",
            )
        finally:
            connection.close()

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(bodies))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    ledger = Ledger(Client(), token)
    for data, response in zip(bodies, answers, strict=True):
        assert response is not None and response.status_code < 500
        if response.status_code >= 400:
            ledger.refusal(data, response)
        else:
            ledger.acknowledged(data, response, read_back=False)
    ledger.still_stands(ordered=False)
