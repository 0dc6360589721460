"""Azure VM prices: ``requests`` over HTTP to the local Retail Prices emulator.

Live prices land on the public ones, reservations (whose unitPrice is the TOTAL for the term) are
divided into hourly rates, Windows / Low Priority / DevTest meters are ignored, and implausible
prices or a dead API leave the shipped quotes in place.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import date, datetime, timezone
from decimal import Decimal

import pytest
import requests

from providers.azure import pricing
from providers.azure.retail_prices import API_VERSION, RetailPricesClient, vm_filter
from providers.catalog import CatalogEntry, PriceCatalog
from providers.errors import ProviderError, Throttled
from providers.model import Cloud, Instrument, PricingModel
from providers.sandbox.azure_prices import AzurePricesEmulator, FilterError, parse_filter

AT = datetime(2026, 11, 1, 12, tzinfo=timezone.utc)
REGION = "eastus"
A100 = "Standard_NC24ads_A100_v4"
A100X2 = "Standard_NC48ads_A100_v4"  # eastus2 in the emulator
T4 = "Standard_NC4as_T4_v3"
D4 = "Standard_D4ds_v5"
TYPES = [A100, T4, D4]


def _entry(itype: str, gpu: str, count: int, gpu_mem: float, vcpu: int, mem: float, price: str,
           region: str = REGION) -> CatalogEntry:
    return CatalogEntry(Cloud.AZURE, itype, region, gpu, count, gpu_mem, vcpu, mem, Decimal(price),
                        "hand-built test catalog", date(2026, 1, 28), 80.0, None, "hand-built", date(2026, 1, 28))


SHIPPED = PriceCatalog([
    _entry(A100, "A100", 1, 80, 24, 220, "3.60"),
    _entry(A100X2, "A100", 2, 80, 48, 440, "7.20", region="eastus2"),
    _entry(T4, "T4", 1, 16, 4, 28, "0.50"),
    _entry(D4, "", 0, 0, 4, 16, "0.22"),
])


@pytest.fixture
def emulator() -> Iterator[AzurePricesEmulator]:
    with AzurePricesEmulator() as emu:
        yield emu


def _client(url: str, **kwargs) -> RetailPricesClient:
    return RetailPricesClient(url, backoff=0, **kwargs)


def _by_key(quotes):
    out = {(q.instance_type, q.pricing_model): q for q in quotes}
    assert len(out) == len(quotes)
    return out


def test_live_on_demand_and_spot_are_the_public_prices(emulator: AzurePricesEmulator) -> None:
    quotes = _by_key(pricing.quotes(_client(emulator.url), SHIPPED, REGION, TYPES, AT))

    # azure.microsoft.com Linux pay-as-you-go, East US: NC24ads A100 v4 3.673 $/h, NC4as T4 v3 0.526 $/h.
    assert quotes[(A100, PricingModel.ON_DEMAND)].hourly_usd == Decimal("3.673")
    assert quotes[(T4, PricingModel.ON_DEMAND)].hourly_usd == Decimal("0.526")
    assert quotes[(A100, PricingModel.SPOT)].hourly_usd == Decimal("0.444433")
    assert quotes[(T4, PricingModel.SPOT)].hourly_usd == Decimal("0.062699")
    live = [q for k, q in quotes.items() if k != (D4, PricingModel.SPOT)]  # no D4 Spot item in the emulator
    assert {q.source for q in live} == {pricing.SOURCE}
    assert all(q.as_of == AT for q in live) and {q.region for q in quotes.values()} == {REGION}
    assert quotes[(D4, PricingModel.SPOT)].source.startswith("catalog")


def test_a_reservation_total_is_divided_into_an_hourly_rate(emulator: AzurePricesEmulator) -> None:
    rates = pricing.commitment_rates(_client(emulator.url), SHIPPED, REGION, TYPES, AT)

    by_key = {(r.instance_type, r.instrument, r.term_years): r.hourly_usd for r in rates}
    assert by_key[(D4, Instrument.AZURE_RESERVATION, 1)] == (Decimal(1168) / 8760).quantize(pricing.HOURLY_PLACES)
    assert by_key[(D4, Instrument.AZURE_RESERVATION, 3)] == (Decimal(2257) / 26280).quantize(pricing.HOURLY_PLACES)
    assert Decimal("0.13") < by_key[(D4, Instrument.AZURE_RESERVATION, 1)] < Decimal("0.134")
    assert by_key[(D4, Instrument.AZURE_SAVINGS_PLAN, 1)] == Decimal("0.154471")
    assert by_key[(D4, Instrument.AZURE_SAVINGS_PLAN, 3)] == Decimal("0.1032142")
    assert all(r.cloud is Cloud.AZURE and r.source == pricing.SOURCE and r.as_of == AT for r in rates)


def test_savings_plan_rates_of_a_gpu_size(emulator: AzurePricesEmulator) -> None:
    rates = pricing.commitment_rates(_client(emulator.url), SHIPPED, "eastus2", [A100X2], AT)

    assert [(r.instrument, r.term_years, r.hourly_usd) for r in rates] == [
        (Instrument.AZURE_SAVINGS_PLAN, 3, Decimal("4.5317474"))]


def test_an_undivided_reservation_total_would_be_rejected(emulator, caplog) -> None:
    """The safety net behind the division: a 'rate' above on demand is implausible."""
    caplog.set_level(logging.INFO, logger="providers.azure.pricing")
    emulator.set_price(D4, "D4ds v5", "1168000", kind="Reservation", term="1 Year")  # 133 $/h

    rates = pricing.commitment_rates(_client(emulator.url), SHIPPED, REGION, [D4], AT)

    reservations = {(r.instance_type, r.term_years) for r in rates if r.instrument is Instrument.AZURE_RESERVATION}
    assert (D4, 1) not in reservations and (D4, 3) in reservations
    assert "event=price_rejected cloud=azure region=eastus type=Standard_D4ds_v5 model=azure-reservation-1y" \
        in caplog.text


def test_windows_low_priority_and_devtest_rows_are_ignored(emulator: AzurePricesEmulator) -> None:
    items = _client(emulator.url).query(f"armRegionName eq 'eastus' and armSkuName eq '{T4}'")

    prices = pricing.vm_prices(items)[T4]

    assert {i["type"] for i in items} == {"Consumption", "DevTestConsumption"}
    assert any("Windows" in i["productName"] for i in items)
    assert any(i["skuName"].endswith("Low Priority") for i in items)
    assert (prices.on_demand, prices.spot) == (Decimal("0.526"), Decimal("0.062699"))
    assert prices.reservation == {} and prices.savings_plan == {}


def test_pages_are_followed_through_the_absolute_next_page_link() -> None:
    with AzurePricesEmulator(page_size=2) as emu:
        client = _client(emu.url)
        quotes = _by_key(pricing.quotes(client, SHIPPED, REGION, TYPES, AT))
        requests_made = list(emu.requests)

    assert quotes[(A100, PricingModel.ON_DEMAND)].hourly_usd == Decimal("3.673")
    assert len(requests_made) > 3 and all("%24skip=" in r for r in requests_made[1:])
    assert client.calls["retail-prices.GET"] == len(requests_made)


def test_one_filtered_query_per_region_serves_quotes_and_commitments(emulator: AzurePricesEmulator) -> None:
    client = _client(emulator.url)

    pricing.quotes(client, SHIPPED, REGION, TYPES, AT)
    pricing.commitment_rates(client, SHIPPED, REGION, TYPES, AT)

    assert emulator.count() == 1
    [request] = emulator.requests
    assert f"api-version={API_VERSION}" in request
    assert "DevTestConsumption" not in request


def test_an_implausible_on_demand_price_is_rejected_and_the_shipped_one_kept(emulator, caplog) -> None:
    caplog.set_level(logging.INFO, logger="providers.azure.pricing")
    emulator.set_price(A100, "NC24ads A100 v4", "36.73")

    quotes = _by_key(pricing.quotes(_client(emulator.url), SHIPPED, REGION, [A100], AT))

    od = quotes[(A100, PricingModel.ON_DEMAND)]
    assert od.source.startswith("catalog") and od.hourly_usd == Decimal("3.60")
    assert "event=price_rejected cloud=azure region=eastus type=Standard_NC24ads_A100_v4 model=on-demand" in caplog.text


def test_an_implausible_spot_price_is_rejected(emulator: AzurePricesEmulator) -> None:
    emulator.set_price(A100, "NC24ads A100 v4 Spot", "0.00001")

    spot = _by_key(pricing.quotes(_client(emulator.url), SHIPPED, REGION, [A100], AT))[(A100, PricingModel.SPOT)]

    assert spot.source.startswith("catalog")
    assert spot.hourly_usd == (Decimal("3.60") * Decimal("0.2")).quantize(Decimal("0.0001"))


def test_a_transient_failure_is_retried(emulator: AzurePricesEmulator) -> None:
    emulator.fail_next(500)

    od = _by_key(pricing.quotes(_client(emulator.url), SHIPPED, REGION, [A100], AT))[(A100, PricingModel.ON_DEMAND)]

    assert od.source == pricing.SOURCE
    assert emulator.count() == 2


@pytest.mark.parametrize("status", [429, 500, 503])
def test_a_failing_api_gives_the_shipped_quotes_without_raising(emulator, status) -> None:
    emulator.fail_next(status, count=1000)
    client = _client(emulator.url)

    quotes = pricing.quotes(client, SHIPPED, REGION, TYPES, AT)

    assert {q.source.split(":")[0] for q in quotes} == {"catalog"}
    assert len(quotes) == 2 * len(TYPES)
    assert pricing.commitment_rates(client, SHIPPED, REGION, TYPES, AT) == []
    assert emulator.count() == 3  # one query, three attempts, asked once per run


def test_a_server_that_is_down_gives_the_shipped_quotes_without_raising(caplog) -> None:
    caplog.set_level(logging.INFO, logger="providers.azure.pricing")
    with AzurePricesEmulator() as emu:
        url = emu.url
    client = _client(url)  # nothing listens there now

    quotes = pricing.quotes(client, SHIPPED, REGION, TYPES, AT)

    assert {q.source.split(":")[0] for q in quotes} == {"catalog"}
    assert pricing.commitment_rates(client, SHIPPED, REGION, TYPES, AT) == []
    assert "event=pricing_api_unavailable cloud=azure" in caplog.text
    assert url.split("?")[0] in caplog.text  # the one-line error names the URL


def test_live_prices_off_asks_nothing(emulator: AzurePricesEmulator) -> None:
    client = _client(emulator.url)

    quotes = pricing.quotes(client, SHIPPED, REGION, TYPES, AT, live=False)

    assert {q.source.split(":")[0] for q in quotes} == {"catalog"}
    assert pricing.commitment_rates(client, SHIPPED, REGION, TYPES, AT, live=False) == []
    assert emulator.requests == []


def test_a_type_absent_from_the_shipped_catalog_gets_a_bounded_live_quote(emulator: AzurePricesEmulator) -> None:
    quotes = _by_key(pricing.quotes(_client(emulator.url), PriceCatalog([]), REGION, ["Standard_NV36ads_A10_v5"], AT))

    assert quotes[("Standard_NV36ads_A10_v5", PricingModel.ON_DEMAND)].hourly_usd == Decimal("3.2")
    assert quotes[("Standard_NV36ads_A10_v5", PricingModel.SPOT)].hourly_usd == Decimal("0.8")


def test_errors_are_typed_and_name_the_url(emulator: AzurePricesEmulator) -> None:
    with pytest.raises(ProviderError, match=r"HTTP 400 from http://127\.0\.0\.1:\d+/api/retail/prices: Invalid OData"):
        _client(emulator.url).query("armSkuName in ('Standard_D4ds_v5')")
    emulator.fail_next(429, count=10)
    with pytest.raises(Throttled, match="HTTP 429"):
        _client(emulator.url, attempts=2).query("armRegionName eq 'eastus'")


def test_savings_plans_need_the_preview_api_version(emulator: AzurePricesEmulator) -> None:
    flt = vm_filter(REGION, [D4])
    old = requests.get(emulator.url, params={"$filter": flt}, timeout=5).json()
    new = requests.get(emulator.url, params={"$filter": flt, "api-version": API_VERSION}, timeout=5).json()

    assert not any("savingsPlan" in i for i in old["Items"])
    assert any("savingsPlan" in i for i in new["Items"])
    assert new["Count"] == len(new["Items"]) and new["NextPageLink"] is None


@pytest.mark.parametrize("text", ["not(contains(productName,'Windows'))", "armSkuName ne 'x'",
                                  "armSkuName in ('a','b')", "color eq 'red'", "(armSkuName eq 'a'",
                                  "armSkuName eq 'a' and"])
def test_the_emulator_rejects_filters_outside_the_subset(text: str) -> None:
    with pytest.raises(FilterError):
        parse_filter(text)


def test_the_emulator_filter_is_case_sensitive_and_honours_precedence() -> None:
    match = parse_filter("armSkuName eq 'A' or armSkuName eq 'B' and priceType eq 'Reservation'")

    assert match({"armSkuName": "A", "type": "Consumption"})
    assert not match({"armSkuName": "B", "type": "Consumption"})
    assert match({"armSkuName": "B", "type": "Reservation"})
    assert not parse_filter("serviceName eq 'virtual machines'")({"serviceName": "Virtual Machines"})
    assert parse_filter("productName eq 'O''Brien'")({"productName": "O'Brien"})
