"""The savings benchmark's scoring, oracles and simulator on tiny hand-made cases (no full bench run)."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pytest

from bench import savings as b
from providers.catalog import PriceCatalog
from providers.model import Action, Cloud, PricingModel
from providers.sandbox import workloads as sim
from recommenders.model import Kind, Recommendation, Risk

R = b.RESTART_MIN
TRAIN = 120  # minutes before the test window (the timeout baseline looks at its last hour)


# --------------------------------------------------------------------------- hand-made fleets


def machine(index: int, itype: str, first_gpu: int, group: str | None = None, restart: int = R, lost: int = 30,
            region: str = "us-east-1") -> sim.Machine:
    e, _ = PriceCatalog.shipped(Cloud.AWS).entry(Cloud.AWS, region, itype)
    return sim.Machine(index, f"i-{index:04d}", f"box-{index}", region, itype, e.gpu_model, e.gpu_count,
                       e.gpu_memory_gib * 1024, e.vcpu, e.memory_gib, "test", PricingModel.ON_DEMAND,
                       float(e.on_demand_hourly), first_gpu, group, "", restart, lost)


def fleet_of(specs: list[dict], test: int, groups: tuple[sim.SimGroup, ...] = (),
             demand: np.ndarray | None = None) -> sim.SimFleet:
    """specs: itype, busy (test,), optional util / mem (gpus, test), cpu (test,), group. Training minutes are idle."""
    machines, first = [], 0
    for i, s in enumerate(specs):
        m = machine(i, s["itype"], first, s.get("group"), s.get("restart", R), s.get("lost", 30))
        machines.append(m)
        first += m.gpus
    n, g, t = len(machines), first, TRAIN + test
    util = np.zeros((g, t), dtype=np.float32)
    mem = np.zeros((g, t), dtype=np.float32)
    cpu = np.ones((n, t), dtype=np.float32)
    busy = np.zeros((n, t), dtype=bool)
    for m, s in zip(machines, specs, strict=True):
        busy[m.index, TRAIN:] = s["busy"]
        rows = slice(m.first_gpu, m.first_gpu + m.gpus)
        util[rows, TRAIN:] = s.get("util", np.where(s["busy"], 80.0, 0.0)[None, :])
        mem[rows, TRAIN:] = s.get("mem", np.zeros((m.gpus, test)))
        if "cpu" in s:
            cpu[m.index, TRAIN:] = s["cpu"]
    owner = np.repeat(np.arange(n), [m.gpus for m in machines])
    start = sim.AS_OF - np.timedelta64(TRAIN, "m").astype(object)
    return sim.SimFleet(0, tuple(machines), groups, start, sim.AS_OF, TRAIN, test, owner, util, mem, cpu, cpu.copy(),
                        cpu.copy(), busy, np.ones((n, t), dtype=bool),
                        demand if demand is not None else np.zeros((len(groups), t), dtype=np.float32))


def rec(kind: Kind, m: sim.Machine, params: dict | None = None, evidence: dict | None = None) -> Recommendation:
    action = None if kind == Kind.CONSOLIDATE else Action(kind.value, m.ref, params or {})
    return Recommendation("test", kind, m.ref, m.instance_type, Decimal(1), 0.9, Risk.LOW, kind.value,
                          evidence or {}, action, m.name)


def at(n: int, *spans: tuple[int, int]) -> np.ndarray:
    out = np.zeros(n, dtype=bool)
    for a, z in spans:
        out[a:z] = True
    return out


# --------------------------------------------------------------------------- off policies


def test_a_stop_that_hits_a_busy_minute_is_a_busy_stop():
    t = 200
    busy = np.stack([at(t, (0, 5)), at(t, (10, 20)), at(t, (30, 40)), at(t)])
    res = b.score_off(np.ones_like(busy), busy, np.ones((4, t)), restart=R, lost=30)
    assert res.stops.tolist() == [1, 1, 1, 1]
    assert res.busy_stops.tolist() == [1, 1, 0, 0]  # busy at the stop, busy within 15 min, later, never
    assert res.hits.tolist() == [1, 0, 0, 0]  # only the first interrupted work in progress
    assert res.off_min.tolist() == [0, 10, 30, t]
    assert res.wakes.tolist() == [1, 1, 1, 0]
    saved, cost = res.usd(np.full(4, 1.0), R, 30)
    assert saved.tolist() == [0, 10, 30, t]
    assert cost.tolist() == [R + 30, R, R, 0]


def test_a_schedule_restarts_on_plan_and_on_demand():
    t = 100
    intent = at(t, (10, 30), (50, 80))[None, :]
    busy = at(t, (70, 75))[None, :]
    res = b.score_off(intent, busy, np.ones((1, t)), restart=R, keep_off=True)
    assert res.stops[0] == 2 and res.busy_stops[0] == 0  # work came 20 minutes after the second stop
    assert res.planned[0] == 1  # the first off run ends on plan; the second was ended by work at minute 70
    assert res.wakes[0] == 1
    assert res.off_min[0] == 20 + 20
    assert res.off[0, 50:70].all() and not res.off[0, 70:80].any()
    late = b.score_off(intent, at(t, (60, 65))[None, :], np.ones((1, t)), restart=R)
    assert late.busy_stops[0] == 1  # work 10 minutes after a stop: that stop was a busy stop


def test_a_stop_guard_postpones_the_scheduled_stop_until_the_instance_is_quiet():
    t, g = 300, 30
    intent = at(t, (60, 200), (240, 300))[None, :].repeat(3, axis=0)
    busy = np.stack([at(t, (30, 100)),  # a session 40 minutes past the stop at 60: quiet from 100, stopped at 130
                     at(t, (150, 180)),  # quiet for 90 minutes at 60: stopped on time (the guard costs nothing)
                     at(t, (0, 300))])  # never quiet: never stopped
    guarded = b.guarded_intent(intent, busy, g)
    assert guarded[0].tolist() == (at(t, (130, 200)) | at(t, (240, 300))).tolist()
    assert (guarded[1] == intent[1]).all()
    assert not guarded[2].any()
    assert (b.guarded_intent(intent, busy, 0) == intent).all()  # no guard: the old behaviour
    assert b.guarded_intent(at(t, (0, 50))[None, :], at(t)[None, :], g, prior=np.array([g]))[0, 0]  # quiet before
    res = b.score_off(guarded, busy, np.ones((3, t)), restart=R, keep_off=True)
    assert res.stops.tolist() == [2, 2, 0] and res.busy_stops.tolist() == [0, 0, 0]
    assert res.off_min[0] == 70 + 60
    # minute by minute: a stop at the first minute of an off run preceded by g quiet minutes (prior: none)
    rng = np.random.default_rng(5)
    intent = np.stack([b.sim._alternating(rng, 2000, 200, 100) for _ in range(10)])
    busy = np.stack([b.sim._alternating(rng, 2000, 40, 25) for _ in range(10)])
    guarded = b.guarded_intent(intent, busy, g)
    for i in range(10):
        want, stopped = np.zeros(2000, dtype=bool), False
        for m in range(2000):
            if intent[i, m] and (m == 0 or not intent[i, m - 1]):
                stopped = False
            stopped = stopped or (intent[i, m] and m >= g and not busy[i, m - g : m].any())
            want[m] = intent[i, m] and stopped
        assert (guarded[i] == want).all()


def _reference_off(intent: np.ndarray, busy: np.ndarray) -> tuple[int, int, int, int]:
    """Minute by minute: (off minutes, stops, wakes, busy stops)."""
    off = stops = wakes = busy_stops = 0
    woken = False
    for t in range(len(intent)):
        if intent[t] and (t == 0 or not intent[t - 1]):
            stops += 1
            busy_stops += bool(busy[t : t + 15].any())
            woken = False
        if intent[t] and not woken:
            if busy[t]:
                woken, wakes = True, wakes + 1
            else:
                off += 1
    return off, stops, wakes, busy_stops


def test_score_off_matches_a_minute_by_minute_reference():
    rng = np.random.default_rng(7)
    t = 600
    intent = np.stack([b.sim._alternating(rng, t, 60, 40) for _ in range(20)])
    busy = np.stack([b.sim._alternating(rng, t, 20, 90) for _ in range(20)])
    res = b.score_off(intent, busy, np.ones((20, t)))
    for i in range(20):
        assert (res.off_min[i], res.stops[i], res.wakes[i], res.busy_stops[i]) == _reference_off(intent[i], busy[i])


def _reference_timeout(gidle: np.ndarray, busy: np.ndarray, prior: int, timeout: int = 60) -> tuple[int, int, int]:
    """Minute by minute: (off minutes, stops, wakes)."""
    on, count, off, stops, wakes = True, prior, 0, 0, 0
    for t in range(len(gidle)):
        if on and count >= timeout:
            on, stops = False, stops + 1
        if not on:
            if busy[t]:
                on, count, wakes = True, 0, wakes + 1
            else:
                off += 1
                continue
        count = count + 1 if gidle[t] else 0
    return off, stops, wakes


def test_the_idle_timeout_matches_a_minute_by_minute_reference():
    rng = np.random.default_rng(3)
    t, n = 2000, 12
    gidle = np.stack([b.sim._alternating(rng, t, 80, 30) for _ in range(n)])
    # busy wherever the GPU works, and sometimes while it is idle (a user thinking, data loading)
    busy = ~gidle | (gidle & np.stack([b.sim._alternating(rng, t, 15, 120) for _ in range(n)]))
    prior = rng.integers(0, 61, n)
    res = b.timeout_policy(gidle, busy, np.ones((n, t)), prior, restart=R)
    for i in range(n):
        assert (res.off_min[i], res.stops[i], res.wakes[i]) == _reference_timeout(gidle[i], busy[i], int(prior[i]))


# --------------------------------------------------------------------------- oracles


def test_the_stop_oracle_skips_a_gap_shorter_than_the_restart_cost():
    t = 300
    busy = np.stack([at(t, (R - 2, 50)), at(t, (25, 50)), at(t)])
    value = b.stop_oracle(busy, np.ones(3), restart=R)
    assert value.tolist() == [0, 25 - R, t]  # too short; worth it net of the restart; never needed again


def test_the_schedule_oracle_switches_off_every_slot_quiet_in_every_week():
    weeks = 2
    t = weeks * b.MINUTES_PER_WEEK
    mow = np.arange(t) % b.MINUTES_PER_WEEK
    day, minute = mow // 1440, mow % 1440
    office = (day < 5) & (minute >= 9 * 60) & (minute < 17 * 60)
    extra = (np.arange(t) // b.MINUTES_PER_WEEK == 1) & (day == 5) & (minute >= 10 * 60) & (minute < 12 * 60)
    busy = np.stack([office, office | extra])
    value, off_net, off_slots = b.schedule_oracle(busy, np.ones((2, t)), mow, np.ones(2), restart=R)
    assert off_slots[0].sum() == 168 - 40
    assert off_slots[1].sum() == 168 - 42  # Saturday 10-12 was busy in one week: on in every week
    # the window starts Monday 00:00: 11 off runs (Monday morning, 4 weeknights a week, the weekend, the last
    # Friday night); all but the last end on plan inside the window, each costing one restart
    assert off_net[0] == weeks * (128 * 60) - 10 * R
    assert value[0] == off_net[0]


def test_the_autoscale_oracle_leads_by_one_cold_start():
    need = np.r_[np.ones(100), np.full(50, 3.0), np.ones(50)]
    cap = b.sliding(need, 10, "max", forward=True)
    assert cap[89] == 1 and cap[90] == 3  # launched 10 minutes (the warm-up) before the demand rises
    assert cap[149] == 3 and cap[150] == 1  # released when the demand has gone
    serving = b.sliding(cap, 10, "min", forward=False)
    assert (serving >= need).all()


def test_scheduled_capacity_follows_the_cron_actions():
    import pandas as pd

    idx = pd.date_range("2026-11-16 00:00", periods=14 * 1440, freq="min", tz="UTC")  # Monday
    feats = {"minute": np.asarray(idx.minute), "hour": np.asarray(idx.hour), "dom": np.asarray(idx.day),
             "month": np.asarray(idx.month), "dow": (np.asarray(idx.day_of_week) + 1) % 7}
    params = {"min_size": 1, "max_size": 8, "desired_capacity": 2, "scheduled_actions": [
        {"name": "up", "recurrence": "0 13 * * MON-FRI", "min_size": 5, "max_size": 8, "desired_capacity": 5},
        {"name": "down", "recurrence": "30 22 * * *", "min_size": 1, "max_size": 8, "desired_capacity": 1},
    ]}
    cap = b.scheduled_capacity(params, feats, current=10)
    def minute(d: int, h: int, m: int = 0) -> int:
        return d * 1440 + h * 60 + m

    assert cap[minute(0, 12)] == 2  # before any action fired: the base desired capacity
    assert cap[minute(0, 13)] == 5 and cap[minute(0, 22, 29)] == 5 and cap[minute(0, 22, 30)] == 1
    assert cap[minute(5, 14)] == 1  # Saturday: no scale-out
    assert cap[minute(7, 13, 30)] == 5


def test_week_on_reads_the_schedule_windows():
    on = b.week_on([{"day": "Mon", "start": "09:00", "end": "18:00"}, {"day": "Sun", "start": "22:00", "end": "24:00"}])
    assert on.sum() == 9 * 60 + 2 * 60
    assert on[9 * 60] and not on[18 * 60] and on[b.MINUTES_PER_WEEK - 1]


# --------------------------------------------------------------------------- our recommendations, played forward


def test_stop_and_schedule_recommendations_are_scored_and_group_members_save_nothing():
    t = 1440
    specs = [{"itype": "g5.xlarge", "busy": at(t, (5, 20))},  # a stop right before work: a busy stop
             {"itype": "g5.xlarge", "busy": at(t)},  # forgotten: the whole window saved
             {"itype": "g5.xlarge", "busy": at(t), "group": "asg"}]  # a group member: replaced, saves nothing
    fleet = fleet_of(specs, t)
    view, types = b.View.of(fleet), b.Types()
    ms = fleet.machines
    scored = b.score_ours(view, types, [rec(Kind.STOP, m) for m in ms])
    stop = scored.kinds["stop"]
    assert stop.stops == 3 and stop.busy_stops == 1
    p = view.price_min
    assert scored.per_instance[0] == pytest.approx(5 * p[0] - R * p[0])
    assert scored.per_instance[1] == pytest.approx(t * p[1])
    assert scored.per_instance[2] == 0
    assert any("group member" in f for f in scored.findings)


def test_a_schedule_stop_guard_waits_for_a_late_session_instead_of_a_busy_stop():
    t = 300  # the test window starts Monday 10:00 UTC; the schedule is on until 11:00 (minute 60), off after
    fleet = fleet_of([{"itype": "g5.xlarge", "busy": at(t, (30, 100))}], t)  # the session runs 40 min past 11:00
    view, types = b.View.of(fleet), b.Types()
    m, p = fleet.machines[0], view.price_min[0]
    on = [{"day": "Mon", "start": "10:00", "end": "11:00"}]
    old = b.score_ours(view, types, [rec(Kind.SCHEDULE, m, {"timezone": "UTC", "on": on})])
    assert old.kinds["schedule"].busy_stops == 1  # stopped at 11:00 under the session: woken at once
    assert old.per_instance[0] == pytest.approx(-(R + 30) * p)
    new = b.score_ours(view, types, [rec(Kind.SCHEDULE, m, {"timezone": "UTC", "on": on,
                                                            "stop_when_idle_for_minutes": 30})])
    assert new.kinds["schedule"].stops == 1 and new.kinds["schedule"].busy_stops == 0
    assert new.per_instance[0] == pytest.approx((t - 130) * p)  # stopped 30 idle minutes after the session


def test_a_rightsize_is_moved_back_at_the_first_minute_the_load_does_not_fit():
    t = 1000
    util = np.zeros((4, t), dtype=np.float32)
    util[0] = 50
    util[1, 600:700] = 50  # a second GPU gets work at minute 600: one GPU is not enough
    fleet = fleet_of([{"itype": "g5.12xlarge", "busy": at(t, (0, t)), "util": util}], t)
    view, types = b.View.of(fleet), b.Types()
    m = fleet.machines[0]
    scored = b.score_ours(view, types, [rec(Kind.RIGHTSIZE, m, {"from_type": "g5.12xlarge", "to_type": "g5.xlarge"})])
    old, new = m.hourly_usd / 60, types.price("us-east-1", "g5.xlarge", PricingModel.ON_DEMAND) / 60
    assert scored.per_instance[0] == pytest.approx((old - new) * 600 - 2 * R * old)
    assert scored.kinds["rightsize"].short_min == 100


def test_a_consolidation_is_short_where_the_combined_load_exceeds_one_gpu():
    t = 600
    host_util = np.full((1, t), 60.0, dtype=np.float32)
    donor_util = np.zeros((1, t), dtype=np.float32)
    donor_util[0, 100:130] = 70  # 60 + 70 > 100 for 30 minutes
    mem = np.full((1, t), 4096.0, dtype=np.float32)
    fleet = fleet_of([{"itype": "g5.xlarge", "busy": at(t, (0, t)), "util": host_util, "mem": mem},
                      {"itype": "g5.xlarge", "busy": at(t, (100, 130)), "util": donor_util, "mem": mem}], t)
    view, types = b.View.of(fleet), b.Types()
    host, donor = fleet.machines
    scored = b.score_ours(view, types, [rec(Kind.CONSOLIDATE, donor, evidence={"move_onto": {"resource_id": host.id}})])
    c = scored.kinds["consolidate"]
    assert c.short_min == 30
    assert c.lost_gpu_h == pytest.approx(30 * 0.30 / 60)  # 30 % of a GPU for 30 minutes
    p = donor.hourly_usd / 60
    assert scored.per_instance[1] == pytest.approx(p * t - R * p - c.lost_gpu_h * host.hourly_usd)


# --------------------------------------------------------------------------- the simulator


def test_the_simulator_is_deterministic_for_a_seed():
    a = sim.simulate(30, seed=5, train_days=2, test_days=1)
    again = sim.simulate(30, seed=5, train_days=2, test_days=1)
    other = sim.simulate(30, seed=6, train_days=2, test_days=1)
    assert [m.id for m in a.machines] == [m.id for m in again.machines]
    for name in ("gpu_util", "gpu_mem", "cpu", "net_in", "busy", "agent_up", "demand"):
        assert np.array_equal(getattr(a, name), getattr(again, name)), name
    assert a.gpu_util.shape != other.gpu_util.shape or not np.array_equal(a.gpu_util, other.gpu_util)


def test_the_simulated_fleet_looks_like_the_alibaba_duty_cycle_trace():
    fleet = sim.simulate(150, seed=0, train_days=7, test_days=1)
    figures = sim.realism(fleet)
    assert abs(figures["zero_fraction"] - sim.ALIBABA["zero_fraction"]) <= 0.08
    assert figures["median_instance_mean_util_pct"] <= 15


def test_the_snapshot_holds_only_the_training_window():
    fleet = sim.simulate(20, seed=2, train_days=2, test_days=1)
    snap = sim.snapshot(fleet)
    ts = snap.usage.frame["ts"]
    assert ts.min() >= snap.window.start and ts.max() < snap.window.end == fleet.as_of
    assert {g.ref.id for g in snap.groups} == {g.name for g in fleet.groups}
    assert all(snap.price_for(r) is not None for r in snap.resources)


def test_the_oracles_own_plan_scores_back_to_the_oracle():
    fleet = sim.simulate(60, seed=1, train_days=7, test_days=7)
    view, types = b.View.of(fleet), b.Types()
    oracle = b.oracles(view, types)
    scored = b.score_ours(view, types, b.oracle_plan(view, oracle))
    for kind in ("stop", "rightsize", "consolidate"):
        assert scored.kinds[kind].net == pytest.approx(oracle.by_kind[kind].sum(), rel=1e-6), kind
    assert scored.kinds["schedule"].net == pytest.approx(oracle.by_kind["schedule"].sum(), rel=0.02)
    assert scored.kinds["schedule"].busy_stops == 0
