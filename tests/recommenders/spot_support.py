"""Builders for the spot tests: GPU boxes with hand-made telemetry, priced with explicit spot quotes and bands."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

import numpy as np
import pandas as pd

from providers.catalog import PriceCatalog
from providers.model import (
    Accelerators,
    Cloud,
    PriceQuote,
    PricingModel,
    Resource,
    ResourceRef,
    ResourceState,
    Snapshot,
    Usage,
    Window,
    price_key,
)
from recommenders import batch_pattern, candidates, spot
from recommenders.idle import IdleReport, IdleSettings, classify
from recommenders.model import Recommendation
from tests.builders import NOW, PERIOD, FrameBuilder, times, window

REGION = "us-east-1"
CATALOG = PriceCatalog.shipped(Cloud.AWS)
WIN = window()
STAMPS = times(WIN)
N = len(STAMPS)
STEPS_PER_HOUR = 12


def box(name: str, itype: str = "p4d.24xlarge", tags: Mapping[str, str] | None = None, spot_priced: bool = False,
        cloud: Cloud = Cloud.AWS, region: str = REGION, gpus: Accelerators | None = None) -> Resource:
    """A running GPU instance shaped like the catalog's ``itype`` (or ``gpus`` for a type the catalog lacks)."""
    spec = CATALOG.spec(Cloud.AWS, itype) if cloud == Cloud.AWS else None
    return Resource(
        ref=ResourceRef(cloud, "acct", region, f"i-{name}"),
        instance_type=itype,
        state=ResourceState.RUNNING,
        pricing_model=PricingModel.SPOT if spot_priced else PricingModel.ON_DEMAND,
        accelerators=gpus or (spec.accelerators if spec else None),
        tags={"Name": name, **(tags or {})},
        vcpu=spec.vcpu if spec else None,
        memory_gib=spec.memory_gib if spec else None,
    )


def quote(res: Resource, model: PricingModel, hourly: str, band: str | None = None, itype: str | None = None) -> PriceQuote:
    return PriceQuote(res.ref.cloud, res.ref.region, itype or res.instance_type, model, Decimal(hourly), "test", NOW,
                      interruption=band if model == PricingModel.SPOT else None)


def prices(res: Resource, on_demand: str, spot_hourly: str | None, band: str | None = None) -> dict:
    quotes = [quote(res, PricingModel.ON_DEMAND, on_demand)]
    if spot_hourly is not None:
        quotes.append(quote(res, PricingModel.SPOT, spot_hourly, band))
    return {price_key(q): q for q in quotes}


def catalog_market(region: str = REGION) -> tuple[dict, dict, dict]:
    """(offerings, specs, prices) of ``region`` from the shipped catalog, spot quotes carrying their band."""
    entries = [e for e in CATALOG.offered(Cloud.AWS, region) if e.gpu_count]
    offerings = {("aws", region): frozenset(e.instance_type for e in entries)}
    specs = {("aws", e.instance_type): CATALOG.spec(Cloud.AWS, e.instance_type) for e in entries}
    out = {}
    for e in entries:
        for q in CATALOG.quotes(Cloud.AWS, region, e.instance_type):
            if q.pricing_model == PricingModel.SPOT:
                q = PriceQuote(q.cloud, q.region, q.instance_type, q.pricing_model, q.hourly_usd, q.source, q.as_of,
                               interruption=e.spot_interruption)
            out[price_key(q)] = q
    return offerings, specs, out


@dataclass
class Box:
    res: Resource
    util: np.ndarray  # (N,) the same on every GPU, or (G, N)


def build(boxes: Sequence[Box], price_map: Mapping | None = None, market: bool = False, win: Window = WIN) -> Snapshot:
    """A snapshot of ``boxes`` with their telemetry; prices from ``price_map`` and/or the catalog's market."""
    builder = FrameBuilder()
    stamps = times(win)
    for b in boxes:
        util = np.asarray(b.util, dtype=float)
        gpus = b.res.accelerators.count if b.res.accelerators else 1
        builder.gpu_util(b.res, stamps, np.broadcast_to(util, (gpus, len(stamps))) if util.ndim == 1 else util)
    offerings, specs, quotes = catalog_market() if market else ({}, {}, {})
    quotes.update(price_map or {})
    return Snapshot(win.end, win, tuple(b.res for b in boxes), Usage(builder.frame(), PERIOD), quotes,
                    offerings=offerings, specs=specs)


def analyze(snapshot: Snapshot) -> tuple[IdleReport, dict[str, Resource]]:
    pool = candidates(snapshot)
    return classify(snapshot.usage, pool, snapshot.window, IdleSettings()), {r.ref.key: r for r in pool}


def run(snapshot: Snapshot, settings: spot.SpotSettings | None = None, exclude: Collection[str] = ()) -> list[Recommendation]:
    idle, by_key = analyze(snapshot)
    return spot.recommend(snapshot, idle, by_key, settings or spot.SpotSettings(), IdleSettings(), exclude)


def pattern_of(snapshot: Snapshot, res: Resource, settings: spot.SpotSettings | None = None) -> batch_pattern.Pattern:
    idle, _ = analyze(snapshot)
    util = batch_pattern.busiest_gpu_util(snapshot, idle, [res.ref.key])
    return batch_pattern.batch_pattern(idle, idle.keys.index(res.ref.key), util.get(res.ref.key), settings or spot.SpotSettings())


# ----------------------------------------------------------------------------------------- workloads


def rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def training(seed: int = 0) -> np.ndarray:
    """Around the clock at 85-98 %, a 10-minute checkpoint dip every 2 hours (short: it stays busy)."""
    util = rng(seed).uniform(85, 98, N)
    util[(np.arange(N) % (2 * STEPS_PER_HOUR)) < 2] = 0.0
    return util


def inference(seed: int = 1) -> np.ndarray:
    """A server following its traffic: diurnal 20-80 %, never idle."""
    hours = np.asarray(STAMPS.hour + STAMPS.minute / 60)
    return np.clip(50 + 30 * np.sin((hours - 9) / 24 * 2 * np.pi) + rng(seed).normal(0, 5, N), 12, 100)


def office_hours(seed: int = 2, level: tuple[float, float] = (85, 98)) -> np.ndarray:
    """A notebook worked hard on weekdays 09-18 UTC, idle otherwise."""
    on = np.asarray((STAMPS.day_of_week < 5) & (STAMPS.hour >= 9) & (STAMPS.hour < 18))
    return np.where(on, rng(seed).uniform(*level, N), 0.0)


def nightly(seed: int = 3, hour: int = 2, length_h: int = 2, stamps: pd.DatetimeIndex = STAMPS) -> np.ndarray:
    """A job at a fixed hour every night."""
    on = np.asarray((stamps.hour >= hour) & (stamps.hour < hour + length_h))
    return np.where(on, rng(seed).uniform(85, 98, len(stamps)), 0.0)


def batch_jobs(seed: int = 4, job_h: tuple[float, float] = (3, 7), gap_h: tuple[float, float] = (3, 9),
               idle_tail_h: float = 0.0) -> np.ndarray:
    """Jobs of ``job_h`` hours at 85-98 % separated by idle gaps of ``gap_h`` hours, at no recurring time;
    with ``idle_tail_h``, the last hours of the window are idle (the queue ran dry)."""
    r = rng(seed)
    busy = np.zeros(N, dtype=bool)
    t = r.uniform(0, 6) * STEPS_PER_HOUR
    while t < N:
        length = r.uniform(*job_h) * STEPS_PER_HOUR
        busy[int(t): int(t + length)] = True
        t += length + r.uniform(*gap_h) * STEPS_PER_HOUR
    if idle_tail_h:
        busy[N - int(idle_tail_h * STEPS_PER_HOUR):] = False
    return np.where(busy, r.uniform(85, 98, N), 0.0)
