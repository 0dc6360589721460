"""Collect: inventory -> usage -> prices -> costs, per region, into one Snapshot.

Each failing call becomes a Gap and the run goes on; ``Collected.failures`` names what could not
be read that the user asked for (inventory or utilization of a region), which makes the audit
exit non-zero.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import pandas as pd

from agent.progress import Progress
from providers.base import Provider
from providers.catalog import PriceCatalog
from providers.errors import ProviderError
from providers.model import (
    BillingData,
    Cloud,
    CommitmentRate,
    CostRecord,
    Gap,
    Group,
    InstanceTypeSpec,
    PriceQuote,
    Resource,
    ResourceState,
    Snapshot,
    Usage,
    Window,
    price_key,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Collected:
    snapshot: Snapshot
    failures: tuple[str, ...]
    api_calls: dict[str, int]


#: Reads billing exports (FOCUS or native) into one aggregate; raises ``ProviderError`` naming the file.
BillingReader = Callable[[Sequence[str]], BillingData]


def collect_cloud(provider: Provider, regions: Sequence[str], window: Window, period: timedelta, at: datetime,
                  progress: Progress,
                  host_metrics_for: Callable[[pd.DataFrame], Collection[str]] | None = None) -> Collected:
    resources: list[Resource] = []
    commitment_rates: list[CommitmentRate] = []
    groups: list[Group] = []
    offerings: dict[tuple[str, str], frozenset[str]] = {}
    specs: dict[tuple[str, str], InstanceTypeSpec] = {}
    catalog = PriceCatalog.shipped(provider.cloud)
    usages: list[Usage] = []
    prices: list[PriceQuote] = []
    gaps: list[Gap] = []
    failures: list[str] = []
    cloud = provider.cloud

    def failed(what: str, region: str | None, exc: ProviderError, fatal: bool) -> None:
        log.warning("event=collect_failed cloud=%s what=%s region=%s error=%r", cloud, what, region, exc.one_line())
        gaps.append(Gap(cloud, what, str(exc).splitlines()[0], region, None, None, exc.hint))
        if fatal:
            failures.append(f"{cloud} {what} {region or ''}".strip() + f": {exc.one_line()}")

    for region in regions:
        started = time.monotonic()
        with progress.stage(f"{cloud} {region}: inventory"):
            try:
                found = provider.resources(region)
            except ProviderError as exc:
                failed("inventory", region, exc, fatal=True)
                continue
        resources += found
        try:
            groups += provider.groups(region)
        except ProviderError as exc:
            failed("groups", region, exc, fatal=False)
        gpu_running = [r for r in found if r.has_gpu and r.state == ResourceState.RUNNING]
        with progress.stage(f"{cloud} {region}: GPU metrics") as step:
            try:
                result = provider.usage(region, gpu_running, window, period, on_progress=step.update,
                                        host_metrics_for=host_metrics_for)
                usages.append(result.usage)
                gaps += result.gaps
            except ProviderError as exc:
                failed("usage", region, exc, fatal=True)
        types = sorted({r.instance_type for r in found if r.has_gpu} | _group_types(groups, region))
        try:
            commitment_rates += provider.commitment_rates(region, types, at) if types else []
        except ProviderError as exc:
            failed("commitment-rates", region, exc, fatal=False)
        try:
            prices += provider.prices(region, types, at)
        except ProviderError as exc:
            failed("prices", region, exc, fatal=False)
        for r in found:
            specs.setdefault((cloud.value, r.instance_type),
                             InstanceTypeSpec(r.instance_type, r.vcpu or 0, r.memory_gib or 0.0, r.accelerators))
        if gpu_running:
            offered, candidate_quotes = _targets(provider, catalog, region, at, failed)
            offerings[(cloud.value, region)] = frozenset(offered)
            prices += [q for q in candidate_quotes if q.instance_type not in types]
            for itype in offered:
                spec = catalog.spec(cloud, itype)
                if spec is not None:
                    specs.setdefault((cloud.value, itype), spec)
        log.info("event=region_collected cloud=%s region=%s instances=%d gpu_running=%d seconds=%.2f",
                 cloud, region, len(found), len(gpu_running), time.monotonic() - started)

    costs: list[CostRecord] = []
    with progress.stage(f"{cloud}: costs"):
        try:
            costs = provider.costs(window)
        except ProviderError as exc:
            failed("costs", None, exc, fatal=False)
    if not costs and not any(g.what == "costs" for g in gaps):
        gaps.append(Gap(cloud, "costs", "the billing API returned no cost data for the window", None, None, None,
                        provider.costs_hint))
    pending = getattr(provider, "pending_gaps", None)  # e.g. a GCP project or Azure subscription not listed
    if pending is not None:
        for gap in pending():
            gaps.append(gap)
            failures.append(f"{cloud} {gap.what} {gap.account or ''}".strip() + f": {gap.reason}")

    snapshot = Snapshot(
        as_of=at,
        window=window,
        resources=tuple(resources),
        usage=Usage.concat(usages, period),
        prices={price_key(q): q for q in prices},
        costs=tuple(costs),
        gaps=tuple(gaps),
        groups=tuple(groups),
        offerings=offerings,
        specs=specs,
        commitment_rates=tuple(commitment_rates),
    )
    return Collected(snapshot, tuple(failures), provider.api_calls())


def read_billing_exports(paths: Sequence[str], reader: BillingReader, progress: Progress,
                         cloud: Cloud) -> tuple[BillingData | None, list[Gap], list[str]]:
    """Read the billing exports once for the whole run: (data, gaps, failures)."""
    billing: BillingData | None = None
    gaps: list[Gap] = []
    failures: list[str] = []
    with progress.stage("billing exports"):
        try:
            billing = reader(paths)
        except ProviderError as exc:
            log.warning("event=collect_failed what=billing error=%r", exc.one_line())
            gaps.append(Gap(cloud, "billing", str(exc).splitlines()[0], None, None, None, exc.hint))
            failures.append(f"billing: {exc.one_line()}")
    if billing is not None and billing.bad_rows:
        first = billing.bad_examples[0] if billing.bad_examples else None
        where = f"; first at {first.file}:{first.line}: {first.reason}" if first else ""
        gaps.append(Gap(cloud, "billing", f"{billing.bad_rows} of {billing.rows} billing rows could not be read "
                        f"and are not counted{where}", None, None, None,
                        "fix or re-export those rows; the totals cover the readable rows only"))
    return billing, gaps, failures


def merge(parts: Sequence[Collected], at: datetime, window: Window, period: timedelta) -> Collected:
    """Several clouds' collections as one snapshot (recommenders see one fleet)."""
    if len(parts) == 1:
        return parts[0]
    snaps = [p.snapshot for p in parts]
    calls: dict[str, int] = {}
    for part in parts:
        for key, n in part.api_calls.items():
            calls[key] = calls.get(key, 0) + n
    snapshot = Snapshot(
        as_of=at,
        window=window,
        resources=tuple(r for s in snaps for r in s.resources),
        usage=Usage.concat([s.usage for s in snaps], period),
        prices={k: v for s in snaps for k, v in s.prices.items()},
        costs=tuple(c for s in snaps for c in s.costs),
        gaps=tuple(g for s in snaps for g in s.gaps),
        groups=tuple(g for s in snaps for g in s.groups),
        offerings={k: v for s in snaps for k, v in s.offerings.items()},
        specs={k: v for s in snaps for k, v in s.specs.items()},
        commitment_rates=tuple(c for s in snaps for c in s.commitment_rates),
    )
    return Collected(snapshot, tuple(f for p in parts for f in p.failures), calls)


def _group_types(groups: Sequence[Group], region: str) -> set[str]:
    return {g.instance_type for g in groups if g.ref.region == region and g.instance_type}


def _targets(provider: Provider, catalog: PriceCatalog, region: str, at: datetime,
             failed: Callable[[str, str | None, ProviderError, bool], None]) -> tuple[set[str], list[PriceQuote]]:
    """GPU types a right-size may propose in ``region``: in the price list there, and offered to the account.

    Priced from the shipped catalog (no extra price calls per candidate). When the offerings call
    fails, the region's price list alone decides, and a gap says so.
    """
    listed = {e.instance_type for e in catalog.offered(provider.cloud, region) if e.gpu_count}
    if not listed:
        return set(), []
    try:
        offered = provider.offered_types(region, sorted(listed)) & listed
    except ProviderError as exc:
        failed("offerings", region, exc, fatal=False)
        offered = listed
    quotes = [q for t in sorted(offered) for q in catalog.quotes(provider.cloud, region, t)]
    return offered, quotes
