"""``autoscale``: sizes and weekly schedules for scaling groups, from hand-built snapshots (no cloud)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest

from providers.model import (
    Cloud,
    Group,
    ResourceRef,
    ScheduledCapacity,
    Snapshot,
    Window,
)
from providers.sandbox import groups as simg
from recommenders import autoscale
from recommenders.autoscale import (
    AutoscaleSettings,
    current_capacity,
    demand,
    recommend,
)
from recommenders.idle import IdleSettings
from recommenders.model import Kind
from tests.builders import (
    HOURLY,
    NOW,
    PERIOD,
    FrameBuilder,
    resource,
    snapshot,
    times,
    window,
)

ACCOUNT = "111122223333"
SETTINGS = AutoscaleSettings()
PACK = replace(SETTINGS, target_util_pct=70.0)  # opt-in: load-balanced members packed at a 70 % target
IDLE = IdleSettings()
CENT = Decimal("0.01")


def office(stamps: pd.DatetimeIndex) -> np.ndarray:
    return np.asarray((stamps.day_of_week < 5) & (stamps.hour >= 8) & (stamps.hour < 20))


def busy_rows(stamps: pd.DatetimeIndex, needed: np.ndarray, members: int, util: float = 90.0) -> np.ndarray:
    """(members, T) GPU utilization: the first ``needed[t]`` members at ``util``, the rest at 0 (packed)."""
    return np.where(np.arange(members)[:, None] < needed[None, :], util, 0.0)


def make(name: str, utils: np.ndarray, stamps: pd.DatetimeIndex, *, builder: FrameBuilder,
         desired: int | None = None, min_size: int | None = None, max_size: int | None = None,
         warmup: int | None = None, scheduled: tuple[ScheduledCapacity, ...] = (), gpus: int = 1,
         itype: str = "g5.xlarge", every: int = 1, publishing: int | None = None):
    """A group with one member per row of ``utils`` (rows x T, or members x GPUs x T)."""
    utils = np.asarray(utils, dtype=float)
    members = []
    for i in range(utils.shape[0]):
        res = resource(f"{name}-{i}", gpus, itype)
        members.append(res)
        if publishing is not None and i >= publishing:
            continue
        rows = utils[i] if utils.ndim == 3 else np.repeat(utils[i][None, :], gpus, axis=0)
        sparse = np.full_like(rows, np.nan)
        sparse[:, ::every] = rows[:, ::every]
        builder.gpu_util(res, stamps, sparse)
    n = len(members)
    desired = n if desired is None else desired
    group = Group(ResourceRef(Cloud.AWS, ACCOUNT, "us-east-1", name), "aws-asg", itype,
                  n if min_size is None else min_size, n if max_size is None else max_size, desired,
                  tuple(m.ref.id for m in members), warmup, {"team": "ml"}, scheduled)
    return members, group


def snap_of(parts, builder: FrameBuilder, win: Window, period: timedelta = PERIOD) -> Snapshot:
    resources = [r for members, _ in parts for r in members]
    return replace(snapshot(resources, builder.frame(), win, period), groups=tuple(g for _, g in parts))


def one_group(utils_fn, *, days: float = 14, period: timedelta = PERIOD, **kw):
    win = window(days=days, period=period)
    stamps = times(win, period)
    builder = FrameBuilder()
    parts = [make("asg", utils_fn(stamps), stamps, builder=builder, **kw)]
    return snap_of(parts, builder, win, period), parts[0][1]


def office_group(**kw):
    return one_group(lambda s: busy_rows(s, np.where(office(s), 3, 0), 4), **kw)


def monthly(hours_per_week: float) -> Decimal:
    return (Decimal(str(hours_per_week)) * Decimal(730) / Decimal(168) * HOURLY).quantize(CENT)


# ------------------------------------------------------------------------------------------ verdicts


def test_office_hours_group_scales_to_zero_at_night_and_weekends():
    snap, group = office_group()

    recs, gaps = recommend(snap, SETTINGS, IDLE)

    assert gaps == []
    [rec] = recs
    assert rec.kind is Kind.AUTOSCALE and rec.recommender == autoscale.NAME
    assert rec.ref == group.ref and rec.name == "asg" and rec.instance_type == "g5.xlarge"
    params = dict(rec.action.params)
    assert rec.action.kind == "autoscale" and rec.action.ref == group.ref
    # Monday 10:00 UTC is inside office hours: 3 members now, none at night, the group may grow to 4 again.
    assert (params["min_size"], params["max_size"], params["desired_capacity"]) == (0, 4, 3)
    assert params["scheduled_actions"] == [
        {"name": "costagent-mon-fri-0745-to-3", "recurrence": "45 7 * * 1-5", "min_size": 3, "max_size": 4,
         "desired_capacity": 3, "time_zone": "UTC"},
        {"name": "costagent-mon-fri-2000-to-0", "recurrence": "0 20 * * 1-5", "min_size": 0, "max_size": 4,
         "desired_capacity": 0, "time_zone": "UTC"},
    ]
    # 4 members all week now; 3 members for 12 h + a 15-minute cold start, five days a week, planned.
    planned = 5 * 12.25 * 3
    assert rec.evidence["instance_hours_per_week"] == {"current": 672.0, "proposed": planned}
    assert rec.monthly_savings_usd == monthly(672 - planned)
    assert rec.evidence["weeks_observed"] == 2 and rec.evidence["peak_need"] == 3
    assert rec.evidence["plan_utc"]["Tue"] == [["00:00", "07:45", 0], ["07:45", "20:00", 3], ["20:00", "24:00", 0]]
    assert rec.evidence["plan_utc"]["Sun"] == [["00:00", "24:00", 0]]
    assert rec.evidence["startup_minutes_used"] == 15.0


def test_steady_busy_group_gets_nothing():
    snap, _ = one_group(lambda s: np.full((3, len(s)), 88.0))

    assert recommend(snap, SETTINGS, IDLE) == ([], [])


def test_spread_load_near_the_target_is_capacity_in_use():
    # 4 members of a load-balanced group, each at 62 %: 3.5 members' worth of work at the 70 % target.
    snap, _ = one_group(lambda s: np.full((4, len(s)), 62.0))

    assert recommend(snap, PACK, IDLE) == ([], [])


def test_by_default_demand_is_busy_members_and_packing_load_is_opt_in():
    # Never idle, 15-75 % over the day: packed at the 70 % target it needs fewer members at night;
    # counted as busy members (the default) it needs all of them all the time.
    def utils(s):
        wave = 45 + 30 * np.sin((np.asarray(s.hour) - 9) / 24 * 2 * np.pi)
        return np.repeat(wave[None, :], 3, axis=0)

    snap, _ = one_group(utils)

    assert len(recommend(snap, PACK, IDLE)[0]) == 1
    assert recommend(snap, SETTINGS, IDLE) == ([], [])


def test_overprovisioned_constant_group_lowers_min_and_desired_without_schedule():
    snap, _ = one_group(lambda s: busy_rows(s, np.ones(len(s), dtype=int), 6))

    [rec], _ = recommend(snap, SETTINGS, IDLE)

    params = dict(rec.action.params)
    assert (params["min_size"], params["max_size"], params["desired_capacity"]) == (1, 6, 1)
    assert params["scheduled_actions"] == []
    assert rec.monthly_savings_usd == monthly(5 * 168)
    assert rec.summary == "Autoscale: desired 6 -> 1 (peak need 1)"


def test_spread_light_load_is_packed_onto_fewer_members():
    # 4 members at 30 %: 4 x 30 / 70 = 1.7 members' worth of work -> 2 members.
    snap, _ = one_group(lambda s: np.full((4, len(s)), 30.0))

    [rec], _ = recommend(snap, PACK, IDLE)

    assert dict(rec.action.params)["desired_capacity"] == 2
    assert rec.evidence["instance_hours_per_week"]["proposed"] == 2 * 168


def test_multi_gpu_members_count_by_mean_utilization():
    def utils(s):  # 3 members with 4 GPUs, one GPU each working: 3 x (95 / 4) / 70 = 1.02 -> 2
        out = np.zeros((3, 4, len(s)))
        out[:, 0, :] = 95.0
        return out

    snap, _ = one_group(utils, gpus=4, itype="g5.12xlarge")

    [rec], _ = recommend(snap, PACK, IDLE)
    assert dict(rec.action.params)["desired_capacity"] == 2


def test_unknown_member_periods_count_as_needed():
    win = window()
    stamps = times(win)
    builder = FrameBuilder()
    utils = busy_rows(stamps, np.where(office(stamps), 3, 0), 4)
    utils[3, ~office(stamps)] = np.nan  # the idle member says nothing at night and at weekends
    parts = [make("asg", utils, stamps, builder=builder)]
    snap = snap_of(parts, builder, win)

    need = demand(snap, parts[0][1], SETTINGS, IDLE)
    [rec], _ = recommend(snap, SETTINGS, IDLE)

    assert need.index.equals(stamps) and str(need.index.tz) == "UTC"
    assert set(need[office(stamps)].unique()) == {3.0}
    assert set(need[~office(stamps)].unique()) == {1.0}  # not 0: one member is unknown
    assert dict(rec.action.params)["min_size"] == 1


def test_demand_is_nan_where_no_member_is_known():
    win = window()
    stamps = times(win)
    builder = FrameBuilder()
    utils = np.full((2, len(stamps)), 90.0)
    gap = (stamps >= win.end - timedelta(days=2)) & (stamps < win.end - timedelta(days=1))
    utils[:, gap] = np.nan
    parts = [make("asg", utils, stamps, builder=builder)]

    need = demand(snap_of(parts, builder, win), parts[0][1], SETTINGS, IDLE)

    assert need[gap].isna().all()
    assert (need[~gap] == 2).all()


def test_declared_warmup_moves_the_scale_out_earlier():
    snap, _ = office_group(warmup=3600)

    [rec], _ = recommend(snap, SETTINGS, IDLE)

    recurrences = [a["recurrence"] for a in rec.action.params["scheduled_actions"]]
    assert recurrences == ["0 7 * * 1-5", "0 20 * * 1-5"]
    assert rec.evidence["startup_minutes_used"] == 60.0 and rec.evidence["startup_source"] == "group warm-up"


def test_startup_setting_is_a_minimum_over_a_short_declared_warmup():
    snap, _ = office_group(warmup=300)

    [rec], _ = recommend(snap, replace(SETTINGS, startup_minutes=30), IDLE)

    assert [a["recurrence"] for a in rec.action.params["scheduled_actions"]] == ["30 7 * * 1-5", "0 20 * * 1-5"]


def test_scale_out_lead_crosses_midnight():
    # Needed Monday 00:00-12:00 only: the scale-out fires on Sunday 23:45.
    def utils(s):
        return busy_rows(s, np.where((s.day_of_week == 0) & (s.hour < 12), 2, 0), 2)

    snap, _ = one_group(utils)

    [rec], _ = recommend(snap, SETTINGS, IDLE)
    assert [(a["recurrence"], a["desired_capacity"]) for a in rec.action.params["scheduled_actions"]] == \
        [("0 12 * * 1", 0), ("45 23 * * 0", 2)]


def test_short_dips_are_filled_not_scheduled():
    # A lunch hour with nobody working does not earn a scale-in and a cold start.
    def utils(s):
        return busy_rows(s, np.where(office(s) & (s.hour != 12), 3, 0), 4)

    snap, _ = one_group(utils)

    [rec], _ = recommend(snap, SETTINGS, IDLE)
    assert len(rec.action.params["scheduled_actions"]) == 2


def test_one_week_of_data_gives_a_flat_size_not_a_schedule():
    snap, _ = office_group(days=8)

    [rec], _ = recommend(snap, SETTINGS, IDLE)

    params = dict(rec.action.params)
    assert params["scheduled_actions"] == []
    assert (params["min_size"], params["desired_capacity"]) == (3, 3)
    assert rec.evidence["weeks_observed"] == 1
    assert rec.monthly_savings_usd == monthly(168)


def test_hourly_publishers_reach_the_same_plan():
    dense, _ = office_group()
    sparse, _ = office_group(every=12)  # one sample an hour on a 5-minute grid

    [want], _ = recommend(dense, SETTINGS, IDLE)
    [got], _ = recommend(sparse, SETTINGS, IDLE)

    assert dict(got.action.params) == dict(want.action.params)
    assert got.monthly_savings_usd == want.monthly_savings_usd


def test_hourly_periods_reach_the_same_plan():
    dense, _ = office_group()
    hourly, _ = office_group(period=timedelta(hours=1))

    [want], _ = recommend(dense, SETTINGS, IDLE)
    [got], _ = recommend(hourly, SETTINGS, IDLE)

    assert dict(got.action.params) == dict(want.action.params)


def test_group_without_gpu_telemetry_is_a_gap():
    snap, _ = office_group(publishing=0)

    recs, [gap] = recommend(snap, SETTINGS, IDLE)

    assert recs == []
    assert (gap.what, gap.resource_id, gap.region, gap.account) == ("gpu-telemetry", "asg", "us-east-1", ACCOUNT)


def test_too_little_data_is_a_gap():
    snap, _ = office_group(days=5)

    recs, [gap] = recommend(snap, SETTINGS, IDLE)

    assert recs == [] and gap.what == "analysis" and "168 h" in gap.reason


def test_small_savings_stay_below_the_thresholds():
    snap, _ = office_group()

    assert recommend(snap, replace(SETTINGS, min_monthly_savings_usd=Decimal("100000")), IDLE)[0] == []
    assert recommend(snap, replace(SETTINGS, min_savings_pct=80), IDLE)[0] == []


def test_group_already_on_a_matching_schedule_gets_nothing():
    existing = (
        ScheduledCapacity("up", "45 7 * * MON-FRI", min_size=3, max_size=4, desired=3),
        ScheduledCapacity("down", "0 20 * * 1-5", min_size=0, max_size=4, desired=0),
    )
    snap, _ = office_group(min_size=0, desired=3, scheduled=existing)

    assert recommend(snap, SETTINGS, IDLE) == ([], [])


def test_groups_without_gpus_or_members_are_ignored():
    win = window()
    stamps = times(win)
    builder = FrameBuilder()
    web = make("web", np.zeros((2, len(stamps))), stamps, builder=builder, gpus=0, itype="m5.large", publishing=0)
    empty = ([], Group(ResourceRef(Cloud.AWS, ACCOUNT, "us-east-1", "empty"), "aws-asg", "g5.xlarge", 0, 4, 0))

    assert recommend(snap_of([web, empty], builder, win), SETTINGS, IDLE) == ([], [])


# ------------------------------------------------------------------------- the plan against the oracle


@pytest.mark.parametrize("pattern", [simg.OFFICE_INFERENCE, simg.DIURNAL])
def test_planned_capacity_is_never_short_of_the_hindsight_oracle(pattern):
    group = simg.SimGroup("sim", "us-east-1", "g5.xlarge", 1, 22.35 * 1024, 4, 4, 4, pattern, peak=3, spread=True)
    win = window()
    stamps = times(win)
    builder = FrameBuilder()
    series = simg.simulate_group(group, stamps)
    parts = [make("sim", np.stack([m.gpu_util[0] for m in series.members]), stamps, builder=builder)]

    [rec], _ = recommend(snap_of(parts, builder, win), PACK, IDLE)  # a load-balanced group: packed

    plan = _plan(rec)
    minute = np.asarray(stamps.day_of_week * 1440 + stamps.hour * 60 + stamps.minute)
    oracle = simg.oracle_capacity(group, stamps, timedelta(minutes=15))
    # Capacity is what was asked for one start-up earlier (a new member serves 15 minutes after launch).
    ready = np.minimum(plan[minute], plan[(minute - 15) % autoscale.MINUTES_PER_WEEK])
    assert (ready >= series.needed).all()
    assert (plan[minute] >= oracle).all()
    assert plan.sum() / 60 < 4 * 168


@pytest.mark.parametrize("pattern", [simg.OFFICE_INFERENCE, simg.DIURNAL])
def test_proposed_actions_replay_to_the_planned_capacity(pattern):
    group = simg.SimGroup("sim", "us-east-1", "g5.xlarge", 1, 22.35 * 1024, 4, 4, 4, pattern, peak=4, spread=True)
    win = window()
    stamps = times(win)
    builder = FrameBuilder()
    series = simg.simulate_group(group, stamps)
    parts = [make("sim", np.stack([m.gpu_util[0] for m in series.members]), stamps, builder=builder)]
    [rec], _ = recommend(snap_of(parts, builder, win), PACK, IDLE)  # a load-balanced group: packed
    params = rec.action.params
    actions = tuple(ScheduledCapacity(a["name"], a["recurrence"], a["min_size"], a["max_size"], a["desired_capacity"],
                                      a["time_zone"]) for a in params["scheduled_actions"])
    applied = replace(parts[0][1], min_size=params["min_size"], max_size=params["max_size"],
                      desired=params["desired_capacity"], scheduled=actions)

    replayed, understood = current_capacity(applied, NOW)

    assert understood and len(actions) >= 2
    assert (replayed == _plan(rec)).all()


def _plan(rec) -> np.ndarray:
    """(10080,) planned capacity per minute of the week, from the evidence's per-day runs."""
    return np.concatenate([np.repeat([level for _, _, level in runs], _lengths(runs))
                           for runs in rec.evidence["plan_utc"].values()])


def _lengths(runs):
    def minutes(text):
        h, m = text.split(":")
        return int(h) * 60 + int(m)
    return [minutes(e) - minutes(s) for s, e, _ in runs]


# ---------------------------------------------------------------------------------------------- cron


def test_current_capacity_follows_existing_actions_in_their_time_zone():
    as_of = datetime(2026, 11, 23, 10, 0, tzinfo=timezone.utc)  # Monday; Berlin is UTC+1 in November
    group = Group(ResourceRef(Cloud.AWS, ACCOUNT, "us-east-1", "g"), "aws-asg", "g5.xlarge", 0, 4, 4,
                  scheduled=(ScheduledCapacity("day", "0 9 * * 1-5", desired=4, time_zone="Europe/Berlin"),
                             ScheduledCapacity("night", "0 18 * * 1-5", min_size=0, desired=0,
                                               time_zone="Europe/Berlin")))

    capacity, understood = current_capacity(group, as_of)

    assert understood
    assert capacity[8 * 60 - 1] == 0 and capacity[8 * 60] == 4 and capacity[17 * 60 - 1] == 4 and capacity[17 * 60] == 0
    assert capacity.sum() / 60 == 5 * 9 * 4


def test_unreadable_existing_actions_fall_back_to_the_desired_capacity():
    group = Group(ResourceRef(Cloud.AWS, ACCOUNT, "us-east-1", "g"), "aws-asg", "g5.xlarge", 0, 4, 3,
                  scheduled=(ScheduledCapacity("odd", "0 9 L * *", desired=1),))

    capacity, understood = current_capacity(group, NOW)

    assert not understood and (capacity == 3).all()


def test_weekend_days_merge_into_one_recurrence():
    capacity = np.zeros(autoscale.MINUTES_PER_WEEK, dtype=np.int64)
    for day in (5, 6):  # Saturday and Sunday 10:00-16:00
        capacity[day * 1440 + 600 : day * 1440 + 960] = 2

    actions = autoscale.scheduled_actions(capacity, 4)

    assert [(a["recurrence"], a["desired_capacity"]) for a in actions] == [("0 10 * * 0,6", 2), ("0 16 * * 0,6", 0)]


def test_light_traffic_spread_over_idle_looking_members_keeps_a_member():
    # 8 load-balanced members at 3 % each at night (each reads idle), 60 % by day: 24 % of a GPU at night
    # still needs one member to serve it, so the group is never scaled to zero.
    def utils(s):
        day = np.asarray((s.hour >= 8) & (s.hour < 20))
        return np.repeat(np.where(day, 60.0, 3.0)[None, :], 8, axis=0)

    snap, _ = one_group(utils)
    [rec], _ = recommend(snap, SETTINGS, IDLE)  # 8 by day, fewer at night
    assert dict(rec.action.params)["min_size"] == 1
    assert min(a["desired_capacity"] for a in rec.action.params["scheduled_actions"]) == 1


def test_idle_members_reading_a_percent_do_not_add_up_to_a_member():
    # 1 busy member, 5 idle ones whose GPUs read 0-1 %: one member is enough.
    def utils(s):
        rng = np.random.default_rng(3)
        out = rng.choice([0.0, 0.0, 0.0, 1.0], (6, len(s)))
        out[0] = 95.0
        return out

    snap, _ = one_group(utils)
    [rec], _ = recommend(snap, SETTINGS, IDLE)
    assert dict(rec.action.params)["desired_capacity"] == 1
