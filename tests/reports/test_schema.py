"""The JSON output against reports/schema/audit-report.v1.json, and the schema's strictness."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

import reports.model
from reports.json_report import render_json
from reports.model import SCHEMA_VERSION, to_dict
from tests.reports.sample import empty_report, full_report

SCHEMA_PATH = Path(reports.model.__file__).parent / "schema" / "audit-report.v1.json"


@pytest.fixture(scope="module")
def validator() -> Draft202012Validator:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


@pytest.fixture()
def document() -> dict[str, Any]:
    return json.loads(render_json(full_report()))


def test_schema_version_matches_model(validator: Draft202012Validator) -> None:
    assert validator.schema["properties"]["schema_version"]["const"] == SCHEMA_VERSION
    assert validator.schema["$id"].endswith("v1")


@pytest.mark.parametrize("make", [full_report, empty_report])
def test_output_is_valid(validator: Draft202012Validator, make: Callable[[], Any]) -> None:
    validator.validate(json.loads(render_json(make())))


def _objects(document: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every strict object in a report document, with a label."""
    yield "top", document
    yield "window", document["window"]
    yield "summary", document["summary"]
    for i, rec in enumerate(document["recommendations"]):
        yield f"recommendations[{i}]", rec
        if rec["action"] is not None:
            yield f"recommendations[{i}].action", rec["action"]
    for i, gap in enumerate(document["gaps"]):
        yield f"gaps[{i}]", gap


def test_every_emitted_key_is_required(validator: Draft202012Validator, document: dict[str, Any]) -> None:
    """to_dict always emits every key, so dropping any one must fail validation."""
    for label, obj in _objects(document):
        for key in list(obj):
            broken = copy.deepcopy(document)
            target = dict(_objects(broken))[label]
            del target[key]
            assert not validator.is_valid(broken), f"{label} without {key!r} still validates"


def test_unknown_keys_are_rejected(validator: Draft202012Validator, document: dict[str, Any]) -> None:
    for label, _ in _objects(document):
        broken = copy.deepcopy(document)
        dict(_objects(broken))[label]["surprise"] = 1
        assert not validator.is_valid(broken), f"{label} accepts an unknown key"


BAD_VALUES: list[tuple[Callable[[dict[str, Any]], Any], str]] = [
    (lambda d: d.__setitem__("schema_version", "2.0"), "schema_version"),
    (lambda d: d["recommendations"][0].__setitem__("kind", "delete"), "kind"),
    (lambda d: d["recommendations"][0].__setitem__("risk", "extreme"), "risk"),
    (lambda d: d["recommendations"][0].__setitem__("confidence", 1.5), "confidence > 1"),
    (lambda d: d["recommendations"][0].__setitem__("monthly_savings_usd", -1.0), "negative savings"),
    (lambda d: d["recommendations"][0].__setitem__("evidence", []), "evidence not an object"),
    (lambda d: d["recommendations"][0].__setitem__("action", {"kind": "stop"}), "action without params"),
    (lambda d: d["recommendations"][0].__setitem__("cloud", "oracle"), "cloud"),
    (lambda d: d["gaps"][0].__setitem__("reason", None), "gap reason null"),
    (lambda d: d["summary"].__setitem__("instances", -1), "negative count"),
    (lambda d: d["summary"].__setitem__("idle_usd", "12.00"), "money as string"),
    (lambda d: d["window"].__setitem__("start", "2025-03-01T00:00:00+01:00"), "non-UTC timestamp"),
    (lambda d: d.__setitem__("demo", "yes"), "demo not boolean"),
]


@pytest.mark.parametrize(("mutate", "what"), BAD_VALUES, ids=[w for _, w in BAD_VALUES])
def test_bad_values_are_rejected(
    validator: Draft202012Validator, document: dict[str, Any], mutate: Callable[[dict[str, Any]], Any], what: str
) -> None:
    mutate(document)
    assert not validator.is_valid(document), what


def test_nullable_fields_accept_null(validator: Draft202012Validator, document: dict[str, Any]) -> None:
    document["recommendations"][0]["name"] = None
    document["recommendations"][0]["instance_type"] = None
    document["recommendations"][0]["action"] = None
    document["summary"]["gpu_spend_usd"] = None
    validator.validate(document)


def test_to_dict_and_json_agree() -> None:
    report = full_report()
    assert json.loads(render_json(report))["summary"] == to_dict(report)["summary"]
