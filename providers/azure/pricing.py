"""Azure VM prices: the shipped catalog, refined by the Azure Retail Prices API when it answers.

Which items count (Linux pay-as-you-go list prices in USD):
- ``type`` "Consumption" whose ``productName`` does not contain "Windows" (Windows meters carry the
  licence); ``skuName`` ending " Spot" is the Spot price, " Low Priority" (Batch) is ignored;
- ``type`` "Reservation" with ``reservationTerm`` "1 Year" / "3 Years": PITFALL, its ``unitPrice`` is
  the TOTAL for the whole term (whatever ``unitOfMeasure`` says), so the hourly rate is the total over
  8760 or 26280 hours;
- ``savingsPlan`` entries of the Linux consumption item: ``unitPrice`` per hour, ``term`` "1 Year" / "3 Years";
- "DevTestConsumption" and non-USD items are ignored; of several meters for one price the primary
  meter region's, latest ``effectiveStartDate``, wins.

A live price is checked before use: on demand off the shipped price by more than 2x either way,
Spot outside 5-100 % of on demand, or a commitment rate outside 10-100 % of on demand is rejected
(event=price_rejected) and the shipped quote kept.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from providers.azure.retail_prices import RetailPricesClient
from providers.catalog import PriceCatalog, plausible_commitment, plausible_on_demand, plausible_spot
from providers.errors import ProviderError
from providers.model import Cloud, CommitmentRate, Instrument, PriceQuote, PricingModel

log = logging.getLogger(__name__)

SOURCE = "azure-retail-prices"
TERM_YEARS = {"1 Year": 1, "3 Years": 3, "3 Year": 3}
TERM_HOURS = {1: Decimal(8760), 3: Decimal(26280)}
HOURLY_PLACES = Decimal("0.0000000001")  # a reservation's total over its hours, to 1e-10 $/h


@dataclass
class VmPrices:
    """What the API says about one VM size in one region (hourly USD, Linux)."""

    on_demand: Decimal | None = None
    spot: Decimal | None = None
    reservation: dict[int, Decimal] = field(default_factory=dict)  # term years -> hourly (total / hours)
    savings_plan: dict[int, Decimal] = field(default_factory=dict)  # term years -> hourly


def vm_prices(items: Iterable[dict[str, Any]]) -> dict[str, VmPrices]:
    """Linux prices per ``armSkuName`` from Retail Prices items (see the module doc for the rules)."""
    best: dict[tuple[str, str], tuple[tuple[bool, str], Decimal, dict[str, Any]]] = {}
    for item in items:
        picked = _classify(item)
        if picked is None:
            continue
        kind, price = picked
        key = (str(item.get("armSkuName")), kind)
        rank = (bool(item.get("isPrimaryMeterRegion", True)), str(item.get("effectiveStartDate", "")))
        if key not in best or rank > best[key][0]:
            best[key] = (rank, price, item)
    out: dict[str, VmPrices] = {}
    for (sku, kind), (_, price, item) in best.items():
        prices = out.setdefault(sku, VmPrices())
        if kind == "consumption":
            prices.on_demand = price
            prices.savings_plan.update(_savings_plan(item))
        elif kind == "spot":
            prices.spot = price
        else:
            years = int(kind.removeprefix("reservation-"))
            prices.reservation[years] = (price / TERM_HOURS[years]).quantize(HOURLY_PLACES)
    return out


def _classify(item: dict[str, Any]) -> tuple[str, Decimal] | None:
    """("consumption" | "spot" | "reservation-N", unit price) for a usable Linux VM item, else None."""
    if item.get("currencyCode", "USD") != "USD" or item.get("serviceName", "Virtual Machines") != "Virtual Machines":
        return None
    if "windows" in str(item.get("productName", "")).lower():
        return None
    price = _decimal(item.get("unitPrice", item.get("retailPrice")))
    if price is None or price <= 0:
        return None
    sku_name = str(item.get("skuName", ""))
    kind = item.get("type")
    if kind == "Consumption":
        if str(item.get("unitOfMeasure", "1 Hour")) != "1 Hour" or sku_name.endswith("Low Priority"):
            return None
        return ("spot" if sku_name.endswith("Spot") else "consumption"), price
    if kind == "Reservation":
        years = TERM_YEARS.get(str(item.get("reservationTerm", "")))
        if years is None or sku_name.endswith(("Spot", "Low Priority")):
            return None
        return f"reservation-{years}", price  # the TOTAL for the term; divided by the caller
    return None  # DevTestConsumption and anything new


def _savings_plan(item: dict[str, Any]) -> dict[int, Decimal]:
    out = {}
    for plan in item.get("savingsPlan") or []:
        years = TERM_YEARS.get(str(plan.get("term", ""))) if isinstance(plan, dict) else None
        price = _decimal(plan.get("unitPrice", plan.get("retailPrice"))) if years else None
        if years and price is not None and price > 0:
            out[years] = price
    return out


def _decimal(value: Any) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def live_prices(client: RetailPricesClient, region: str, instance_types: Sequence[str]) -> dict[str, VmPrices]:
    """The API's prices for these sizes in ``region``; {} when it does not answer."""
    if not instance_types:
        return {}
    try:
        return vm_prices(client.vm_items(region, instance_types))
    except ProviderError as exc:
        log.info("event=pricing_api_unavailable cloud=azure region=%s error=%r", region, exc.one_line())
        return {}


def quotes(
    client: RetailPricesClient,
    shipped: PriceCatalog,
    region: str,
    instance_types: Sequence[str],
    at: datetime,
    live: bool = True,
) -> list[PriceQuote]:
    """On-demand and Spot quotes for ``instance_types`` in ``region``: shipped, refined when plausible."""
    types = sorted(set(instance_types))
    out = {(q.instance_type, q.pricing_model): q for t in types for q in shipped.quotes(Cloud.AZURE, region, t)}
    found = live_prices(client, region, types) if live else {}
    for itype in types:
        prices = found.get(itype)
        if prices is None:
            continue
        ref = out.get((itype, PricingModel.ON_DEMAND))
        if prices.on_demand is not None:
            if plausible_on_demand(prices.on_demand, ref.hourly_usd if ref else None):
                out[(itype, PricingModel.ON_DEMAND)] = PriceQuote(Cloud.AZURE, region, itype, PricingModel.ON_DEMAND,
                                                                  prices.on_demand, SOURCE, at)
            else:
                log.warning("event=price_rejected cloud=azure region=%s type=%s model=on-demand live=%s catalog=%s",
                            region, itype, prices.on_demand, ref.hourly_usd if ref else None)
        od = out.get((itype, PricingModel.ON_DEMAND))
        if prices.spot is not None:
            if od is not None and plausible_spot(prices.spot, od.hourly_usd):
                out[(itype, PricingModel.SPOT)] = PriceQuote(Cloud.AZURE, region, itype, PricingModel.SPOT,
                                                             prices.spot, SOURCE, at)
            else:
                log.warning("event=price_rejected cloud=azure region=%s type=%s model=spot live=%s on_demand=%s",
                            region, itype, prices.spot, od.hourly_usd if od else None)
    return list(out.values())


def commitment_rates(
    client: RetailPricesClient,
    shipped: PriceCatalog,
    region: str,
    instance_types: Sequence[str],
    at: datetime,
    live: bool = True,
) -> list[CommitmentRate]:
    """Reservation and savings-plan hourly rates (1 and 3 years), live and plausible only.

    The shipped catalog has no commitment prices, so nothing comes back when the API does not answer.
    """
    types = sorted(set(instance_types))
    found = live_prices(client, region, types) if live else {}
    out = []
    for itype in types:
        prices = found.get(itype)
        od = _on_demand_reference(prices, shipped, region, itype)
        if prices is None or od is None:
            continue
        for instrument, rates in ((Instrument.AZURE_RESERVATION, prices.reservation),
                                  (Instrument.AZURE_SAVINGS_PLAN, prices.savings_plan)):
            for years, hourly in sorted(rates.items()):
                if plausible_commitment(hourly, od):
                    out.append(CommitmentRate(Cloud.AZURE, region, itype, instrument, years, hourly, SOURCE, at))
                else:
                    log.warning("event=price_rejected cloud=azure region=%s type=%s model=%s-%dy live=%s on_demand=%s",
                                region, itype, instrument.value, years, hourly, od)
    return out


def _on_demand_reference(prices: VmPrices | None, shipped: PriceCatalog, region: str, itype: str) -> Decimal | None:
    """What ``quotes`` settles on for on demand: the plausible live price, else the shipped one."""
    ref = next((q for q in shipped.quotes(Cloud.AZURE, region, itype)
                if q.pricing_model is PricingModel.ON_DEMAND), None)
    if prices is not None and prices.on_demand is not None and plausible_on_demand(prices.on_demand, ref.hourly_usd if ref else None):
        return prices.on_demand
    return ref.hourly_usd if ref else None
