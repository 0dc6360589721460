"""The FOCUS working group's commitment scenarios: coverage and utilization read from FOCUS rows."""

from __future__ import annotations

from decimal import Decimal

import pytest

from providers.focus import read_billing
from tests.focus.conftest import DATA, billed, effective

SPEC = DATA / "focus-spec"
ID = "<my-commitment-discount-id>"


def read(name: str):
    return read_billing([str(SPEC / f"{name}.csv")])


@pytest.mark.parametrize(("scenario", "used", "unused", "utilization"), [
    ("one_hundred_percent_utilization_without_commitment_discount_flexibility", "1.50", "0", 1.0),
    ("zero_percent_utilization_without_commitment_discount_flexibility", "0", "1.50", 0.0),
    ("commitment_discount_usage_scenario_3", "0.75", "0.25", 0.75),
])
def test_utilization_of_the_commitment(scenario, used, unused, utilization):
    (commitment,) = read(scenario).commitments
    assert (commitment.commitment_id, commitment.used_cost, commitment.unused_cost) == (ID, Decimal(used), Decimal(unused))
    assert commitment.utilization == pytest.approx(utilization)


def test_flexible_commitment_covers_usage_of_other_sizes():
    data = read("one_hundred_percent_utilization_with_commitment_discount_flexibility_with_2_resources")
    (medium,) = data.resources
    assert (medium.usage_hours, medium.committed_hours, medium.effective_cost) == (2.0, 2.0, Decimal(2))
    assert data.commitments[0].utilization == 1.0


def test_partly_covered_resource_has_its_committed_fraction():
    data = read("one_hundred_percent_utilization_with_commitment_discount_flexibility_with_1_resource")
    (large,) = data.resources
    assert (large.usage_hours, large.committed_hours) == (2.0, 1.0)
    assert large.covered_fraction == 0.5


def test_purchase_is_billed_and_its_usage_is_effective():
    data = read("one_hundred_percent_utilization_without_commitment_discount_flexibility")
    assert (billed(data, charge_category="Purchase"), effective(data, charge_category="Purchase")) == (Decimal("1.5"), 0)
    assert (billed(data, charge_category="Usage"), effective(data, charge_category="Usage")) == (0, Decimal("1.5"))


def test_unused_commitment_row_is_not_a_resource():
    data = read("commitment_discount_usage_scenario_2")  # the unused row's ResourceId is the commitment itself
    assert data.resources == ()
    assert data.commitments[0].unused_cost == Decimal(1)


def test_blank_lines_between_rows_are_not_rows():
    data = read("one_hundred_percent_utilization_with_commitment_discount_flexibility_with_2_resources")
    assert (data.rows, data.bad_rows) == (3, 0)
