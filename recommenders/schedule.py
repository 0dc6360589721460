"""``schedule``: an off-hours SCHEDULE for an instance idle in the same hours of the week, week after week.

From the idle model's hour-of-week profile (UTC): an hour slot may be switched off only if it was
idle in at least ``min_weeks`` different weeks and busy in none; a slot seen too seldom to tell
stays on, unless it was seen idle and both neighbouring hours are off. Quiet hours between a day's busy hours stay on too (lunch: schedules with many edges
are fragile), so a typical day has one on-window. The pattern must repeat — the busy hours of one week must largely
be the busy hours of the others (``min_consistency``, Jaccard) — which keeps bursty and
one-off workloads out.
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
    min_consistency: float = 0.6
    #: An hour slot counts as observed in a week when this share of its periods is known.
    min_slot_coverage: float = 0.5


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
    if len(full_weeks) < settings.min_weeks or not busy_slot.any():
        return None
    scores = []
    for a, b in itertools.combinations(full_weeks, 2):
        both = observed[a] & observed[b]
        union = (busy_slot[a] | busy_slot[b]) & both
        scores.append(float((busy_slot[a] & busy_slot[b] & both).sum() / union.sum()) if union.any() else 0.0)
    consistency = float(np.mean(scores))
    if consistency < settings.min_consistency:
        return None
    busy_any = busy_slot.any(axis=0)
    idle_weeks = idle_slot.sum(axis=0)
    off = ~busy_any & (idle_weeks >= settings.min_weeks)
    # An hour seen idle only once (at the window's edge), between two off hours, follows them.
    off |= ~busy_any & (idle_weeks >= 1) & np.roll(off, 1) & np.roll(off, -1)
    on: list[tuple[int, int, int]] = []
    for day in range(7):
        day_on = ~off[day * 24 : (day + 1) * 24]
        busy_idx = np.flatnonzero(busy_any[day * 24 : (day + 1) * 24])
        if len(busy_idx):  # quiet hours between a day's busy hours stay on (lunch, meetings)
            day_on[busy_idx[0] : busy_idx[-1] + 1] = True
        on += [(day, start, end) for start, end in _runs_of_true(day_on)]
    off_hours = SLOTS_PER_WEEK - sum(end - start for _, start, end in on)
    if off_hours < settings.min_off_hours_per_week:
        return None
    busy_hours = float(busy[full_weeks].sum() / steps_per_hour / len(full_weeks))
    return WeeklyPlan(on, off_hours, len(full_weeks), consistency, busy_hours)


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
            out.append(_recommendation(snapshot, resources[key], plan, per.loc[key]))
    return out


def _recommendation(snapshot: Snapshot, res: Resource, plan: WeeklyPlan, row: pd.Series) -> Recommendation:
    quote = snapshot.price_for(res)
    savings = monthly_from_weekly_hours(plan.off_hours, quote.hourly_usd) if quote else Decimal(0)
    windows = [{"day": DAYS[d], "start": f"{s:02d}:00", "end": f"{e:02d}:00" if e < 24 else "24:00"} for d, s, e in plan.on]
    confidence = min(0.9, 0.45 + 0.35 * plan.consistency + 0.05 * min(plan.weeks - 1, 2))
    return Recommendation(
        recommender=NAME,
        kind=Kind.SCHEDULE,
        ref=res.ref,
        instance_type=res.instance_type,
        monthly_savings_usd=savings,
        confidence=round(confidence, 3),
        risk=Risk.LOW if plan.consistency >= 0.8 else Risk.MEDIUM,
        summary=f"Off-hours schedule: off {plan.off_hours} h/week, idle then in every week seen",
        evidence={
            "on_windows_utc": windows,
            "off_hours_per_week": plan.off_hours,
            "weeks_observed": plan.weeks,
            "weekly_consistency": round(plan.consistency, 3),
            "busy_hours_per_week": round(plan.busy_hours_per_week, 1),
            "idle_fraction_of_measured_time": round(float(row["idle_fraction"]), 4),
            "measured_hours": round(float(row["known_hours"]), 2),
            "rule": "an hour is off only if idle in every observed week (at least 2) and busy in none",
            "price": price_evidence(quote),
            "savings_basis": "off hours per week x 730/168 weeks/month x hourly price",
        },
        action=Action(kind="schedule", ref=res.ref, params={"timezone": "UTC", "on": windows}),
        name=res.name,
    )
