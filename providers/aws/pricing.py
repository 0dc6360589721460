"""EC2 prices: the shipped catalog, refined by the Pricing API and spot price history when they answer.

Live prices are checked against the catalog before use: an on-demand price off the catalog's by
more than 2x either way, or a spot price older than a week or outside 5-100 % of on-demand, is
rejected (moto, for one, answers spot history with 0.00001 dated 2006).
"""

from __future__ import annotations

import json
import logging
import statistics
from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from providers.aws.client import AwsClients, pages
from providers.catalog import PriceCatalog, plausible_on_demand, plausible_spot
from providers.errors import ProviderError
from providers.model import Cloud, PriceQuote, PricingModel

log = logging.getLogger(__name__)

PRICING_REGION = "us-east-1"  # the Pricing API's home
SPOT_MAX_AGE = timedelta(days=7)


def quotes(
    clients: AwsClients, catalog: PriceCatalog, region: str, instance_types: Sequence[str], at: datetime, live: bool = True
) -> list[PriceQuote]:
    shipped = {(q.instance_type, q.pricing_model): q for t in instance_types for q in catalog.quotes(Cloud.AWS, region, t)}
    if live:
        for itype, price in live_on_demand(clients, region, instance_types).items():
            ref = shipped.get((itype, PricingModel.ON_DEMAND))
            if plausible_on_demand(price, ref.hourly_usd if ref else None):
                shipped[(itype, PricingModel.ON_DEMAND)] = PriceQuote(
                    Cloud.AWS, region, itype, PricingModel.ON_DEMAND, price, "aws-pricing-api", at)
            else:
                log.warning("event=price_rejected region=%s type=%s live=%s catalog=%s", region, itype, price,
                            ref.hourly_usd if ref else None)
        for itype, (price, stamp) in live_spot(clients, region, instance_types, at).items():
            od = shipped.get((itype, PricingModel.ON_DEMAND))
            if od and at - stamp <= SPOT_MAX_AGE and plausible_spot(price, od.hourly_usd):
                shipped[(itype, PricingModel.SPOT)] = PriceQuote(
                    Cloud.AWS, region, itype, PricingModel.SPOT, price, "ec2-spot-price-history", stamp)
            else:
                log.info("event=spot_price_rejected region=%s type=%s price=%s at=%s", region, itype, price, stamp.isoformat())
    return list(shipped.values())


def live_on_demand(clients: AwsClients, region: str, instance_types: Sequence[str]) -> dict[str, Decimal]:
    """Linux shared-tenancy on-demand prices from ``pricing:GetProducts``; {} when it does not answer."""
    client = clients.client("pricing", PRICING_REGION, max_attempts=1)
    out: dict[str, Decimal] = {}
    for itype in sorted(set(instance_types)):
        filters = [
            {"Type": "TERM_MATCH", "Field": field, "Value": value}
            for field, value in (
                ("instanceType", itype),
                ("regionCode", region),
                ("operatingSystem", "Linux"),
                ("tenancy", "Shared"),
                ("preInstalledSw", "NA"),
                ("capacitystatus", "Used"),
            )
        ]
        try:
            for page in pages(client, "GetProducts", PRICING_REGION, ServiceCode="AmazonEC2", Filters=filters):
                price = _on_demand_from_price_list(page.get("PriceList", []))
                if price is not None:
                    out[itype] = price
                    break
        except ProviderError as exc:
            log.info("event=pricing_api_unavailable region=%s error=%r", region, exc.one_line())
            return out
    return out


def _on_demand_from_price_list(price_list: list[Any]) -> Decimal | None:
    for item in price_list:
        product = json.loads(item) if isinstance(item, str) else item
        for term in (product.get("terms", {}).get("OnDemand") or {}).values():
            for dim in (term.get("priceDimensions") or {}).values():
                if dim.get("unit") not in ("Hrs", "Hours"):
                    continue
                try:
                    value = Decimal(str(dim.get("pricePerUnit", {}).get("USD")))
                except InvalidOperation:
                    continue
                if value > 0:
                    return value
    return None


def live_spot(clients: AwsClients, region: str, instance_types: Sequence[str], at: datetime) -> dict[str, tuple[Decimal, datetime]]:
    """Median over zones of each zone's latest Linux spot price in the last day."""
    if not instance_types:
        return {}
    client = clients.client("ec2", region, max_attempts=2)
    latest: dict[tuple[str, str], tuple[datetime, Decimal]] = {}
    try:
        for page in pages(client, "DescribeSpotPriceHistory", region, InstanceTypes=sorted(set(instance_types)),
                          ProductDescriptions=["Linux/UNIX", "Linux/UNIX (Amazon VPC)"],
                          StartTime=at - timedelta(days=1), EndTime=at):
            for item in page.get("SpotPriceHistory", []):
                key = (item["InstanceType"], item.get("AvailabilityZone", ""))
                stamp = item["Timestamp"]
                price = Decimal(str(item["SpotPrice"]))
                if key not in latest or stamp > latest[key][0]:
                    latest[key] = (stamp, price)
    except ProviderError as exc:
        log.info("event=spot_history_unavailable region=%s error=%r", region, exc.one_line())
        return {}
    by_type: dict[str, list[tuple[datetime, Decimal]]] = {}
    for (itype, _), value in latest.items():
        by_type.setdefault(itype, []).append(value)
    return {
        itype: (Decimal(str(statistics.median(p for _, p in values))), max(s for s, _ in values))
        for itype, values in by_type.items()
    }
