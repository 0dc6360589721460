"""Azure commitment rates: shipped reservation/savings-plan rates (none are shipped yet: no public per-size
source was found), each replaced by a live one where the Retail Prices API answers plausibly
(``pricing.commitment_rates``: reservation term totals divided by the term's hours, savings plans)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from providers.azure import pricing
from providers.azure.retail_prices import RetailPricesClient
from providers.catalog import PriceCatalog
from providers.model import Cloud, CommitmentRate


def commitment_rates(client: RetailPricesClient, shipped: PriceCatalog, region: str, instance_types: Sequence[str],
                     at: datetime, live: bool = True) -> list[CommitmentRate]:
    live_rates = pricing.commitment_rates(client, shipped, region, instance_types, at, live=True) if live else []
    return shipped.with_live_commitments(Cloud.AZURE, region, instance_types, live_rates)
