"""Small builders for snapshots made by hand (no cloud): the recommenders' and idle model's tests."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import numpy as np
import pandas as pd

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


def simulated(fleet: Sequence[SimInstance], win: Window | None = None, period: timedelta = PERIOD) -> tuple[Snapshot, dict[str, Resource]]:
    """A snapshot of simulated instances: GPU, CPU and network straight from ``simulate``."""
    win = win or window(period=period)
    stamps = times(win, period)
    builder = FrameBuilder()
    by_name = {}
    for inst in fleet:
        state = ResourceState.RUNNING if inst.running else ResourceState.STOPPED
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
    return snapshot(list(by_name.values()), builder.frame(), win, period), by_name
