"""AWS provider: EC2 inventory, CloudWatch utilization, Cost Explorer costs, EC2 prices.

Importing this package imports boto3 (through ``client.py``); the agent imports it lazily so a
user without the ``aws`` extra can still audit other clouds.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from datetime import datetime, timedelta

import pandas as pd

from providers.aws import billing, commitments, groups, inventory, metrics, pricing
from providers.aws.client import AwsClients
from providers.base import UsageResult
from providers.catalog import PriceCatalog
from providers.model import Cloud, CommitmentRate, CostRecord, Group, PriceQuote, Resource, Usage, Window


class AwsProvider:
    cloud = Cloud.AWS
    costs_hint = "Cost Explorer must be enabled for the account (it can take 24 h after enabling)"

    def __init__(self, clients: AwsClients | None = None, *, live_prices: bool = True) -> None:
        self.clients = clients or AwsClients()
        self._catalog = PriceCatalog.shipped(Cloud.AWS)
        self._types = inventory.InstanceTypeCache(self.clients, lambda t: self._catalog.spec(Cloud.AWS, t))
        self._live_prices = live_prices
        self._account: str | None = None

    def default_regions(self) -> list[str]:
        region = self.clients.default_region()
        return [region] if region else []

    def resources(self, region: str) -> list[Resource]:
        found = inventory.list_instances(self.clients, self._types, region)
        if found and self._account is None:
            self._account = found[0].ref.account
        return found

    def groups(self, region: str) -> list[Group]:
        return groups.list_groups(self.clients, region, self._account or "")

    def offered_types(self, region: str, instance_types: Sequence[str]) -> set[str]:
        return groups.offered_types(self.clients, region, instance_types)

    def usage(
        self,
        region: str,
        resources: Sequence[Resource],
        window: Window,
        period: timedelta,
        on_progress: Callable[[int, int], None] | None = None,
        host_metrics_for: Callable[[pd.DataFrame], Collection[str]] | None = None,
    ) -> UsageResult:
        if not resources:
            return UsageResult(Usage.empty(period))
        series = metrics.discover_gpu_series(self.clients, region, {r.ref.id for r in resources})
        measured = [r for r in resources if r.ref.id in series]  # no GPU telemetry: CPU alone would mislead
        power = metrics.discover_power_series(self.clients, region, set(series)) if series else {}
        gpu = metrics.gpu_queries(measured, series, period, power=power)
        done, total = 0, len(gpu) + len(measured) * len(metrics.EC2_SERIES)

        def advance(n: int) -> None:
            nonlocal done
            done += n
            if on_progress:
                on_progress(done, total)

        gpu_frame, gaps = metrics.fetch(self.clients, region, gpu, window, on_batch=advance)
        if host_metrics_for is not None:
            wanted = set(host_metrics_for(gpu_frame))
            measured = [r for r in measured if r.ref.key in wanted]
            total = len(gpu) + len(measured) * len(metrics.EC2_SERIES)
        host_frame, host_gaps = metrics.fetch(self.clients, region, metrics.host_queries(measured, period), window,
                                              on_batch=advance)
        frame = Usage.concat([Usage(gpu_frame, period), Usage(host_frame, period)], period).frame
        gaps += host_gaps + metrics.telemetry_gaps(resources, frame, region, set(series))
        return UsageResult(Usage(frame, period), tuple(gaps))

    def costs(self, window: Window) -> list[CostRecord]:
        account = self._account or self.clients.account_id(billing.CE_REGION)
        return billing.ec2_costs(self.clients, account, window)

    def prices(self, region: str, instance_types: Sequence[str], at: datetime) -> list[PriceQuote]:
        return pricing.quotes(self.clients, self._catalog, region, instance_types, at, live=self._live_prices)

    def commitment_rates(self, region: str, instance_types: Sequence[str], at: datetime) -> list[CommitmentRate]:
        """The shipped catalog's commitment rates, each replaced by a live one of the same type, instrument
        and term where the Savings Plans / RI offering APIs answer plausibly (only with live prices on)."""
        live = commitments.live_commitment_rates(self.clients, region, instance_types, at, catalog=self._catalog) \
            if self._live_prices else []
        return self._catalog.with_live_commitments(Cloud.AWS, region, instance_types, live)

    def api_calls(self) -> dict[str, int]:
        return dict(self.clients.calls)
