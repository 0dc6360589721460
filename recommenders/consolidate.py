"""``consolidate``: advice to pack mostly idle single-GPU workloads onto fewer instances.

Where many single-GPU instances each keep a GPU that is mostly idle, several workloads can share
one GPU (time-slicing or MPS; MIG where the GPU has it) and the emptied instances can go. This is
advice only (no action): moving a workload is an engineering change, and sharing adds contention.

Model (see docs/kpis.md, "Consolidation"):

- candidates are running instances with exactly one GPU, at least ``min_data_hours`` of known GPU
  telemetry, a P99.5 GPU utilization at or below ``max_util_pct``, and known GPU memory use and CPU
  use (an instance without memory or CPU data is not a candidate: nothing is guessed);
- candidates are grouped by (cloud, account, region, GPU model); different GPUs are never mixed;
- first-fit-decreasing on the time series: workloads sorted by P99.5 utilization, busiest first, each
  goes into the first bin where the *combined* series fits. The combined utilization is the
  per-period sum of the members' utilization on the idle model's grid (a member's unknown period
  counts at its own peak), and its P99.5 x (1 + headroom) must stay <= 100 %. GPU memory is not
  time-shared (a process keeps what its allocator took, and one that runs out dies), so the members'
  peaks are summed: x (1 + headroom) <= the host GPU's memory. CPU demand is each member's P99.5
  CPU % x its vCPUs, summed, x (1 + headroom) <= the host's vCPUs. A bin's host is its first
  (busiest) member's instance;
- a recommendation for each instance a packing empties, only in groups where packing saves at
  least one instance; savings are that instance's own price for a month.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal

import numpy as np
import pandas as pd

from providers.hardware import gpu_model
from providers.model import Metric, Resource, ResourceState, Snapshot
from recommenders.economics import monthly_cost, price_evidence
from recommenders.idle import IdleReport, IdleSettings, cadence, hold_forward
from recommenders.model import Kind, Recommendation, Risk

NAME = "consolidate"
METHOD = "first-fit-decreasing"
SHARING_NOTE = (
    "sharing one GPU needs GPU time-slicing or NVIDIA MPS (or MIG partitions on GPUs that have them) and "
    "adds contention: the workloads slow each other down when their bursts coincide, and one GPU fault "
    "or driver restart now stops all of them"
)


@dataclass(frozen=True)
class ConsolidateSettings:
    #: A workload is "mostly idle" when its P99.5 GPU utilization is at or below this.
    max_util_pct: float = 30.0
    percentile: float = 99.5
    headroom: float = 0.20
    min_data_hours: float = 168.0


@dataclass(frozen=True)
class _Workload:
    res: Resource
    util: np.ndarray  # (T,) GPU utilization per period, the workload's own peak where unknown
    known: np.ndarray  # (T,) bool
    util_pct: float  # at the percentile
    mem_peak_mib: float
    mem_capacity_mib: float
    cpu_pct: float  # at the percentile
    vcpu: int
    coverage: float  # known hours / window hours

    @property
    def cpu_vcpus(self) -> float:
        return self.cpu_pct / 100.0 * self.vcpu


@dataclass
class _Bin:
    members: list[_Workload]
    util_sum: np.ndarray
    known: np.ndarray
    mem_mib: float
    cpu_vcpus: float
    util_pct: float = field(default=0.0)

    @property
    def host(self) -> _Workload:
        return self.members[0]


def recommend(
    snapshot: Snapshot,
    idle: IdleReport,
    resources: Mapping[str, Resource],
    settings: ConsolidateSettings,
    idle_settings: IdleSettings,
    exclude: Collection[str] = (),
) -> list[Recommendation]:
    per = idle.per_resource
    skip = set(exclude)
    min_hours = max(settings.min_data_hours, idle_settings.min_data_hours)
    pool = [
        res for key, res in resources.items()
        if key not in skip and key in per.index and res.state == ResourceState.RUNNING
        and res.accelerators is not None and res.accelerators.count == 1
        and float(per.at[key, "known_hours"]) >= min_hours
    ]
    if len(pool) < 2:
        return []
    workloads = _workloads(snapshot, idle, pool, settings, idle_settings)
    groups: dict[tuple[str, str, str, str], list[_Workload]] = defaultdict(list)
    for w in workloads:
        groups[_group_key(w.res)].append(w)
    recs: list[Recommendation] = []
    for key in sorted(groups):
        members = groups[key]
        if len(members) < 2:
            continue
        bins = _pack(members, settings)
        if len(bins) < len(members):
            recs += _recommendations(snapshot, bins, len(members), settings)
    return recs


def host_metrics_keys(gpu_frame: pd.DataFrame, settings: ConsolidateSettings) -> set[str]:
    """Resources that may be candidates judging by their GPU rows alone (one GPU series, utilization at the
    percentile at most ``max_util_pct``): the collect stage must read their CPU, or they cannot be judged."""
    util = gpu_frame[(gpu_frame["metric"] == Metric.GPU_UTIL.value) & gpu_frame["value"].between(0, 100)]
    if util.empty:
        return set()
    owner = util["resource"].astype(str)
    gpus = util.groupby(owner)["gpu"].nunique()
    level = util.groupby(owner)["value"].quantile(settings.percentile / 100.0)
    return set(level.index[(level <= settings.max_util_pct) & (gpus.reindex(level.index) == 1)])


def _group_key(res: Resource) -> tuple[str, str, str, str]:
    name = res.accelerators.model if res.accelerators else ""
    known = gpu_model(name)
    return (res.ref.cloud.value, res.ref.account, res.ref.region, known.model if known else name.strip().lower())


def _workloads(snapshot: Snapshot, idle: IdleReport, pool: Sequence[Resource], settings: ConsolidateSettings,
               idle_settings: IdleSettings) -> list[_Workload]:
    """The candidates among ``pool``: mostly idle, with memory and CPU data and a known vCPU count."""
    keys = [r.ref.key for r in pool]
    frame = snapshot.usage.frame
    frame = frame[frame["resource"].isin(keys)]
    start, end = pd.Timestamp(idle.window.start), pd.Timestamp(idle.window.end)
    frame = frame[(frame["ts"] >= start) & (frame["ts"] < end)]
    util, known = _util_grid(frame, keys, idle, idle_settings)
    q = settings.percentile
    with np.errstate(all="ignore"):
        util_p = np.array([np.percentile(row[k], q) if k.any() else np.nan for row, k in zip(util, known, strict=True)])
        peak = np.where(known, util, -np.inf).max(axis=1, initial=-np.inf)
    mem = _per_resource(frame, Metric.GPU_MEM_USED, "max")
    total = _per_resource(frame, Metric.GPU_MEM_TOTAL, "max")
    cpu = _per_resource(frame[frame["value"].between(0, 100)], Metric.CPU_UTIL, q / 100.0)
    window_h = idle.window.hours
    out = []
    for i, res in enumerate(pool):
        key = res.ref.key
        vcpu = res.vcpu or (spec.vcpu if (spec := snapshot.spec_for(res.ref.cloud, res.instance_type)) else None)
        if (np.isnan(util_p[i]) or util_p[i] > settings.max_util_pct or key not in mem.index or key not in cpu.index
                or not vcpu):
            continue
        capacity = float(total[key]) if key in total.index and total[key] > 0 else res.accelerators.memory_gib * 1024.0
        filled = np.where(known[i], util[i], peak[i]).astype(np.float64)
        coverage = float(idle.per_resource.at[key, "known_hours"]) / window_h if window_h else 0.0
        out.append(_Workload(res, filled, known[i].copy(), float(util_p[i]), float(mem[key]), capacity, float(cpu[key]),
                             int(vcpu), min(1.0, coverage)))
    return out


def _per_resource(frame: pd.DataFrame, metric: Metric, how: str | float) -> pd.Series:
    """Per resource key: the maximum (``how="max"``) or the quantile ``how`` of ``metric``."""
    rows = frame[frame["metric"] == metric.value]
    grouped = rows.groupby("resource", observed=True)["value"]
    out = grouped.max() if how == "max" else grouped.quantile(float(how))
    out.index = out.index.astype(str)
    return out


def _util_grid(frame: pd.DataFrame, keys: Sequence[str], idle: IdleReport,
               idle_settings: IdleSettings) -> tuple[np.ndarray, np.ndarray]:
    """(instances x periods) GPU utilization on the idle model's grid, samples held for their cadence."""
    period = idle.period
    n_rows, n_steps = len(keys), len(idle.times)
    util = frame[(frame["metric"] == Metric.GPU_UTIL.value) & frame["value"].between(0, 100)]
    lookup = np.append(pd.Index(keys).get_indexer(util["resource"].cat.categories), -1)
    rows = lookup[util["resource"].cat.codes.to_numpy()]
    stamps = util["ts"].dt.as_unit("ns").array.asi8
    t = (stamps - pd.Timestamp(idle.window.start).value) // int(period.total_seconds() * 1_000_000_000)
    ok = (rows >= 0) & (t >= 0) & (t < n_steps)
    grid = np.full(n_rows * n_steps, -np.inf, dtype=np.float32)
    np.maximum.at(grid, rows[ok] * n_steps + t[ok], util["value"].to_numpy()[ok].astype(np.float32))
    grid[np.isneginf(grid)] = np.nan
    grid = grid.reshape(n_rows, n_steps)
    observed = ~np.isnan(grid)
    max_hold = max(1, int(timedelta(minutes=idle_settings.max_hold_minutes) / period))
    hold = np.clip(cadence(observed, max_hold), 1, max_hold).astype(np.int32)
    return hold_forward(grid, observed, hold)


def _pack(workloads: Sequence[_Workload], settings: ConsolidateSettings) -> list[_Bin]:
    """First-fit-decreasing by P99.5 utilization, every fit checked on the combined time series."""
    order = sorted(workloads, key=lambda w: (-w.util_pct, w.res.ref.key))
    factor = 1.0 + settings.headroom
    bins: list[_Bin] = []
    for w in order:
        for b in bins:
            host = b.host
            mem = b.mem_mib + w.mem_peak_mib
            cpu = b.cpu_vcpus + w.cpu_vcpus
            if mem * factor > host.mem_capacity_mib or cpu * factor > host.vcpu:
                continue
            util_sum = b.util_sum + w.util
            known = b.known | w.known
            util_pct = float(np.percentile(util_sum[known], settings.percentile)) if known.any() else float("inf")
            if util_pct * factor > 100.0:
                continue
            b.members.append(w)
            b.util_sum, b.known, b.mem_mib, b.cpu_vcpus, b.util_pct = util_sum, known, mem, cpu, util_pct
            break
        else:
            bins.append(_Bin([w], w.util.copy(), w.known.copy(), w.mem_peak_mib, w.cpu_vcpus, w.util_pct))
    return bins


def _round(value: float, digits: int = 2) -> float:
    return round(float(value), digits)


def _bin_evidence(b: _Bin) -> dict[str, object]:
    return {
        "host": b.host.res.ref.id,
        "host_name": b.host.res.name,
        "members": [w.res.ref.id for w in b.members],
        "combined_gpu_util_pct": _round(b.util_pct),
        "combined_gpu_memory_peak_mib": _round(b.mem_mib, 0),
        "combined_cpu_vcpus": _round(b.cpu_vcpus),
    }


def _member_evidence(w: _Workload) -> dict[str, object]:
    return {
        "resource_id": w.res.ref.id,
        "name": w.res.name,
        "instance_type": w.res.instance_type,
        "gpu_util_pct": _round(w.util_pct),
        "gpu_memory_peak_mib": _round(w.mem_peak_mib, 0),
        "cpu_util_pct": _round(w.cpu_pct),
        "vcpu": w.vcpu,
    }


def _recommendations(snapshot: Snapshot, bins: Sequence[_Bin], n_before: int,
                     settings: ConsolidateSettings) -> list[Recommendation]:
    packing = [_bin_evidence(b) for b in bins]
    recs = []
    for b in bins:
        if len(b.members) < 2:
            continue
        host = b.host
        model = host.res.accelerators.model if host.res.accelerators else None
        coverage = min(w.coverage for w in b.members)
        for w in b.members[1:]:
            res = w.res
            quote = snapshot.price_for(res)
            notes = [SHARING_NOTE]
            if res.group:
                notes.append(f"member of scaling group {res.group}: lower the group's capacity rather than "
                             "stopping the instance, or the group replaces it")
            if host.res.pricing_model.value == "spot":
                notes.append("the host is a spot instance: an interruption would now stop every workload on it")
            recs.append(Recommendation(
                recommender=NAME,
                kind=Kind.CONSOLIDATE,
                ref=res.ref,
                instance_type=res.instance_type,
                monthly_savings_usd=monthly_cost(quote.hourly_usd) if quote else Decimal(0),
                confidence=round(0.5 + 0.2 * coverage, 3),
                risk=Risk.MEDIUM,
                summary=(f"Consolidate: move this workload onto {host.res.name or host.res.ref.id} "
                         f"({len(b.members)} mostly idle workloads share one {model} GPU)"),
                evidence={
                    "move_onto": {"resource_id": host.res.ref.id, "name": host.res.name,
                                  "instance_type": host.res.instance_type},
                    "gpu_model": model,
                    "members": [_member_evidence(m) for m in b.members],
                    "combined_gpu_util_pct": _round(b.util_pct),
                    "combined_gpu_memory_peak_mib": _round(b.mem_mib, 0),
                    "combined_cpu_vcpus": _round(b.cpu_vcpus),
                    "host_gpu_memory_mib": _round(host.mem_capacity_mib, 0),
                    "host_vcpu": host.vcpu,
                    "percentile": settings.percentile,
                    "headroom": settings.headroom,
                    "max_util_pct": settings.max_util_pct,
                    "method": METHOD,
                    "packing": packing,
                    "instances_before": n_before,
                    "instances_after": len(bins),
                    "price": price_evidence(quote),
                    "savings_basis": "this instance's hourly price x 730 h/month (compute only; advice, no action)",
                    "notes": notes,
                },
                action=None,
                name=res.name,
            ))
    return recs


__all__ = ["NAME", "ConsolidateSettings", "host_metrics_keys", "recommend"]
