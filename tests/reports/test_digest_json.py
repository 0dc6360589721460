"""The digest's JSON form: a round trip gives an equal Digest (money exact, UTC date-times, the heat map's
floats, ``extra``), the text is stable and readable, and what this reader cannot read is refused with a message
that names the field."""

from __future__ import annotations

import json
from dataclasses import fields, replace
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reports.digest import Applied, Digest, Due, Finding, IdleDay, Unread
from reports.digest_json import (APPLIED_KEYS, DUE_KEYS, FINDING_KEYS, IDLE_DAY_KEYS, UNREAD_KEYS,
                                 DigestFormatError, from_dict, from_json, to_dict, to_json)
from tests.reports.digest_sample import HOSTILE_NAME, NOW, empty_digest, full_digest

NON_ASCII = "Łódź GPU-Knoten 東京 ✓"


def _filled() -> Digest:
    """The sample digest with one more finding (non-ASCII name, 10 cents), microseconds, and ``extra``."""
    d = full_digest()
    cheap = replace(d.findings[-1], id="schedule-cheap", name=NON_ASCII, monthly_savings_usd=Decimal("0.10"),
                    resource_id="i-cheap", confidence=0.1 + 0.2)
    at = NOW.astimezone(timezone(timedelta(hours=2))) - timedelta(microseconds=7)  # not UTC, with microseconds
    return replace(d, findings=d.findings + (cheap,), audience="team:ml", demo=True,
                   applied=d.applied + (Applied("a2", "resize", "gcp", "vm-2", "failed", at, "bob", "", ""),),
                   extra={"collect_run": 42, "note": "<!here>", "ratio": 0.5, "tags": ["a", None, True],
                          "nested": {"k": []}})


def test_full_digest_round_trips_to_an_equal_digest() -> None:
    d = _filled()
    assert all((d.findings, d.applied, d.due, d.unread, d.idle_by_day, d.idle_heatmap, d.extra))
    back = from_json(to_json(d))
    assert back == d
    assert back.findings[-1].monthly_savings_usd.as_tuple() == Decimal("0.10").as_tuple()
    assert back.findings[0].name == HOSTILE_NAME and back.findings[-1].name == NON_ASCII
    assert [f.status for f in back.findings] == [f.status for f in d.findings]
    assert back.applied[-1].at.tzinfo == timezone.utc and back.applied[-1].at.microsecond == 999993


def test_empty_digest_round_trips() -> None:
    assert from_json(to_json(empty_digest())) == empty_digest()


def test_to_dict_writes_money_as_exact_strings_times_in_utc_with_z_and_dates_plainly() -> None:
    data = to_dict(_filled())
    assert list(data)[:2] == ["format", "version"] and data["format"] == "costagent-digest"
    assert data["version"] == "1.0"
    assert data["generated_at"] == "2026-11-23T09:00:00Z"
    assert data["findings"][-1]["monthly_savings_usd"] == "0.10"
    assert data["findings"][0]["monthly_savings_usd"] == "10162.40"
    assert data["applied"][-1]["at"] == "2026-11-23T08:59:59.999993Z"
    assert data["idle_by_day"][0] == {"day": "2026-11-17", "idle_gpu_hours": 40.0, "idle_usd": "120.50"}
    assert data["clouds"] == ["aws", "gcp", "azure"] and len(data["idle_heatmap"]) == 168
    json.dumps(data, allow_nan=False)  # JSON-ready as it is: no default= needed


def test_to_json_is_indented_keeps_text_as_itself_and_ends_in_one_newline() -> None:
    text = to_json(_filled())
    assert text.startswith('{\n  "format": "costagent-digest",\n  "version": "1.0",\n')
    assert text.endswith("}\n") and not text.endswith("\n\n")
    assert NON_ASCII in text and "<script>" in text and "<!channel>" in text
    assert to_json(_filled()) == text


def test_a_lone_surrogate_is_escaped_so_the_text_encodes_as_utf8_and_reads_back() -> None:
    d = replace(empty_digest(), audience="team:\ud800x")
    text = to_json(d)
    text.encode("utf-8")
    assert from_json(text) == d


def test_every_model_field_has_a_key_in_the_form() -> None:
    for cls, keys in ((Finding, FINDING_KEYS), (Applied, APPLIED_KEYS), (Due, DUE_KEYS), (Unread, UNREAD_KEYS),
                      (IdleDay, IDLE_DAY_KEYS)):
        assert [f.name for f in fields(cls)] == [k for k, _ in keys], cls.__name__


_text = st.text(max_size=20)
_findings = st.builds(
    Finding, id=_text, kind=_text, recommender=_text, cloud=_text, account=_text, region=_text, resource_id=_text,
    name=st.none() | _text, instance_type=st.none() | _text,
    monthly_savings_usd=st.decimals(min_value=-10**9, max_value=10**9, places=4) | st.decimals(
        min_value=0, max_value=10**12, places=0),
    confidence=st.floats(allow_nan=False, allow_infinity=False), risk=_text, summary=_text,
    owner=st.none() | _text, team=st.none() | _text, actionable=st.booleans(),
    status=st.sampled_from(["new", "changed", "unchanged"]))


@given(findings=st.lists(_findings, max_size=6),
       heatmap=st.none() | st.lists(st.floats(allow_nan=False, allow_infinity=False), min_size=168, max_size=168),
       offset_minutes=st.integers(min_value=-14 * 60, max_value=14 * 60))
@settings(max_examples=150, deadline=None)
def test_generated_digests_round_trip(findings: list[Finding], heatmap: list[float] | None,
                                      offset_minutes: int) -> None:
    when = NOW.astimezone(timezone(timedelta(minutes=offset_minutes)))
    d = Digest(generated_at=when, window_start=when - timedelta(days=7), window_end=when, clouds=("aws",),
               findings=tuple(findings), idle_heatmap=tuple(heatmap or ()))
    back = from_json(to_json(d))
    assert back == d
    assert [str(f.monthly_savings_usd) for f in back.findings] == [format(f.monthly_savings_usd, "f")
                                                                     for f in d.findings]


def _data(**changes: Any) -> dict[str, Any]:
    data = to_dict(_filled())
    data.update(changes)
    return data


def _refusal(data: Any) -> str:
    with pytest.raises(DigestFormatError) as info:
        from_dict(data)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_another_format_is_refused() -> None:
    assert _refusal(_data(format="costagent-audit")) == (
        "digest JSON: format: 'costagent-audit' is not 'costagent-digest'")


def test_major_version_2_is_refused() -> None:
    assert _refusal(_data(version="2.0")) == (
        "digest JSON: version: '2.0' is a major version this reader does not read (it reads 1.x)")


def test_a_later_minor_version_with_unknown_keys_is_read() -> None:
    data = _data(version="1.7", colour="blue")
    data["findings"][0]["added_in_1_7"] = {"x": 1}
    assert from_dict(data) == _filled()


def test_a_bad_money_value_is_refused_naming_the_finding_and_field() -> None:
    data = _data()
    data["findings"][3]["monthly_savings_usd"] = "abc"
    assert _refusal(data) == "digest JSON: findings[3].monthly_savings_usd: 'abc' is not a number"


def test_money_written_as_a_json_number_is_refused() -> None:
    data = _data()
    data["idle_by_day"][1]["idle_usd"] = 12.5
    assert _refusal(data).startswith("digest JSON: idle_by_day[1].idle_usd: 12.5 is not a decimal string")


def test_a_missing_required_key_is_refused() -> None:
    data = _data()
    del data["unread"][0]["hint"]
    assert _refusal(data) == "digest JSON: unread[0].hint: required key is missing"


def test_a_naive_date_time_is_refused() -> None:
    data = _data()
    data["due"][0]["act_after"] = "2026-11-23T13:00:00"
    assert _refusal(data) == (
        "digest JSON: due[0].act_after: '2026-11-23T13:00:00' has no UTC offset (write it in UTC with a Z)")


def test_a_date_time_with_another_offset_is_read_as_the_same_instant_in_utc() -> None:
    back = from_dict(_data(generated_at="2026-11-23T11:00:00+02:00"))
    assert back.generated_at == NOW and back.generated_at.tzinfo == timezone.utc


def test_nan_in_the_text_is_refused() -> None:
    text = to_json(_filled()).replace('"idle_heatmap": [\n    0.0', '"idle_heatmap": [\n    NaN', 1)
    assert "NaN" in text
    with pytest.raises(DigestFormatError, match="NaN is not a JSON number"):
        from_json(text)


def test_text_that_is_not_json_is_refused() -> None:
    with pytest.raises(DigestFormatError, match=r"^digest JSON: not JSON: .* at line 1 column 2$"):
        from_json("{not json")


def test_a_heat_map_of_the_wrong_length_is_refused() -> None:
    assert _refusal(_data(idle_heatmap=[1.0] * 24)).startswith("digest JSON: idle_heatmap: has 24 values, not 168")


def test_extra_that_json_cannot_hold_exactly_is_refused_when_writing() -> None:
    with pytest.raises(DigestFormatError, match=r"^digest JSON: extra\.ids: tuple"):
        to_dict(replace(empty_digest(), extra={"ids": ("a", "b")}))


def test_a_naive_date_time_in_the_model_is_refused_when_writing() -> None:
    d = replace(empty_digest(), due=(Due("stop", "aws", "i-1", datetime(2026, 11, 23, 13)),))
    with pytest.raises(DigestFormatError, match=r"^digest JSON: due\[0\]\.act_after: naive datetime"):
        to_dict(d)
