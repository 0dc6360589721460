"""Builders for the right-size tests: a region's market from the shipped catalog, and GPU boxes with telemetry."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import timedelta

import numpy as np
import pandas as pd

from providers.catalog import PriceCatalog
from providers.model import (
    INSTANCE_LEVEL,
    Cloud,
    Metric,
    PricingModel,
    Resource,
    ResourceRef,
    ResourceState,
    Snapshot,
    Usage,
    Window,
    price_key,
)
from recommenders import candidates, rightsize
from recommenders.idle import IdleSettings, classify
from recommenders.model import Recommendation
from tests.builders import PERIOD, FrameBuilder, times, window

REGION = "us-east-1"
CATALOG = PriceCatalog.shipped(Cloud.AWS)


def gpu_box(name: str, itype: str, spot: bool = False, group: str | None = None, region: str = REGION) -> Resource:
    spec = CATALOG.spec(Cloud.AWS, itype)
    assert spec is not None, itype
    return Resource(
        ref=ResourceRef(Cloud.AWS, "111122223333", region, f"i-{name}"),
        instance_type=itype,
        state=ResourceState.RUNNING,
        pricing_model=PricingModel.SPOT if spot else PricingModel.ON_DEMAND,
        accelerators=spec.accelerators,
        tags={"Name": name},
        vcpu=spec.vcpu,
        memory_gib=spec.memory_gib,
        group=group,
    )


@dataclass
class Box:
    """One instance's telemetry: per-GPU utilization (G x T), per-GPU memory used (MiB), instance CPU."""

    res: Resource
    util: np.ndarray
    mem_mib: np.ndarray | None = None  # (G,) constant or (G, T); published hourly like the agent's hourly Max
    cpu: np.ndarray | None = None
    every: int = 1  # publish GPU series every ``every`` periods (sparse publishers)
    rollup: bool = False  # only the instance-level mean over GPUs (gpu == INSTANCE_LEVEL)
    extra: list[tuple[Metric, int, np.ndarray]] = field(default_factory=list)


def uniform(rng: np.random.Generator, lo: float, hi: float, n: int) -> np.ndarray:
    return rng.uniform(lo, hi, n)


def market(region: str = REGION, drop: Collection[str] = ()) -> tuple[dict, dict, dict]:
    """(offerings, specs, prices) for ``region`` from the shipped catalog, without the ``drop`` types."""
    types = sorted(e.instance_type for e in CATALOG.offered(Cloud.AWS, region) if e.gpu_count and e.instance_type not in drop)
    offerings = {("aws", region): frozenset(types)}
    specs = {("aws", t): CATALOG.spec(Cloud.AWS, t) for t in types}
    prices = {price_key(q): q for t in types for q in CATALOG.quotes(Cloud.AWS, region, t)}
    return offerings, specs, prices


def build(boxes: Sequence[Box], win: Window | None = None, drop: Collection[str] = (),
          extra_types: Collection[str] = ()) -> Snapshot:
    """A snapshot with ``boxes``' telemetry and the region's market (types in ``drop`` not offered)."""
    win = win or window()
    stamps = times(win)
    n = len(stamps)
    hourly = np.asarray((stamps - stamps[0]) % pd.Timedelta(hours=1) == pd.Timedelta(0))
    builder = FrameBuilder()
    for box in boxes:
        util = np.atleast_2d(np.asarray(box.util, dtype=float))
        assert util.shape[1] == n, (util.shape, n)
        published = np.zeros(n, dtype=bool)
        published[:: box.every] = True
        if box.rollup:
            builder.add(box.res, Metric.GPU_UTIL, stamps, np.where(published, util.mean(axis=0), np.nan))
        else:
            for gpu, row in enumerate(util):
                builder.add(box.res, Metric.GPU_UTIL, stamps, np.where(published, row, np.nan), gpu)
        if box.mem_mib is not None:
            mem = np.asarray(box.mem_mib, dtype=float)
            mem = np.broadcast_to(mem[:, None], util.shape) if mem.ndim == 1 else mem
            if box.rollup:
                builder.add(box.res, Metric.GPU_MEM_USED, stamps, np.where(hourly, mem.mean(axis=0), np.nan))
            else:
                for gpu, row in enumerate(mem):
                    builder.add(box.res, Metric.GPU_MEM_USED, stamps, np.where(hourly, row, np.nan), gpu)
        if box.cpu is not None:
            builder.add(box.res, Metric.CPU_UTIL, stamps, box.cpu, INSTANCE_LEVEL)
        for metric, gpu, values in box.extra:
            builder.add(box.res, metric, stamps, values, gpu)
    offerings, specs, prices = market(boxes[0].res.ref.region if boxes else REGION, drop)
    for box in boxes:  # the fleet's own types are always priced and described (collect does so)
        t = box.res.instance_type
        specs[("aws", t)] = CATALOG.spec(Cloud.AWS, t)
        for q in CATALOG.quotes(Cloud.AWS, box.res.ref.region, t):
            prices[price_key(q)] = q
    return Snapshot(win.end, win, tuple(b.res for b in boxes), Usage(builder.frame(), PERIOD), prices,
                    offerings=offerings, specs=specs)


def run(snapshot: Snapshot, settings: rightsize.RightsizeSettings | None = None,
        exclude: Collection[str] = ()) -> list[Recommendation]:
    pool = candidates(snapshot)
    idle_settings = IdleSettings()
    idle = classify(snapshot.usage, pool, snapshot.window, idle_settings)
    return rightsize.recommend(snapshot, idle, {r.ref.key: r for r in pool},
                               settings or rightsize.RightsizeSettings(), idle_settings, exclude)


def n_steps(win: Window | None = None) -> int:
    return len(times(win or window()))


def checkpoint_dips(n: int, every_min: int = 120, dip_min: int = 10) -> np.ndarray:
    """True where a training job is between checkpoints (busy), False during the dip."""
    minutes = np.arange(n) * (PERIOD / timedelta(minutes=1))
    return (minutes % every_min) >= dip_min
