"""``costagent prices``: the shipped catalog for a type and/or region, refreshed live on request.

Live refresh asks each cloud's price API (AWS Pricing API and spot price history, the GCP Cloud
Billing Catalog, the Azure Retail Prices API); a price that does not answer or is implausible keeps
the shipped figure, whose source and date the output shows.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime

from providers.catalog import PriceCatalog
from providers.errors import ProviderError
from providers.model import Cloud, CommitmentRate, PriceQuote, PricingModel
from reports.prices import PriceRow

log = logging.getLogger(__name__)

#: (region, instance types, at) -> (quotes, commitment rates) from a cloud's live price API.
LiveSource = Callable[[str, Sequence[str], datetime], tuple[list[PriceQuote], list[CommitmentRate]]]


def price_rows(cloud: Cloud, at: datetime, instance_type: str | None = None, region: str | None = None,
               live: LiveSource | None = None) -> list[PriceRow]:
    catalog = PriceCatalog.shipped(cloud)
    entries = catalog.listing(cloud, instance_type, region)
    live_quotes: dict[tuple[str, str, PricingModel], PriceQuote] = {}
    live_rates: dict[tuple[str, str], list[CommitmentRate]] = {}
    if live is not None:
        by_region: dict[str, list[str]] = {}
        for e in entries:
            by_region.setdefault(e.region, []).append(e.instance_type)
        for reg, types in sorted(by_region.items()):
            try:
                quotes, rates = live(reg, types, at)
            except ProviderError as exc:  # the shipped figures stand; say why once per region
                log.warning("event=live_prices_failed cloud=%s region=%s error=%r", cloud, reg, exc.one_line())
                continue
            live_quotes.update({(q.region, q.instance_type, q.pricing_model): q for q in quotes})
            for r in rates:
                live_rates.setdefault((r.region, r.instance_type), []).append(r)
    rows = []
    for e in entries:
        shipped = {q.pricing_model: q for q in catalog.quotes(cloud, e.region, e.instance_type)}
        od = live_quotes.get((e.region, e.instance_type, PricingModel.ON_DEMAND), shipped.get(PricingModel.ON_DEMAND))
        spot = live_quotes.get((e.region, e.instance_type, PricingModel.SPOT), shipped.get(PricingModel.SPOT))
        if spot is not None and spot.interruption is None and e.spot_interruption:
            spot = PriceQuote(spot.cloud, spot.region, spot.instance_type, spot.pricing_model, spot.hourly_usd,
                              spot.source, spot.as_of, e.spot_interruption)
        rates = _merge(catalog.commitment_rates(cloud, e.region, e.instance_type),
                       live_rates.get((e.region, e.instance_type), []))
        rows.append(PriceRow(cloud.value, e.region, e.instance_type, e.gpu_model, e.gpu_count, e.gpu_memory_gib,
                             e.vcpu, e.memory_gib, od, spot, tuple(rates)))
    return rows


def _merge(shipped: Sequence[CommitmentRate], live: Sequence[CommitmentRate]) -> list[CommitmentRate]:
    """Live rates replace shipped ones of the same instrument and term."""
    merged = {(c.instrument, c.term_years): c for c in shipped}
    merged.update({(c.instrument, c.term_years): c for c in live})
    return [merged[k] for k in sorted(merged, key=lambda k: (k[0].value, k[1]))]


def live_source(cloud: Cloud, profile: str | None = None) -> LiveSource:
    """The live price API of ``cloud`` (its SDK imported only now)."""
    if cloud == Cloud.AWS:
        from providers.aws import AwsProvider
        from providers.aws.client import AwsClients

        provider = AwsProvider(AwsClients(profile=profile), live_prices=True)

        return lambda region, types, at: (provider.prices(region, types, at),
                                          provider.commitment_rates(region, types, at))
    if cloud == Cloud.GCP:
        from providers.gcp import pricing as gcp_pricing
        from providers.gcp.client import CatalogClient

        client = CatalogClient()
        shipped = PriceCatalog.shipped(Cloud.GCP)
        return lambda region, types, at: (gcp_pricing.quotes(client, shipped, region, types, at),
                                          gcp_pricing.commitment_rates(client, shipped, region, types, at))
    from providers.azure import pricing as azure_pricing
    from providers.azure.retail_prices import RetailPricesClient

    retail = RetailPricesClient()
    shipped = PriceCatalog.shipped(Cloud.AZURE)
    return lambda region, types, at: (azure_pricing.quotes(retail, shipped, region, types, at),
                                      azure_pricing.commitment_rates(retail, shipped, region, types, at))
