"""The FOCUS 1.0 sample (FinOps Foundation, 1,000 real anonymized rows): the corpus's known sums, to the cent."""

from __future__ import annotations

from decimal import Decimal

import duckdb
import pytest

from providers.focus import read_billing
from providers.model import BILLING_HOURLY_COLUMNS, BillingData
from tests.focus.conftest import DATA, billed, six

SAMPLE = DATA / "focus_sample.csv.gz"
EC2 = "Amazon Elastic Compute Cloud"


@pytest.fixture(scope="module")
def sample() -> BillingData:
    return read_billing([str(SAMPLE)])


@pytest.fixture(scope="module")
def sample_parquet(tmp_path_factory: pytest.TempPathFactory) -> BillingData:
    """The same rows written as Parquet by DuckDB (costs become DOUBLE, periods TIMESTAMP)."""
    target = tmp_path_factory.mktemp("parquet") / "focus_sample.parquet"
    duckdb.connect().execute(f"COPY (SELECT * FROM read_csv('{SAMPLE}', nullstr = 'NULL')) TO '{target}' (FORMAT parquet)")
    return read_billing([str(target)])


def test_every_row_is_read_and_none_is_bad(sample):
    assert (sample.rows, sample.bad_rows, sample.bad_examples) == (1000, 0, ())


def test_total_billed_cost_matches_the_known_sum(sample):
    assert six(billed(sample)) == Decimal("20.520227")


def test_totals_are_exact_decimals_not_floats(sample):
    assert billed(sample) == Decimal("20.52022672899")  # the sum of the file's own decimal strings
    assert all(isinstance(t.billed_cost, Decimal) for t in sample.totals)


@pytest.mark.parametrize(("provider", "known"), [("AWS", "18.006639"), ("Microsoft", "1.976514"), ("Oracle", "0.537074")])
def test_billed_cost_by_provider_matches_the_known_sums(sample, provider, known):
    assert six(billed(sample, provider=provider)) == Decimal(known)


def test_ec2_billed_cost_matches_the_known_sum(sample):
    assert six(billed(sample, service=EC2)) == Decimal("16.041693")


def test_instance_type_is_parsed_from_the_charge_description(sample):
    g5 = [r for r in sample.resources if r.instance_type == "g5.4xlarge"]
    assert len(g5) == 8
    assert six(sum((r.billed_cost for r in g5), Decimal(0))) == Decimal("10.203683")


def test_hourly_frame_has_the_g5_instance_hours(sample):
    g5 = sample.hourly[sample.hourly["instance_type"] == "g5.4xlarge"]
    assert list(sample.hourly.columns) == list(BILLING_HOURLY_COLUMNS)
    assert len(g5) == 8
    assert g5["hours"].sum() == pytest.approx(6.283056)  # 5 full hours + 0.296111 + 0.683889 + 0.303056
    assert str(g5["ts"].dt.tz) == "UTC"


def test_window_spans_the_charge_periods(sample):
    assert sample.window is not None
    assert (sample.window.start.isoformat(), sample.window.end.isoformat()) == (
        "2024-09-01T00:00:00+00:00", "2024-10-01T00:00:00+00:00")


def test_savings_plan_rows_are_committed_usage_with_their_commitment(sample):
    committed = [t for t in sample.totals if t.pricing_category == "Committed"]
    assert sum(t.rows for t in committed) == 4
    assert {c.commitment_type for c in sample.commitments} == {"Savings Plan"}


def test_parquet_gives_the_same_totals_as_csv(sample, sample_parquet):
    assert billed(sample_parquet) == billed(sample)
    assert [(t.provider, t.service, t.charge_category, t.billed_cost, t.rows) for t in sample_parquet.totals] == \
           [(t.provider, t.service, t.charge_category, t.billed_cost, t.rows) for t in sample.totals]
