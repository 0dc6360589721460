"""Spot and commitments vs hindsight oracles: the money benchmark of the ``spot`` and ``commitment`` recommenders.

    .venv/bin/python bench/money.py [--seed 0] [--history-days 60] [--future-days 30] [--spot-months 3] [--json]

Also run at the end of ``bench/savings.py`` (same seed; ``--no-money`` skips it). Both halves run the
shipped recommenders on a ``Snapshot`` built from a seeded simulation, then play their advice forward
on a future the recommenders did not see and compare it with a hindsight oracle and with the rules a
user would otherwise apply. All money is in $ per 730-hour month.

**Commitments.** Twelve pools (AWS family or GCP series in one region; hourly instance counts, one or two
types each, two-type pools split 70/30 binomially) are simulated over a 60-day history and the 30 days
that follow (the first month of a 1-year term; later months are not scored). Shapes (days count from the
start of the history): *steady* 4-12 instances, one out for 2-7 h on 8 % of days; *diurnal* autoscaled
inference, 8-15 at night to 30-49 at the weekday afternoon peak (45 % of the swing at weekends), noise
+-1.2; *growing* 6-11 instances growing by 60-100 % over the 90 days, one at a time; *bursts* 4-8 always
on plus 4-16 more for 1-4 days about every 8 days; *shrinking* 10-24 instances retired one at a time
between day 45 and day 80 down to 25-50 %; *new* a pool that appears at day 40-42 and reaches 4-8
instances in a week; *office-hours* 10-24 instances on weekdays 13-23 UTC, 1 otherwise. Rates: the
shipped catalog's commitment rates for the pool's types (``PriceCatalog.shipped(cloud).commitment_rates``:
GCP resource-based CUDs, AWS standard RIs where rows exist); an AWS type without a catalog row gets a
1-year standard RI at ``ASSUMED_RI_RATIO`` (0.63 x on-demand, about the shipped AWS rows' ratio), marked
``assumed`` in the output. Only 1-year terms are scored (``CommitmentSettings.term_years``' default).

- *ours*: ``recommenders.commitments.recommend`` on a Snapshot whose ``billing.hourly`` holds the
  simulated history, with the audit's default window (``--lookback 14d``) and with a 60-day window; the
  recommended instrument and level ``q`` (on-demand $/h covered) are taken from the finding's evidence.
- *vendor-7d / 30d / 60d*: the same optimization (``commitments.options`` and ``choose``) on only the last
  7, 30 or 60 days of the history: what a purchase recommendation with that lookback does.
- *oracle*: the same optimization on the future window itself (best instrument and level in hindsight).

A level ``q`` bought at rate ratio ``d`` is scored on the future usage ``u_t`` (on-demand $/h):
``730 x (mean_t min(u_t, q) - d q)``, with ``d`` the instrument's rate ratio weighted by the future
window's type mix (the ratio is the same for every type of a pool in the shipped rows). The plumbing
check confirms that ``recommend`` on the Snapshot picks the level the arrays give.

**Spot.** On-demand AWS GPU instances (types and regions with a Spot Advisor band in the shipped catalog)
run one of: declared training queues (tag ``costagent:interruptible=true`` with checkpoint, restart and
sometimes deadline tags; jobs of 6-48 h), declared batch queues with tight deadlines (jobs of 1-6 h),
untagged batch queues (random jobs, the recommender has to infer them; their true checkpoint, restart
and deadline are not declared), and serving (untagged diurnal endpoints, untagged bursty endpoints at low
utilization, and endpoints tagged ``costagent:interruptible=false`` with batch-like telemetry) that must
never be moved. ``recommenders.spot.recommend`` runs on the 14 days of 5-minute telemetry before
``as_of`` (the idle model first, as ``analyze`` does). Each interruptible workload is then played
forward on spot for ``--spot-months`` months, job by job:

- interruptions are a Poisson process in wall-clock hours at a true monthly rate drawn uniformly inside
  the type's band (``<5%``: 0-5 %, ``5-10%``: 5-10 %, ..., ``>20%``: 20-40 %); the spot instance is up
  between jobs too (an interruption there costs a restart ``R`` before the next job can start);
- a job of ``L`` useful hours writes a checkpoint (``C``) after every ``tau`` hours of work, ``tau`` = the
  recommender's ``checkpoint_interval_minutes`` where it advised the move, else ``spot_terms`` on the
  declared (or default) C, R and deadline (without the deadline where it cannot absorb a restart); an
  interruption loses the work since the last finished checkpoint (a checkpoint being written included),
  then ``R`` hours pass before work resumes (an interruption during a restart starts it again);
- a job's deadline is on its own run: it is late when it finishes more than ``D`` hours after its
  start + ``L`` (the meaning of ``costagent:deadline-hours``); time queued behind an earlier job is not
  counted against it;
- money: each side is billed from the start of the horizon until its last job (arrived inside the
  horizon) finishes, at least the whole horizon: on-demand at its price (it runs every job in ``L``), spot
  at the catalog's typical spot price (price changes and waiting for spot capacity are not modelled).

Rows: *ours* (the workloads the recommender advised moving), the *oracle* (hindsight: exactly the
workloads whose realized spot bill was lower and none of whose jobs missed its deadline), *all
interruptible on spot* (every truly interruptible workload moved) and *never spot*. Reported: realized
$/month saved, jobs past their deadline (and the workloads they belong to), wrong moves (a serving
workload moved: must be 0) and the realized interruptions.

Targets: commitments >= 95 % of the oracle's savings (total over pools); spot: 0 wrong moves.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from providers.catalog import CatalogEntry, PriceCatalog  # noqa: E402
from providers.model import (  # noqa: E402
    BILLING_HOURLY_COLUMNS,
    BillingData,
    Cloud,
    CommitmentRate,
    Instrument,
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
from recommenders import commitment_levels as levels  # noqa: E402
from recommenders import commitments, spot  # noqa: E402
from recommenders.idle import IdleSettings, classify  # noqa: E402

HOURS_PER_MONTH = 730.0
#: The reference "now" of the benchmarks (a Monday, hour-aligned).
AS_OF = datetime(2026, 11, 23, 0, 0, tzinfo=timezone.utc)
HOUR = timedelta(hours=1)
PERIOD = timedelta(minutes=5)
STEPS_PER_HOUR = 12
#: An AWS type without a catalog commitment rate: a 1-year standard RI at this share of on-demand.
ASSUMED_RI_RATIO = 0.63
TERMS = (1,)
AUDIT_LOOKBACK_DAYS = 14
VENDOR_LOOKBACKS = (7, 30, 60)
TARGET_COMMITMENT_SHARE = 0.95
SPOT_TELEMETRY_DAYS = 14
PROVIDER_NAME = {Cloud.AWS: "AWS", Cloud.GCP: "Google Cloud"}
#: True monthly interruption rates are drawn uniformly inside the band; the open band up to 40 %.
BAND_RANGE = {"<5%": (0.0, 0.05), "5-10%": (0.05, 0.10), "10-15%": (0.10, 0.15), "15-20%": (0.15, 0.20),
              ">20%": (0.20, 0.40)}


def month(usd_per_hour: float) -> float:
    return HOURS_PER_MONTH * usd_per_hour


# =========================================================================== commitments: scoring


def commitment_savings(usage: np.ndarray, rate_ratio: float, level: float) -> float:
    """$/month a commitment of ``level`` (on-demand $/h) at ``rate_ratio`` saves over ``usage``:
    ``730 x (mean_t min(u_t, q) - d q)`` (negative when it is not used enough)."""
    u = np.asarray(usage, dtype=float)
    if level <= 0 or u.size == 0:
        return 0.0
    return month(float(np.minimum(u, level).mean()) - rate_ratio * level)


def oracle_level(usage: np.ndarray, rate_ratio: float) -> tuple[float, float]:
    """(level, $/month) of the hindsight-optimal commitment on ``usage`` (``commitment_levels.optimal_level``)."""
    q = levels.optimal_level(np.asarray(usage, dtype=float), rate_ratio)
    return q, commitment_savings(usage, rate_ratio, q)


# =========================================================================== commitments: pools


@dataclass(frozen=True)
class PoolSpec:
    cloud: Cloud
    region: str
    types: tuple[str, ...]
    shape: str  # steady | diurnal | growing | bursts | shrinking | new | office-hours


@dataclass
class PoolSim:
    spec: PoolSpec
    name: str  # the recommender's pool name (AWS family, GCP series)
    counts: np.ndarray  # (types, hours) instances running per hour
    on_demand: tuple[PriceQuote, ...]  # per type
    rates: dict[tuple[Instrument, int], tuple[CommitmentRate, ...]]  # per (instrument, term): one rate per type
    assumed: bool  # some rate is the bench's assumption, not the catalog's

    @property
    def prices(self) -> np.ndarray:
        return np.array([float(q.hourly_usd) for q in self.on_demand])

    def usage(self, hours: slice | None = None) -> np.ndarray:
        """(T,) on-demand $/h over ``hours``."""
        c = self.counts if hours is None else self.counts[:, hours]
        return self.prices @ c

    def type_usage(self, hours: slice) -> np.ndarray:
        return self.counts[:, hours].mean(axis=1) * self.prices

    def ratio(self, key: tuple[Instrument, int], weights: np.ndarray) -> float:
        """The instrument's rate ratio weighted by ``weights`` (mean on-demand $/h per type)."""
        per = np.array([float(r.hourly_usd) / p for r, p in zip(self.rates[key], self.prices, strict=True)])
        w = np.asarray(weights, dtype=float)
        return float(np.average(per, weights=w)) if w.sum() > 0 else float(per.mean())


POOLS = (
    PoolSpec(Cloud.AWS, "us-east-1", ("p4d.24xlarge",), "steady"),
    PoolSpec(Cloud.GCP, "us-central1", ("a3-highgpu-8g",), "steady"),
    PoolSpec(Cloud.AWS, "us-east-1", ("g5.xlarge", "g5.2xlarge"), "diurnal"),
    PoolSpec(Cloud.GCP, "us-central1", ("g2-standard-8", "g2-standard-16"), "diurnal"),
    PoolSpec(Cloud.AWS, "us-west-2", ("g6e.12xlarge",), "growing"),
    PoolSpec(Cloud.GCP, "us-east1", ("a2-highgpu-8g",), "growing"),
    PoolSpec(Cloud.AWS, "us-east-1", ("p4de.24xlarge",), "bursts"),
    PoolSpec(Cloud.GCP, "us-central1", ("a2-highgpu-8g", "a2-highgpu-1g"), "bursts"),
    PoolSpec(Cloud.AWS, "us-east-1", ("g4dn.xlarge", "g4dn.2xlarge"), "shrinking"),
    PoolSpec(Cloud.AWS, "us-east-1", ("p5.48xlarge",), "shrinking"),
    PoolSpec(Cloud.GCP, "us-east4", ("a3-highgpu-8g",), "new"),
    PoolSpec(Cloud.AWS, "us-east-1", ("g6.xlarge",), "office-hours"),
)


RateTable = dict[tuple[Instrument, int], tuple[CommitmentRate, ...]]


def _rates_for(spec: PoolSpec, quotes: Sequence[PriceQuote]) -> tuple[RateTable, bool]:
    """Per (instrument, 1-year term) one rate per type: the catalog's, else (AWS) the assumed RI ratio."""
    catalog = PriceCatalog.shipped(spec.cloud)
    per_type: list[dict[tuple[Instrument, int], CommitmentRate]] = []
    assumed = False
    for itype, quote in zip(spec.types, quotes, strict=True):
        mine = {(r.instrument, r.term_years): r for r in catalog.commitment_rates(spec.cloud, spec.region, itype)
                if r.term_years in TERMS}
        if not mine and spec.cloud == Cloud.AWS:
            hourly = (quote.hourly_usd * Decimal(str(ASSUMED_RI_RATIO))).quantize(Decimal("0.000001"))
            mine = {(Instrument.AWS_RI, 1): CommitmentRate(spec.cloud, spec.region, itype, Instrument.AWS_RI, 1, hourly,
                                                            f"bench assumption: {ASSUMED_RI_RATIO} x on-demand", AS_OF)}
            assumed = True
        per_type.append(mine)
    keys = set.intersection(*(set(m) for m in per_type)) if per_type else set()
    return {k: tuple(m[k] for m in per_type) for k in sorted(keys, key=lambda k: (k[0].value, k[1]))}, assumed


def _on_demand(spec: PoolSpec) -> tuple[PriceQuote, ...]:
    catalog = PriceCatalog.shipped(spec.cloud)
    out = []
    for itype in spec.types:
        quote = next((q for q in catalog.quotes(spec.cloud, spec.region, itype)
                      if q.pricing_model == PricingModel.ON_DEMAND), None)
        if quote is None:
            raise ValueError(f"the shipped catalog has no on-demand price for {itype} in {spec.region}")
        out.append(quote)
    return tuple(out)


def _split(total: np.ndarray, share: float, rng: np.random.Generator) -> np.ndarray:
    """Split instance counts over two types: ``share`` of them (binomially) on the first."""
    first = rng.binomial(total.astype(np.int64), share)
    return np.vstack([first, total - first])


def simulate_pool(spec: PoolSpec, ts: pd.DatetimeIndex, rng: np.random.Generator) -> np.ndarray:
    """(types, hours) instance counts of one pool (the shapes are described in the module docstring)."""
    t_len = len(ts)
    hour = np.asarray(ts.hour, dtype=float)
    weekday = np.asarray(ts.day_of_week) < 5
    if spec.shape == "steady":
        n = int(rng.integers(4, 13))
        total = np.full(t_len, n)
        for start in np.flatnonzero(rng.random(t_len // 24) < 0.08) * 24 + rng.integers(0, 24):  # maintenance
            total[start: start + int(rng.integers(2, 8))] -= 1
    elif spec.shape == "diurnal":
        base, peak = int(rng.integers(8, 16)), int(rng.integers(30, 50))
        local = (hour - rng.uniform(13, 16)) % 24  # peak mid-afternoon US time, in UTC
        wave = np.clip(np.cos(local / 24 * 2 * np.pi), 0, None) ** 1.5
        demand = base + (peak - base) * wave * np.where(weekday, 1.0, 0.45)
        total = np.maximum(base - 2, np.round(demand + rng.normal(0, 1.2, t_len))).astype(int)
    elif spec.shape == "growing":
        n0 = int(rng.integers(6, 12))
        steps = int(n0 * rng.uniform(0.6, 1.0))  # the fleet grows by 60-100 % over the 90 days
        total = n0 + np.searchsorted(np.sort(rng.uniform(0, t_len, steps)), np.arange(t_len))
    elif spec.shape == "bursts":
        base = int(rng.integers(4, 9))
        total = np.full(t_len, base)
        t = rng.exponential(24 * 8)
        while t < t_len:  # a big job: 4-16 more instances for 1-4 days, about one every 8 days
            length = int(rng.uniform(24, 96))
            total[int(t): int(t) + length] += int(rng.integers(4, 17))
            t += length + rng.exponential(24 * 8)
    elif spec.shape == "shrinking":
        n0 = int(rng.integers(10, 25))
        n1 = max(1, int(n0 * rng.uniform(0.25, 0.5)))
        # migration to a newer generation: instances retired one at a time from day 45 to day 80
        cuts = np.sort(rng.uniform(45 * 24, min(80 * 24, t_len), n0 - n1))
        total = n0 - np.searchsorted(cuts, np.arange(t_len))
    elif spec.shape == "new":
        n = int(rng.integers(4, 9))
        start = 40 * 24 + int(rng.integers(0, 48))
        ramp = np.clip((np.arange(t_len) - start) / (7 * 24), 0, 1)  # a week to reach n
        total = np.where(np.arange(t_len) >= start, np.maximum(1, np.round(n * ramp)), 0).astype(int)
    elif spec.shape == "office-hours":
        n = int(rng.integers(10, 25))
        on = weekday & (hour >= 13) & (hour < 23)  # 08:00-18:00 US East
        total = np.where(on, np.maximum(0, np.round(n + rng.normal(0, 2, t_len))), 1).astype(int)
        for day in np.flatnonzero(rng.random(t_len // 24) < 0.05):  # a holiday: nobody at work
            total[day * 24: day * 24 + 24] = 1
    else:
        raise ValueError(spec.shape)
    total = np.maximum(np.asarray(total, dtype=int), 0)
    if len(spec.types) == 1:
        return total[None, :]
    return _split(total, 0.7, rng)


def simulate_pools(seed: int, history_days: int, future_days: int) -> tuple[list[PoolSim], pd.DatetimeIndex]:
    rng = np.random.default_rng([seed, 1])
    ts = pd.date_range(AS_OF - history_days * HOUR * 24, periods=(history_days + future_days) * 24, freq="h")
    out = []
    for spec in POOLS:
        quotes = _on_demand(spec)
        rates, assumed = _rates_for(spec, quotes)
        counts = simulate_pool(spec, ts, rng)
        out.append(PoolSim(spec, commitments.pool_of(spec.cloud, spec.types[0]), counts, quotes, rates, assumed))
    return out, ts


def billing_snapshot(pools: Sequence[PoolSim], ts: pd.DatetimeIndex, history_h: int, lookback_days: int) -> Snapshot:
    """What an audit with ``--lookback lookback_days`` and hourly billing exports of the history sees."""
    end = ts[history_h].to_pydatetime()
    parts = []
    for p in pools:
        for i, itype in enumerate(p.spec.types):
            c = p.counts[i, :history_h].astype(float)
            keep = c > 0  # billing has no row for an hour nothing ran
            parts.append(pd.DataFrame({
                "provider": PROVIDER_NAME[p.spec.cloud], "region": p.spec.region, "instance_type": itype,
                "ts": ts[:history_h][keep], "hours": c[keep], "committed_hours": 0.0,
                "effective_cost": c[keep] * float(p.on_demand[i].hourly_usd)}, columns=list(BILLING_HOURLY_COLUMNS)))
    hourly = pd.concat(parts, ignore_index=True)
    billing = BillingData(sources=("bench/money.py",), rows=len(hourly), bad_rows=0, bad_examples=(), totals=(),
                          resources=(), commitments=(), hourly=hourly, window=Window(ts[0].to_pydatetime(), end))
    quotes = {price_key(q): q for p in pools for q in p.on_demand}
    specs = {}
    for p in pools:
        for itype in p.spec.types:
            spec = PriceCatalog.shipped(p.spec.cloud).spec(p.spec.cloud, itype)
            if spec is not None:
                specs[(p.spec.cloud.value, itype)] = spec
    rates = tuple(r for p in pools for rs in p.rates.values() for r in rs)
    window = Window(end - timedelta(days=lookback_days), end)
    return Snapshot(end, window, (), Usage.empty(HOUR), quotes, specs=specs, commitment_rates=rates, billing=billing)


@dataclass(frozen=True)
class Pick:
    """A commitment chosen on some window: its instrument and term and its level (on-demand $/h)."""

    key: tuple[Instrument, int] | None
    level: float
    predicted: float = 0.0  # $/month the chooser expected (on its own window)
    risk: str | None = None  # the recommendation's risk (recommender picks only)


def choose_on(pool: PoolSim, hours: slice, follow_trend: bool = False) -> Pick:
    """The optimum on the pool's usage over ``hours`` (``commitments.options`` without the trend cap + ``choose``):
    the hindsight oracle on the future, the vendors' rule on the last N days."""
    weights = pool.type_usage(hours)
    present = [i for i, w in enumerate(weights) if w > 0]
    if not present:
        return Pick(None, 0.0)
    stamps = pd.date_range(AS_OF, periods=pool.counts[:, hours].shape[1], freq="h")
    usage = pool.usage(hours)
    view = commitments.Pool(
        cloud=pool.spec.cloud.value, region=pool.spec.region, name=pool.name, account="bench", source="billing",
        ts=stamps, types=tuple(pool.spec.types[i] for i in present),
        on_demand=tuple(pool.on_demand[i] for i in present), type_usage=weights[present], usage=usage, gross=usage,
        committed_hours=0.0, gpus=None)
    rates = [r for rs in pool.rates.values() for r in rs]
    best = levels.choose(commitments.options(view, rates, follow_trend=follow_trend), TERMS)
    if best is None:
        return Pick(None, 0.0)
    return Pick((best.instrument, best.term_years), best.result.level, best.result.monthly_savings)


def score_pick(pool: PoolSim, pick: Pick, future: slice) -> float:
    if pick.key is None or pick.level <= 0:
        return 0.0
    return commitment_savings(pool.usage(future), pool.ratio(pick.key, pool.type_usage(future)), pick.level)


def recommender_picks(pools: Sequence[PoolSim], ts: pd.DatetimeIndex, history_h: int, lookback_days: int) -> dict[str, Pick]:
    """``commitments.recommend`` on the billing snapshot: the pick per pool (pool key: cloud/region/name)."""
    snapshot = billing_snapshot(pools, ts, history_h, lookback_days)
    recs, _ = commitments.recommend(snapshot, commitments.CommitmentSettings(term_years=TERMS))
    out = {}
    for rec in recs:
        ev = rec.evidence
        key = f"{rec.ref.cloud.value}/{rec.ref.region}/{ev['pool']}"
        out[key] = Pick((Instrument(ev["instrument"]), int(ev["term_years"])), float(ev["level_usd_per_hour"]),
                        float(rec.monthly_savings_usd), rec.risk.value)
    return out


def pool_key(pool: PoolSim) -> str:
    return f"{pool.spec.cloud.value}/{pool.spec.region}/{pool.name}"


def run_commitments(seed: int, history_days: int = 60, future_days: int = 30) -> dict[str, Any]:
    t0 = time.perf_counter()
    pools, ts = simulate_pools(seed, history_days, future_days)
    history_h = history_days * 24
    future = slice(history_h, None)
    ours = {f"ours-{d}d": recommender_picks(pools, ts, history_h, d) for d in (AUDIT_LOOKBACK_DAYS, history_days)}
    rows: list[dict[str, Any]] = []
    checks = []
    for pool in pools:
        key = pool_key(pool)
        best = choose_on(pool, future)
        oracle = score_pick(pool, best, future)
        row: dict[str, Any] = {
            "pool": key, "shape": pool.spec.shape, "types": list(pool.spec.types),
            "rates": "assumed" if pool.assumed else "catalog",
            "rate_ratio": round(pool.ratio(best.key, pool.type_usage(future)), 4) if best.key else None,
            "history_mean_usd_month": month(float(pool.usage(slice(0, history_h)).mean())),
            "future_mean_usd_month": month(float(pool.usage(future).mean())),
            "oracle": oracle, "oracle_level": best.level,
        }
        for name, picks in ours.items():
            pick = picks.get(key, Pick(None, 0.0))
            row[name] = score_pick(pool, pick, future)
            row[f"{name}_level"] = pick.level
            row[f"{name}_predicted"] = pick.predicted
            row[f"{name}_risk"] = pick.risk
        for days in VENDOR_LOOKBACKS:
            pick = choose_on(pool, slice(history_h - days * 24, history_h))
            row[f"vendor-{days}d"] = score_pick(pool, pick, future)
            row[f"vendor-{days}d_level"] = pick.level
        for d in (AUDIT_LOOKBACK_DAYS, history_days):  # the snapshot plumbing sees what the arrays hold
            same = choose_on(pool, slice(history_h - d * 24, history_h), follow_trend=True)
            got = ours[f"ours-{d}d"].get(key, Pick(None, 0.0))
            checks.append(abs(same.level - got.level) <= 1e-3 or (same.predicted < 50 and got.level == 0))
        rows.append(row)
    names = [*ours, *[f"vendor-{d}d" for d in VENDOR_LOOKBACKS]]
    total: dict[str, Any] = {"pool": "total", "oracle": sum(r["oracle"] for r in rows)}
    for name in names:
        total[name] = sum(r[name] for r in rows)
    for name in ours:
        total[f"{name}_predicted"] = sum(r[f"{name}_predicted"] for r in rows)
    for r in [*rows, total]:
        r["share"] = {name: (r[name] / r["oracle"] if r["oracle"] > 0 else None) for name in names}
    headline = f"ours-{AUDIT_LOOKBACK_DAYS}d"
    share = total["share"][headline]
    by_shape: dict[str, dict[str, float]] = {}
    for r in rows:
        g = by_shape.setdefault(r["shape"], {"oracle": 0.0, **{n: 0.0 for n in names}})
        g["oracle"] += r["oracle"]
        for n in names:
            g[n] += r[n]
    steady_oracle = sum(g["oracle"] for k, g in by_shape.items() if k != "shrinking")
    without_shrinking = {n: sum(g[n] for k, g in by_shape.items() if k != "shrinking") / steady_oracle
                         for n in names} if steady_oracle > 0 else {}
    return {
        "config": {"seed": seed, "pools": len(pools), "history_days": history_days, "future_days": future_days,
                   "history_start": ts[0].isoformat(), "as_of": ts[history_h].isoformat(),
                   "terms_years": list(TERMS), "assumed_ri_ratio": ASSUMED_RI_RATIO,
                   "lookbacks": {"ours": [AUDIT_LOOKBACK_DAYS, history_days], "vendor": list(VENDOR_LOOKBACKS)}},
        "rows": rows, "total": total, "columns": names, "by_shape": by_shape,
        "share_without_shrinking": without_shrinking,
        "plumbing_check": all(checks),
        "target": {"target": TARGET_COMMITMENT_SHARE, "row": headline, "value": share,
                   "pass": share is not None and share >= TARGET_COMMITMENT_SHARE,
                   "by_row": {n: total["share"][n] for n in names}},
        "time_s": time.perf_counter() - t0,
    }


# =========================================================================== spot: playing jobs forward


@dataclass
class SpotRun:
    """One workload's jobs played on spot (hours from the start of the horizon)."""

    start: np.ndarray
    finish: np.ndarray
    interruptions: int = 0  # all interruptions before the last finish
    in_jobs: int = 0  # those that hit a running job (or its checkpoint write)
    checkpoints: int = 0
    checkpoint_h: float = 0.0
    lost_h: float = 0.0
    restart_h: float = 0.0  # restarts that delayed work (after an interruption in a job)

    @property
    def end(self) -> float:
        return float(self.finish[-1]) if len(self.finish) else 0.0


def play_on_demand(arrival: np.ndarray, length: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(start, finish) of jobs run in arrival order, each as soon as it arrived and the previous one finished."""
    start, finish = np.zeros(len(arrival)), np.zeros(len(arrival))
    free = 0.0
    for j, (a, n) in enumerate(zip(arrival, length, strict=True)):
        start[j] = max(a, free)
        finish[j] = free = start[j] + n
    return start, finish


def play_on_spot(arrival: np.ndarray, length: np.ndarray, interval_h: float, checkpoint_h: float, restart_h: float,
                 interruptions: np.ndarray) -> SpotRun:
    """Jobs on a spot instance interrupted at the (sorted) ``interruptions`` times.

    A job writes a checkpoint (``checkpoint_h``) after every ``interval_h`` hours of work (none after its
    last piece; ``interval_h`` inf: never, 0: continuously and for free). An interruption destroys the work
    since the last finished checkpoint, a checkpoint being written included, and the instance needs
    ``restart_h`` before work resumes; one during a restart (or while idle) starts the restart again.
    """
    n = len(arrival)
    run = SpotRun(np.zeros(n), np.zeros(n))
    hits = np.asarray(interruptions, dtype=float)
    k, free = 0, 0.0
    for j in range(n):
        t = max(float(arrival[j]), free)
        while k < len(hits) and hits[k] < t:  # the instance was interrupted while idle or restarting
            t = max(t, hits[k] + restart_h)
            k += 1
            run.interruptions += 1
        run.start[j] = t
        done, total = 0.0, float(length[j])
        while True:
            piece = total - done if not interval_h or math.isinf(interval_h) else min(interval_h, total - done)
            last = done + piece >= total - 1e-12
            write = 0.0 if last or not interval_h else checkpoint_h
            end = t + piece + write
            x = hits[k] if k < len(hits) else math.inf
            if x >= end:
                done += piece
                t = end
                if write:
                    run.checkpoints += 1
                    run.checkpoint_h += write
                if last:
                    break
                continue
            k += 1
            run.interruptions += 1
            run.in_jobs += 1
            if interval_h == 0:  # continuous free checkpoints: nothing is lost
                done += x - t
            else:
                run.lost_h += x - t
            t = x + restart_h
            while k < len(hits) and hits[k] < t:
                t = hits[k] + restart_h
                k += 1
                run.interruptions += 1
            run.restart_h += t - x
        run.finish[j] = free = t
    return run


def poisson_times(rng: np.random.Generator, monthly_rate: float, horizon_h: float) -> np.ndarray:
    """Sorted event times of a Poisson process at ``monthly_rate`` per 730 h over ``[0, horizon_h)``."""
    if monthly_rate <= 0:
        return np.zeros(0)
    count = rng.poisson(monthly_rate / HOURS_PER_MONTH * horizon_h)
    return np.sort(rng.uniform(0.0, horizon_h, count))


def billed_hours(finish: np.ndarray, horizon_h: float) -> float:
    """The instance is up from 0 until its last job finishes, at least the horizon."""
    return max(horizon_h, float(finish.max()) if len(finish) else 0.0)


def late_jobs(start: np.ndarray, finish: np.ndarray, length: np.ndarray, deadline_h: float | None) -> np.ndarray:
    """Jobs that finished more than ``deadline_h`` after start + length (none without a deadline)."""
    if deadline_h is None:
        return np.zeros(len(start), dtype=bool)
    return (finish - start - length) > deadline_h + 1e-9


# =========================================================================== spot: workloads


@dataclass
class Workload:
    name: str
    kind: str  # training | batch | serving
    variant: str  # declared | undeclared | tagged-false | bursty
    resource: Resource
    on_demand: PriceQuote
    spot_quote: PriceQuote
    true_rate: float  # interruptions per month, drawn inside the band
    checkpoint_min: float  # true C
    restart_min: float  # true R
    deadline_h: float | None  # true deadline slack (declared or not)
    util: np.ndarray  # (steps,) busiest-GPU utilization over the telemetry window (every GPU alike)
    arrival: np.ndarray = field(default_factory=lambda: np.zeros(0))  # future jobs (hours from as_of)
    length: np.ndarray = field(default_factory=lambda: np.zeros(0))

    @property
    def interruptible(self) -> bool:
        return self.kind != "serving"


def _jobs(rng: np.random.Generator, start: float, end: float, job_h: tuple[float, float],
          gap: tuple[str, float, float]) -> tuple[np.ndarray, np.ndarray]:
    """Job arrivals and lengths on ``[start, end)``: each arrives a gap after the previous one's on-demand end."""
    arrival, length = [], []
    t = start + rng.uniform(0, 2)
    while t < end:
        n = float(rng.uniform(*job_h))
        arrival.append(t)
        length.append(n)
        kind, a, b = gap
        t += n + (rng.exponential(a) if kind == "exp" else rng.uniform(a, b))
    return np.array(arrival), np.array(length)


def _busy_util(rng: np.random.Generator, arrival: np.ndarray, length: np.ndarray, steps: int, t0_h: float,
               level: tuple[float, float], dips: bool) -> np.ndarray:
    """Per-5-minute utilization of jobs on the telemetry window starting ``t0_h`` hours from as_of."""
    busy = np.zeros(steps, dtype=bool)
    for a, n in zip(arrival, length, strict=True):
        lo, hi = int(round((a - t0_h) * STEPS_PER_HOUR)), int(round((a + n - t0_h) * STEPS_PER_HOUR))
        busy[max(lo, 0): max(min(hi, steps), 0)] = True
    util = np.where(busy, rng.uniform(*level, steps), 0.0)
    if dips:  # a checkpoint write every 2 h: 10 minutes near 0 (shorter than an idle episode)
        util[busy & ((np.arange(steps) % (2 * STEPS_PER_HOUR)) < 2)] = 0.5
    return util


def _resource(name: str, entry: CatalogEntry, tags: Mapping[str, str]) -> Resource:
    spec = PriceCatalog.shipped(Cloud.AWS).spec(Cloud.AWS, entry.instance_type)
    return Resource(ref=ResourceRef(Cloud.AWS, "111122223333", entry.region, f"i-{name}"),
                    instance_type=entry.instance_type, state=ResourceState.RUNNING,
                    pricing_model=PricingModel.ON_DEMAND, accelerators=spec.accelerators if spec else None,
                    tags={"Name": name, **tags}, vcpu=spec.vcpu if spec else None,
                    memory_gib=spec.memory_gib if spec else None)


#: (kind, variant, count)
SPOT_MIX = (("training", "declared", 24), ("batch", "declared", 8), ("batch", "undeclared", 16),
            ("serving", "undeclared", 8), ("serving", "bursty", 4), ("serving", "tagged-false", 4))
SPOT_REGIONS = ("us-east-1", "us-west-2", "eu-central-1")


def simulate_spot(seed: int, months: float) -> tuple[list[Workload], float]:
    """The workloads, their telemetry (the 14 days before as_of) and their future jobs over ``months``."""
    rng = np.random.default_rng([seed, 2])
    catalog = PriceCatalog.shipped(Cloud.AWS)
    market = [e for e in catalog.entries(Cloud.AWS) if e.region in SPOT_REGIONS and e.spot_interruption in BAND_RANGE]
    big = [e for e in market if e.gpu_count >= 4]
    small = [e for e in market if e.gpu_count == 1]
    horizon = months * HOURS_PER_MONTH
    steps = SPOT_TELEMETRY_DAYS * 24 * STEPS_PER_HOUR
    t0 = -SPOT_TELEMETRY_DAYS * 24.0
    out = []
    for kind, variant, count in SPOT_MIX:
        for i in range(count):
            entry = (big if kind == "training" else small)[int(rng.integers(len(big if kind == "training" else small)))]
            lo, hi = BAND_RANGE[entry.spot_interruption]
            rate = float(rng.uniform(lo, hi))
            tags: dict[str, str] = {}
            c_min, r_min, deadline = 0.0, 0.0, None
            if kind == "training":
                c_min, r_min = float(round(rng.uniform(3, 20))), float(round(rng.uniform(10, 40)))
                deadline = [None, None, 1.0, 2.0, 4.0, 8.0, 24.0][int(rng.integers(7))]
                job_h, gap = (6.0, 48.0), ("exp", 0.5, 0.0)
            elif kind == "batch":
                c_min, r_min = float(round(rng.uniform(1, 5))), float(round(rng.uniform(5, 40)))
                deadline = (float(rng.choice([0.25, 0.5, 1.0, 2.0, 3.0])) if variant == "declared"
                            else [None, 1.0, 2.0, 4.0][int(rng.integers(4))])
                job_h, gap = (1.0, 6.0), ("uniform", 2.0, 8.0)
            else:
                job_h, gap = (1.0, 4.0), ("uniform", 2.0, 10.0)
            if variant == "declared":
                tags = {spot.TAG_INTERRUPTIBLE: "true", spot.TAG_CHECKPOINT: f"{c_min:g}", spot.TAG_RESTART: f"{r_min:g}"}
                if deadline is not None:
                    tags[spot.TAG_DEADLINE] = f"{deadline:g}"
            elif variant == "tagged-false":
                tags = {spot.TAG_INTERRUPTIBLE: "false"}
            past_a, past_n = _jobs(rng, t0 - 48.0, 0.0, job_h, gap)
            if kind == "serving" and variant == "undeclared":  # an endpoint following diurnal traffic, never idle
                hours = (np.arange(steps) / STEPS_PER_HOUR + rng.uniform(0, 24)) % 24
                util = np.clip(45 + 30 * np.sin(hours / 24 * 2 * np.pi) + rng.normal(0, 6, steps), 8, 100)
            elif kind == "serving" and variant == "bursty":  # demo sessions at random times, GPU far from saturated
                util = _busy_util(rng, past_a, past_n, steps, t0, (10.0, 55.0), dips=False)
            else:  # jobs (training, batch; tagged-false endpoints run batch-like offline scoring)
                util = _busy_util(rng, past_a, past_n, steps, t0, (85.0, 98.0), dips=kind == "training")
            arrival, length = (_jobs(rng, 0.0, horizon, job_h, gap) if kind != "serving" else (np.zeros(0), np.zeros(0)))
            quotes = {q.pricing_model: q for q in catalog.quotes(Cloud.AWS, entry.region, entry.instance_type)}
            name = f"{kind}-{variant}-{i:02d}"
            out.append(Workload(name, kind, variant, _resource(name, entry, tags), quotes[PricingModel.ON_DEMAND],
                                quotes[PricingModel.SPOT], rate, c_min, r_min, deadline, util, arrival, length))
    return out, horizon


def spot_snapshot(workloads: Sequence[Workload]) -> Snapshot:
    """The 14 days of 5-minute GPU telemetry before as_of, priced from the shipped catalog (spot bands included)."""
    window = Window(AS_OF - timedelta(days=SPOT_TELEMETRY_DAYS), AS_OF)
    stamps = pd.date_range(window.start, window.end, freq=PERIOD, inclusive="left")
    res, gpu, ts, val = [], [], [], []
    for w in workloads:
        gpus = w.resource.accelerators.count if w.resource.accelerators else 1
        for g in range(gpus):
            res.append(np.full(len(stamps), w.resource.ref.key, dtype=object))
            gpu.append(np.full(len(stamps), g))
            ts.append(stamps.as_unit("ns").asi8)
            val.append(w.util)
    n = sum(len(r) for r in res)
    frame = usage_frame(pd.Categorical(np.concatenate(res)), np.concatenate(gpu),
                        pd.Categorical(np.full(n, Metric.GPU_UTIL.value, dtype=object)),
                        pd.DatetimeIndex(np.concatenate(ts).astype("datetime64[ns]")).tz_localize("UTC"), np.concatenate(val))
    quotes = {price_key(q): q for w in workloads for q in (w.on_demand, w.spot_quote)}
    return Snapshot(window.end, window, tuple(w.resource for w in workloads), Usage(frame, PERIOD), quotes)


@dataclass
class SpotOutcome:
    """One interruptible workload on spot over the horizon, and what it saved against on-demand."""

    moved_by_ours: bool
    predicted: float  # the recommender's monthly saving (0 without a finding)
    interval_h: float
    saving: float  # realized $/month (on-demand bill - spot bill)
    jobs: int
    late: int
    interruptions: int
    in_jobs: int
    overhead: float  # realized extra running time per useful hour in jobs


def interval_for(w: Workload, rec: Any) -> float:
    """The checkpoint interval the workload runs with on spot: the recommender's, else ``spot_terms`` on
    what is declared (or the recommender's defaults): what its owner would compute with the same model."""
    if rec is not None and rec.evidence.get("checkpoint_interval_minutes") is not None:
        return float(rec.evidence["checkpoint_interval_minutes"]) / 60
    settings = spot.SpotSettings()
    declared = w.variant == "declared"
    c = (w.checkpoint_min if declared else settings.checkpoint_minutes) / 60
    r = (w.restart_min if declared else settings.restart_minutes) / 60
    d = w.deadline_h if declared else None
    terms = spot.spot_terms(w.spot_quote, c, r, d) or spot.spot_terms(w.spot_quote, c, r, None)
    assert terms is not None
    return terms.interval_h


def play_workload(w: Workload, rec: Any, horizon: float, rng: np.random.Generator) -> SpotOutcome:
    tau = interval_for(w, rec)
    _, od_finish = play_on_demand(w.arrival, w.length)
    hits = poisson_times(rng, w.true_rate, horizon * 3 + 1000)
    run = play_on_spot(w.arrival, w.length, tau, w.checkpoint_min / 60, w.restart_min / 60, hits)
    od_bill = float(w.on_demand.hourly_usd) * billed_hours(od_finish, horizon)
    spot_bill = float(w.spot_quote.hourly_usd) * billed_hours(run.finish, horizon)
    late = late_jobs(run.start, run.finish, w.length, w.deadline_h)
    work = float(w.length.sum())
    return SpotOutcome(
        moved_by_ours=rec is not None, predicted=float(rec.monthly_savings_usd) if rec is not None else 0.0,
        interval_h=tau, saving=(od_bill - spot_bill) * HOURS_PER_MONTH / horizon, jobs=len(w.length),
        late=int(late.sum()), interruptions=run.interruptions, in_jobs=run.in_jobs,
        overhead=float((run.finish - run.start).sum() - work) / work if work > 0 else 0.0)


def _policy_row(name: str, moved: Sequence[bool], outcomes: Sequence[SpotOutcome | None],
                workloads: Sequence[Workload], oracle: float) -> dict[str, Any]:
    picked = [(w, o) for w, o, m in zip(workloads, outcomes, moved, strict=True) if m]
    money = sum(o.saving for _, o in picked if o is not None)
    return {
        "policy": name, "moved": len(picked), "realized": money,
        "share": money / oracle if oracle > 0 else None,
        "on_time": sum(o.saving for _, o in picked if o is not None and not o.late),
        "predicted": sum(o.predicted for _, o in picked if o is not None) if name == "ours" else None,
        "jobs": sum(o.jobs for _, o in picked if o is not None),
        "late_jobs": sum(o.late for _, o in picked if o is not None),
        "late_workloads": sum(1 for _, o in picked if o is not None and o.late),
        "losing_workloads": sum(1 for _, o in picked if o is not None and o.saving <= 0),
        "wrong_moves": sum(1 for w, _ in picked if not w.interruptible),
        "interruptions": sum(o.interruptions for _, o in picked if o is not None),
        "interruptions_in_jobs": sum(o.in_jobs for _, o in picked if o is not None),
    }


def run_spot(seed: int, months: float = 3.0) -> dict[str, Any]:
    t0 = time.perf_counter()
    workloads, horizon = simulate_spot(seed, months)
    snapshot = spot_snapshot(workloads)
    pool = [r for r in snapshot.resources if r.has_gpu]
    idle = classify(snapshot.usage, pool, snapshot.window, IdleSettings())
    recs = spot.recommend(snapshot, idle, {r.ref.key: r for r in pool}, spot.SpotSettings(), IdleSettings())
    by_key = {r.ref.key: r for r in recs}
    rng = np.random.default_rng([seed, 3])
    outcomes: list[SpotOutcome | None] = []
    for w in workloads:
        rec = by_key.get(w.resource.ref.key)
        outcomes.append(play_workload(w, rec, horizon, rng) if w.interruptible else None)
    oracle_moves = [o is not None and o.saving > 0 and o.late == 0 for o in outcomes]
    oracle = sum(o.saving for o, m in zip(outcomes, oracle_moves, strict=True) if m and o is not None)
    policies = {
        "oracle": oracle_moves,
        "ours": [w.resource.ref.key in by_key for w in workloads],
        "all interruptible on spot": [w.interruptible for w in workloads],
        "never spot": [False] * len(workloads),
    }
    rows = [_policy_row(name, moved, outcomes, workloads, oracle) for name, moved in policies.items()]
    groups: dict[str, dict[str, Any]] = {}
    for w, o in zip(workloads, outcomes, strict=True):
        g = groups.setdefault(f"{w.kind}/{w.variant}", {"workloads": 0, "ours_moved": 0, "oracle_moved": 0,
                                                        "ours": 0.0, "oracle": 0.0, "all": 0.0, "ours_late_jobs": 0,
                                                        "all_late_jobs": 0, "jobs": 0})
        g["workloads"] += 1
        moved = w.resource.ref.key in by_key
        g["ours_moved"] += int(moved)
        if o is None:
            continue
        g["jobs"] += o.jobs
        g["all"] += o.saving
        g["all_late_jobs"] += o.late
        if moved:
            g["ours"] += o.saving
            g["ours_late_jobs"] += o.late
        if o.saving > 0 and o.late == 0:
            g["oracle_moved"] += 1
            g["oracle"] += o.saving
    late_causes = {"late jobs with no interruption in the job": 0}
    for w, o in zip(workloads, outcomes, strict=True):
        if o is not None and w.resource.ref.key in by_key and o.late:
            late_causes["late jobs with no interruption in the job"] += late_without_interruptions(w, o.interval_h)
    return {
        "config": {"seed": seed, "months": months, "workloads": len(workloads),
                   "mix": {f"{k}/{v}": n for k, v, n in SPOT_MIX}, "telemetry_days": SPOT_TELEMETRY_DAYS,
                   "regions": list(SPOT_REGIONS), "bands": {b: list(r) for b, r in BAND_RANGE.items()}},
        "rows": rows, "by_workload": groups, "findings": len(recs),
        "late_causes": late_causes,
        "time_s": time.perf_counter() - t0,
    }


def late_without_interruptions(w: Workload, interval_h: float) -> int:
    """Jobs of ``w`` that are late even with no interruption at all: checkpoint writes alone exceed the slack."""
    run = play_on_spot(w.arrival, w.length, interval_h, w.checkpoint_min / 60, w.restart_min / 60, np.zeros(0))
    return int(late_jobs(run.start, run.finish, w.length, w.deadline_h).sum())


# =========================================================================== run, output


def run(seed: int = 0, history_days: int = 60, future_days: int = 30, spot_months: float = 3.0) -> dict[str, Any]:
    return {"commitments": run_commitments(seed, history_days, future_days), "spot": run_spot(seed, spot_months)}


def _m(v: float | None) -> str:
    return "-" if v is None else f"{v:,.0f}"


def _p(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:.0f}%"


def render(s: Mapping[str, Any]) -> str:
    c, sp = s["commitments"], s["spot"]
    cc, names = c["config"], c["columns"]
    lines = [
        f"Commitments vs hindsight oracle: {cc['pools']} pools, seed {cc['seed']}, history {cc['history_days']} d -> "
        f"scored on the next {cc['future_days']} d (from {cc['as_of']}); 1-year terms; $/month saved "
        f"(730 x (mean min(u, q) - d q)); % = share of the oracle",
        "",
    ]
    head = (f"{'pool':<24}{'shape':<13}{'rates':<8}{'d':>6}{'use/mo':>10}{'risk':>7}{'oracle':>10}"
            + "".join(f"{n:>16}" for n in names))
    lines += [head, "-" * len(head)]
    for r in [*c["rows"], c["total"]]:
        if r["pool"] == "total":
            lines.append("-" * len(head))
            lead = f"{'total':<24}{'':<13}{'':<8}{'':>6}{'':>10}{'':>7}"
        else:
            lead = (f"{r['pool']:<24}{r['shape']:<13}{r['rates']:<8}{r['rate_ratio'] or 0:>6.3f}"
                    f"{_m(r['future_mean_usd_month']):>10}{r[f'{names[0]}_risk'] or '-':>7}")
        lines.append(lead + f"{_m(r['oracle']):>10}" + "".join(f"{_m(r[n]) + ' ' + _p(r['share'][n]):>16}" for n in names))
    t = c["target"]
    lines += [
        "",
        f"ours-{cc['lookbacks']['ours'][0]}d = commitments.recommend on the audit's default --lookback; ours-"
        f"{cc['lookbacks']['ours'][1]}d = the same with --lookback {cc['lookbacks']['ours'][1]}d; vendor-Nd = the same "
        f"optimization on the last N days. Plumbing check (recommend == the arrays' optimum): "
        f"{'ok' if c['plumbing_check'] else 'MISMATCH'}",
        f"use/mo = mean future on-demand usage x 730; risk = the {names[0]} finding's risk; without the shrinking "
        "pools: " + ", ".join(f"{n} {_p(v)}" for n, v in c["share_without_shrinking"].items()),
        "the recommender's own monthly_savings_usd (predicted on its lookback) vs realized: " + ", ".join(
            f"{n} ${c['total'][n + '_predicted']:,.0f} vs ${c['total'][n]:,.0f}" for n in names if n.startswith("ours")),
        f"target >= {t['target']:.0%} of the oracle ({t['row']}): {_p(t['value'])}  {'PASS' if t['pass'] else 'FAIL'}"
        f"  (" + ", ".join(f"{n} {_p(v)}" for n, v in t["by_row"].items()) + ")",
        "",
    ]
    sc = sp["config"]
    lines += [
        f"Spot vs hindsight oracle: {sc['workloads']} on-demand workloads (" + ", ".join(f"{k} {n}" for k, n in sc["mix"].items())
        + f"), seed {sc['seed']}; {sc['telemetry_days']} d of telemetry -> spot.recommend; {sc['months']:g} months "
        "played forward with Poisson interruptions at a true rate drawn inside each Spot Advisor band",
        "",
    ]
    head = (f"{'policy':<27}{'moved':>6}{'realized':>11}{'%orcl':>7}{'on time':>10}{'predicted':>11}{'jobs':>7}{'late':>6}"
            f"{'late wl':>8}{'losing':>7}{'wrong':>7}{'intr':>6}{'in job':>7}")
    lines += [head, "-" * len(head)]
    for r in sp["rows"]:
        lines.append(f"{r['policy']:<27}{r['moved']:>6}{_m(r['realized']):>11}{_p(r['share']):>7}{_m(r['on_time']):>10}"
                     f"{_m(r['predicted']):>11}"
                     f"{r['jobs']:>7}{r['late_jobs']:>6}{r['late_workloads']:>8}{r['losing_workloads']:>7}"
                     f"{r['wrong_moves']:>7}{r['interruptions']:>6}{r['interruptions_in_jobs']:>7}")
    lines += ["", f"{'by workload':<27}{'n':>4}{'ours mv':>8}{'orcl mv':>8}{'ours $':>10}{'oracle $':>10}{'all $':>10}"
                  f"{'late ours':>10}{'late all':>9}{'jobs':>7}"]
    for k, g in sp["by_workload"].items():
        lines.append(f"{k:<27}{g['workloads']:>4}{g['ours_moved']:>8}{g['oracle_moved']:>8}{_m(g['ours']):>10}"
                     f"{_m(g['oracle']):>10}{_m(g['all']):>10}{g['ours_late_jobs']:>10}{g['all_late_jobs']:>9}{g['jobs']:>7}")
    ours = next(r for r in sp["rows"] if r["policy"] == "ours")
    lines += [
        "",
        f"of our late jobs, late even with no interruption (checkpoint writes alone exceed the slack): "
        f"{sp['late_causes']['late jobs with no interruption in the job']} of {ours['late_jobs']}",
        f"target 0 wrong moves (serving moved to spot): {ours['wrong_moves']}  {'PASS' if ours['wrong_moves'] == 0 else 'FAIL'}",
        f"time: commitments {c['time_s']:.1f} s, spot {sp['time_s']:.1f} s",
    ]
    return "\n".join(lines)


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--history-days", type=int, default=60)
    parser.add_argument("--future-days", type=int, default=30)
    parser.add_argument("--spot-months", type=float, default=3.0)
    parser.add_argument("--json", action="store_true", help="machine-readable output instead of the tables")
    args = parser.parse_args(argv)
    summary = run(args.seed, args.history_days, args.future_days, args.spot_months)
    if args.json:
        json.dump(_jsonable(summary), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(render(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
