"""Azure cost details (EA actual and amortized, MCA) mapped onto FOCUS."""

from __future__ import annotations

from decimal import Decimal

import pytest

from providers.focus import read_billing
from providers.model import BILLING_HOURLY_COLUMNS, BillingData
from tests.focus.conftest import DATA, billed, effective, six

RESERVATION = "/providers/Microsoft.Capacity/reservationOrders/a965d46f-aedf-4176-8ff1-2617943b8960/reservations/" \
              "f39d1c73-af74-4308-9083-fbf5efab37d1"
SAVINGS_PLAN = "/providers/Microsoft.BillingBenefits/savingsPlanOrders/802a9e8b-e860-4d5f-b63b-c5bdf7ee2446/savingsPlans/" \
               "09ff8291-64ac-45fb-afed-b9b39dbd88d7"


@pytest.fixture(scope="module")
def actual() -> BillingData:
    return read_billing([str(DATA / "EA_ActualCost_Small.csv")])


@pytest.fixture(scope="module")
def amortized() -> BillingData:
    return read_billing([str(DATA / "EA_AmortizedCost_Small.csv")])


@pytest.fixture(scope="module")
def mca() -> BillingData:
    return read_billing([str(DATA / "azure_mca_hand.csv")])


def test_ea_actual_billed_total_matches_the_known_sum(actual):
    assert (actual.rows, actual.bad_rows) == (11, 0)
    assert six(billed(actual)) == Decimal("8.545008")


def test_ea_actual_purchase_and_usage_match_the_known_sums(actual):
    assert six(billed(actual, charge_category="Purchase")) == Decimal("3.25")
    assert six(billed(actual, charge_category="Usage")) == Decimal("5.295008")


def test_ea_actual_commitment_purchase_has_no_effective_cost(actual):
    """FOCUS carries a commitment's cost in the usage it covers (the amortized export), not in its purchase."""
    assert effective(actual, charge_category="Purchase") == 0
    assert six(effective(actual)) == Decimal("5.295008")


def test_ea_amortized_effective_total_matches_the_known_sum(amortized):
    assert six(effective(amortized)) == Decimal("16.296932")


def test_ea_amortized_on_demand_is_standard_pricing(amortized):
    assert six(effective(amortized, pricing_category="Standard")) == Decimal("15.79778")


def test_ea_amortized_reservation_and_savings_plan_are_used_commitments(amortized):
    used = {c.commitment_id: (c.commitment_type, six(c.used_cost), c.unused_cost) for c in amortized.commitments}
    assert used == {RESERVATION: ("Reservation", Decimal("0.493152"), 0),
                    SAVINGS_PLAN: ("Savings Plan", Decimal("0.006000"), 0)}


def test_ea_amortized_committed_usage_is_not_billed_again(amortized):
    assert billed(amortized, pricing_category="Committed") == 0
    assert six(billed(amortized)) == Decimal("15.79778")


def test_ea_vm_size_comes_from_additional_info(amortized):
    vm = next(r for r in amortized.resources if r.commitment_ids == (RESERVATION,))
    assert (vm.instance_type, vm.usage_hours, vm.committed_hours) == ("Standard_DS2_v2", 8.0, 8.0)


def test_ea_export_with_cost_in_billing_currency_and_us_dates():
    """focus_converters' EA sample: CostInBillingCurrency in CAD, dates like 9/2/2023, costs like 5.64902E-05."""
    data = read_billing([str(DATA / "azure_ea_sample.csv")])
    assert (data.rows, data.bad_rows, data.currency) == (27, 0, "CAD")
    assert billed(data) == Decimal("1.26136926505726")  # the sum of the column's 27 decimal strings
    assert data.window is not None and data.window.start.isoformat() == "2023-09-02T00:00:00+00:00"


def test_mca_camel_case_columns_are_read(mca):
    assert (mca.rows, mca.bad_rows, mca.currency) == (8, 0, "USD")
    assert effective(mca) == Decimal("241.7456")  # 88.152 + 52.8 + 52.8 + 24 + 3 + 1.8936 + 4.1 + 15
    assert billed(mca) == Decimal("109.1456")  # committed and unused rows are billed by their purchase


def test_mca_unused_reservation_is_the_unused_status(mca):
    by_id = {c.commitment_id.rsplit("/", 1)[-1]: c for c in mca.commitments}
    assert (by_id["r-0001"].used_cost, by_id["r-0001"].unused_cost) == (Decimal("52.8"), Decimal("52.8"))
    assert (by_id["sp-0001"].used_cost, by_id["sp-0001"].unused_cost) == (Decimal(24), Decimal(3))
    assert by_id["sp-0001"].commitment_type == "Savings Plan"


def test_mca_spot_is_dynamic_pricing(mca):
    assert billed(mca, pricing_category="Dynamic") == Decimal("1.8936")


def test_mca_unused_commitment_rows_are_not_resources(mca):
    assert all(r.resource_id for r in mca.resources)
    assert len(mca.resources) == 5  # 4 VMs and a disk


def test_mca_list_cost_is_the_pay_as_you_go_cost(mca):
    vm = mca.for_resource("gpu-infer-1")
    assert vm is not None
    assert (vm.list_cost, vm.effective_cost, vm.instance_type) == (Decimal("88.152"), Decimal("52.8"),
                                                                  "Standard_NC24ads_A100_v4")


def test_daily_exports_give_an_empty_hourly_frame_with_the_right_columns(mca):
    assert mca.hourly.empty
    assert list(mca.hourly.columns) == list(BILLING_HOURLY_COLUMNS)
    assert str(mca.hourly["ts"].dtype) == "datetime64[ns, UTC]"
