"""Azure provider (Virtual Machines and scale sets): inventory, Azure Monitor utilization, Cost
Management costs, Retail Prices API prices.

Importing this package imports the Azure SDKs (through ``client.py``); the agent imports it lazily
so a user without the ``azure`` extra can still audit other clouds. ``client.py`` builds every
management client; ``inventory.py``, ``groups.py``, ``metrics.py``, ``billing.py``, ``pricing.py``
and ``commitments.py`` turn answers into ``providers.model`` records; ``actuator.py`` holds the
mutation primitives (deallocate, never just power off) the guarded apply uses.

The inventory is one ``virtualMachines.listAll`` per subscription: read once per run, each region
(location) served from it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Sequence
from dataclasses import replace
from datetime import datetime, timedelta

import pandas as pd

from providers.azure import billing, commitments, groups, inventory, metrics, pricing
from providers.azure.client import AzureClients
from providers.azure.retail_prices import RetailPricesClient
from providers.accounts import AccountInventory, ListedOnceProvider, usage_per_account
from providers.base import UsageResult
from providers.catalog import PriceCatalog
from providers.model import Cloud, CommitmentRate, CostRecord, Group, PriceQuote, Resource, Window

log = logging.getLogger(__name__)


class AzureProvider(ListedOnceProvider):
    cloud = Cloud.AZURE
    costs_hint = ("grant Cost Management Reader on the subscription (Cost Management answers a few hours behind "
                  "usage), or pass the subscription's FOCUS/amortized export with --billing")

    def __init__(self, clients: AzureClients | None = None, *, live_prices: bool = True,
                 prices: RetailPricesClient | None = None) -> None:
        self.clients = clients or AzureClients()
        self._catalog = PriceCatalog.shipped(Cloud.AZURE)
        self._live_prices = live_prices
        self._prices = prices or RetailPricesClient()
        self._inventory = AccountInventory(
            Cloud.AZURE, self.clients.subscriptions,
            lambda sub: inventory.list_vms(self.clients, sub, self._catalog))

    def subscriptions(self) -> list[str]:
        return self._inventory.accounts()

    def groups(self, region: str) -> list[Group]:
        return self._inventory.groups(region, lambda sub, _found: groups.list_groups(self.clients, sub))

    def offered_types(self, region: str, instance_types: Sequence[str]) -> set[str]:
        subs = self.subscriptions()
        return groups.offered_types(self.clients, subs[0], region, instance_types) if subs else set()

    def usage(
        self,
        region: str,
        resources: Sequence[Resource],
        window: Window,
        period: timedelta,
        on_progress: Callable[[int, int], None] | None = None,
        host_metrics_for: Callable[[pd.DataFrame], Collection[str]] | None = None,
    ) -> UsageResult:
        return usage_per_account(resources, period, lambda sub, mine: metrics.usage(
            self.clients, sub, region, mine, window, period, on_progress=on_progress,
            host_metrics_for=host_metrics_for))

    def costs(self, window: Window) -> list[CostRecord]:
        """Cost Management rows per VM and day; the VM's size (not a query dimension) taken from the inventory,
        matched on the lower-cased ARM id, so that GPU spend is counted per instance type like on AWS."""
        sizes = {r.ref.id.lower(): r.instance_type for rs in self._inventory.all().values() for r in rs}
        out: list[CostRecord] = []
        for sub in self.subscriptions():
            out += [replace(c, sku=sizes.get((c.resource_id or "").lower(), c.sku))
                    for c in billing.costs(self.clients, sub, window)]
        return out

    def prices(self, region: str, instance_types: Sequence[str], at: datetime) -> list[PriceQuote]:
        return pricing.quotes(self._prices, self._catalog, region, instance_types, at, live=self._live_prices)

    def commitment_rates(self, region: str, instance_types: Sequence[str], at: datetime) -> list[CommitmentRate]:
        return commitments.commitment_rates(self._prices, self._catalog, region, instance_types, at,
                                            live=self._live_prices)

    def api_calls(self) -> dict[str, int]:
        calls = dict(self.clients.calls)
        for key, n in self._prices.calls.items():
            calls[key] = calls.get(key, 0) + n
        return calls
