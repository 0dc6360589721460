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
import threading
from collections.abc import Callable, Collection, Sequence
from datetime import datetime, timedelta

import pandas as pd

from providers.base import UsageResult
from providers.catalog import PriceCatalog
from providers.errors import ProviderError
from providers.gcp import billing, commitments, groups, inventory, metrics, pricing
from providers.gcp.client import GcpClients
from providers.model import Cloud, CommitmentRate, CostRecord, Gap, Group, PriceQuote, Resource, Usage, Window

log = logging.getLogger(__name__)


class GcpProvider:
    cloud = Cloud.GCP
    costs_hint = ("export Cloud Billing data to BigQuery (standard or detailed usage cost, or the FOCUS view) "
                  "and name the table as gcp.billing_table in the config file")

    def __init__(self, clients: GcpClients | None = None, *, live_prices: bool = True,
                 billing_table: str | None = None) -> None:
        self.clients = clients or GcpClients()
        self._catalog = PriceCatalog.shipped(Cloud.GCP)
        self._live_prices = live_prices
        self._billing_table = billing_table
        self._lock = threading.Lock()
        self._inventory: dict[str, list[Resource]] | None = None
        self._groups: dict[str, list[Group]] = {}
        self._gaps: list[Gap] = []
        self._failed: ProviderError | None = None  # every account failed: said once, not once per region

    # -- inventory (read once per run) -----------------------------------------------------------
    def _all(self) -> dict[str, list[Resource]]:
        with self._lock:
            if self._failed is not None:
                raise self._failed
            if self._inventory is None:
                found: dict[str, list[Resource]] = {}
                try:
                    projects = self.clients.projects()
                except ProviderError as exc:
                    self._failed = exc
                    raise
                failures: list[ProviderError] = []
                for project in projects:
                    try:
                        found[project] = inventory.list_instances(self.clients, project, self._catalog)
                    except ProviderError as exc:  # one project's failure must not hide the others
                        failures.append(exc)
                        self._gaps.append(Gap(Cloud.GCP, "inventory", exc.one_line(), None, None, project, exc.hint))
                if failures and len(failures) == len(projects):
                    self._gaps.clear()  # the failure itself is reported
                    self._failed = failures[0]
                    raise failures[0]
                self._inventory = found
            return self._inventory

    def projects(self) -> list[str]:
        return sorted(self._all())

    def default_regions(self) -> list[str]:
        """Every region holding at least one instance (Compute Engine has no 'default region' to speak of)."""
        return sorted({r.ref.region for rs in self._all().values() for r in rs})

    def pending_gaps(self) -> list[Gap]:
        """Gaps found outside a region's calls (a project that could not be listed); each reported once."""
        with self._lock:
            out, self._gaps = self._gaps, []
        return out

    def resources(self, region: str) -> list[Resource]:
        return [r for rs in self._all().values() for r in rs if r.ref.region == region]

    def groups(self, region: str) -> list[Group]:
        out: list[Group] = []
        for project, found in self._all().items():
            if project not in self._groups:
                self._groups[project] = groups.list_groups(self.clients, project, {r.ref.id: r for r in found})
            out += [g for g in self._groups[project] if g.ref.region == region]
        return out

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
        parts: list[Usage] = []
        gaps: list[Gap] = []
        for project in sorted({r.ref.account for r in resources}):
            mine = [r for r in resources if r.ref.account == project]
            result = metrics.usage(self.clients, project, region, mine, window, period,
                                   on_progress=on_progress, host_metrics_for=host_metrics_for)
            parts.append(result.usage)
            gaps += result.gaps
        return UsageResult(Usage.concat(parts, period), tuple(gaps))

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
