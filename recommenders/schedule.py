"""``schedule``: an off-hours SCHEDULE for an instance idle in the same hours of the week, week after week.

From the idle model's hour-of-week profile (UTC):

- an hour slot may be off only if it was idle in at least ``min_weeks`` different weeks and busy in
  none (a slot seen idle once, between two such slots, follows them: the window's edges);
- only blocks of at least ``min_off_block_hours`` consecutive off slots are switched off (the week is
  circular, so Friday night runs into the weekend): starting a GPU box, warming it up and losing a
  notebook's state cost too much for shorter breaks, and random gaps between batch jobs rarely line up
  into long blocks in every week, which keeps bursty workloads out;
- the instance must have worked in at least ``min_weeks`` different weeks (a one-off run that ended is
  a stop case, not a schedule), and the plan must switch off ``min_off_hours_per_week``;
- the last ``end_margin_hours`` after a busy hour stay on (a session may end later than any seen);
- the pattern must repeat: the off blocks learned from any one week alone must have been quiet in the
  other weeks (``min_consistency``, 90 % of their hours) — random gaps between batch jobs do not.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

import numpy as np
import pandas as pd

from providers.model import Action, Resource, Snapshot
from recommenders.economics import monthly_from_weekly_hours, price_evidence
from recommenders.idle import SLOTS_PER_WEEK, IdleReport, IdleSettings
from recommenders.model import Kind, Recommendation, Risk

NAME = "schedule"
DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


@dataclass(frozen=True)
class ScheduleSettings:
    min_weeks: int = 2
    min_off_hours_per_week: float = 24.0
    min_off_block_hours: int = 6
    #: A plan learned from one week must hold in the others: at most 10 % of its off hours busy there.
    min_consistency: float = 0.9
    #: An hour slot counts as observed in a week when this share of its periods is known.
    min_slot_coverage: float = 0.5
    #: Hours kept on after the latest busy hour seen: a session that ends a little later than any in the
    #: window must not be cut off (the savings benchmark's busy stops came from exactly that).
    end_margin_hours: int = 1
    #: The scheduled stop waits until the instance has been idle this long (the actuator re-reads its
    #: metrics first): a session running late postpones the stop instead of being cut off.
    stop_when_idle_for_minutes: int = 30


@dataclass(frozen=True)
class WeeklyPlan:
    on: list[tuple[int, int, int]]  # (day, first hour, end hour exclusive), UTC
    off_hours: int
    weeks: int
    consistency: float
    busy_hours_per_week: float


def plan_for(busy: np.ndarray, idle: np.ndarray, steps_per_hour: float, settings: ScheduleSettings) -> WeeklyPlan | None:
    """The weekly on/off plan for one instance from its (weeks x 168) busy/idle period counts."""
    busy_slot = busy > 0
    idle_slot = (busy == 0) & (idle >= settings.min_slot_coverage * steps_per_hour)
    observed = busy_slot | idle_slot
    full_weeks = [w for w in range(busy.shape[0]) if observed[w].sum() >= SLOTS_PER_WEEK / 2]
    working_weeks = int(busy_slot.any(axis=1).sum())
    if len(full_weeks) < settings.min_weeks or working_weeks < settings.min_weeks:
        return None
    busy_any = busy_slot.any(axis=0)
    idle_weeks = idle_slot.sum(axis=0)
    off = ~busy_any & (idle_weeks >= settings.min_weeks)
    off |= ~busy_any & (idle_weeks >= 1) & np.roll(off, 1) & np.roll(off, -1)
    for lag in range(1, settings.end_margin_hours + 1):
        off &= ~np.roll(busy_any, lag)
    off = _long_blocks(off, settings.min_off_block_hours)
    off_hours = int(off.sum())
    if off_hours < settings.min_off_hours_per_week:
        return None
    consistency = _holdout_agreement(busy_slot, idle_slot, observed, full_weeks, settings.min_off_block_hours)
    if consistency is None or consistency < settings.min_consistency:
        return None
    on = [(day, start, end) for day in range(7) for start, end in _runs_of_true(~off[day * 24 : (day + 1) * 24])]
    busy_hours = float(busy[full_weeks].sum() / steps_per_hour / len(full_weeks))
    return WeeklyPlan(on, off_hours, len(full_weeks), consistency, busy_hours)


def _long_blocks(off: np.ndarray, min_len: int) -> np.ndarray:
    """Keep only runs of at least ``min_len`` True slots, the week taken as a circle."""
    if off.all() or not off.any():
        return off.copy()
    shift = int(np.flatnonzero(~off)[0])  # rotate so that the week starts on an on-slot
    rotated = np.roll(off, -shift)
    keep = np.zeros_like(rotated)
    for start, end in _runs_of_true(rotated):
        if end - start >= min_len:
            keep[start:end] = True
    return np.roll(keep, shift)


def _holdout_agreement(busy_slot: np.ndarray, idle_slot: np.ndarray, observed: np.ndarray, weeks: list[int],
                       min_block: int) -> float | None:
    """Share of the off hours a plan learned from one week alone that were indeed quiet in each other week.

    1.0: a night-and-weekend pattern. Random gaps between batch jobs score low: the long quiet
    blocks of one week are where the next week's jobs land. None: no pair of weeks to compare.
    """
    scores = []
    for a, b in itertools.permutations(weeks, 2):
        learned = _long_blocks(idle_slot[a], min_block) & observed[b]
        if learned.any():
            scores.append(1.0 - float((learned & busy_slot[b]).sum() / learned.sum()))
    return float(np.mean(scores)) if scores else None


def _runs_of_true(mask: np.ndarray) -> list[tuple[int, int]]:
    edges = np.diff(np.r_[0, mask.astype(np.int8), 0])
    return list(zip(np.flatnonzero(edges == 1).tolist(), np.flatnonzero(edges == -1).tolist(), strict=True))


def recommend(
    snapshot: Snapshot,
    idle: IdleReport,
    resources: Mapping[str, Resource],
    settings: ScheduleSettings,
    idle_settings: IdleSettings,
    exclude: set[str],
) -> list[Recommendation]:
    out = []
    per = idle.per_resource
    for row, key in enumerate(idle.keys):
        if key in exclude or per.at[key, "known_hours"] < idle_settings.min_data_hours:
            continue
        plan = plan_for(idle.week_busy[row], idle.week_idle[row], idle.steps_per_hour, settings)
        if plan is not None:
            out.append(_recommendation(snapshot, resources[key], plan, per.loc[key], settings))
    return out


def _recommendation(snapshot: Snapshot, res: Resource, plan: WeeklyPlan, row: pd.Series,
                    settings: ScheduleSettings) -> Recommendation:
    quote = snapshot.price_for(res)
    savings = monthly_from_weekly_hours(plan.off_hours, quote.hourly_usd) if quote else Decimal(0)
    windows = [{"day": DAYS[d], "start": f"{s:02d}:00", "end": f"{e:02d}:00" if e < 24 else "24:00"} for d, s, e in plan.on]
    confidence = min(0.9, 0.5 + 0.3 * plan.consistency + 0.05 * min(plan.weeks - 1, 2))
    return Recommendation(
        recommender=NAME,
        kind=Kind.SCHEDULE,
        ref=res.ref,
        instance_type=res.instance_type,
        monthly_savings_usd=savings,
        confidence=round(confidence, 3),
        risk=Risk.LOW if plan.consistency >= 0.8 else Risk.MEDIUM,
        summary=f"Schedule: off {plan.off_hours} h/week, idle then every week",
        evidence={
            "on_windows_utc": windows,
            "off_hours_per_week": plan.off_hours,
            "weeks_observed": plan.weeks,
            "weekly_consistency": round(plan.consistency, 3),
            "busy_hours_per_week": round(plan.busy_hours_per_week, 1),
            "idle_fraction_of_measured_time": round(float(row["idle_fraction"]), 4),
            "measured_hours": round(float(row["known_hours"]), 2),
            "rule": "an hour is off only if idle in every observed week (at least 2), busy in none, "
                    f"and part of an off block of at least {settings.min_off_block_hours} h",
            "price": price_evidence(quote),
            "savings_basis": "off hours per week x 730/168 weeks/month x hourly price",
        },
        action=Action(kind="schedule", ref=res.ref, params={
            "timezone": "UTC", "on": windows, "stop_when_idle_for_minutes": settings.stop_when_idle_for_minutes}),
        name=res.name,
    )
