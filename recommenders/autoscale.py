"""``autoscale``: min/max/desired and a weekly schedule of scaled capacity for a scaling group.

A scaling group (an AWS Auto Scaling group today; GCP managed instance groups and Azure scale sets
share the ``Group`` record) is judged from its members' GPU telemetry:

1. **Demand.** Each member, each period, is needed to a share: 0 when the idle model calls the
   period idle, ``min(1, mean GPU utilization / target)`` when it is busy (the target-tracking
   arithmetic of a load-balanced group), 1 when the GPUs are quiet but the period is still busy
   (a short pause, or CPU / network at work) and 1 when nothing is known (unknown is never idle).
   Demand ``D(t)`` is the ceiling of the sum: the members the work needs.
2. **Forecast.** Per UTC hour of the week, the highest demand seen in that hour in any observed week
   (conservative); hours seen in fewer than ``min_weeks_for_schedule`` weeks stand at the peak. With
   fewer observed weeks there is no schedule: one flat size, the peak.
3. **Plan.** Dips shorter than ``MIN_DIP_HOURS`` are filled (a scale-in and a cold start again for so
   short a time is not worth it), then capacity at each minute is the highest forecast level within
   one start-up time ahead: a scale-out starts a cold start before the demand, a scale-in happens when
   the demand has gone. The plan's level changes become cron recurrences (UTC), days with the same
   change merged (``45 7 * * 1-5``).
4. **Savings.** Instance-hours a week now (the desired capacity, or what the group's own recurring
   scheduled actions make of it) minus the plan's, x 730/168 x the hourly price the members pay.

See docs/autoscale.md for every default and why.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pandas as pd

from providers.model import (
    INSTANCE_LEVEL,
    Action,
    Gap,
    Group,
    Metric,
    PriceQuote,
    PricingModel,
    Resource,
    ScheduledCapacity,
    Snapshot,
)
from recommenders.economics import monthly_from_weekly_hours, price_evidence
from recommenders.idle import (
    BUSY,
    IDLE,
    SLOTS_PER_WEEK,
    UNKNOWN,
    IdleSettings,
    classify,
    hold_forward,
)
from recommenders.model import Kind, Recommendation, Risk

NAME = "autoscale"
DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
MINUTES_PER_WEEK = 7 * 24 * 60
#: A lower level lasting less than this between two higher ones is filled: not worth a scale-in.
MIN_DIP_HOURS = 2
#: An hour slot counts as observed in a week when this share of its periods is known.
MIN_SLOT_COVERAGE = 0.5
#: Prefix of the scheduled actions this recommender proposes (and recognises as its own).
ACTION_PREFIX = "costagent"
_EPS = 1e-9


@dataclass(frozen=True)
class AutoscaleSettings:
    #: None (default): demand is the number of busy members, as the issue defines it. A number opts in to
    #: packing a load-balanced group: a busy member counts as the share util / target (1 at or above it).
    target_util_pct: float | None = None
    #: The shortest start-up assumed (launch to serving); a group's longer declared warm-up wins.
    startup_minutes: float = 15.0
    #: Hours of group telemetry needed before any finding.
    min_data_hours: float = 168.0
    #: Scheduled scale-in only for hours seen (and quiet enough) in at least this many weeks.
    min_weeks_for_schedule: int = 2
    min_monthly_savings_usd: Decimal = Decimal("50")
    min_savings_pct: float = 10.0


# ----------------------------------------------------------------------------------------- demand


@dataclass(frozen=True)
class _Loads:
    times: pd.DatetimeIndex
    load: np.ndarray  # (members, T) float: the share of each member the work needs (1 where unknown)
    known: np.ndarray  # (members, T) bool
    publishing: int  # members with at least one known period
    #: (T,) the GPU work of members counted idle, summed in GPUs' worth (mean utilization / 100): light
    #: traffic spread over many members reads idle on each, yet needs a member to serve it.
    idle_work: np.ndarray | None = None
    #: Idle members' combined work above this (percent of one GPU) needs a member (twice the per-GPU idle
    #: threshold: idle GPUs read 0-1 %, so a large idle group does not add up to a phantom member).
    floor_pct: float = 10.0


def _util_grids(frame: pd.DataFrame, keys: Sequence[str], snapshot: Snapshot, hold: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and maximum GPU utilization per member and period over the member's GPUs (held like the idle model)."""
    window, period = snapshot.window, snapshot.usage.period
    n_steps = int(window.duration / period)
    shape = (len(keys), n_steps)
    util = frame[frame["metric"] == Metric.GPU_UTIL.value]
    rows = pd.Index(keys).get_indexer(util["resource"].astype(str))
    t = ((util["ts"] - pd.Timestamp(window.start)) // pd.Timedelta(period)).to_numpy()
    value = util["value"].to_numpy(dtype=float)
    gpu = util["gpu"].to_numpy().astype(np.int64)
    keep = (rows >= 0) & (t >= 0) & (t < n_steps) & (value >= 0) & (value <= 100)
    rows, t, value, gpu = rows[keep], t[keep].astype(np.int64), value[keep], gpu[keep]
    # A member publishing per-GPU series is read from those; the agent's all-GPU rollup only where alone.
    per_gpu = np.zeros(len(keys), dtype=bool)
    per_gpu[rows[gpu != INSTANCE_LEVEL]] = True
    keep = (gpu != INSTANCE_LEVEL) | ~per_gpu[rows]
    rows, t, value, gpu = rows[keep], t[keep], value[keep], gpu[keep]
    if len(rows) == 0:
        return np.full(shape, np.nan), np.full(shape, np.nan)
    series, sid = np.unique(np.stack([rows, gpu]), axis=1, return_inverse=True)
    sid = sid.ravel()
    grid = np.full(series.shape[1] * n_steps, -np.inf)
    np.maximum.at(grid, sid * n_steps + t, value)
    grid = grid.reshape(series.shape[1], n_steps)
    grid[np.isneginf(grid)] = np.nan
    grid, _ = hold_forward(grid, ~np.isnan(grid), hold[series[0]])
    owner = series[0]
    total = np.zeros(shape)
    count = np.zeros(shape)
    peak = np.full(shape, -np.inf)
    seen = ~np.isnan(grid)
    np.add.at(total, owner, np.where(seen, grid, 0.0))
    np.add.at(count, owner, seen)
    np.maximum.at(peak, owner, np.where(seen, grid, -np.inf))
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(count > 0, total / count, np.nan)
    return mean, np.where(count > 0, peak, np.nan)


class _Fleet:
    """The idle model's states and the utilization grids of every group member, computed once."""

    def __init__(self, snapshot: Snapshot, groups: Sequence[Group], idle_settings: IdleSettings) -> None:
        by_key = {r.ref.key: r for r in snapshot.resources}
        wanted = list(dict.fromkeys(k for g in groups for k in g.member_keys()))
        self.resources: dict[str, Resource] = {k: by_key[k] for k in wanted if k in by_key}
        keys = list(self.resources)
        window, period = snapshot.window, snapshot.usage.period
        self.times = pd.date_range(window.start, periods=int(window.duration / period), freq=period)
        self.row = {k: i for i, k in enumerate(keys)}
        if keys:
            report = classify(snapshot.usage, list(self.resources.values()), window, idle_settings)
            self.state = report.state
            hold = np.maximum(1, np.round(report.per_resource["cadence_s"].to_numpy() / period.total_seconds())).astype(np.int64)
            frame = snapshot.usage.frame
            frame = frame[frame["resource"].isin(keys)]
            self.mean, self.peak = _util_grids(frame, keys, snapshot, hold)
        else:
            self.state = np.zeros((0, len(self.times)), dtype=np.int8)
            self.mean = self.peak = np.zeros((0, len(self.times)))

    def loads(self, group: Group, settings: AutoscaleSettings, idle_settings: IdleSettings) -> _Loads:
        n_steps = len(self.times)
        keys = group.member_keys()
        load = np.ones((len(keys), n_steps))
        known = np.zeros((len(keys), n_steps), dtype=bool)
        idle_work = np.zeros(n_steps)
        for i, key in enumerate(keys):
            row = self.row.get(key)
            if row is None:
                continue  # not in the inventory: unknown, so needed
            idle_work += np.where(self.state[row] == IDLE, np.nan_to_num(self.mean[row]) / 100.0, 0.0)
            state = self.state[row]
            gpu_working = self.peak[row] > idle_settings.gpu_util_max_pct
            with np.errstate(invalid="ignore", divide="ignore"):  # a target of 0: every working member counts 1
                share = np.ones(n_steps) if settings.target_util_pct is None else \
                    np.minimum(1.0, self.mean[row] / settings.target_util_pct)
            busy_share = np.where(gpu_working & ~np.isnan(share), share, 1.0)
            load[i] = np.where(state == IDLE, 0.0, np.where(state == BUSY, busy_share, 1.0))
            known[i] = state != UNKNOWN
        return _Loads(self.times, load, known, int(known.any(axis=1).sum()), idle_work,
                      2 * idle_settings.gpu_util_max_pct)


def _demand(loads: _Loads) -> np.ndarray:
    """Members needed per period: the ceiling of the members' shares; NaN where no member is known."""
    need = np.ceil(loads.load.sum(axis=0) - _EPS) if loads.load.size else np.zeros(len(loads.times))
    if loads.idle_work is not None:  # light traffic spread over idle-looking members still needs members
        need = need + np.where(loads.idle_work * 100.0 > loads.floor_pct, np.ceil(loads.idle_work - _EPS), 0.0)
    any_known = loads.known.any(axis=0) if loads.known.size else np.zeros(len(loads.times), dtype=bool)
    return np.where(any_known, np.maximum(need, 0.0), np.nan)


def demand(snapshot: Snapshot, group: Group, settings: AutoscaleSettings, idle_settings: IdleSettings) -> pd.Series:
    """Members the group's work needed per period on the snapshot window's grid (UTC); NaN where unknown.

    A member without telemetry for a period counts as fully needed; a period is NaN only when no
    member of the group is known in it.
    """
    loads = _Fleet(snapshot, [group], idle_settings).loads(group, settings, idle_settings)
    return pd.Series(_demand(loads), index=loads.times, name=group.ref.id)


# --------------------------------------------------------------------------------------- forecast


@dataclass(frozen=True)
class _Forecast:
    level: np.ndarray  # (168,) int: members needed per UTC hour of the week (Monday 00:00 first)
    weeks: int  # weeks with at least half their hours observed
    scheduled: bool  # False: one flat size (too few weeks, or periods longer than an hour)
    slot_weeks: np.ndarray  # (168,) weeks in which each slot was observed


def _forecast(need: np.ndarray, times: pd.DatetimeIndex, period: timedelta, min_weeks: int) -> _Forecast:
    observed = ~np.isnan(need)
    peak = int(np.nanmax(need)) if observed.any() else 0
    n_steps = len(times)
    per_week = max(1, int(timedelta(days=7) / period))
    week = (n_steps - 1 - np.arange(n_steps)) // per_week
    n_weeks = int(week.max()) + 1 if n_steps else 0
    slot = np.asarray(times.day_of_week * 24 + times.hour)
    key = week * SLOTS_PER_WEEK + slot
    steps_per_hour = max(1.0, timedelta(hours=1) / period)
    top = np.full(n_weeks * SLOTS_PER_WEEK, -np.inf)
    np.maximum.at(top, key[observed], need[observed])
    seen = np.bincount(key[observed], minlength=n_weeks * SLOTS_PER_WEEK)
    slot_seen = (seen >= MIN_SLOT_COVERAGE * steps_per_hour).reshape(n_weeks, SLOTS_PER_WEEK)
    top = top.reshape(n_weeks, SLOTS_PER_WEEK)
    weeks = int((slot_seen.sum(axis=1) >= SLOTS_PER_WEEK / 2).sum())
    slot_weeks = slot_seen.sum(axis=0)
    if weeks < min_weeks or period > timedelta(hours=1):
        return _Forecast(np.full(SLOTS_PER_WEEK, peak), weeks, False, slot_weeks)
    level = np.where(slot_seen, top, -np.inf).max(axis=0)
    level = np.where(slot_weeks >= min_weeks, level, peak)
    return _Forecast(level.astype(np.int64), weeks, True, slot_weeks)


def _fill_dips(level: np.ndarray, min_len: int) -> np.ndarray:
    """Raise every run shorter than ``min_len`` lying between two higher runs (the week is a circle)."""
    out = level.copy()
    for _ in range(len(out)):
        if (out == out[0]).all():
            return out
        shift = int(np.flatnonzero(out != out[-1])[0])  # rotate so that a run starts at index 0
        rotated = np.roll(out, -shift)
        starts = np.flatnonzero(np.r_[True, rotated[1:] != rotated[:-1]])
        ends = np.r_[starts[1:], len(rotated)]
        values = rotated[starts]
        changed = False
        for i, (s, e) in enumerate(zip(starts, ends, strict=True)):
            before, after = values[i - 1], values[(i + 1) % len(values)]
            if e - s < min_len and before > values[i] and after > values[i]:
                rotated[s:e] = min(before, after)
                changed = True
                break  # runs moved: start again
        out = np.roll(rotated, shift)
        if not changed:
            return out
    return out


def _capacity(level: np.ndarray, startup_minutes: int) -> np.ndarray:
    """(10080,) capacity per minute of the week: the highest level from now to one start-up time ahead."""
    per_minute = np.repeat(level, 60)
    lead = min(max(0, startup_minutes), MINUTES_PER_WEEK - 1)
    if lead == 0:
        return per_minute.copy()
    ring = np.concatenate([per_minute, per_minute[:lead]])
    return np.lib.stride_tricks.sliding_window_view(ring, lead + 1).max(axis=1)[:MINUTES_PER_WEEK]


# ------------------------------------------------------------------------------------------- cron


def _runs(values: np.ndarray) -> list[tuple[int, int, int]]:
    """(start, end, value) runs of a 1-d array."""
    starts = np.flatnonzero(np.r_[True, values[1:] != values[:-1]])
    ends = np.r_[starts[1:], len(values)]
    return [(int(s), int(e), int(values[s])) for s, e in zip(starts, ends, strict=True)]


def _dow_field(days: Sequence[int]) -> str:
    """Cron day-of-week field for Monday=0 day numbers (cron: Sunday=0), ranges merged."""
    if len(set(days)) == 7:
        return "*"
    cron = sorted({(d + 1) % 7 for d in days})
    parts, i = [], 0
    while i < len(cron):
        j = i
        while j + 1 < len(cron) and cron[j + 1] == cron[j] + 1:
            j += 1
        parts.append(f"{cron[i]}-{cron[j]}" if j - i >= 2 else ",".join(str(c) for c in cron[i : j + 1]))
        i = j + 1
    return ",".join(parts)


def _dow_name(field: str) -> str:
    """``1-5`` -> ``mon-fri``, ``0,6`` -> ``sun.sat``, ``*`` -> ``daily`` (for action names)."""
    names = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
    if field == "*":
        return "daily"
    return ".".join("-".join(names[int(x)] for x in part.split("-")) for part in field.split(","))


def scheduled_actions(capacity: np.ndarray, max_size: int) -> list[dict[str, Any]]:
    """The plan's level changes as UTC cron recurrences, one per (time of day, level), days merged."""
    if (capacity == capacity[0]).all():
        return []
    change = np.flatnonzero(capacity != np.roll(capacity, 1))
    by_time: dict[tuple[int, int], list[int]] = {}
    for minute in change.tolist():
        day, of_day = divmod(minute, 1440)
        by_time.setdefault((of_day, int(capacity[minute])), []).append(day)
    actions = []
    for (of_day, level), days in sorted(by_time.items(), key=lambda kv: (min(kv[1]), kv[0][0])):
        hour, minute = divmod(of_day, 60)
        dow = _dow_field(days)
        actions.append({
            "name": f"{ACTION_PREFIX}-{_dow_name(dow)}-{hour:02d}{minute:02d}-to-{level}",
            "recurrence": f"{minute} {hour} * * {dow}",
            "min_size": level,
            "max_size": max_size,
            "desired_capacity": level,
            "time_zone": "UTC",
        })
    return actions


_DOW_NAMES = {name: i for i, name in enumerate(("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"))}
_MONTH_NAMES = {name: i + 1 for i, name in enumerate(("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP",
                                                      "OCT", "NOV", "DEC"))}


def _cron_field(text: str, low: int, high: int, names: dict[str, int] | None = None) -> set[int] | None:
    """The values a cron field allows (``*``, ``a``, ``a-b``, lists, ``/step``); None if unreadable."""
    out: set[int] = set()
    if text == "?":
        text = "*"
    for part in text.upper().split(","):
        match = re.fullmatch(r"(\*|[A-Z0-9]+(?:-[A-Z0-9]+)?)(?:/(\d+))?", part)
        if not match:
            return None
        span, step = match.group(1), int(match.group(2) or 1)

        def value(token: str) -> int | None:
            if token.isdigit():
                return int(token)
            return (names or {}).get(token[:3])

        if span == "*":
            first, last = low, high
        else:
            ends = [value(x) for x in span.split("-")]
            if any(e is None for e in ends):
                return None
            first, last = ends[0], ends[-1]  # type: ignore[assignment]
            if match.group(2) and len(ends) == 1:
                last = high
        if step < 1 or first is None or last is None or first < low or last > high or first > last:
            return None
        out |= set(range(first, last + 1, step))
    return out


def _fires(action: ScheduledCapacity, start: datetime, end: datetime) -> list[datetime] | None:
    """UTC times in [start, end) at which a recurring action fires; None when it cannot be read."""
    fields = action.recurrence.split()
    if len(fields) != 5:
        return None
    minutes, hours = _cron_field(fields[0], 0, 59), _cron_field(fields[1], 0, 23)
    doms, months = _cron_field(fields[2], 1, 31), _cron_field(fields[3], 1, 12, _MONTH_NAMES)
    dows = _cron_field(fields[4], 0, 7, _DOW_NAMES)
    if None in (minutes, hours, doms, months, dows):
        return None
    dows = {d % 7 for d in dows}  # type: ignore[union-attr]
    try:
        zone = ZoneInfo(action.time_zone or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return None
    dom_any, dow_any = fields[2] == "*", fields[4] in ("*", "?")
    out = []
    day = start.astimezone(zone).date() - timedelta(days=1)
    while day <= end.astimezone(zone).date():
        cron_dow = (day.weekday() + 1) % 7
        dom_ok, dow_ok = day.day in doms, cron_dow in dows  # type: ignore[operator]
        day_ok = (dom_ok or dow_ok) if not dom_any and not dow_any else (dom_ok and dow_ok)
        if day_ok and day.month in months:  # type: ignore[operator]
            for h in sorted(hours):  # type: ignore[arg-type]
                for m in sorted(minutes):  # type: ignore[arg-type]
                    at = datetime(day.year, day.month, day.day, h, m, tzinfo=zone).astimezone(timezone.utc)
                    if start <= at < end:
                        out.append(at)
        day += timedelta(days=1)
    return out


def current_capacity(group: Group, as_of: datetime) -> tuple[np.ndarray, bool]:
    """(10080,) desired capacity per minute of the week (Monday 00:00 UTC first) as the group runs now.

    Without recurring scheduled actions, the desired capacity all week. With them, their effect on
    the desired capacity over the week before ``as_of`` (two weeks of history settle the state first);
    the second value says whether the actions could be read (else the flat desired capacity).
    """
    flat = np.full(MINUTES_PER_WEEK, group.desired, dtype=np.int64)
    if not group.scheduled:
        return flat, True
    end = as_of.replace(second=0, microsecond=0)
    start = end - timedelta(days=21)
    events: list[tuple[datetime, int, ScheduledCapacity]] = []
    for order, action in enumerate(group.scheduled):
        fired = _fires(action, start, end)
        if fired is None:
            return flat, False
        events += [(at, order, action) for at in fired]
    events.sort(key=lambda e: (e[0], e[1]))
    low, high, desired = group.min_size, group.max_size, group.desired
    week_start = end - timedelta(days=7)
    initial: int | None = None
    offsets, values = [0], [desired]
    for at, _, action in events:
        if at >= week_start and initial is None:
            initial = desired
        low = action.min_size if action.min_size is not None else low
        high = action.max_size if action.max_size is not None else high
        desired = action.desired if action.desired is not None else desired
        desired = min(max(desired, low), high)
        if at >= week_start:
            offsets.append((at - week_start) // timedelta(minutes=1))
            values.append(desired)
    values[0] = desired if initial is None else initial
    step = np.searchsorted(np.asarray(offsets), np.arange(MINUTES_PER_WEEK), side="right") - 1
    minute_values = np.asarray(values, dtype=np.int64)[step]
    # Re-index from "minutes since week_start" to "minutes since Monday 00:00 UTC".
    first = week_start.weekday() * 1440 + week_start.hour * 60 + week_start.minute
    return np.roll(minute_values, first), True


# ------------------------------------------------------------------------------------------ verdict


def _price(snapshot: Snapshot, group: Group, members: Sequence[Resource]) -> tuple[Decimal | None, PriceQuote | None]:
    """The mean hourly price the members pay (spot members at spot), else the group type's on-demand price."""
    quotes = [q for q in (snapshot.price_for(m) for m in members) if q is not None]
    if quotes:
        hourly = sum((q.hourly_usd for q in quotes), Decimal(0)) / len(quotes)
        return hourly, quotes[0]
    if group.instance_type:
        quote = snapshot.quote(group.ref.cloud, group.ref.region, group.instance_type, PricingModel.ON_DEMAND)
        if quote is not None:
            return quote.hourly_usd, quote
    return None, None


def _day_plan(per_minute: np.ndarray) -> dict[str, list[list[Any]]]:
    """{day: [[start "HH:MM", end "HH:MM", level], ...]} for a (10080,) per-minute plan."""
    out = {}
    for day, name in enumerate(DAYS):
        runs = _runs(per_minute[day * 1440 : (day + 1) * 1440])
        out[name] = [[f"{s // 60:02d}:{s % 60:02d}", f"{e // 60:02d}:{e % 60:02d}", v] for s, e, v in runs]
    return out


def _gap(group: Group, what: str, reason: str, hint: str | None = None) -> Gap:
    r = group.ref
    return Gap(r.cloud, what, reason, r.region, r.id, r.account, hint)


def recommend(snapshot: Snapshot, settings: AutoscaleSettings,
              idle_settings: IdleSettings) -> tuple[list[Recommendation], list[Gap]]:
    groups = [g for g in snapshot.groups if g.members]
    fleet = _Fleet(snapshot, groups, idle_settings)
    recs: list[Recommendation] = []
    gaps: list[Gap] = []
    for group in groups:
        rec, gap = _judge(snapshot, fleet, group, settings, idle_settings)
        if rec is not None:
            recs.append(rec)
        if gap is not None:
            gaps.append(gap)
    return recs, gaps


def _is_gpu_group(snapshot: Snapshot, group: Group, members: Sequence[Resource]) -> bool:
    if any(m.has_gpu for m in members):
        return True
    spec = snapshot.spec_for(group.ref.cloud, group.instance_type) if group.instance_type else None
    return bool(spec and spec.accelerators and spec.accelerators.count)


def _judge(snapshot: Snapshot, fleet: _Fleet, group: Group, settings: AutoscaleSettings,
           idle_settings: IdleSettings) -> tuple[Recommendation | None, Gap | None]:
    members = [fleet.resources[k] for k in group.member_keys() if k in fleet.resources]
    if not _is_gpu_group(snapshot, group, members):
        return None, None  # not a GPU group: outside this audit
    loads = fleet.loads(group, settings, idle_settings)
    if loads.publishing == 0:
        return None, _gap(group, "gpu-telemetry",
                          f"none of the group's {len(group.members)} members published GPU utilization in the window; "
                          "its demand is unknown, so no autoscale finding",
                          "install the CloudWatch agent with nvidia_gpu metrics in the group's launch template")
    need = _demand(loads)
    period = snapshot.usage.period
    measured_h = float((~np.isnan(need)).sum() * period.total_seconds() / 3600)
    if measured_h < settings.min_data_hours:
        return None, _gap(group, "analysis",
                          f"only {measured_h:.1f} h of the group's GPU telemetry in the window; "
                          f"{settings.min_data_hours:g} h are needed before an autoscale finding")
    declared = (group.warmup_seconds or 0) / 60
    startup = max(settings.startup_minutes, declared)
    forecast = _forecast(need, loads.times, period, settings.min_weeks_for_schedule)
    level = _fill_dips(forecast.level, MIN_DIP_HOURS) if forecast.scheduled else forecast.level
    plan = _capacity(level, math.ceil(startup))
    peak = int(np.nanmax(need))
    max_size = max(group.max_size, peak, int(plan.max()))
    now_minute = snapshot.as_of.weekday() * 1440 + snapshot.as_of.hour * 60 + snapshot.as_of.minute
    actions = scheduled_actions(plan, max_size)
    proposed = {"min_size": int(plan.min()), "max_size": max_size, "desired_capacity": int(plan[now_minute])}

    current, understood = current_capacity(group, snapshot.as_of)
    current_h = float(current.sum()) / 60
    proposed_h = float(plan.sum()) / 60
    saved_h = current_h - proposed_h
    hourly, quote = _price(snapshot, group, members)
    if hourly is None:
        if saved_h > 0:
            return None, _gap(group, "prices", f"no price for {group.instance_type or 'the members'} in "
                              f"{group.ref.region}; the group's autoscale savings cannot be judged")
        return None, None
    if saved_h <= 0 or current_h <= 0:
        return None, None
    savings = monthly_from_weekly_hours(saved_h, hourly)
    pct = 100 * saved_h / current_h
    if savings < settings.min_monthly_savings_usd or pct < settings.min_savings_pct:
        return None, None

    known_share = float(loads.known.mean()) if loads.known.size else 0.0
    confidence = min(0.9, 0.5 + 0.1 * min(forecast.weeks, 3) + 0.1 * known_share)
    risk = Risk.LOW if forecast.scheduled and proposed["min_size"] > 0 else Risk.MEDIUM
    if actions:
        summary = (f"Autoscale: {group.desired} -> {proposed['min_size']}-{int(plan.max())} members on a weekly schedule "
                   f"({len(actions)} scheduled actions), {pct:.0f} % fewer instance-hours")
    else:
        summary = f"Autoscale: desired {group.desired} -> {proposed['desired_capacity']} (peak need {peak})"
    notes = []
    if proposed["min_size"] == 0:
        notes.append("the group scales to zero: work arriving outside the forecast hours waits one cold start")
    if not forecast.scheduled:
        notes.append(f"{forecast.weeks} week(s) observed: no schedule before {settings.min_weeks_for_schedule} weeks "
                     "repeat the pattern; one flat size at the peak need instead")
    if group.scheduled:
        notes.append("the group already has recurring scheduled actions; the proposal replaces them" if understood
                     else "the group's scheduled actions could not be read; current capacity taken as flat desired")
    if loads.publishing < len(group.members):
        notes.append(f"{len(group.members) - loads.publishing} member(s) publish no GPU telemetry and count as fully needed")
    evidence = {
        "current": {"min_size": group.min_size, "max_size": group.max_size, "desired_capacity": group.desired},
        "proposed": proposed,
        "members": len(group.members),
        "member_ids": list(group.members),
        "target_util_pct": settings.target_util_pct,
        "startup_minutes_used": round(startup, 1),
        "startup_source": "group warm-up" if declared >= settings.startup_minutes else "setting (minimum)",
        "weeks_observed": forecast.weeks,
        "measured_hours": round(measured_h, 2),
        "member_periods_known_share": round(known_share, 4),
        "peak_need": peak,
        "mean_need": round(float(np.nanmean(need)), 2),
        "instance_hours_per_week": {"current": round(current_h, 2), "proposed": round(proposed_h, 2)},
        "savings_pct": round(pct, 1),
        "forecast_need_utc": _day_plan(np.repeat(forecast.level, 60)),
        "plan_utc": _day_plan(plan),
        "existing_scheduled_actions": [
            {"name": a.name, "recurrence": a.recurrence, "min_size": a.min_size, "max_size": a.max_size,
             "desired_capacity": a.desired, "time_zone": a.time_zone} for a in group.scheduled],
        "rule": "need per period = ceil(sum over members of min(1, GPU util / target); idle 0, unknown 1); "
                "per UTC hour of the week the highest need in any observed week; dips under "
                f"{MIN_DIP_HOURS} h filled; scale-out one start-up time ahead",
        "price": {**price_evidence(quote), "hourly_usd": float(hourly)},
        "savings_basis": "(instance-hours a week now - planned) x 730/168 x hourly price",
        "notes": notes,
    }
    action = Action(kind="autoscale", ref=group.ref, params={**proposed, "scheduled_actions": actions})
    return Recommendation(
        recommender=NAME,
        kind=Kind.AUTOSCALE,
        ref=group.ref,
        instance_type=group.instance_type or (members[0].instance_type if members else None),
        monthly_savings_usd=savings,
        confidence=round(confidence, 3),
        risk=risk,
        summary=summary,
        evidence=evidence,
        action=action,
        name=group.ref.id,
    ), None


__all__ = ["NAME", "AutoscaleSettings", "current_capacity", "demand", "recommend", "scheduled_actions"]
