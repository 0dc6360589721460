"""AWS Cost and Usage Reports: the real CUR 1.0 sample and a hand-written CUR 2.0 export."""

from __future__ import annotations

from decimal import Decimal

import duckdb
import pytest

from providers.focus import read_billing
from providers.model import BillingData
from tests.focus.conftest import DATA, billed, effective, six

CUR2 = DATA / "aws_cur2_hand.csv"
RI = "arn:aws:ec2:us-east-1:111122223333:reserved-instances/ri-0001"
SP = "arn:aws:savingsplans::111122223333:savingsplan/sp-0001"


@pytest.fixture(scope="module")
def cur1() -> BillingData:
    return read_billing([str(DATA / "aws_cur1_sample.csv.gz")])


@pytest.fixture(scope="module")
def cur2() -> BillingData:
    return read_billing([str(CUR2)])


@pytest.fixture(scope="module")
def cur2_parquet(tmp_path_factory: pytest.TempPathFactory) -> BillingData:
    """The CUR 2.0 fixture as Parquet the way Data Exports writes it: ``product`` a MAP, costs DOUBLE."""
    target = tmp_path_factory.mktemp("cur2") / "cur2-00001.snappy.parquet"
    money = ", ".join(f"'{c}': 'DOUBLE'" for c in ("line_item_unblended_cost", "reservation_effective_cost",
                                                     "savings_plan_savings_plan_effective_cost"))
    duckdb.connect().execute(f"""
        COPY (SELECT * REPLACE (CAST(json_transform(product, '"MAP(VARCHAR, VARCHAR)"') AS MAP(VARCHAR, VARCHAR)) AS product)
              FROM read_csv('{CUR2}', types = {{{money}}})) TO '{target}' (FORMAT parquet)""")
    return read_billing([str(target)])


def test_cur1_unblended_total_matches_the_known_sum(cur1):
    """The whole focus_converters CUR sample (stored gzip-compressed, content unchanged)."""
    assert (cur1.rows, cur1.bad_rows) == (1281, 0)
    assert six(billed(cur1)) == Decimal("1.682309")


def test_cur1_s3_matches_the_known_sum(cur1):
    assert six(billed(cur1, service="Amazon Simple Storage Service")) == Decimal("1.440565")


def test_cur1_tax_rows_are_tax(cur1):
    assert sum(t.rows for t in cur1.totals if t.charge_category == "Tax") == 12


def test_cur2_billed_and_effective_totals(cur2):
    assert (cur2.rows, cur2.bad_rows) == (10, 0)
    assert billed(cur2) == Decimal("14888.1824")
    assert effective(cur2) == Decimal("14888.1824")  # amortization moves cost between rows, never adds any


def test_cur2_reserved_instance_usage_is_amortized(cur2):
    p4d = cur2.for_resource("i-0b2b2b2b2b2b2b2b2")
    assert p4d is not None
    assert (p4d.billed_cost, p4d.effective_cost, p4d.committed_hours, p4d.commitment_ids) == (0, Decimal(20), 1.0, (RI,))


def test_cur2_ri_fee_effective_cost_is_the_unused_reservation(cur2):
    ri = next(c for c in cur2.commitments if c.commitment_id == RI)
    assert (ri.commitment_type, ri.used_cost, ri.unused_cost) == ("Reserved Instance", Decimal(20), Decimal(14860))


def test_cur2_savings_plan_negation_cancels_the_billed_on_demand_cost(cur2):
    g6 = cur2.for_resource("i-0c3c3c3c3c3c3c3c3")
    assert g6 is not None
    assert (g6.billed_cost, g6.effective_cost, g6.usage_hours) == (0, Decimal("0.5634"), 1.0)


def test_cur2_savings_plan_utilization(cur2):
    sp = next(c for c in cur2.commitments if c.commitment_id == SP)
    assert (sp.used_cost, sp.unused_cost, sp.utilization) == (Decimal("0.5634"), Decimal("0.4366"), pytest.approx(0.5634))


def test_cur2_spot_usage_is_dynamic_and_typed_from_the_usage_type(cur2):
    spot = cur2.for_resource("i-0d4d4d4d4d4d4d4d4")
    assert spot is not None and spot.instance_type == "g5.12xlarge"
    assert billed(cur2, pricing_category="Dynamic") == Decimal("2.1234")


def test_cur2_service_name_comes_from_the_product_map(cur2):
    assert {t.service for t in cur2.totals} == {"Amazon Elastic Compute Cloud", "Amazon Simple Storage Service",
                                                 "Savings Plans for AWS Compute usage"}


def test_cur2_hourly_counts_covered_hours_once(cur2):
    hourly = cur2.hourly.set_index(["instance_type", "ts"])
    g6 = hourly.loc[("g6.xlarge", "2025-03-01 00:00:00+00:00")]
    assert (g6["hours"], g6["committed_hours"]) == (1.0, 1.0)  # the negation row adds no hour
    assert cur2.hourly["hours"].sum() == pytest.approx(3.5)  # the spot hour (li-08) is not committable


def test_cur2_parquet_with_product_map_and_double_costs_gives_the_same_totals(cur2, cur2_parquet):
    assert billed(cur2_parquet) == billed(cur2)
    assert effective(cur2_parquet) == effective(cur2)
    assert {r.instance_type for r in cur2_parquet.resources} == {r.instance_type for r in cur2.resources}
