"""Bad rows: counted, reported with file and line, left out of the totals exactly once."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from providers.focus import read_billing
from providers.model import BillingData
from tests.focus.conftest import DATA, billed

BAD = DATA / "focus_bad_rows.csv"
#: focus_bad_rows.csv's good rows (lines 2, 4, 7 and 9): 1.006 + 1.006 + 0.503 + 0.0000004.
GOOD_TOTAL = Decimal("2.5150004")


@pytest.fixture(scope="module")
def bad() -> BillingData:
    return read_billing([str(BAD)])


def test_bad_rows_are_counted(bad):
    assert (bad.rows, bad.bad_rows) == (8, 4)


def test_bad_rows_are_reported_with_file_and_line(bad):
    assert [(Path(b.file).name, b.line) for b in bad.bad_examples] == [
        ("focus_bad_rows.csv", 3), ("focus_bad_rows.csv", 5), ("focus_bad_rows.csv", 6), ("focus_bad_rows.csv", 8)]


@pytest.mark.parametrize(("index", "words"), [
    (0, ("BilledCost", "1.O06")),  # a letter O in a number
    (1, ("TOO MANY COLUMNS",)),  # a line with an extra field
    (2, ("BilledCost is empty",)),  # a required value missing
    (3, ("ChargePeriodEnd", "tomorrow")),  # a date that is not a date
])
def test_each_reason_says_what_is_wrong(bad, index, words):
    assert all(w in bad.bad_examples[index].reason for w in words)


def test_totals_of_the_good_rows_are_exact(bad):
    assert billed(bad) == GOOD_TOTAL
    assert sum(t.rows for t in bad.totals) == bad.rows - bad.bad_rows


def test_a_quoted_field_with_commas_and_quotes_is_a_good_row(bad):
    bucket = bad.for_resource("my-bucket")
    assert bucket is not None and bucket.billed_cost == Decimal("0.0000004")


def test_real_sample_with_an_impossible_timestamp():
    """FOCUS spec purchase scenario 2 writes 2023-02-01T30:00:00Z (hour 30) in its third row."""
    data = read_billing([str(DATA / "focus-spec" / "commitment_discount_purchase_scenario_2.csv")])
    (example,) = data.bad_examples
    assert (data.rows, data.bad_rows, example.line) == (3, 1, 4)
    assert "2023-02-01T30:00:00Z" in example.reason
    assert billed(data) == Decimal("2.00")


def test_unparsable_parquet_values_are_bad_rows_with_their_row_number(tmp_path):
    target = tmp_path / "focus.parquet"
    duckdb.connect().execute(f"""COPY (SELECT * FROM (VALUES
        ('2025-03-01T00:00:00Z', '2025-03-01T01:00:00Z', '1.25', '1.25'),
        ('2025-03-01T00:00:00Z', '2025-03-01T01:00:00Z', 'n/a', '1.00'),
        ('2025-03-01T00:00:00Z', 'soon', '2.50', '2.50'),
        ('2025-03-01T01:00:00Z', '2025-03-01T02:00:00Z', '3.00', '3.00'))
        AS t(ChargePeriodStart, ChargePeriodEnd, BilledCost, EffectiveCost)) TO '{target}' (FORMAT parquet)""")
    data = read_billing([str(target)])
    assert (data.rows, data.bad_rows, billed(data)) == (4, 2, Decimal("4.25"))
    assert [(b.line, b.reason.split(" ")[0]) for b in data.bad_examples] == [(2, "BilledCost"), (3, "ChargePeriodEnd")]


def test_only_the_first_twenty_are_kept_but_all_are_counted(tmp_path):
    lines = ["BilledCost,EffectiveCost,ChargePeriodStart,ChargePeriodEnd"]
    lines += [f"{'x' if i % 2 else '1'},1,2025-03-01T00:00:00Z,2025-03-01T01:00:00Z" for i in range(60)]
    target = tmp_path / "many.csv"
    target.write_text("\n".join(lines) + "\n")
    data = read_billing([str(target)])
    assert (data.rows, data.bad_rows, len(data.bad_examples)) == (60, 30, 20)
    assert [b.line for b in data.bad_examples[:3]] == [3, 5, 7]
    assert billed(data) == 30


def test_a_row_with_two_problems_is_one_bad_row(tmp_path):
    target = tmp_path / "two.csv"
    target.write_text("BilledCost,EffectiveCost,ChargePeriodStart,ChargePeriodEnd\n"
                      "x,y,2025-03-01T00:00:00Z,never\n"
                      "1,1,2025-03-01T00:00:00Z,2025-03-01T01:00:00Z\n")
    data = read_billing([str(target)])
    assert (data.rows, data.bad_rows, [b.line for b in data.bad_examples]) == (2, 1, [2])


def test_an_empty_value_and_a_cast_error_on_one_line_are_one_bad_row(tmp_path):
    target = tmp_path / "mixed.csv"
    target.write_text("BilledCost,EffectiveCost,ChargePeriodStart,ChargePeriodEnd\n"
                      ",1,2025-03-01T00:00:00Z,later\n"
                      ",1,2025-03-01T00:00:00Z,2025-03-01T01:00:00Z\n"
                      "1,1,2025-03-01T00:00:00Z,2025-03-01T01:00:00Z\n")
    data = read_billing([str(target)])
    assert (data.rows, data.bad_rows, [b.line for b in data.bad_examples]) == (3, 2, [2, 3])
