"""Paths, formats and the bad-file policy: what is read, what is refused, and how it is said."""

from __future__ import annotations

import gzip
import shutil
from decimal import Decimal
from pathlib import Path

import pytest

from providers.errors import ConfigurationError, ProviderError
from providers.focus import BillingError, Format, detect, read_billing
from tests.focus.conftest import DATA, billed, six

ACTUAL = DATA / "EA_ActualCost_Small.csv"
AMORTIZED = DATA / "EA_AmortizedCost_Small.csv"


@pytest.mark.parametrize(("columns", "fmt"), [
    (["BilledCost", "EffectiveCost", "ChargePeriodStart", "ChargePeriodEnd"], Format.FOCUS),
    (["lineItem/UnblendedCost", "lineItem/UsageStartDate", "lineItem/UsageEndDate"], Format.AWS_CUR1),
    (["line_item_unblended_cost", "line_item_usage_start_date", "line_item_usage_end_date"], Format.AWS_CUR2),
    (["Date", "Cost", "ChargeType"], Format.AZURE),
    (["date", "costInBillingCurrency", "chargeType"], Format.AZURE),
])
def test_format_is_told_from_the_header(columns, fmt):
    assert detect(columns, "f.csv") == fmt


def test_unknown_header_is_one_line_naming_the_file_and_the_expected_columns(tmp_path):
    target = tmp_path / "prices.csv"
    target.write_text("sku,price\nA,1\n")
    with pytest.raises(BillingError) as caught:
        read_billing([str(target)], strict=True)
    message = caught.value.one_line()
    assert "\n" not in message
    assert str(target) in message and "BilledCost" in message and "lineItem/UnblendedCost" in message
    assert isinstance(caught.value, ProviderError)


def test_a_bad_file_is_skipped_and_reported_and_the_others_are_read(tmp_path):
    broken = tmp_path / "broken.csv"
    broken.write_text("sku,price\nA,1\n")
    data = read_billing([str(ACTUAL), str(broken)])
    assert six(billed(data)) == Decimal("8.545008")
    assert data.sources == (str(ACTUAL),)
    first = data.bad_examples[0]
    assert (first.file, first.line, first.reason.startswith("file skipped: unrecognised")) == (str(broken), 0, True)
    assert (data.rows, data.bad_rows) == (12, 1)  # the skipped file counts as one bad row


def test_strict_mode_raises_on_the_first_bad_file(tmp_path):
    broken = tmp_path / "broken.csv"
    broken.write_text("sku,price\nA,1\n")
    with pytest.raises(BillingError, match="broken.csv"):
        read_billing([str(ACTUAL), str(broken)], strict=True)


def test_a_truncated_gzip_is_skipped_without_leaving_rows_behind(tmp_path):
    whole = (DATA / "focus_sample.csv.gz").read_bytes()
    cut = tmp_path / "cut.csv.gz"
    cut.write_bytes(whole[: len(whole) // 2])
    data = read_billing([str(cut), str(ACTUAL)])
    assert six(billed(data)) == Decimal("8.545008")  # none of the half-read file's rows
    assert data.bad_examples[0].file == str(cut)


def test_nothing_readable_raises(tmp_path):
    with pytest.raises(BillingError, match="no billing file could be read"):
        read_billing([str(tmp_path / "missing.csv")])


def test_an_empty_file_is_refused_with_its_name(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    with pytest.raises(BillingError, match="empty.csv.*empty file"):
        read_billing([str(empty)], strict=True)


def test_a_folder_is_read_recursively_keeping_only_data_files(tmp_path):
    (tmp_path / "2023-09").mkdir()
    shutil.copy(ACTUAL, tmp_path / "2023-09" / "actual.csv")
    (tmp_path / "2023-09" / "manifest.json").write_text("{}")
    data = read_billing([str(tmp_path)])
    assert (len(data.sources), data.bad_rows) == (1, 0)
    assert six(billed(data)) == Decimal("8.545008")


def test_a_glob_is_expanded(tmp_path):
    shutil.copy(ACTUAL, tmp_path / "part-1.csv")
    shutil.copy(AMORTIZED, tmp_path / "part-2.csv")
    data = read_billing([str(tmp_path / "part-*.csv")])
    assert [Path(s).name for s in data.sources] == ["part-1.csv", "part-2.csv"]


def test_a_file_reached_twice_is_counted_once(tmp_path):
    shutil.copy(ACTUAL, tmp_path / "actual.csv")
    data = read_billing([str(tmp_path), str(tmp_path / "actual.csv"), str(tmp_path / "*.csv")])
    assert six(billed(data)) == Decimal("8.545008")


def test_gzip_is_recognised_by_its_bytes_not_its_name(tmp_path):
    target = tmp_path / "export.csv"  # gzip content, plain name
    target.write_bytes(gzip.compress(ACTUAL.read_bytes()))
    assert six(billed(read_billing([str(target)]))) == Decimal("8.545008")


def test_several_files_add_up(tmp_path):
    data = read_billing([str(ACTUAL), str(DATA / "focus_sample.csv.gz")])
    assert six(billed(data)) == Decimal("8.545008") + Decimal("20.520227")
    assert {t.provider for t in data.totals} == {"AWS", "Microsoft", "Oracle"}


def test_us_dates_are_not_reparsed_by_a_pushed_down_cast():
    """DuckDB's type_pushdown would parse 09/21/2023 as a timestamp and reject every Azure row."""
    data = read_billing([str(ACTUAL)])
    assert data.bad_rows == 0
    assert data.window is not None and data.window.start.isoformat() == "2023-09-04T00:00:00+00:00"


def test_the_working_folder_is_removed(tmp_path):
    read_billing([str(ACTUAL)], temp_dir=tmp_path, memory_limit="256MB")
    assert list(tmp_path.iterdir()) == []


def test_a_memory_limit_duckdb_cannot_read_is_a_configuration_error():
    with pytest.raises(ConfigurationError, match="DuckDB refused its settings") as caught:
        read_billing([str(ACTUAL)], memory_limit="lots")
    assert "memory_limit" in caught.value.one_line()
