"""The format dispatch and the JSON renderer's serialization rules."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from reports import render
from reports.json_report import render_json
from reports.markdown import render_markdown
from reports.table import render_table, usd
from tests.reports.sample import empty_report, full_report, stop_recommendation


def test_render_dispatches() -> None:
    report = full_report()
    assert render(report, "table") == render_table(report)
    assert render(report, "json") == render_json(report)
    assert render(report, "markdown") == render_markdown(report)


@pytest.mark.parametrize("fmt", ["html", "JSON", ""])
def test_render_unknown_format(fmt: str) -> None:
    with pytest.raises(ValueError, match="table, json, markdown"):
        render(full_report(), fmt)


def test_json_serializes_decimal_and_datetime_in_evidence() -> None:
    text = render_json(full_report())
    assert text.endswith("}\n")
    stop = json.loads(text)["recommendations"][0]
    assert stop["kind"] == "stop"
    assert stop["evidence"]["hourly_usd"] == 32.7726
    assert stop["evidence"]["last_busy_at"] == "2025-03-01T14:05:00Z"
    assert stop["monthly_savings_usd"] == 23592.26


def test_json_converts_other_timezones_to_utc() -> None:
    plus_two = timezone(timedelta(hours=2))
    rec = replace(stop_recommendation(), evidence={"at": datetime(2025, 3, 1, 2, 0, tzinfo=plus_two)})
    text = render_json(replace(full_report(), recommendations=(rec,)))
    assert json.loads(text)["recommendations"][0]["evidence"]["at"] == "2025-03-01T00:00:00Z"


def test_json_refuses_unknown_types() -> None:
    rec = replace(stop_recommendation(), evidence={"odd": {1, 2}})
    with pytest.raises(TypeError, match="builtins.set"):
        render_json(replace(full_report(), recommendations=(rec,)))


def test_json_refuses_nan() -> None:
    rec = replace(stop_recommendation(), evidence={"util": float("nan")})
    with pytest.raises(ValueError):
        render_json(replace(full_report(), recommendations=(rec,)))


def test_empty_report_says_so() -> None:
    assert "No recommendations" in render_table(empty_report())
    assert "No recommendations" in render_markdown(empty_report())
    assert "not read" in render_table(empty_report())
    assert "DEMO" in render_table(empty_report()) and "DEMO" not in render_table(full_report())


@pytest.mark.parametrize(
    ("value", "text"),
    [(Decimal("1234.56"), "$1,234.56"), (Decimal("0"), "$0.00"), (Decimal("-5.5"), "-$5.50"), (Decimal("1e6"), "$1,000,000.00")],
)
def test_usd(value: Decimal, text: str) -> None:
    assert usd(value) == text
