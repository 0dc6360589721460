"""GCP commitment rates: the shipped resource-based CUD rates, each replaced by a live one where the
Cloud Billing Catalog's Commit1Yr/Commit3Yr SKUs compose a plausible rate (``pricing.commitment_rates``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from providers.catalog import PriceCatalog
from providers.gcp import pricing
from providers.gcp.client import CatalogClient
from providers.model import Cloud, CommitmentRate


def commitment_rates(catalog: CatalogClient, shipped: PriceCatalog, region: str, instance_types: Sequence[str],
                     at: datetime, live: bool = True) -> list[CommitmentRate]:
    merged = {(c.instance_type, c.instrument, c.term_years): c
              for t in sorted(set(instance_types)) for c in shipped.commitment_rates(Cloud.GCP, region, t)}
    if live:
        for rate in pricing.commitment_rates(catalog, shipped, region, instance_types, at, live=True):
            merged[(rate.instance_type, rate.instrument, rate.term_years)] = rate
    return [merged[k] for k in sorted(merged, key=lambda k: (k[0], k[1].value, k[2]))]
