"""Is a GPU instance's work batch-shaped? The telemetry test behind an inferred ``spot`` finding.

Batch-shaped = at least two complete busy runs between idle gaps, a saturated GPU while running, no
recurring time of day or week (recurring patterns are people or traffic), and not idle now for longer
than any earlier gap. docs/spot.md ("evident from the pattern") has the thresholds and why.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from providers.model import Metric, Snapshot
from recommenders.idle import BUSY, IDLE, UNKNOWN, IdleReport, grid_max

if TYPE_CHECKING:
    from recommenders.spot import SpotSettings


@dataclass(frozen=True)
class Pattern:
    """What the telemetry says about the work's shape (``batch``: interruptible work is evident)."""

    batch: bool
    reason: str
    complete_runs: int = 0
    median_run_hours: float | None = None
    median_gap_hours: float | None = None
    busy_util_median_pct: float | None = None
    busy_util_p25_pct: float | None = None
    idle_share: float = 0.0
    daily_recurrence_lift: float | None = None
    weekly_recurrence_lift: float | None = None

    def evidence(self) -> dict[str, object]:
        return {k: (round(v, 3) if isinstance(v, float) else v) for k, v in self.__dict__.items() if k != "batch"}


def busiest_gpu_util(snapshot: Snapshot, idle: IdleReport, keys: Collection[str]) -> dict[str, np.ndarray]:
    """Per key, (periods,) the busiest GPU's utilization in each period of the idle grid (NaN: no sample)."""
    frame, keys, n_steps = snapshot.usage.frame, list(keys), len(idle.times)
    if frame.empty or not keys or n_steps == 0:
        return {}
    row_of = np.append(pd.Index(keys).get_indexer(frame["resource"].cat.categories), -1)
    rows = row_of[frame["resource"].cat.codes.to_numpy()]
    metric = frame["metric"].cat.codes.to_numpy() == frame["metric"].cat.categories.get_loc(Metric.GPU_UTIL.value)
    value = frame["value"].to_numpy()
    step = (frame["ts"].dt.as_unit("ns").array.asi8 - pd.Timestamp(idle.window.start).value) \
        // int(idle.period.total_seconds() * 1_000_000_000)
    pick = np.flatnonzero((rows >= 0) & metric & (value >= 0) & (value <= 100) & (step >= 0) & (step < n_steps))
    grid = grid_max(rows[pick] * n_steps + step[pick], value[pick], len(keys) * n_steps).reshape(len(keys), n_steps)
    return {key: grid[i] for i, key in enumerate(keys)}


def batch_pattern(idle: IdleReport, row: int, util: np.ndarray | None, settings: SpotSettings) -> Pattern:
    """Whether instance ``row`` of the idle report runs batch-shaped work (see the module docstring)."""
    state = idle.state[row]
    step_h = idle.period.total_seconds() / 3600
    work = np.flatnonzero(np.diff(np.r_[0, (state != IDLE).astype(np.int8), 0]))
    starts, ends = work[0::2], work[1::2]
    unknown = np.r_[0, np.cumsum(state == UNKNOWN)]
    complete = ((starts > 0) & (ends < len(state))  # bounded by idle on both sides, inside the window
                & (unknown[ends] - unknown[starts] <= settings.max_run_unknown_share * (ends - starts)))
    starts, ends = starts[complete], ends[complete]
    runs = list(zip(starts, ends, strict=True))
    known = np.sum(state != UNKNOWN)
    idle_share = float(np.sum(state == IDLE) / known) if known else 0.0
    found: dict[str, float | int | None] = {"complete_runs": len(runs), "idle_share": idle_share}
    if len(runs) < settings.min_batch_runs:
        return Pattern(False, f"{len(runs)} complete busy run(s) in the window (at least "
                              f"{settings.min_batch_runs} needed): steady or one-off work", **found)
    found["median_run_hours"] = float(np.median(ends - starts) * step_h)
    found["median_gap_hours"] = float(np.median(starts[1:] - ends[:-1]) * step_h) if len(runs) > 1 else None
    if idle_share < settings.min_idle_share:
        return Pattern(False, f"idle {idle_share:.1%} of the measured time: busy almost always", **found)
    edges = np.zeros(len(state) + 1, dtype=np.int64)
    np.add.at(edges, starts, 1)
    np.add.at(edges, ends, -1)
    in_runs = np.cumsum(edges[:-1]) > 0
    sampled = util[in_runs & (state == BUSY)] if util is not None else np.array([])
    sampled = sampled[~np.isnan(sampled)]
    if not len(sampled):
        return Pattern(False, "no GPU utilization samples inside the runs", **found)
    found["busy_util_median_pct"] = float(np.median(sampled))
    found["busy_util_p25_pct"] = float(np.percentile(sampled, 25))
    if found["busy_util_p25_pct"] < settings.batch_util_min_pct:
        return Pattern(False, f"the GPU is below {settings.batch_util_min_pct:g} % for over a quarter of the busy "
                              "time: interactive or serving work, not saturating batch jobs", **found)
    daily, daily_mass = _daily_lift(idle, state)
    weekly, _ = _weekly_lift(idle, row)
    found["daily_recurrence_lift"], found["weekly_recurrence_lift"] = daily, weekly
    if daily > settings.max_recurrence_lift or (weekly is not None and weekly > settings.max_recurrence_lift):
        return Pattern(False, "busy hours recur at the same time of day or week: people or traffic", **found)
    if daily_mass < settings.min_expected_overlap_hours:
        return Pattern(False, "too little busy time to rule out a recurring pattern", **found)
    per = idle.per_resource.iloc[row]
    if float(per["streak_hours"]) > float(per["prior_max_idle_hours"]):
        return Pattern(False, "idle now for longer than any gap between its jobs: finished or forgotten, "
                              "not a batch queue", **found)
    return Pattern(True, "batch-shaped: jobs that start and end at no recurring time", **found)


def recurrence_lift(busy: np.ndarray, observed: np.ndarray, min_common: int) -> tuple[float, float]:
    """(lift, chance mass) of busy slots coinciding across rows (days or weeks) of a (rows x slots) grid.

    For each pair of rows observed together in at least ``min_common`` slots: the busy slots they
    share, against the share chance gives them (busy_a x busy_b / common slots). 1: as chance (jobs at
    random times, or long runs); office hours give about 24 / busy hours a day. Returns the summed
    ratio and the summed chance overlap (how much evidence there is).
    """
    a = (busy & observed).astype(np.float64)
    o = observed.astype(np.float64)
    overlap, cross, common = a @ a.T, a @ o.T, o @ o.T
    i, j = np.triu_indices(len(a), 1)
    ok = common[i, j] >= min_common
    i, j = i[ok], j[ok]
    chance = float(np.sum(cross[i, j] * cross[j, i] / common[i, j]))
    return (float(np.sum(overlap[i, j]) / chance) if chance > 0 else 0.0), chance


def _daily_lift(idle: IdleReport, state: np.ndarray) -> tuple[float, float]:
    hours = np.asarray((idle.times - idle.times[0].floor("D")) // pd.Timedelta(hours=1), dtype=np.int64)
    size = (hours[-1] // 24 + 1) * 24 if len(hours) else 0
    per_hour = np.bincount(hours, minlength=size)
    known = np.bincount(hours, weights=state != UNKNOWN, minlength=size)
    busy = np.bincount(hours, weights=state == BUSY, minlength=size) > 0
    observed = (per_hour > 0) & (known >= per_hour / 2)
    return recurrence_lift(busy.reshape(-1, 24), observed.reshape(-1, 24), 12)


def _weekly_lift(idle: IdleReport, row: int) -> tuple[float | None, float]:
    """Hour-of-week recurrence over the report's weeks; None with fewer than two weeks."""
    busy, quiet = idle.week_busy[row], idle.week_idle[row]
    if busy.shape[0] < 2:
        return None, 0.0
    observed = (busy + quiet) >= idle.steps_per_hour / 2
    lift, mass = recurrence_lift(busy > 0, observed, 84)
    return (lift if mass > 0 else None), mass
