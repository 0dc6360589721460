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
    live_rates = pricing.commitment_rates(catalog, shipped, region, instance_types, at, live=True) if live else []
    return shipped.with_live_commitments(Cloud.GCP, region, instance_types, live_rates)
