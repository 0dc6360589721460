"""Small builders for snapshots made by hand (no cloud): the recommenders' and idle model's tests."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import numpy as np
import pandas as pd

from providers.catalog import PriceCatalog
from providers.model import (
    INSTANCE_LEVEL,
    Accelerators,
    Cloud,
    Metric,
    PriceQuote,
    PricingModel,
    Resource,
    ResourceRef,
    ResourceState,
    Snapshot,
    Usage,
    Window,
    price_key,
    usage_frame,
)
from providers.sandbox.fleet import SimInstance, simulate

#: A Monday, 10:00 UTC: office hours are on, weekends are behind.
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=timezone.utc)
PERIOD = timedelta(minutes=5)
HOURLY = Decimal("1.006")


def window(days: float = 14, end: datetime = NOW, period: timedelta = PERIOD) -> Window:
    return Window.ending(end, timedelta(days=days), align=period)


def times(win: Window, period: timedelta = PERIOD) -> pd.DatetimeIndex:
    return pd.date_range(win.start, win.end, freq=period, inclusive="left")


def resource(name: str, gpus: int = 1, itype: str = "g5.xlarge", state: ResourceState = ResourceState.RUNNING,
             region: str = "us-east-1", spot: bool = False) -> Resource:
    return Resource(
        ref=ResourceRef(Cloud.AWS, "111122223333", region, f"i-{name}"),
        instance_type=itype,
        state=state,
        pricing_model=PricingModel.SPOT if spot else PricingModel.ON_DEMAND,
        accelerators=Accelerators("A10G", gpus, 22.35) if gpus else None,
        tags={"Name": name},
    )


class FrameBuilder:
    """Collects column arrays and makes one usage frame (vectorized; no row objects)."""

    def __init__(self) -> None:
        self.parts: list[tuple[np.ndarray, np.ndarray, np.ndarray, pd.DatetimeIndex, np.ndarray]] = []

    def add(self, res: Resource, metric: Metric, stamps: pd.DatetimeIndex, values: np.ndarray,
            gpu: int = INSTANCE_LEVEL) -> FrameBuilder:
        values = np.asarray(values, dtype=float)
        keep = ~np.isnan(values)
        n = int(keep.sum())
        self.parts.append((np.full(n, res.ref.key, dtype=object), np.full(n, gpu), np.full(n, metric.value, dtype=object),
                           stamps[keep], values[keep]))
        return self

    def gpu_util(self, res: Resource, stamps: pd.DatetimeIndex, values: np.ndarray | Sequence[np.ndarray]) -> FrameBuilder:
        rows = np.atleast_2d(np.asarray(values, dtype=float))
        for gpu, row in enumerate(rows):
            self.add(res, Metric.GPU_UTIL, stamps, row, gpu)
        return self

    def frame(self) -> pd.DataFrame:
        if not self.parts:
            return usage_frame([], [], [], [], [])
        cols = list(zip(*self.parts, strict=True))
        return usage_frame(np.concatenate(cols[0]), np.concatenate(cols[1]), np.concatenate(cols[2]),
                           pd.DatetimeIndex(np.concatenate([c.tz_convert("UTC").tz_localize(None).to_numpy() for c in cols[3]])).tz_localize("UTC"),
                           np.concatenate(cols[4]))


def snapshot(resources: Sequence[Resource], frame: pd.DataFrame, win: Window | None = None,
             period: timedelta = PERIOD, hourly: Decimal = HOURLY) -> Snapshot:
    win = win or window(period=period)
    quotes = [PriceQuote(Cloud.AWS, r.ref.region, r.instance_type, model, hourly, "test", NOW)
              for r in resources for model in (PricingModel.ON_DEMAND, PricingModel.SPOT)]
    return Snapshot(win.end, win, tuple(resources), Usage(frame, period), {price_key(q): q for q in quotes})


def catalog_resource(name: str, itype: str, region: str, state: ResourceState = ResourceState.RUNNING,
                     spot: bool = False, tags: dict[str, str] | None = None) -> Resource:
    """A resource shaped like the shipped catalog's ``itype`` (GPU model, count, memory, vCPU, RAM)."""
    spec = PriceCatalog.shipped(Cloud.AWS).spec(Cloud.AWS, itype)
    return Resource(
        ref=ResourceRef(Cloud.AWS, "111122223333", region, f"i-{name}"),
        instance_type=itype, state=state,
        pricing_model=PricingModel.SPOT if spot else PricingModel.ON_DEMAND,
        accelerators=spec.accelerators if spec else None,
        tags=tags or {"Name": name},
        vcpu=spec.vcpu if spec else None, memory_gib=spec.memory_gib if spec else None,
    )


def with_catalog(snap: Snapshot) -> Snapshot:
    """``snap`` priced from the shipped catalog, with every region's GPU types as offerings and specs
    (what agent/collect.py assembles from a real cloud)."""
    catalog = PriceCatalog.shipped(Cloud.AWS)
    regions = {r.ref.region for r in snap.resources}
    offerings = {("aws", region): frozenset(e.instance_type for e in catalog.offered(Cloud.AWS, region) if e.gpu_count)
                 for region in regions}
    types = {t for o in offerings.values() for t in o} | {r.instance_type for r in snap.resources}
    specs = {("aws", t): spec for t in types if (spec := catalog.spec(Cloud.AWS, t)) is not None}
    quotes = [q for region in regions for t in types for q in catalog.quotes(Cloud.AWS, region, t)]
    return replace(snap, prices={price_key(q): q for q in quotes}, offerings=offerings, specs=specs)


def simulated(fleet: Sequence[SimInstance], win: Window | None = None, period: timedelta = PERIOD,
              catalog: bool = False) -> tuple[Snapshot, dict[str, Resource]]:
    """A snapshot of simulated instances: GPU, CPU and network straight from ``simulate``.

    With ``catalog``, instances are shaped and priced like the shipped catalog's types (and GPU memory
    used is published hourly, as the AWS provider reads it); otherwise every instance is an A10G box
    at ``HOURLY``.
    """
    win = win or window(period=period)
    stamps = times(win, period)
    builder = FrameBuilder()
    by_name = {}
    for inst in fleet:
        state = ResourceState.RUNNING if inst.running else ResourceState.STOPPED
        if catalog:
            res = catalog_resource(inst.name, inst.instance_type, inst.region, state, inst.spot, inst.tags)
        else:
            res = resource(inst.name, inst.gpus, inst.instance_type, state, inst.region, inst.spot)
        by_name[inst.name] = res
        if not inst.running:
            continue
        series = simulate(inst, stamps)
        present = series.present
        if inst.publishes_gpu:
            builder.gpu_util(res, stamps, np.where(present[None, :], series.gpu_util, np.nan))
        builder.add(res, Metric.CPU_UTIL, stamps, np.where(present, series.cpu, np.nan))
        builder.add(res, Metric.NET_IN, stamps, np.where(present, series.net_in, np.nan))
        builder.add(res, Metric.NET_OUT, stamps, np.where(present, series.net_out, np.nan))
        if catalog and inst.publishes_gpu:
            hourly = pd.DataFrame(np.where(present[None, :], series.gpu_mem_used, np.nan).T, index=stamps).resample("1h").max()
            for gpu in range(inst.gpus):
                builder.add(res, Metric.GPU_MEM_USED, pd.DatetimeIndex(hourly.index), hourly[gpu].to_numpy(), gpu)
    snap = snapshot(list(by_name.values()), builder.frame(), win, period)
    return (with_catalog(snap) if catalog else snap), by_name
