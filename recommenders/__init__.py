"""Pure analysis: a Snapshot in, recommendations (and the gaps analysis itself found) out.

No I/O, no clock, no cloud SDK: everything comes from the snapshot, so results are deterministic.

Order and exclusions: members of scaling groups are judged as groups (``autoscale``) only — a
stopped or resized member would be replaced or undone by its group. A ``stop`` supersedes every
other finding on the same instance; ``rightsize`` and ``consolidate`` skip stopped instances (and
consolidation skips right-sized ones); a ``schedule`` may stand beside a right-size (the report's
total counts only the larger of overlapping findings). ``spot`` skips stopped instances and group
members; ``commitment`` sizes pools on the usage no other finding changes (instances with a
finding, and members of groups to be resized, are left out). Findings on instances that
billing shows covered by a commitment are priced at the effective rate and say whether they strand
it (``stranding``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from providers.model import Gap, Metric, Resource, ResourceState, Snapshot
from recommenders import autoscale, commitments, consolidate, gpu_idle, rightsize, schedule, spot, stranding
from recommenders.idle import IdleReport, IdleSettings, classify, quiet_gpu_keys
from recommenders.kpis import FleetKpis, fleet_kpis
from recommenders.model import Kind, Recommendation

RECOMMENDERS = (gpu_idle.NAME, schedule.NAME, rightsize.NAME, consolidate.NAME, autoscale.NAME, spot.NAME,
                commitments.NAME)


@dataclass(frozen=True)
class Settings:
    idle: IdleSettings = field(default_factory=IdleSettings)
    stop: gpu_idle.StopSettings = field(default_factory=gpu_idle.StopSettings)
    schedule: schedule.ScheduleSettings = field(default_factory=schedule.ScheduleSettings)
    rightsize: rightsize.RightsizeSettings = field(default_factory=rightsize.RightsizeSettings)
    consolidate: consolidate.ConsolidateSettings = field(default_factory=consolidate.ConsolidateSettings)
    autoscale: autoscale.AutoscaleSettings = field(default_factory=autoscale.AutoscaleSettings)
    spot: spot.SpotSettings = field(default_factory=spot.SpotSettings)
    commitment: commitments.CommitmentSettings = field(default_factory=commitments.CommitmentSettings)
    enabled: tuple[str, ...] = RECOMMENDERS
    kpi_tag: str = "team"


@dataclass(frozen=True)
class Analysis:
    recommendations: tuple[Recommendation, ...]
    gaps: tuple[Gap, ...]
    idle: IdleReport
    analyzed: tuple[str, ...]  # resource keys with enough telemetry to judge
    kpis: FleetKpis | None = None


def candidates(snapshot: Snapshot) -> list[Resource]:
    """Running GPU instances that published GPU utilization in the window."""
    frame = snapshot.usage.frame
    reported = set(map(str, frame.loc[frame["metric"] == Metric.GPU_UTIL.value, "resource"].unique()))
    return [r for r in snapshot.resources if r.has_gpu and r.state == ResourceState.RUNNING and r.ref.key in reported]


def group_member_keys(snapshot: Snapshot) -> set[str]:
    """Keys of instances that belong to a scaling group (by the group's member list or the instance's tag)."""
    keys = {k for g in snapshot.groups for k in g.member_keys()}
    return keys | {r.ref.key for r in snapshot.resources if r.group}


def host_metrics_wanted(gpu_frame: pd.DataFrame, settings: Settings | None = None) -> set[str]:
    """Resources whose CPU and network are worth reading, given their GPU rows.

    CPU and network veto idle (only instances with quiet GPU periods need them) and bound a
    right-size (only under-used instances can get one); a saturated training box needs neither.
    """
    settings = settings or Settings()
    wanted = quiet_gpu_keys(gpu_frame, settings.idle.gpu_util_max_pct)
    if rightsize.NAME in settings.enabled:
        wanted |= rightsize.wants_host_metrics(gpu_frame, settings.rightsize, settings.idle)
    if consolidate.NAME in settings.enabled:
        wanted |= consolidate.host_metrics_keys(gpu_frame, settings.consolidate)
    return wanted


def analyze(snapshot: Snapshot, settings: Settings | None = None) -> Analysis:
    settings = settings or Settings()
    pool = candidates(snapshot)
    idle = classify(snapshot.usage, pool, snapshot.window, settings.idle)
    _price_idle(snapshot, pool, idle)
    members = group_member_keys(snapshot)
    by_key = {r.ref.key: r for r in pool}
    recs: list[Recommendation] = []
    gaps: list[Gap] = []
    on = settings.enabled
    if gpu_idle.NAME in on:
        recs += gpu_idle.recommend(snapshot, idle, by_key, settings.stop, settings.idle, exclude=members)
        recs += gpu_idle.recommend_allocated(snapshot, exclude=members)
    stopped = {r.ref.key for r in recs}
    if rightsize.NAME in on:
        recs += rightsize.recommend(snapshot, idle, by_key, settings.rightsize, settings.idle, exclude=stopped | members)
    resized = {r.ref.key for r in recs} - stopped
    if consolidate.NAME in on:
        recs += consolidate.recommend(snapshot, idle, by_key, settings.consolidate, settings.idle,
                                      exclude=stopped | resized | members)
    if schedule.NAME in on:
        recs += schedule.recommend(snapshot, idle, by_key, settings.schedule, settings.idle, exclude=stopped | members)
    if autoscale.NAME in on:
        group_recs, group_gaps = autoscale.recommend(snapshot, settings.autoscale, settings.idle)
        recs += group_recs
        gaps += group_gaps
    spot_recs = spot.recommend(snapshot, idle, by_key, settings.spot, settings.idle, exclude=stopped | members) \
        if spot.NAME in on else []
    recs += spot_recs
    if commitments.NAME in on:
        commit_recs, commit_gaps = commitments.recommend(snapshot, settings.commitment,
                                                         exclude=_changing(snapshot, recs))
        recs += commit_recs
        gaps += commit_gaps
    recs = stranding.annotate(snapshot, recs)
    unique = {r.id: r for r in recs}
    gaps += coverage_gaps(pool, idle, settings.idle)
    analyzed = tuple(k for k in idle.keys if idle.per_resource.at[k, "known_hours"] >= settings.idle.min_data_hours)
    kpis = fleet_kpis(snapshot, idle, settings.idle, settings.kpi_tag) if analyzed else None
    return Analysis(tuple(unique.values()), tuple(gaps), idle, analyzed, kpis)


def _changing(snapshot: Snapshot, recs: Sequence[Recommendation]) -> set[str]:
    """Instances whose hours or type another finding changes (stopped, scheduled, resized, emptied, moved to
    spot, or members of a group to be resized): commitments are sized on the usage that stays."""
    keys = {r.ref.key for r in recs}
    scaled = {r.ref.key for r in recs if r.kind == Kind.AUTOSCALE}
    for group in snapshot.groups:
        if group.ref.key in scaled:
            keys |= set(group.member_keys())
    return keys


def _price_idle(snapshot: Snapshot, pool: Sequence[Resource], idle: IdleReport) -> None:
    """Idle GPU-hours and idle dollars per instance (dollars NaN where no price is known)."""
    quotes = [snapshot.price_for(r) for r in pool]
    per = idle.per_resource
    per["hourly_usd"] = np.array([float(q.hourly_usd) if q else np.nan for q in quotes], dtype=float)
    per["idle_gpu_hours"] = per["idle_hours"] * per["installed_gpus"]
    per["idle_usd"] = per["idle_hours"] * per["hourly_usd"]


def coverage_gaps(pool: Sequence[Resource], idle: IdleReport, settings: IdleSettings) -> list[Gap]:
    """Instances whose telemetry is too thin or incomplete to judge: said, never guessed."""
    gaps = []
    per = idle.per_resource
    for res in pool:
        row = per.loc[res.ref.key]
        ref = res.ref
        expected, reporting = int(row["expected_gpus"]), int(row["reporting_gpus_max"])
        if row["installed_gpus"] and reporting < expected:
            gaps.append(Gap(ref.cloud, "gpu-telemetry",
                            f"only {reporting} of {expected} GPUs publish utilization; periods without every GPU are unknown, never idle",
                            ref.region, ref.id, ref.account,
                            "publish every GPU (check the agent's nvidia_gpu configuration and driver)"))
        silent_h = (idle.window.end - pd.Timestamp(row["last_known_end"])).total_seconds() / 3600 \
            if pd.notna(row["last_known_end"]) else 0.0
        if silent_h > settings.stale_after_hours:
            gaps.append(Gap(ref.cloud, "gpu-telemetry",
                            f"GPU metrics stopped arriving {silent_h:.0f} h before the window's end while the instance "
                            "runs; the silent time is unknown, never idle",
                            ref.region, ref.id, ref.account, "check that the monitoring agent still runs on the instance"))
        if row["invalid_gpu_samples"]:
            gaps.append(Gap(ref.cloud, "gpu-telemetry",
                            f"{int(row['invalid_gpu_samples'])} GPU utilization samples outside 0-100 % were ignored "
                            "(treated as missing)", ref.region, ref.id, ref.account,
                            "check the agent's GPU metrics for sentinel values such as -1"))
        if row["known_hours"] < settings.min_data_hours:
            gaps.append(Gap(ref.cloud, "analysis",
                            f"only {row['known_hours']:.1f} h of usable GPU telemetry in the window; "
                            f"{settings.min_data_hours:g} h are needed before any finding",
                            ref.region, ref.id, ref.account, None))
    return gaps


__all__ = ["Analysis", "Settings", "analyze", "candidates", "group_member_keys", "host_metrics_wanted"]
