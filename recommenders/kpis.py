"""Fleet KPIs for the snapshot summary: what a busy GPU-hour costs, idle dollars, energy and carbon, per team.

Pure: a snapshot and the idle model's report in, numbers out. The instances counted are the analyzed
ones (running GPU instances with at least ``IdleSettings.min_data_hours`` of known GPU telemetry);
every figure covers their *known* hours in the window, so cost, busy time and energy share one basis.

- **GPU-hours**: known hours x installed GPUs.
- **Busy GPU-hours**: per GPU, the share of its utilization samples above the idle threshold x the
  instance's known hours, summed over GPUs (an agent rollup over all GPUs stands for every GPU).
- **Cost**: the instance's hourly price x its known hours; **idle dollars**: x its idle hours.
- **$ per busy GPU-hour** ("Cost/R", utilization-adjusted cost): cost / busy GPU-hours, over priced
  instances only; None when nothing was busy.
- **Energy**: where the agent publishes power draw (``Metric.GPU_POWER``), the mean measured watts per
  GPU x GPUs x known hours; otherwise ``GpuModel.power_w(mean utilization)`` per GPU (rated power,
  providers/hardware.py). A GPU model without known facts gets no energy and is counted.
- **Carbon**: kWh x the cloud's PUE x the region's grid factor (providers/carbon.py); a region
  without a factor gets none, and ``factors`` says so.

See docs/kpis.md for the method and its limits.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import numpy as np
import pandas as pd

from providers import carbon
from providers.hardware import gpu_model
from providers.model import INSTANCE_LEVEL, Metric, Resource, Snapshot
from recommenders.idle import IdleReport, IdleSettings

UNTAGGED = "(untagged)"
ALL = "(all)"
CENT = Decimal("0.01")
RATE = Decimal("0.0001")


@dataclass(frozen=True)
class TeamKpi:
    team: str  # tag value, or "(untagged)"; "(all)" for the fleet total
    instances: int
    gpus: int
    gpu_hours: float  # known GPU-hours in the window (analyzed instances)
    busy_gpu_hours: float  # GPU-hours with the GPU above the idle threshold
    cost_usd: Decimal  # the analyzed instances' price x their known hours in the window
    usd_per_busy_gpu_hour: Decimal | None  # over priced instances; None when none was busy
    idle_usd: Decimal
    energy_kwh: float
    co2e_kg: float
    unpriced_instances: int = 0  # instances without a known price: no cost, no idle dollars, not in $/busy GPU-hour


@dataclass(frozen=True)
class FleetKpis:
    tag_key: str
    teams: tuple[TeamKpi, ...]  # sorted by cost, highest first
    total: TeamKpi  # team="(all)"
    energy_measured_instances: int
    energy_estimated_instances: int
    factors: Mapping[str, Any]  # PUE and grid factors used, per region, with sources (JSON-able)
    energy_unknown_instances: int = 0  # GPU model without known power facts and no measured power: no energy


def team_of(res: Resource, tag_key: str) -> str:
    """The resource's ``tag_key`` tag (exact key first, then any case), or "(untagged)"."""
    value = res.tags.get(tag_key)
    if value is None:
        wanted = tag_key.lower()
        value = next((v for k, v in res.tags.items() if k.lower() == wanted), None)
    value = (value or "").strip()
    return value or UNTAGGED


def _hours(value: float) -> Decimal:
    return Decimal(str(round(float(value), 6)))


def _per_gpu_means(frame: pd.DataFrame, metric: Metric, keys: Sequence[str], valid: tuple[float, float],
                   threshold: float | None = None) -> pd.DataFrame:
    """Per (resource, GPU) mean of ``metric`` (and share above ``threshold``); a rollup row only where no per-GPU row."""
    sel = frame[(frame["metric"] == metric.value) & frame["value"].between(*valid)]
    cols = {"value": sel["value"].to_numpy()}
    if threshold is not None:
        cols["busy"] = (sel["value"].to_numpy() > threshold).astype(np.float64)
    data = pd.DataFrame({"resource": sel["resource"].to_numpy(), "gpu": sel["gpu"].to_numpy(), **cols})
    means = data.groupby(["resource", "gpu"], sort=False, observed=True).mean().reset_index()
    means["resource"] = means["resource"].astype(str)
    per_gpu = set(means.loc[means["gpu"] != INSTANCE_LEVEL, "resource"])
    means = means[(means["gpu"] != INSTANCE_LEVEL) | ~means["resource"].isin(per_gpu)]
    return means[means["resource"].isin(keys)]


def _instance_table(snapshot: Snapshot, idle: IdleReport, idle_settings: IdleSettings,
                    resources: Sequence[Resource]) -> pd.DataFrame:
    """One row per analyzed instance: hours, busy GPU-hours, mean utilization and measured power per GPU."""
    keys = [r.ref.key for r in resources]
    per = idle.per_resource.loc[keys]
    frame = snapshot.usage.frame
    start, end = pd.Timestamp(idle.window.start), pd.Timestamp(idle.window.end)
    frame = frame[(frame["ts"] >= start) & (frame["ts"] < end) & frame["resource"].isin(keys)]

    util = _per_gpu_means(frame, Metric.GPU_UTIL, keys, (0.0, 100.0), idle_settings.gpu_util_max_pct)
    installed = per["installed_gpus"].astype(float)
    # A per-GPU row stands for its GPU; a rollup row for every installed GPU.
    weight = np.where(util["gpu"].to_numpy() == INSTANCE_LEVEL, installed.reindex(util["resource"]).to_numpy(), 1.0)
    busy_gpus = pd.Series(util["busy"].to_numpy() * weight).groupby(util["resource"].to_numpy()).sum()
    mean_util = util.groupby("resource")["value"].mean()
    power = _per_gpu_means(frame, Metric.GPU_POWER, keys, (0.0, np.inf))
    mean_power = power.groupby("resource")["value"].mean()

    table = pd.DataFrame(index=pd.Index(keys, name="key"))
    table["known_hours"] = per["known_hours"].astype(float)
    table["idle_hours"] = per["idle_hours"].astype(float)
    table["gpus"] = installed
    table["gpu_hours"] = table["known_hours"] * table["gpus"]
    table["busy_gpu_hours"] = busy_gpus.reindex(keys).fillna(0.0).to_numpy() * table["known_hours"]
    table["mean_util_pct"] = mean_util.reindex(keys).to_numpy()
    table["measured_w_per_gpu"] = mean_power.reindex(keys).to_numpy()
    return table


def fleet_kpis(snapshot: Snapshot, idle: IdleReport, idle_settings: IdleSettings, tag_key: str = "team") -> FleetKpis:
    per = idle.per_resource
    by_key = {r.ref.key: r for r in snapshot.resources}
    analyzed = [by_key[k] for k in idle.keys
                if k in by_key and float(per.at[k, "known_hours"]) >= idle_settings.min_data_hours]
    table = _instance_table(snapshot, idle, idle_settings, analyzed)

    # Energy: measured where published, else the GPU model's power at the mean utilization.
    measured = table["measured_w_per_gpu"].notna().to_numpy()
    estimated_w = np.full(len(analyzed), np.nan)
    for i, res in enumerate(analyzed):
        facts = gpu_model(res.accelerators.model if res.accelerators else None)
        mean = table["mean_util_pct"].iat[i]
        if not measured[i] and facts is not None and not np.isnan(mean):
            estimated_w[i] = facts.power_w(mean / 100.0)
    watts = np.where(measured, table["measured_w_per_gpu"].to_numpy(), estimated_w)
    table["energy_kwh"] = watts * table["gpus"].to_numpy() * table["known_hours"].to_numpy() / 1000.0
    estimated = ~measured & ~np.isnan(estimated_w)

    # Carbon: kWh x PUE x grid factor of the region.
    factors: dict[str, Any] = {"pue": {}, "grid": {}, "no_grid_factor": [],
                               "method": "kg CO2e = kWh x PUE of the cloud x grid kg CO2e/kWh of the region"}
    intensity = np.full(len(analyzed), np.nan)
    for i, res in enumerate(analyzed):
        cloud, region = res.ref.cloud, res.ref.region
        name = f"{cloud.value}/{region}"
        grid, pue = carbon.grid_factor(cloud, region), carbon.pue(cloud)
        if pue is not None:
            factors["pue"][cloud.value] = {"value": pue.value, "source": pue.source}
        if grid is None or pue is None:
            if name not in factors["no_grid_factor"]:
                factors["no_grid_factor"].append(name)
            continue
        factors["grid"][name] = grid.as_dict()
        intensity[i] = pue.value * grid.kg_co2e_per_kwh
    factors["no_grid_factor"].sort()
    table["co2e_kg"] = table["energy_kwh"].to_numpy() * intensity

    # Money, Decimal per instance (a float never holds dollars outside the vectorized grids).
    quotes = [snapshot.price_for(r) for r in analyzed]
    table["priced"] = [q is not None for q in quotes]
    cost = [(q.hourly_usd * _hours(h)).quantize(CENT, ROUND_HALF_UP) if q else Decimal(0)
            for q, h in zip(quotes, table["known_hours"], strict=True)]
    idle_usd = [(q.hourly_usd * _hours(h)).quantize(CENT, ROUND_HALF_UP) if q else Decimal(0)
                for q, h in zip(quotes, table["idle_hours"], strict=True)]
    table["team"] = [team_of(r, tag_key) for r in analyzed]

    def kpi(team: str, rows: np.ndarray) -> TeamKpi:
        sub = table[rows]
        priced = sub["priced"].to_numpy()
        team_cost = sum((c for c, keep in zip(cost, rows, strict=True) if keep), Decimal(0))
        team_idle = sum((c for c, keep in zip(idle_usd, rows, strict=True) if keep), Decimal(0))
        busy_priced = float(sub["busy_gpu_hours"].to_numpy()[priced].sum())
        rate = (team_cost / _hours(busy_priced)).quantize(RATE, ROUND_HALF_UP) if round(busy_priced, 6) > 0 else None
        return TeamKpi(
            team=team,
            instances=int(rows.sum()),
            gpus=int(sub["gpus"].sum()),
            gpu_hours=float(sub["gpu_hours"].sum()),
            busy_gpu_hours=float(sub["busy_gpu_hours"].sum()),
            cost_usd=team_cost,
            usd_per_busy_gpu_hour=rate,
            idle_usd=team_idle,
            energy_kwh=float(np.nansum(sub["energy_kwh"].to_numpy())),
            co2e_kg=float(np.nansum(sub["co2e_kg"].to_numpy())),
            unpriced_instances=int((~priced).sum()),
        )

    team_names = table["team"].to_numpy()
    teams = [kpi(name, team_names == name) for name in sorted(set(team_names))]
    teams.sort(key=lambda t: (-t.cost_usd, t.team))
    total = kpi(ALL, np.ones(len(table), dtype=bool))
    return FleetKpis(
        tag_key=tag_key,
        teams=tuple(teams),
        total=total,
        energy_measured_instances=int(measured.sum()),
        energy_estimated_instances=int(estimated.sum()),
        factors=factors,
        energy_unknown_instances=int((~measured & ~estimated).sum()),
    )


__all__ = ["ALL", "UNTAGGED", "FleetKpis", "TeamKpi", "fleet_kpis", "team_of"]
