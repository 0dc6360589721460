"""Cost Management costs: real azure-mgmt-costmanagement clients against the local query emulator over HTTPS."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from providers.azure import billing
from providers.errors import AuthError, NotFound, ProviderError, Throttled
from providers.model import Cloud, Window
from providers.sandbox.azure_costs import AzureCostsEmulator
from tests.azure.monitor_support import SUB, make_clients, vm_id

START = datetime(2026, 11, 1, tzinfo=timezone.utc)
WINDOW = Window(START, START + timedelta(days=3))  # Nov 1, 2 and 3
A100 = vm_id("train-a100")
T4 = vm_id("infer-t4")
SCALE_SET = f"/subscriptions/{SUB}/resourceGroups/rg-gpu/providers/Microsoft.Compute/virtualMachineScaleSets/pool"
DISK = f"/subscriptions/{SUB}/resourceGroups/rg-gpu/providers/Microsoft.Compute/disks/train-a100-os"


@pytest.fixture
def emu() -> Iterator[AzureCostsEmulator]:
    with AzureCostsEmulator(page_size=3) as server:
        yield server


def seed_fleet(emu: AzureCostsEmulator) -> None:
    for k in range(3):
        day = START.date() + timedelta(days=k)
        emu.add_usage(SUB, day, A100, "Virtual Machines", "88.152", meter_subcategory="NCadsA100v4 Series")
        emu.add_usage(SUB, day, T4, "Virtual Machines", "4.2085", meter_subcategory="NCasT4 v3 Series",
                      pricing_model="Spot", location="westus2")
        emu.add_usage(SUB, day, SCALE_SET, "Virtual Machines", "10.5", meter_subcategory="NCasT4 v3 Series")
        emu.add_usage(SUB, day, DISK, "Storage", "1.23")  # not a VM: filtered out by the query


def test_rows_across_pages_are_read_and_mapped(emu: AzureCostsEmulator) -> None:
    seed_fleet(emu)
    clients = make_clients(emu)

    records = billing.costs(clients, SUB, WINDOW)

    assert len(records) == 9  # 3 VMs x 3 days, over 3 pages
    assert clients.calls == {"costmanagement.Query.Usage": 3}
    assert emu.count("$skiptoken=") == 2
    first = next(r for r in records if r.resource_id == A100.lower())
    assert first.cloud == Cloud.AZURE and first.account == SUB and first.region == "eastus"
    assert (first.service, first.sku, first.currency) == ("Virtual Machines", "NCadsA100v4 Series", "USD")
    assert first.billed_cost == Decimal("88.152")
    assert (first.charge_period_start, first.charge_period_end) == (START, START + timedelta(days=1))
    assert first.pricing_category == "Standard"


def test_costs_sum_to_what_was_billed(emu: AzureCostsEmulator) -> None:
    seed_fleet(emu)
    records = billing.costs(make_clients(emu), SUB, WINDOW)
    assert sum(r.billed_cost for r in records) == 3 * (Decimal("88.152") + Decimal("4.2085") + Decimal("10.5"))


def test_spot_and_reservation_map_to_focus_pricing_categories(emu: AzureCostsEmulator) -> None:
    emu.add_usage(SUB, START, T4, "Virtual Machines", "1.5", pricing_model="Spot")
    emu.add_usage(SUB, START, A100, "Virtual Machines", "0", pricing_model="Reservation")
    got = {r.resource_id: r.pricing_category for r in billing.costs(make_clients(emu), SUB, WINDOW)}
    assert got == {T4.lower(): "Dynamic", A100.lower(): "Committed"}


def test_lines_of_one_vm_and_day_are_summed(emu: AzureCostsEmulator) -> None:
    for cost in ("1.25", "2.5", "0.125"):
        emu.add_usage(SUB, START, A100, "Virtual Machines", cost, meter_subcategory="NCadsA100v4 Series")
    [record] = billing.costs(make_clients(emu), SUB, WINDOW)
    assert record.billed_cost == Decimal("3.875")


def test_query_asks_daily_actual_cost_of_vms_grouped_by_resource(emu: AzureCostsEmulator) -> None:
    emu.add_subscription(SUB)
    billing.costs(make_clients(emu), SUB, Window(START + timedelta(hours=6), START + timedelta(days=2, hours=1)))
    [body] = emu.extension.bodies
    assert body["type"] == "ActualCost" and body["timeframe"] == "Custom"
    assert body["timePeriod"] == {"from": "2026-11-01T00:00:00+00:00", "to": "2026-11-03T23:59:59+00:00"}
    dataset = body["dataset"]
    assert dataset["granularity"] == "Daily"
    assert dataset["aggregation"] == {"totalCost": {"name": "Cost", "function": "Sum"}}
    assert [g["name"] for g in dataset["grouping"]][:3] == ["ResourceId", "ResourceType", "ResourceLocation"]
    assert dataset["filter"]["dimensions"]["values"] == ["microsoft.compute/virtualmachines",
                                                         "microsoft.compute/virtualmachinescalesets"]


def test_window_days_are_respected(emu: AzureCostsEmulator) -> None:
    for day in (date(2026, 10, 31), date(2026, 11, 1), date(2026, 11, 3), date(2026, 11, 4)):
        emu.add_usage(SUB, day, A100, "Virtual Machines", "1")
    records = billing.costs(make_clients(emu), SUB, WINDOW)
    assert sorted(r.charge_period_start.date() for r in records) == [date(2026, 11, 1), date(2026, 11, 3)]


def test_window_ending_at_midnight_excludes_that_day(emu: AzureCostsEmulator) -> None:
    emu.add_usage(SUB, date(2026, 11, 4), A100, "Virtual Machines", "1")
    assert billing.costs(make_clients(emu), SUB, WINDOW) == []
    assert emu.extension.bodies[0]["timePeriod"]["to"].startswith("2026-11-03")


def test_columns_are_read_by_name_not_position(emu: AzureCostsEmulator) -> None:
    emu.add_usage(SUB, START, A100, "Virtual Machines", "7.25", location="eastus2", meter_subcategory="X Series")
    [record] = billing.costs(make_clients(emu), SUB, WINDOW)
    # The emulator puts Cost first and UsageDate after the groupings: position-based reading would mix them.
    assert (record.region, record.sku, record.billed_cost) == ("eastus2", "X Series", Decimal("7.25"))
    assert record.charge_period_start == START


def test_no_vm_cost_is_no_records(emu: AzureCostsEmulator) -> None:
    emu.add_subscription(SUB)
    assert billing.costs(make_clients(emu), SUB, WINDOW) == []


def test_throttling_is_retried(emu: AzureCostsEmulator) -> None:
    seed_fleet(emu)
    emu.throttle_next(2)  # QPU headers only, as Cost Management sends them: azure-core backs off on its own
    clients = make_clients(emu)
    assert len(billing.costs(clients, SUB, WINDOW)) == 9
    assert emu.count("/query?") == 5  # 2 throttled + 3 pages
    assert clients.calls == {"costmanagement.Query.Usage": 3}


def test_throttling_on_a_next_page_is_retried_too(emu: AzureCostsEmulator) -> None:
    seed_fleet(emu)
    emu.throttle_next(1, after=1)  # the second page's first try
    clients = make_clients(emu)
    assert len(billing.costs(clients, SUB, WINDOW)) == 9
    assert emu.count("$skiptoken=") == 3 and emu.count("/query?") == 4


def test_throttling_past_the_retries_is_throttled(emu: AzureCostsEmulator) -> None:
    emu.add_subscription(SUB)
    emu.throttle_next(10)
    with pytest.raises(Throttled, match="costmanagement.Query.Usage"):
        billing.costs(make_clients(emu, retry_total=2), SUB, WINDOW)


def test_throttling_past_the_retries_on_a_next_page_is_throttled(emu: AzureCostsEmulator) -> None:
    seed_fleet(emu)
    emu.throttle_next(5, after=1)
    with pytest.raises(Throttled, match="Too many requests"):
        billing.costs(make_clients(emu, retry_total=1), SUB, WINDOW)
    assert emu.count("$skiptoken=") == 2  # the next page, tried twice


def test_unknown_subscription_is_not_found(emu: AzureCostsEmulator) -> None:
    with pytest.raises(NotFound, match="SubscriptionNotFound"):
        billing.costs(make_clients(emu), "11111111-2222-3333-4444-555555555555", WINDOW)


def test_forbidden_is_an_auth_error(emu: AzureCostsEmulator) -> None:
    emu.fail_next(403, message="The client does not have authorization to perform action")
    with pytest.raises(AuthError, match="costmanagement.Query.Usage"):
        billing.costs(make_clients(emu), SUB, WINDOW)


def test_bad_request_is_a_provider_error_naming_the_place(emu: AzureCostsEmulator) -> None:
    emu.add_subscription(SUB)
    emu.fail_next(400, message="Invalid query definition: Invalid dataset grouping: 'Resource'")
    place = r"azure costmanagement.Query.Usage at 127\.0\.0\.1"
    with pytest.raises(ProviderError, match=place + r".*Invalid dataset grouping"):
        billing.costs(make_clients(emu), SUB, WINDOW)


def test_emulator_refuses_an_unknown_grouping(emu: AzureCostsEmulator) -> None:
    emu.add_subscription(SUB)
    body = billing.query_body(WINDOW)
    body["dataset"]["grouping"].append({"type": "Dimension", "name": "Resource"})
    client = make_clients(emu).costs()
    from azure.core.exceptions import HttpResponseError

    with pytest.raises(HttpResponseError, match="Invalid dataset grouping: 'Resource'; valid values"):
        client.query.usage(f"subscriptions/{SUB}", body)


def test_works_as_an_extension_of_the_arm_emulator() -> None:
    """The demo's wiring: the query route inside the ARM emulator, subscriptions known from it."""
    from providers.sandbox.azure_arm import AzureArmEmulator
    from providers.sandbox.azure_costs import AzureCostsExtension

    ext = AzureCostsExtension(page_size=1)
    with AzureArmEmulator(extensions=[ext]) as arm:
        arm.add_subscription(SUB)
        assert billing.costs(make_clients(arm), SUB, WINDOW) == []
        ext.add_usage(SUB, START, A100, "Virtual Machines", "2.5")
        ext.add_usage(SUB, START, T4, "Virtual Machines", "0.5")
        records = billing.costs(make_clients(arm), SUB, WINDOW)
    assert sorted(r.billed_cost for r in records) == [Decimal("0.5"), Decimal("2.5")]
    assert arm.count("$skiptoken=") == 1
