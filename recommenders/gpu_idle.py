"""``gpu-idle``: STOP a running GPU instance that is idle now and has been for a sustained streak.

Also: a GPU VM that is powered off but still allocated (Azure's "Stopped" power state, billed in
full) is told to deallocate; that needs no telemetry, the power state is the evidence.

"Sustained" means both at least ``min_streak_hours`` and clearly longer (``prior_margin`` x) than
any idle stretch the instance came back from in the window — so an office-hours notebook on a
Monday morning, or a batch box between its usual jobs, is not mistaken for a forgotten one.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from decimal import Decimal

import pandas as pd

from providers.model import Action, Metric, PricingModel, Resource, ResourceState, Snapshot
from recommenders.economics import monthly_cost, price_evidence
from recommenders.idle import IdleReport, IdleSettings
from recommenders.model import Kind, Recommendation, Risk

NAME = "gpu-idle"
#: GPU memory in use during an idle streak above this means a process (a notebook kernel, a server) is alive.
HELD_MEMORY_MIB = 1024.0


@dataclass(frozen=True)
class StopSettings:
    min_streak_hours: float = 24.0
    prior_margin: float = 1.5


def _round(value: float, digits: int = 2) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else round(float(value), digits)


def recommend(
    snapshot: Snapshot,
    idle: IdleReport,
    resources: Mapping[str, Resource],
    settings: StopSettings,
    idle_settings: IdleSettings,
    exclude: Collection[str] = (),
) -> list[Recommendation]:
    per = idle.per_resource
    eligible = per[
        ~per.index.isin(list(exclude))
        & (per["known_hours"] >= idle_settings.min_data_hours)
        & (per["streak_hours"] >= settings.min_streak_hours)
        & (per["streak_hours"] > settings.prior_margin * per["prior_max_idle_hours"])
    ]
    memory = _memory_held(snapshot, eligible["streak_start"])
    return [_recommendation(snapshot, resources[key], row, settings, idle_settings, memory.get(key))
            for key, row in eligible.iterrows()]


def _memory_held(snapshot: Snapshot, streak_start: pd.Series) -> dict[str, float]:
    """Peak GPU memory in use (MiB, all GPUs together) during each streak, where the agent reports it."""
    frame = snapshot.usage.frame
    mem = frame[frame["metric"] == Metric.GPU_MEM_USED.value]
    if mem.empty or streak_start.empty:
        return {}
    keys = mem["resource"].astype(str)
    inside = mem[mem["ts"] >= keys.map(streak_start)]
    total = inside.groupby([inside["resource"].astype(str), "ts"])["value"].sum()
    return total.groupby(level=0).max().to_dict()


def _recommendation(snapshot: Snapshot, res: Resource, row: pd.Series, settings: StopSettings,
                    idle_settings: IdleSettings, memory_mib: float | None) -> Recommendation:
    quote = snapshot.price_for(res)
    savings = monthly_cost(quote.hourly_usd) if quote else Decimal(0)
    streak = float(row["streak_hours"])
    both_signals = bool(row["cpu_published"]) and bool(row["net_published"])
    confidence = 0.6 + 0.15 * min(1.0, math.log2(streak / settings.min_streak_hours) / 2)
    confidence += 0.1 if both_signals else 0.0
    confidence += 0.1 * min(1.0, float(row["known_hours"]) / snapshot.window.hours)
    holds_memory = memory_mib is not None and memory_mib >= HELD_MEMORY_MIB
    risk = Risk.LOW if streak >= 3 * settings.min_streak_hours and both_signals and not holds_memory else Risk.MEDIUM
    notes = []
    if holds_memory:
        notes.append(f"a process still holds {memory_mib / 1024:.1f} GiB of GPU memory: stopping ends it "
                     "(save the notebook or checkpoint first)")
    if res.pricing_model == PricingModel.SPOT:
        notes.append("a spot instance can be stopped only if launched from a persistent request or a fleet "
                     "set to stop; a one-time spot instance can only be terminated, by you")
    gpus = res.accelerators.count if res.accelerators else 0
    since = pd.Timestamp(row["streak_start"]).isoformat().replace("+00:00", "Z")
    return Recommendation(
        recommender=NAME,
        kind=Kind.STOP,
        ref=res.ref,
        instance_type=res.instance_type,
        monthly_savings_usd=savings,
        confidence=round(min(confidence, 0.95), 3),
        risk=risk,
        summary=f"Stop: {'all ' if gpus > 1 else ''}{gpus} GPU{'s' if gpus != 1 else ''} idle for the last {streak:.0f} h",
        evidence={
            "idle_since": since,
            "idle_streak_hours": round(streak, 2),
            "longest_earlier_idle_hours": round(float(row["prior_max_idle_hours"]), 2),
            "gpu_count": gpus,
            "gpu_model": res.accelerators.model if res.accelerators else None,
            "gpu_util_max_pct_during_streak": _round(row["streak_gpu_max_pct"]),
            "cpu_util_max_pct_during_streak": _round(row["streak_cpu_max_pct"]),
            "network_max_bytes_per_s_during_streak": _round(row["streak_net_max_bytes_per_s"], 0),
            "thresholds": {
                "gpu_util_max_pct": idle_settings.gpu_util_max_pct,
                "cpu_util_max_pct": idle_settings.cpu_util_max_pct,
                "net_max_bytes_per_s": idle_settings.net_max_bytes_per_s,
                "min_streak_hours": settings.min_streak_hours,
            },
            "idle_fraction_of_measured_time": round(float(row["idle_fraction"]), 4),
            "measured_hours": round(float(row["known_hours"]), 2),
            "window_hours": round(snapshot.window.hours, 2),
            "gpu_memory_used_max_mib_during_streak": _round(memory_mib, 0) if memory_mib is not None else None,
            "price": price_evidence(quote),
            "savings_basis": "hourly price x 730 h/month (compute only; attached volumes still bill)",
            "notes": notes,
        },
        action=Action(kind="stop", ref=res.ref, params={}),
        name=res.name,
    )


def recommend_allocated(snapshot: Snapshot, exclude: Collection[str] = ()) -> list[Recommendation]:
    """Deallocate GPU VMs that are powered off but still allocated (and so still billed for compute)."""
    out = []
    for res in snapshot.resources:
        if res.state != ResourceState.STOPPED_ALLOCATED or not res.has_gpu or res.ref.key in exclude:
            continue
        quote = snapshot.price_for(res)
        gpus = res.accelerators.count if res.accelerators else 0
        out.append(Recommendation(
            recommender=NAME,
            kind=Kind.STOP,
            ref=res.ref,
            instance_type=res.instance_type,
            monthly_savings_usd=monthly_cost(quote.hourly_usd) if quote else Decimal(0),
            confidence=0.95,
            risk=Risk.LOW,
            summary=f"Deallocate: powered off but still allocated, {gpus} GPU{'s' if gpus != 1 else ''} billed in full",
            evidence={
                "power_state": "stopped (allocated)",
                "gpu_count": gpus,
                "gpu_model": res.accelerators.model if res.accelerators else None,
                "price": price_evidence(quote),
                "savings_basis": "hourly price x 730 h/month: a stopped-but-allocated VM bills compute like a "
                                 "running one; deallocating keeps its disks and configuration",
                "notes": ["the VM runs nothing (powered off from the OS or `az vm stop`); `az vm deallocate` "
                          "stops the compute charge, a start later may land on other hardware"],
            },
            action=Action(kind="stop", ref=res.ref, params={"deallocate": True}),
            name=res.name,
        ))
    return out
