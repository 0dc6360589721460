"""Live AWS commitment rates: Savings Plans offering rates and standard reserved-instance offerings.

Two public read-only APIs give what a commitment would cost per hour, per instance type:

- ``savingsplans:DescribeSavingsPlansOfferingRates`` (Compute and EC2 Instance Savings Plans, no
  upfront): each rate is the hourly USD price of one usage type under one plan offering, and the
  offering's ``durationSeconds`` gives the term;
- ``ec2:DescribeReservedInstancesOfferings`` (standard, regional, Linux/UNIX, default tenancy, no
  upfront, AWS's own offerings only): the hourly price is the hourly recurring charge, plus the
  fixed price spread over the term and the usage price where AWS states them.

A rate outside 10-100 % of the shipped catalog's on-demand price for the type is rejected and logged
(``event=commitment_rate_rejected``): moto, for one, answers RI offerings with canned prices for a
few small types. Neither API failing raises: the failure is logged and the other API's rates (or
none) come back; the caller keeps the shipped catalog's rates for whatever is missing.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from providers.aws.client import AwsClients, pages, translated
from providers.catalog import PriceCatalog, plausible_commitment
from providers.errors import ProviderError
from providers.model import Cloud, CommitmentRate, Instrument, PricingModel

log = logging.getLogger(__name__)

SAVINGS_PLANS_REGION = "us-east-1"  # the Savings Plans API is global; its endpoint answers in us-east-1
SAVINGS_PLANS_ATTEMPTS = 2
RI_ATTEMPTS = 2
#: Term lengths in seconds, as both APIs state them (365 days, 3 x 365 days).
TERM_SECONDS = {31_536_000: 1, 94_608_000: 3}
#: A live rate must lie within this fraction of the catalog's on-demand price for the type.
SP_PLAN_TYPES = {"Compute": Instrument.AWS_COMPUTE_SP, "EC2Instance": Instrument.AWS_EC2_INSTANCE_SP}
SP_SOURCE = "aws-savingsplans-api: DescribeSavingsPlansOfferingRates (No Upfront, Linux/UNIX, shared tenancy)"
RI_SOURCE = "aws-ec2-api: DescribeReservedInstancesOfferings (standard, regional, Linux/UNIX, No Upfront)"
LINUX = "Linux/UNIX"
NO_UPFRONT = "No Upfront"
SECONDS_PER_HOUR = 3600

_Key = tuple[str, Instrument, int]  # (instance type, instrument, term years)


def live_commitment_rates(
    clients: AwsClients,
    region: str,
    instance_types: Sequence[str],
    at: datetime,
    *,
    catalog: PriceCatalog | None = None,
) -> list[CommitmentRate]:
    """Plausible live Savings Plans and RI rates of ``instance_types`` in ``region``; never raises."""
    types = sorted(set(instance_types))
    if not types:
        return []
    reference = catalog or PriceCatalog.shipped(Cloud.AWS)
    found: dict[_Key, Decimal] = {}
    sources: dict[_Key, str] = {}
    for key, hourly in _savings_plan_rates(clients, region, types):
        _keep(found, sources, key, hourly, SP_SOURCE, region)
    for key, hourly in _reserved_instance_rates(clients, region, types):
        _keep(found, sources, key, hourly, RI_SOURCE, region)
    out = []
    for (itype, instrument, years), hourly in sorted(found.items(), key=lambda kv: (kv[0][0], kv[0][1].value, kv[0][2])):
        od = _on_demand(reference, region, itype)
        if not plausible_commitment(hourly, od):
            log.warning("event=commitment_rate_rejected region=%s type=%s instrument=%s term=%dy live=%s on_demand=%s",
                        region, itype, instrument.value, years, hourly, od)
            continue
        out.append(CommitmentRate(Cloud.AWS, region, itype, instrument, years, hourly, sources[(itype, instrument, years)], at))
    return out


def _keep(found: dict[_Key, Decimal], sources: dict[_Key, str], key: _Key, hourly: Decimal, source: str,
          region: str) -> None:
    """One rate per key; where an API lists the same key twice at different prices, the higher one stays."""
    old = found.get(key)
    if old is not None and old != hourly:
        log.info("event=commitment_rate_conflict region=%s type=%s instrument=%s term=%dy rates=%s,%s",
                 region, key[0], key[1].value, key[2], old, hourly)
    if old is None or hourly > old:
        found[key] = hourly
        sources[key] = source


def _on_demand(catalog: PriceCatalog, region: str, itype: str) -> Decimal | None:
    quote = next((q for q in catalog.quotes(Cloud.AWS, region, itype) if q.pricing_model is PricingModel.ON_DEMAND), None)
    return quote.hourly_usd if quote else None


# --- Savings Plans ------------------------------------------------------------------------------

def _savings_plan_rates(clients: AwsClients, region: str, types: Sequence[str]) -> list[tuple[_Key, Decimal]]:
    """(type, plan, term) -> hourly rate from every page; [] (logged) when the API does not answer."""
    try:
        client = clients.client("savingsplans", SAVINGS_PLANS_REGION, max_attempts=SAVINGS_PLANS_ATTEMPTS)
        return [rate for page in _sp_pages(client, region, types) for rate in _sp_parse(page, region, types)]
    except ProviderError as exc:
        log.info("event=savings_plans_api_unavailable region=%s error=%r", region, exc.one_line())
        return []


def _sp_pages(client: Any, region: str, types: Sequence[str]) -> Iterator[dict[str, Any]]:
    request: dict[str, Any] = {
        "savingsPlanPaymentOptions": [NO_UPFRONT],
        "savingsPlanTypes": sorted(SP_PLAN_TYPES),
        "products": ["EC2"],
        "serviceCodes": ["AmazonEC2"],
        "filters": [
            {"name": "instanceType", "values": list(types)},
            {"name": "region", "values": [region]},
            {"name": "productDescription", "values": [LINUX]},
            {"name": "tenancy", "values": ["shared"]},
        ],
        "maxResults": 1000,
    }
    seen: set[str] = set()
    while True:
        with translated("savingsplans", "DescribeSavingsPlansOfferingRates", region):
            page = client.describe_savings_plans_offering_rates(**request)
        yield page
        token = page.get("nextToken")
        if not token or token in seen:  # a repeated token would loop forever
            return
        seen.add(token)
        request["nextToken"] = token


def _sp_parse(page: dict[str, Any], region: str, types: Sequence[str]) -> Iterator[tuple[_Key, Decimal]]:
    wanted = set(types)
    for item in page.get("searchResults", []):
        offering = item.get("savingsPlanOffering") or {}
        props = {p.get("name"): p.get("value") for p in item.get("properties") or []}
        instrument = SP_PLAN_TYPES.get(str(offering.get("planType")))
        years = TERM_SECONDS.get(int(offering.get("durationSeconds") or 0))
        itype = props.get("instanceType")
        if (instrument is None or years is None or itype not in wanted
                or offering.get("paymentOption") != NO_UPFRONT
                or offering.get("currency", "USD") != "USD" or item.get("unit") != "Hrs"
                or props.get("region", region) != region
                or props.get("productDescription", LINUX) != LINUX
                or props.get("tenancy", "shared") != "shared"):
            continue
        hourly = _decimal(item.get("rate"))
        if hourly is not None:
            yield (str(itype), instrument, years), hourly


# --- Reserved instances -------------------------------------------------------------------------

def _reserved_instance_rates(clients: AwsClients, region: str, types: Sequence[str]) -> list[tuple[_Key, Decimal]]:
    """(type, RI, term) -> hourly price of regional standard no-upfront offerings; [] (logged) on failure."""
    out: list[tuple[_Key, Decimal]] = []
    try:
        client = clients.client("ec2", region, max_attempts=RI_ATTEMPTS)
        for itype in types:
            for page in pages(client, "DescribeReservedInstancesOfferings", region,
                              InstanceType=itype, ProductDescription=LINUX, OfferingClass="standard",
                              OfferingType=NO_UPFRONT, InstanceTenancy="default", IncludeMarketplace=False):
                out.extend(_ri_parse(page.get("ReservedInstancesOfferings", []), itype))
    except ProviderError as exc:
        log.info("event=ri_offerings_unavailable region=%s error=%r", region, exc.one_line())
        return out
    return out


def _ri_parse(offerings: Iterable[dict[str, Any]], itype: str) -> Iterator[tuple[_Key, Decimal]]:
    for o in offerings:
        scope = o.get("Scope") or ("Availability Zone" if o.get("AvailabilityZone") else "Region")
        years = TERM_SECONDS.get(int(o.get("Duration") or 0))
        if (o.get("InstanceType") != itype or years is None or scope != "Region" or o.get("Marketplace")
                or o.get("OfferingType") != NO_UPFRONT
                or o.get("OfferingClass", "standard") != "standard"
                or o.get("InstanceTenancy", "default") != "default"
                or o.get("ProductDescription") != LINUX
                or o.get("CurrencyCode", "USD") != "USD"):
            continue
        hourly = _ri_hourly(o)
        if hourly is not None:
            yield (itype, Instrument.AWS_RI, years), hourly


def _ri_hourly(offering: dict[str, Any]) -> Decimal | None:
    """Hourly recurring charge + usage price + fixed price spread over the term's hours."""
    recurring = [_decimal(c.get("Amount")) for c in offering.get("RecurringCharges") or [] if c.get("Frequency") == "Hourly"]
    usage = _decimal(offering.get("UsagePrice", 0))
    fixed = _decimal(offering.get("FixedPrice", 0))
    duration = int(offering.get("Duration") or 0)
    if any(r is None for r in recurring) or usage is None or fixed is None or duration <= 0:
        return None
    hourly = sum((r for r in recurring if r is not None), Decimal(0)) + usage
    if fixed:
        hourly += fixed * SECONDS_PER_HOUR / Decimal(duration)
    return hourly


def _decimal(value: Any) -> Decimal | None:
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return number if number.is_finite() and number >= 0 else None
