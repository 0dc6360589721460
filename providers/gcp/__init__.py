"""GCP provider (Compute Engine): inventory, Cloud Monitoring utilization, BigQuery billing, catalog prices.

Importing this package imports the google SDKs (through ``client.py``); the agent imports it lazily
so a user without the ``gcp`` extra can still audit other clouds. ``client.py`` builds every SDK
client; ``inventory.py``, ``groups.py``, ``metrics.py``, ``billing.py``, ``pricing.py`` and
``commitments.py`` turn answers into ``providers.model`` records; ``actuator.py`` holds the
mutation primitives the guarded apply uses; ``storage.py`` reads billing files from Cloud Storage.

Compute Engine is zonal and its inventory is one ``aggregatedList`` per project over every zone:
the provider reads it once per run and serves each region from it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Sequence
from datetime import datetime, timedelta

import pandas as pd

from providers.accounts import AccountInventory, ListedOnceProvider, usage_per_account
from providers.base import UsageResult
from providers.catalog import PriceCatalog
from providers.gcp import billing, commitments, groups, inventory, metrics, pricing
from providers.gcp.client import GcpClients
from providers.model import Cloud, CommitmentRate, CostRecord, Group, PriceQuote, Resource, Window

log = logging.getLogger(__name__)


class GcpProvider(ListedOnceProvider):
    cloud = Cloud.GCP
    costs_hint = ("export Cloud Billing data to BigQuery (standard or detailed usage cost, or the FOCUS view) "
                  "and name the table as gcp.billing_table in the config file")

    def __init__(self, clients: GcpClients | None = None, *, live_prices: bool = True,
                 billing_table: str | None = None) -> None:
        self.clients = clients or GcpClients()
        self._catalog = PriceCatalog.shipped(Cloud.GCP)
        self._live_prices = live_prices
        self._billing_table = billing_table
        self._inventory = AccountInventory(
            Cloud.GCP, self.clients.projects,
            lambda project: inventory.list_instances(self.clients, project, self._catalog))

    def projects(self) -> list[str]:
        return self._inventory.accounts()

    def groups(self, region: str) -> list[Group]:
        return self._inventory.groups(region, lambda project, found: groups.list_groups(
            self.clients, project, {r.ref.id: r for r in found}))

    def offered_types(self, region: str, instance_types: Sequence[str]) -> set[str]:
        projects = self.projects()
        return groups.offered_types(self.clients, projects[0], region, instance_types) if projects else set()

    def usage(
        self,
        region: str,
        resources: Sequence[Resource],
        window: Window,
        period: timedelta,
        on_progress: Callable[[int, int], None] | None = None,
        host_metrics_for: Callable[[pd.DataFrame], Collection[str]] | None = None,
    ) -> UsageResult:
        """Per project (Cloud Monitoring is scoped by project), the results joined."""
        return usage_per_account(resources, period, lambda project, mine: metrics.usage(
            self.clients, project, region, mine, window, period, on_progress=on_progress,
            host_metrics_for=host_metrics_for))

    def costs(self, window: Window) -> list[CostRecord]:
        if not self._billing_table:
            return []  # the agent reports a "costs" gap with ``costs_hint``
        return billing.costs(self.clients, self._billing_table, window)

    def prices(self, region: str, instance_types: Sequence[str], at: datetime) -> list[PriceQuote]:
        return pricing.quotes(self.clients.catalog(), self._catalog, region, instance_types, at,
                              live=self._live_prices)

    def commitment_rates(self, region: str, instance_types: Sequence[str], at: datetime) -> list[CommitmentRate]:
        return commitments.commitment_rates(self.clients.catalog(), self._catalog, region, instance_types, at,
                                            live=self._live_prices)

    def api_calls(self) -> dict[str, int]:
        return self.clients.all_calls()
