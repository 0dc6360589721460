"""``rightsize``: a smaller or cheaper GPU instance type for a running instance that does not need what it has.

Two findings, one model (docs/rightsize.md has every default and why):

- **fewer GPUs** — a multi-GPU instance whose GPUs are mostly not working at the same time (an 8-GPU box
  with one busy GPU) gets the same GPU model with fewer GPUs;
- **a different GPU** — a workload whose peak GPU memory and (slowdown-scaled) utilization fit a cheaper
  GPU (an A100 serving a small model -> A10G / L4), within the same region's offerings.

Sizing uses high percentiles of time (P99.5 + 20 % headroom), never averages; GPU memory is sized on
its peak (running out of GPU memory is a crash, not a slowdown). Nothing smaller is proposed without
``min_data_hours`` of telemetry, without memory data for a GPU-count reduction, or without CPU data
for a smaller host. A proposal always changes the GPUs: a host-only change (same GPUs, fewer vCPUs) is
never proposed, so a busy GPU box never gets a finding here.

Per instance the long usage frame is scattered onto a (periods x GPUs) grid, each sample held for its
series' own cadence (as the idle model does), so sparse (hourly) publishers count by time, not by
samples. The loop is over instances and candidate types, never over samples.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal

import numpy as np
import pandas as pd

from providers.hardware import GpuModel, gpu_model, same_model
from providers.model import (
    INSTANCE_LEVEL,
    Accelerators,
    Action,
    InstanceTypeSpec,
    Metric,
    PriceQuote,
    PricingModel,
    Resource,
    ResourceState,
    Snapshot,
)
from recommenders.economics import monthly_cost, price_evidence
from recommenders.idle import IdleReport, IdleSettings, cadence, grid_max, hold_forward
from recommenders.model import Kind, Recommendation, Risk

NAME = "rightsize"

#: A GPU whose memory in use is above this holds a process (a CUDA context alone is ~0.3-0.5 GiB).
HELD_MEMORY_MIB = 1024.0
#: Two types with the same GPU model count as having the same GPU memory within this ratio (sources
#: disagree: EC2 says 24 GiB for an A10G, the price catalog 22.35), while A100 40 vs 80 GiB stay apart.
SAME_MEMORY_RATIO = 0.9
#: Risk rises when the predicted P99.5 utilization on the proposed GPU exceeds this.
HOT_UTIL_PCT = 70.0
#: Risk rises when the peak leaves less than this share of a smaller GPU's memory free.
MEMORY_HEADROOM_MIN = 0.40
#: Risk rises with less telemetry than this (two full weeks).
FULL_HISTORY_HOURS = 336.0
#: Instances per batch of grids (bounds memory: 512 x 8 GPUs x 4,032 periods of float32 is 66 MB).
CHUNK_INSTANCES = 512
MAX_CANDIDATES = 5
MAX_REJECTED = 8
#: Compute capability generation per architecture: Ampere (8.0) brought bf16, TF32 and FlashAttention-2.
ARCH_GENERATION = {"Volta": 70, "Turing": 75, "Ampere": 80, "Ada Lovelace": 89, "Hopper": 90, "Blackwell": 100}
BF16_GENERATION = 80


@dataclass(frozen=True)
class RightsizeSettings:
    #: Compute (and busy-GPU count, CPU) sized on this percentile of time, not on averages.
    percentile: float = 99.5
    #: Added on top of the sized need (utilization, memory, vCPU).
    headroom: float = 0.20
    #: GPU memory sized on this percentile (100: the peak; running out of GPU memory is a crash).
    memory_percentile: float = 100.0
    #: Never a smaller type with less known telemetry than this (one full week).
    min_data_hours: float = 168.0
    min_monthly_savings_usd: Decimal = Decimal(25)
    min_savings_pct: float = 10.0


@dataclass
class Profile:
    """What one instance used, from its telemetry."""

    key: str
    per_gpu: bool  # per-GPU series (False: only the agent's instance-level rollup)
    gpus: int  # GPUs expected (installed, or 1 for a rollup)
    known_hours: float  # periods with every GPU known
    util_p: list[float]  # per GPU, P(percentile) utilization %
    busy_p: int  # P(percentile) of concurrently busy GPUs
    busy_max: int
    mem_peak_mib: list[float] | None  # per GPU, P(memory_percentile) of memory used; None: not measured
    mem_holders_p: int | None  # P(percentile) of GPUs holding memory at once
    mem_hours: float
    cpu_p: float | None  # P(percentile) of instance CPU %; None: not measured (enough)
    cpu_hours: float


@dataclass
class Need:
    gpus: int
    gpu_memory_mib: float | None  # per GPU incl. headroom; None: memory not measured
    busiest_util_pct: float  # P(percentile) of the busiest GPU (an upper bound for a rollup)
    vcpu: float | None  # incl. headroom; None: CPU not measured (then: no fewer vCPUs)
    reasons: list[str] = field(default_factory=list)


@dataclass
class Fit:
    instance_type: str
    spec: InstanceTypeSpec
    quote: PriceQuote
    same: bool
    predicted_util_pct: float
    memory_free_share: float | None
    risk_score: int
    risk_reasons: list[str]


# --------------------------------------------------------------------------------------------- public


def wants_host_metrics(gpu_frame: pd.DataFrame, settings: RightsizeSettings, idle_settings: IdleSettings) -> set[str]:
    """Resource keys that could get a right-size, so the collect stage reads their CPU/network too.

    A key qualifies when some GPU's P(percentile) utilization x (1 + headroom) stays under 100 % (a
    slower GPU might do), or when the P(percentile) count of concurrently busy GPUs is below the GPUs
    it has (fewer GPUs might do). Counted over samples: a pre-filter, the recommender decides by time.
    """
    if gpu_frame.empty:
        return set()
    util = gpu_frame[(gpu_frame["metric"] == Metric.GPU_UTIL.value)
                     & (gpu_frame["value"] >= 0) & (gpu_frame["value"] <= 100)]
    if util.empty:
        return set()
    q = settings.percentile / 100
    per_gpu_q = util.groupby(["resource", "gpu"], observed=True)["value"].quantile(q)
    slow_ok = per_gpu_q[per_gpu_q * (1 + settings.headroom) < 100]
    wanted = set(slow_ok.index.get_level_values(0).astype(str))
    per_gpu = util[util["gpu"] != INSTANCE_LEVEL]
    if not per_gpu.empty:
        busy = (per_gpu["value"] > idle_settings.gpu_util_max_pct).groupby(
            [per_gpu["resource"], per_gpu["ts"]], observed=True).sum()
        busy_q = busy.groupby(level=0, observed=True).quantile(q, interpolation="higher")
        installed = per_gpu.groupby("resource", observed=True)["gpu"].nunique()
        fewer = busy_q[busy_q < installed.reindex(busy_q.index)]
        wanted |= set(fewer.index.astype(str))
    return wanted


def recommend(
    snapshot: Snapshot,
    idle: IdleReport,
    resources: Mapping[str, Resource],
    settings: RightsizeSettings,
    idle_settings: IdleSettings,
    exclude: Collection[str] = (),
) -> list[Recommendation]:
    per = idle.per_resource
    skip = set(exclude)
    keys = [k for k in idle.keys
            if k in resources and k not in skip and resources[k].group is None
            and resources[k].state == ResourceState.RUNNING and resources[k].has_gpu
            and float(per.at[k, "known_hours"]) >= settings.min_data_hours
            and _offered(snapshot, resources[k])]
    if not keys:
        return []
    installed = {k: resources[k].accelerators.count for k in keys}  # type: ignore[union-attr]
    profiles = profile_usage(snapshot, idle, keys, installed, settings, idle_settings)
    recs = []
    for key in keys:
        prof = profiles.get(key)
        if prof is None or prof.known_hours < settings.min_data_hours:
            continue
        rec = _recommend_one(snapshot, resources[key], prof, settings, idle_settings)
        if rec is not None:
            recs.append(rec)
    return recs


# ------------------------------------------------------------------------------------------ telemetry


def profile_usage(snapshot: Snapshot, idle: IdleReport, keys: list[str], installed: Mapping[str, int],
                  settings: RightsizeSettings, idle_settings: IdleSettings) -> dict[str, Profile]:
    """Per-instance percentiles by time from the long usage frame: (instances x GPUs x periods) grids, in chunks.

    Each GPU sample stands for its series' cadence (at most ``max_hold_minutes``), as in the idle model;
    a period is known when every GPU of the instance has a reading for it. ``installed``: GPUs per key.
    """
    frame = snapshot.usage.frame
    if frame.empty or not keys:
        return {}
    period = idle.period
    n_steps = int(idle.window.duration / period)
    if n_steps <= 0:
        return {}
    n_hours = max(1, math.ceil(idle.window.hours))
    code = {m: i for i, m in enumerate(frame["metric"].cat.categories)}
    util_c, mem_c, cpu_c = (code.get(m.value, -99) for m in (Metric.GPU_UTIL, Metric.GPU_MEM_USED, Metric.CPU_UTIL))
    lookup = np.append(pd.Index(keys).get_indexer(frame["resource"].cat.categories), -1).astype(np.int64)
    rows = lookup[frame["resource"].cat.codes.to_numpy()]
    metric = frame["metric"].cat.codes.to_numpy()
    sel = np.flatnonzero((rows >= 0) & ((metric == util_c) | (metric == mem_c) | (metric == cpu_c)))
    rows, metric = rows[sel], metric[sel]
    gpu = frame["gpu"].to_numpy()[sel].astype(np.int64)
    value = frame["value"].to_numpy()[sel].astype(np.float64)
    since = frame["ts"].dt.as_unit("ns").array.asi8[sel] - pd.Timestamp(idle.window.start).value
    step = since // int(period.total_seconds() * 1_000_000_000)
    hour = since // 3_600_000_000_000
    del since
    is_util = (metric == util_c) & (value >= 0) & (value <= 100)
    is_mem = (metric == mem_c) & (value >= 0) & (hour >= 0) & (hour < n_hours)
    is_cpu = (metric == cpu_c) & (value >= 0)
    in_window = (step >= 0) & (step < n_steps)
    is_util &= in_window
    is_cpu &= in_window

    n_keys = len(keys)
    per_gpu = np.bincount(rows[is_util & (gpu >= 0)], minlength=n_keys) > 0
    own_level = np.where(per_gpu[rows], gpu >= 0, gpu == INSTANCE_LEVEL)
    is_util &= own_level
    is_mem &= own_level
    col = np.maximum(gpu, 0)
    top = np.zeros(n_keys, dtype=np.int64)
    np.maximum.at(top, rows[is_util], col[is_util] + 1)
    expected = np.where(per_gpu, np.maximum(np.array([installed.get(k, 0) for k in keys], dtype=np.int64), top), 1)

    cadence_s = idle.per_resource["cadence_s"].reindex(keys).fillna(period.total_seconds()).to_numpy()
    max_hold = max(1, int(timedelta(minutes=idle_settings.max_hold_minutes) / period))
    hold = np.clip(np.rint(cadence_s / period.total_seconds()), 1, max_hold).astype(np.int32)
    max_hold_h = max(1, math.ceil(idle_settings.max_hold_minutes / 60))

    out: dict[str, Profile] = {}
    step_h = period.total_seconds() / 3600
    for lo in range(0, n_keys, CHUNK_INSTANCES):
        hi = min(n_keys, lo + CHUNK_INSTANCES)
        in_chunk = (rows >= lo) & (rows < hi)
        width = int(expected[lo:hi].max())
        exp = expected[lo:hi]
        gpu_rows = in_chunk & (col < width)
        u, m, c = np.flatnonzero(is_util & gpu_rows), np.flatnonzero(is_mem & gpu_rows), np.flatnonzero(is_cpu & in_chunk)
        n = hi - lo
        # GPU utilization: (n x width x periods), held for each series' cadence; missing GPUs stay NaN
        util = grid_max(((rows[u] - lo) * width + col[u]) * n_steps + step[u], value[u], n * width * n_steps)
        util = util.reshape(n * width, n_steps)
        util, _ = hold_forward(util, ~np.isnan(util), np.repeat(hold[lo:hi], width))
        util = util.reshape(n, width, n_steps)
        pad = np.arange(width)[None, :] >= exp[:, None]
        util[pad] = 0.0
        known = ~np.isnan(util).any(axis=1)  # (n, periods)
        busy = (util > idle_settings.gpu_util_max_pct).sum(axis=1)
        busy_hist = _hist(np.where(known, busy, -1), width + 1)
        util_bins = np.where(known[:, None, :], np.rint(util * 10), -1).astype(np.int64).reshape(n * width, n_steps)
        util_p = _quantile(_hist(util_bins, 1001), settings.percentile).reshape(n, width) / 10
        del util, util_bins

        # GPU memory: (n x width x hours) of the hourly peak
        mem = grid_max(((rows[m] - lo) * width + col[m]) * n_hours + hour[m], value[m], n * width * n_hours)
        mem = mem.reshape(n * width, n_hours)
        if settings.memory_percentile >= 100:
            peak = _nanmax(mem).reshape(n, width)
        else:
            with np.errstate(all="ignore"):
                peak = np.nanpercentile(mem, settings.memory_percentile, axis=1).reshape(n, width)
        obs = ~np.isnan(mem)
        mem, _ = hold_forward(mem, obs, np.clip(cadence(obs, max_hold_h), 1, max_hold_h).astype(np.int32))
        mem = mem.reshape(n, width, n_hours)
        mem[pad] = 0.0
        mem_known = ~np.isnan(mem).any(axis=1)
        holders = (mem > HELD_MEMORY_MIB).sum(axis=1)
        holders_hist = _hist(np.where(mem_known, holders, -1), width + 1)
        del mem

        # instance CPU: (n x periods), held for its own cadence
        cpu = grid_max((rows[c] - lo) * n_steps + step[c], np.minimum(value[c], 100.0), n * n_steps).reshape(n, n_steps)
        obs = ~np.isnan(cpu)
        cpu, cpu_known = hold_forward(cpu, obs, np.clip(cadence(obs, max_hold), 1, max_hold).astype(np.int32))
        cpu_p = _quantile(_hist(np.where(cpu_known, np.rint(cpu * 10), -1).astype(np.int64), 1001),
                          settings.percentile) / 10
        del cpu

        busy_p = _quantile(busy_hist, settings.percentile)
        holders_p = _quantile(holders_hist, settings.percentile)
        known_h = known.sum(axis=1) * step_h
        mem_h = mem_known.sum(axis=1).astype(float)
        cpu_h = cpu_known.sum(axis=1) * step_h
        busy_max = np.where(busy_hist > 0, np.arange(width + 1)[None, :], -1).max(axis=1)
        for i in range(n):
            if known_h[i] <= 0:  # e.g. a GPU that never reported: every period unknown (a coverage gap says so)
                continue
            g = int(exp[i])
            mem_ok = mem_h[i] >= settings.min_data_hours and not np.isnan(peak[i, :g]).any()
            out[keys[lo + i]] = Profile(
                key=keys[lo + i], per_gpu=bool(per_gpu[lo + i]), gpus=g, known_hours=float(known_h[i]),
                util_p=[float(v) for v in util_p[i, :g]], busy_p=int(busy_p[i]), busy_max=int(busy_max[i]),
                mem_peak_mib=[float(v) for v in peak[i, :g]] if mem_ok else None,
                mem_holders_p=int(holders_p[i]) if mem_ok else None, mem_hours=float(mem_h[i]),
                cpu_p=float(cpu_p[i]) if cpu_h[i] >= settings.min_data_hours else None, cpu_hours=float(cpu_h[i]),
            )
    return out


def _hist(bins: np.ndarray, n_bins: int) -> np.ndarray:
    """Per row of ``bins`` (values 0..n_bins-1; negative: skipped), the count of each value."""
    n_rows = bins.shape[0]
    ok = bins >= 0
    flat = (np.arange(n_rows)[:, None] * n_bins + bins)[ok]
    return np.bincount(flat, minlength=n_rows * n_bins).reshape(n_rows, n_bins)


def _quantile(hist: np.ndarray, percentile: float) -> np.ndarray:
    """Per row, the smallest value with at least ``percentile`` % of the counts at or below it (0 if empty)."""
    cum = np.cumsum(hist, axis=1)
    need = np.ceil(cum[:, -1] * percentile / 100 - 1e-9)
    return np.where(cum[:, -1] > 0, (cum < np.maximum(need, 1)[:, None]).sum(axis=1), 0)


def _nanmax(grid: np.ndarray) -> np.ndarray:
    filled = np.where(np.isnan(grid), -np.inf, grid)
    top = filled.max(axis=1) if grid.shape[1] else np.full(grid.shape[0], -np.inf)
    return np.where(np.isneginf(top), np.nan, top)


# ------------------------------------------------------------------------------------------- sizing


def _offered(snapshot: Snapshot, res: Resource) -> bool:
    return bool(snapshot.offerings.get((str(res.ref.cloud), res.ref.region)))


def _current_shape(snapshot: Snapshot, res: Resource) -> tuple[Accelerators | None, int, float | None]:
    spec = snapshot.spec_for(res.ref.cloud, res.instance_type)
    acc = res.accelerators or (spec.accelerators if spec else None)
    vcpu = res.vcpu or (spec.vcpu if spec else 0)
    ram = res.memory_gib or (spec.memory_gib if spec else None)
    return acc, int(vcpu or 0), ram


def needs(prof: Profile, installed: int, gpu_memory_gib: float, vcpu: int, settings: RightsizeSettings) -> Need:
    """What the workload needs: GPUs, per-GPU memory and vCPUs, each with headroom."""
    h = 1 + settings.headroom
    reasons = []
    if not prof.per_gpu:
        gpus = installed
        reasons.append("only an instance-level GPU rollup is published: GPUs cannot be told apart, no fewer GPUs")
        # The rollup may be a mean over GPUs: the busiest GPU can be up to N times busier (and fuller).
        busiest = min(100.0, prof.util_p[0] * max(1, installed))
    elif prof.mem_peak_mib is None:
        gpus = installed
        reasons.append("no GPU memory telemetry: no fewer GPUs (a model sharded over the GPUs cannot be ruled out)")
        busiest = max(prof.util_p)
    else:
        gpus = max(1, prof.busy_p, prof.mem_holders_p or 0)
        busiest = max(prof.util_p)
    mem_need = None
    if prof.mem_peak_mib is not None:
        peak = max(prof.mem_peak_mib)
        if not prof.per_gpu and installed > 1:
            peak = min(gpu_memory_gib * 1024, peak * installed)
        mem_need = peak * h
    vcpu_need = prof.cpu_p / 100 * vcpu * h if prof.cpu_p is not None and vcpu else None
    return Need(gpus, mem_need, busiest, vcpu_need, reasons)


def _generation(model: GpuModel | None) -> int | None:
    return ARCH_GENERATION.get(model.architecture) if model else None


def evaluate(cur_acc: Accelerators, cur_vcpu: int, cand: InstanceTypeSpec, need: Need, prof: Profile,
             settings: RightsizeSettings) -> tuple[str | None, float, list[str]]:
    """Whether ``cand`` fits: (the rejection reason or None, predicted P-utilization on it, risk reasons)."""
    acc = cand.accelerators
    assert acc is not None
    h = 1 + settings.headroom
    same = same_model(cur_acc.model, acc.model)
    cur_model, cand_model = gpu_model(cur_acc.model), gpu_model(acc.model)
    if same and acc.count >= cur_acc.count:
        return "same GPUs (a host-only change is not proposed)", need.busiest_util_pct, []
    if acc.count < need.gpus:
        return f"{acc.count} GPU{'s' if acc.count != 1 else ''} < {need.gpus} needed", need.busiest_util_pct, []
    if not same and (cur_model is None or cand_model is None):
        return f"GPU model {acc.model if cand_model is None else cur_acc.model} unknown: only the same model", \
            need.busiest_util_pct, []
    if not same:
        gen_cur, gen_cand = _generation(cur_model), _generation(cand_model)
        if gen_cur is not None and gen_cand is not None and gen_cur >= BF16_GENERATION > gen_cand:
            return (f"{acc.model} ({cand_model.architecture}) lacks bf16 and FlashAttention-2, which a workload "
                    f"on {cur_acc.model} ({cur_model.architecture}) may use"), need.busiest_util_pct, []
    same_memory = same and acc.memory_gib >= SAME_MEMORY_RATIO * cur_acc.memory_gib
    if not (same_memory or acc.memory_gib >= cur_acc.memory_gib):
        if need.gpu_memory_mib is None:
            return f"{acc.memory_gib:g} GiB per GPU < {cur_acc.memory_gib:g} GiB now (GPU memory not measured)", \
                need.busiest_util_pct, []
        if acc.memory_gib * 1024 < need.gpu_memory_mib:
            return (f"{acc.memory_gib:g} GiB per GPU < {need.gpu_memory_mib / 1024:.1f} GiB needed "
                    f"(peak + {settings.headroom:.0%})"), need.busiest_util_pct, []
    slowdown = 1.0 if same else cur_model.slowdown_on(cand_model)  # type: ignore[union-attr]
    predicted = need.busiest_util_pct * slowdown
    if not same and predicted * h > 100:
        return (f"busiest GPU P{settings.percentile:g} {need.busiest_util_pct:.0f} % x {slowdown:.2f} slower "
                f"x {h:g} headroom = {predicted * h:.0f} % > 100 %"), predicted, []
    if need.vcpu is None:
        if cand.vcpu < cur_vcpu:
            return f"{cand.vcpu} vCPU < {cur_vcpu} now (CPU not measured)", predicted, []
    elif cand.vcpu < need.vcpu:
        return f"{cand.vcpu} vCPU < {need.vcpu:.1f} needed (CPU P{settings.percentile:g} + headroom)", predicted, []

    risk = []
    if not same:
        risk.append(f"different GPU model ({cur_acc.model} -> {acc.model}): speed estimated from datasheets "
                    f"({slowdown:.2f}x busier)")
    if not same and predicted > HOT_UTIL_PCT:
        risk.append(f"predicted P{settings.percentile:g} utilization {predicted:.0f} % > {HOT_UTIL_PCT:g} %")
    if acc.memory_gib < cur_acc.memory_gib and not same_memory and need.gpu_memory_mib is not None:
        free = 1 - need.gpu_memory_mib / (1 + settings.headroom) / (acc.memory_gib * 1024)
        if free < MEMORY_HEADROOM_MIN:
            risk.append(f"peak GPU memory leaves {free:.0%} of the smaller GPU free (< {MEMORY_HEADROOM_MIN:.0%})")
    if not same and need.gpus > 1:
        risk.append(f"{need.gpus} GPUs working together: the GPU interconnect (NVLink or PCIe) may differ")
    if need.vcpu is None or prof.busy_max > need.gpus:
        parts = []
        if need.vcpu is None:
            parts.append("host CPU not measured")
        if prof.busy_max > need.gpus:
            parts.append(f"up to {prof.busy_max} GPUs were busy at once (> {need.gpus}, rarely)")
        risk.append("; ".join(parts))
    if prof.known_hours < FULL_HISTORY_HOURS:
        risk.append(f"only {prof.known_hours:.0f} h of telemetry (< {FULL_HISTORY_HOURS:.0f} h)")
    return None, predicted, risk


def _risk(score: int) -> Risk:
    return Risk.LOW if score <= 1 else Risk.MEDIUM if score == 2 else Risk.HIGH


def _recommend_one(snapshot: Snapshot, res: Resource, prof: Profile, settings: RightsizeSettings,
                   idle_settings: IdleSettings) -> Recommendation | None:
    cloud, region = res.ref.cloud, res.ref.region
    cur_acc, cur_vcpu, cur_ram = _current_shape(snapshot, res)
    if cur_acc is None or cur_acc.count <= 0 or cur_vcpu <= 0:
        return None  # the current shape is unknown: nothing to size against
    # A commitment-covered instance costs its effective (billed) rate, not the list price.
    cur_od = snapshot.effective_quote(res) or snapshot.quote(cloud, region, res.instance_type, PricingModel.ON_DEMAND)
    cur_spot = snapshot.quote(cloud, region, res.instance_type, PricingModel.SPOT)
    if cur_od is None and not (res.pricing_model == PricingModel.SPOT and cur_spot is not None):
        return None
    need = needs(prof, cur_acc.count, cur_acc.memory_gib, cur_vcpu, settings)

    fits: list[Fit] = []
    rejected: list[tuple[Decimal, str, str]] = []
    for itype in sorted(snapshot.offerings.get((str(cloud), region), frozenset())):
        if itype == res.instance_type:
            continue
        spec = snapshot.spec_for(cloud, itype)
        if spec is None or spec.accelerators is None or spec.accelerators.count <= 0:
            continue
        cur_q, cand_q = _pair(snapshot, res, itype, cur_od, cur_spot)
        if cur_q is None or cand_q is None or cand_q.hourly_usd >= cur_q.hourly_usd:
            continue
        reason, predicted, risk = evaluate(cur_acc, cur_vcpu, spec, need, prof, settings)
        if reason is not None:
            rejected.append((cand_q.hourly_usd, itype, reason))
            continue
        same = same_model(cur_acc.model, spec.accelerators.model)
        free = None if need.gpu_memory_mib is None else \
            1 - need.gpu_memory_mib / (1 + settings.headroom) / (spec.accelerators.memory_gib * 1024)
        fits.append(Fit(itype, spec, cand_q, same, predicted, free, min(4, len(risk)), risk))
    if not fits:
        return None
    by_price = sorted(fits, key=lambda f: (f.quote.hourly_usd, not f.same, f.risk_score, f.instance_type))
    cur_q, _ = _pair(snapshot, res, by_price[0].instance_type, cur_od, cur_spot)
    assert cur_q is not None
    current_monthly = monthly_cost(cur_q.hourly_usd)
    # The cheapest fit, unless a safer one (the same GPU model, then a lower risk score) costs less than
    # a material amount more: a riskier move has to earn its risk.
    material = max(settings.min_monthly_savings_usd, current_monthly * Decimal(str(settings.min_savings_pct)) / 100)
    cheapest = by_price[0].quote.hourly_usd
    close = [f for f in by_price if monthly_cost(f.quote.hourly_usd - cheapest) < material]
    chosen = min(close, key=lambda f: (not f.same, f.risk_score, f.quote.hourly_usd, f.instance_type))
    savings = monthly_cost(cur_q.hourly_usd - chosen.quote.hourly_usd)
    pct = float(savings / current_monthly * 100) if current_monthly else 0.0
    if savings < settings.min_monthly_savings_usd or pct < settings.min_savings_pct:
        return None
    return _recommendation(snapshot, res, prof, need, chosen, by_price, rejected, cur_q, cur_acc, cur_vcpu, cur_ram,
                           savings, pct, settings, idle_settings)


def _pair(snapshot: Snapshot, res: Resource, itype: str, cur_od: PriceQuote | None,
          cur_spot: PriceQuote | None) -> tuple[PriceQuote | None, PriceQuote | None]:
    """(current, candidate) quotes on one basis: spot for a spot instance when both are known, else on-demand."""
    cloud, region = res.ref.cloud, res.ref.region
    if res.pricing_model == PricingModel.SPOT and cur_spot is not None:
        cand_spot = snapshot.quote(cloud, region, itype, PricingModel.SPOT)
        if cand_spot is not None:
            return cur_spot, cand_spot
    return cur_od, snapshot.quote(cloud, region, itype, PricingModel.ON_DEMAND)


# ------------------------------------------------------------------------------------------- output


def _r(value: float | None, digits: int = 1) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else round(float(value), digits)


def _shape(itype: str, acc: Accelerators, vcpu: int, ram: float | None) -> dict[str, object]:
    return {"instance_type": itype, "gpu_model": acc.model, "gpu_count": acc.count, "gpu_memory_gib": acc.memory_gib,
            "vcpu": vcpu, "memory_gib": ram}


def _recommendation(snapshot: Snapshot, res: Resource, prof: Profile, need: Need, chosen: Fit, by_price: list[Fit],
                    rejected: list[tuple[Decimal, str, str]], cur_q: PriceQuote, cur_acc: Accelerators, cur_vcpu: int,
                    cur_ram: float | None, savings: Decimal, pct: float, settings: RightsizeSettings,
                    idle_settings: IdleSettings) -> Recommendation:
    acc = chosen.spec.accelerators
    assert acc is not None
    p = f"P{settings.percentile:g}"
    busiest = need.busiest_util_pct
    if need.gpus < cur_acc.count:
        what = f"{need.gpus} of {cur_acc.count} {cur_acc.model} GPUs used ({p} of GPUs busy at once)"
    else:
        what = f"{cur_acc.count}x {cur_acc.model}"
    what += f", busiest at {p} {busiest:.0f} %"
    if prof.mem_peak_mib is not None:
        what += f", {max(prof.mem_peak_mib) / 1024:.1f} GiB peak GPU memory"
    if not chosen.same:
        what += f"; {acc.count}x {acc.model} predicted at {chosen.predicted_util_pct:.0f} %"
    summary = f"Right-size {res.instance_type} -> {chosen.instance_type}: {what}"

    notes = ["AWS changes the type of a stopped instance only: stop, change the type, start (minutes of downtime; "
             "instance-store data is lost)" if res.ref.cloud.value == "aws" else
             "changing the machine type needs a stop and start"]
    if chosen.spec.memory_gib and cur_ram and chosen.spec.memory_gib < cur_ram:
        notes.append(f"host memory is not measured: check the workload fits in {chosen.spec.memory_gib:g} GiB of RAM "
                     f"(it has {cur_ram:g} GiB now)")
    if not chosen.same:
        notes.append(f"{acc.model} instead of {cur_acc.model}: check the software stack (CUDA version, kernels) and "
                     "benchmark before moving")
    if res.pricing_model == PricingModel.COMMITTED:
        notes.append("covered by a commitment: the savings materialise only when the commitment covers other usage")
    if res.pricing_model == PricingModel.SPOT and cur_q.pricing_model != PricingModel.SPOT:
        notes.append("spot prices were not known for both types: compared at on-demand prices")

    risk_score = chosen.risk_score
    candidates = [
        {**_shape(f.instance_type, f.spec.accelerators, f.spec.vcpu, f.spec.memory_gib),  # type: ignore[arg-type]
         "hourly_usd": float(f.quote.hourly_usd), "predicted_gpu_util_pct": _r(f.predicted_util_pct),
         "risk_score": f.risk_score}
        for f in by_price[:MAX_CANDIDATES]
    ]
    coverage = min(1.0, prof.known_hours / max(snapshot.window.hours, 1e-9))
    confidence = 0.55 + 0.25 * coverage + (0.05 if prof.cpu_p is not None else 0.0) \
        + (0.05 if prof.mem_peak_mib is not None else 0.0) - 0.08 * risk_score
    return Recommendation(
        recommender=NAME,
        kind=Kind.RIGHTSIZE,
        ref=res.ref,
        instance_type=res.instance_type,
        monthly_savings_usd=savings,
        confidence=round(min(0.95, max(0.2, confidence)), 3),
        risk=_risk(risk_score),
        summary=summary,
        evidence={
            "from_type": res.instance_type,
            "to_type": chosen.instance_type,
            "percentile": settings.percentile,
            "headroom_pct": round(settings.headroom * 100, 1),
            "memory_percentile": settings.memory_percentile,
            "busy_threshold_pct": idle_settings.gpu_util_max_pct,
            "per_gpu_series": prof.per_gpu,
            "gpu_util_p_pct": [_r(v) for v in prof.util_p],
            "busy_gpus_p": prof.busy_p,
            "busy_gpus_max": prof.busy_max,
            "memory_holding_gpus_p": prof.mem_holders_p,
            "gpu_memory_peak_mib": [_r(v, 0) for v in prof.mem_peak_mib] if prof.mem_peak_mib is not None else None,
            "cpu_util_p_pct": _r(prof.cpu_p),
            "needed": {
                "gpus": need.gpus,
                "gpu_memory_mib_per_gpu": _r(need.gpu_memory_mib, 0),
                "busiest_gpu_util_pct": _r(busiest),
                "vcpu": _r(need.vcpu),
                "notes": need.reasons,
            },
            "data_hours": _r(prof.known_hours),
            "gpu_memory_hours": _r(prof.mem_hours),
            "cpu_hours": _r(prof.cpu_hours),
            "window_hours": _r(snapshot.window.hours),
            "current": {**_shape(res.instance_type, cur_acc, cur_vcpu, cur_ram), "price": price_evidence(cur_q)},
            "proposed": {**_shape(chosen.instance_type, acc, chosen.spec.vcpu, chosen.spec.memory_gib),
                         "price": price_evidence(chosen.quote),
                         "predicted_gpu_util_pct": _r(chosen.predicted_util_pct),
                         "gpu_memory_free_share": _r(chosen.memory_free_share, 3)},
            "price_basis": cur_q.pricing_model.value,
            "savings_pct": round(pct, 1),
            "savings_basis": "(current - proposed hourly price) x 730 h/month, same pricing model",
            "risk_score": risk_score,
            "risk_reasons": chosen.risk_reasons,
            "candidates": candidates,
            "rejected": [{"instance_type": t, "hourly_usd": float(price), "reason": why}
                         for price, t, why in sorted(rejected)[:MAX_REJECTED]],
            "notes": notes,
        },
        action=Action(kind="rightsize", ref=res.ref,
                      params={"from_type": res.instance_type, "to_type": chosen.instance_type}),
        name=res.name,
    )
