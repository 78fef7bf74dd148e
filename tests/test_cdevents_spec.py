"""The vendored CDEvents schemas accept the spec's own examples, and refuse broken ones
(so the conformance tests of what Releasegate emits can fail)."""

from __future__ import annotations

import copy
import json

import pytest

from tests import cdevents


def test_every_event_type_has_an_example_and_a_schema():
    schemas = list((cdevents.FIXTURES / "schemas").glob("*.json"))
    assert len(schemas) == len(list((cdevents.FIXTURES / "conformance").glob("*.json"))) == 45


@pytest.mark.parametrize("path", cdevents.examples(), ids=lambda p: p.stem)
def test_every_vendored_example_validates_against_its_schema(path):
    event = json.loads(path.read_text())
    assert event["context"]["specversion"] == cdevents.SPEC_VERSION
    cdevents.assert_conforms(event)


@pytest.mark.parametrize(
    "breakage",
    [
        lambda e: e["subject"]["content"].pop("artifactId"),
        lambda e: e["context"].update(timestamp="20 March 2023"),
        lambda e: e["context"].update(type="dev.cdevents.service.deployed.0.2.0"),
        lambda e: e["subject"]["content"].update(version="1.0"),
        lambda e: e["context"].update(schemaUri="not a uri"),
        lambda e: e["context"]["links"].append({"linkType": "SIDEWAYS"}),
    ],
    ids=["missing-field", "bad-date-time", "other-version", "unknown-key", "bad-uri", "link"],
)
def test_a_broken_event_does_not_conform(breakage):
    event = copy.deepcopy(cdevents.example("service_deployed"))
    breakage(event)
    assert cdevents.errors(event)


def test_a_custom_event_type_must_follow_the_naming_rule():
    event = copy.deepcopy(cdevents.example("custom"))
    assert not cdevents.errors(event)
    event["context"]["type"] = "dev.cdeventsx.releasegate.approval.granted.0.1.0"
    assert cdevents.errors(event)
