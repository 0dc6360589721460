"""Each recommender's verdict on each kind of instance, from simulated telemetry (no cloud)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import numpy as np
import pytest

from providers.model import HOURS_PER_MONTH, Metric, ResourceState
from providers.sandbox import fleet as sim
from recommenders import Settings, analyze
from recommenders.model import Kind
from tests.builders import HOURLY, FrameBuilder, resource, simulated, snapshot, times, window


def verdicts(analysis):
    return {rec.name: rec.kind.value for rec in analysis.recommendations}


@pytest.fixture(scope="module")
def demo_analysis():
    snap, by_name = simulated(sim.demo_fleet())
    return analyze(snap), by_name


@pytest.fixture(scope="module")
def catalog_analysis():
    """The demo fleet shaped and priced like the catalog's types, with offerings: every recommender can speak."""
    snap, by_name = simulated(sim.demo_fleet(), catalog=True)
    return analyze(snap), by_name


@pytest.mark.parametrize("inst", sim.demo_fleet(), ids=lambda i: i.name)
def test_demo_fleet_ground_truth(catalog_analysis, inst):
    analysis, _ = catalog_analysis
    assert verdicts(analysis).get(inst.name) == inst.expect


def test_right_sizes_propose_the_cheapest_fitting_type(catalog_analysis):
    analysis, _ = catalog_analysis
    moves = {r.name: (r.action.params["from_type"], r.action.params["to_type"])
             for r in analysis.recommendations if r.kind == Kind.RIGHTSIZE}
    # one busy A10G of four -> one A10G with enough vCPU; a small model on an L40S -> an L4
    assert moves == {"multi-gpu-dev": ("g5.12xlarge", "g5.2xlarge"), "llm-chat-small": ("g6e.xlarge", "g6.xlarge")}


def test_consolidation_moves_the_light_workloads_onto_the_busiest(catalog_analysis):
    analysis, by_name = catalog_analysis
    recs = [r for r in analysis.recommendations if r.kind == Kind.CONSOLIDATE]
    assert {r.name for r in recs} == {"vision-dev-t4-a", "vision-dev-t4-b"}
    assert {r.evidence["move_onto"]["resource_id"] for r in recs} == {by_name["vision-dev-t4-c"].ref.id}


def test_gaps_for_unjudgeable_instances(demo_analysis):
    analysis, by_name = demo_analysis
    gap_ids = {g.resource_id for g in analysis.gaps if g.resource_id}  # fleet-wide gaps (e.g. prices) aside
    # no-agent instances are the provider's gap (no GPU series); here: the young instance
    assert gap_ids == {by_name["llm-new-experiment"].ref.id}


def test_stop_savings_is_the_hourly_price_for_a_month(demo_analysis):
    analysis, _ = demo_analysis
    stop = next(r for r in analysis.recommendations if r.kind == Kind.STOP)
    assert stop.monthly_savings_usd == (HOURLY * HOURS_PER_MONTH).quantize(Decimal("0.01"))
    assert stop.action is not None and stop.action.kind == "stop"
    assert stop.evidence["gpu_util_max_pct_during_streak"] <= Settings().idle.gpu_util_max_pct


def test_schedule_switches_off_nights_and_weekends(demo_analysis):
    analysis, _ = demo_analysis
    rec = next(r for r in analysis.recommendations if r.name == "notebook-alice")
    windows = rec.evidence["on_windows_utc"]
    assert [w["day"] for w in windows] == ["Mon", "Tue", "Wed", "Thu", "Fri"]
    # busy 09-18; the hour after the last busy one stays on (end_margin_hours)
    assert all((w["start"], w["end"]) == ("09:00", "19:00") for w in windows)
    assert rec.evidence["off_hours_per_week"] == 168 - 50
    expected = Decimal(118) * HOURS_PER_MONTH / Decimal(168) * HOURLY
    assert rec.monthly_savings_usd == expected.quantize(Decimal("0.01"))


def test_office_notebook_is_not_stopped_on_monday_morning():
    """At 08:00 on a Monday the notebook has been idle all weekend: a schedule, not a stop."""
    monday_8am = datetime(2026, 11, 23, 8, 0, tzinfo=timezone.utc)
    snap, _ = simulated([sim._i("notebook-x", "us-east-1", "g5.xlarge", 1, 22.35, sim.OFFICE)], window(end=monday_8am))
    analysis = analyze(snap)
    assert verdicts(analysis) == {"notebook-x": "schedule"}


def test_forgotten_box_is_stopped_only_after_the_minimum_streak():
    short = sim._i("f-short", "us-east-1", "g5.xlarge", 1, 22.35, sim.FORGOTTEN, idle_days=0.5)
    long = sim._i("f-long", "us-east-1", "g5.xlarge", 1, 22.35, sim.FORGOTTEN, idle_days=1.5)
    analysis = analyze(simulated([short, long])[0])
    assert verdicts(analysis) == {"f-long": "stop"}


def test_bursty_batch_box_is_left_alone_across_seeds():
    boxes = [sim._i(f"batch-{n}", "us-east-1", "g5.xlarge", 1, 22.35, sim.BURSTY) for n in range(8)]
    assert verdicts(analyze(simulated(boxes)[0])) == {}


def test_stopped_instances_get_nothing():
    inst = sim._i("off", "us-east-1", "g5.xlarge", 1, 22.35, sim.STOPPED)
    analysis = analyze(simulated([inst])[0])
    assert not analysis.recommendations and not analysis.gaps and analysis.idle.per_resource.empty


def test_idle_spot_instance_is_priced_at_its_spot_rate():
    inst = replace(sim._i("spotty", "us-east-1", "g5.xlarge", 1, 22.35, sim.IDLE_ALL), spot=True)
    snap, _ = simulated([inst])
    spot_only = {k: (replace(q, hourly_usd=Decimal("0.4")) if k[3].value == "spot" else q) for k, q in snap.prices.items()}
    analysis = analyze(replace(snap, prices=spot_only))
    assert analysis.recommendations[0].monthly_savings_usd == Decimal("292.00")
    assert analysis.recommendations[0].evidence["price"]["pricing_model"] == "spot"


def test_cpu_busy_gpu_idle_box_is_not_stopped():
    res = resource("preprocess")
    win = window(days=3)
    stamps = times(win)
    builder = FrameBuilder().gpu_util(res, stamps, np.zeros(len(stamps)))
    builder.add(res, Metric.CPU_UTIL, stamps, np.full(len(stamps), 85.0))
    assert analyze(snapshot([res], builder.frame(), win)).recommendations == ()


def test_recommendation_ids_are_stable_across_runs():
    fleet = [sim._i("idle-box", "us-east-1", "g5.xlarge", 1, 22.35, sim.IDLE_ALL)]
    first = analyze(simulated(fleet)[0]).recommendations[0]
    later = analyze(simulated(fleet, window(end=datetime(2026, 11, 24, 3, 0, tzinfo=timezone.utc)))[0]).recommendations[0]
    assert first.id == later.id and first.id.startswith("gpu-idle-")


def test_disabled_recommender_yields_nothing():
    fleet = [sim._i("idle-box", "us-east-1", "g5.xlarge", 1, 22.35, sim.IDLE_ALL)]
    analysis = analyze(simulated(fleet)[0], Settings(enabled=("schedule",)))
    assert analysis.recommendations == ()


def test_hourly_data_reaches_the_same_verdicts():
    snap, _ = simulated(sim.demo_fleet(), window(period=timedelta(hours=1)), timedelta(hours=1), catalog=True)
    got = verdicts(analyze(snap))
    want = {i.name: i.expect for i in sim.demo_fleet() if i.expect}
    assert got == want


def _office_usage(share_of_hours_used: float, seed: int):
    """Office hours on weekdays, of which only a random share of the hours sees GPU work."""
    rng = np.random.default_rng(seed)
    win = window()
    stamps = times(win)
    hours = np.asarray((stamps - stamps[0]) // np.timedelta64(1, "h"))
    office = (np.asarray(stamps.day_of_week) < 5) & (np.asarray(stamps.hour) >= 9) & (np.asarray(stamps.hour) < 18)
    used = office & (rng.random(hours.max() + 1) < share_of_hours_used)[hours]
    return win, stamps, np.where(used, 80.0, 0.0)


@pytest.mark.parametrize("share", [0.7, 0.25], ids=["busy-most-hours", "used-a-few-hours"])
def test_irregular_office_notebooks_still_get_nights_and_weekends_off(share):
    res = resource("nb")
    win, stamps, util = _office_usage(share, seed=1)
    analysis = analyze(snapshot([res], FrameBuilder().gpu_util(res, stamps, util).frame(), win))
    assert verdicts(analysis) == {"nb": "schedule"}
    assert analysis.recommendations[0].evidence["off_hours_per_week"] >= 110


def test_short_quiet_spells_are_not_switched_off():
    """A box busy except for 4-hour breaks every day: the breaks are shorter than an off block."""
    res = resource("breaks")
    win = window()
    stamps = times(win)
    util = np.where(np.asarray(stamps.hour) % 12 < 8, 90.0, 0.0)  # 8 h on, 4 h off, twice a day
    assert analyze(snapshot([res], FrameBuilder().gpu_util(res, stamps, util).frame(), win)).recommendations == ()


def test_telemetry_that_stopped_arriving_is_a_gap_not_a_stop():
    res = resource("went-quiet")
    win = window(days=5)
    stamps = times(win)
    util = np.zeros(len(stamps))
    util[-12 * 48 :] = np.nan  # the agent died two days ago; the instance still runs
    analysis = analyze(snapshot([res], FrameBuilder().gpu_util(res, stamps, util).frame(), win))
    assert analysis.recommendations == ()
    mine = [g for g in analysis.gaps if g.resource_id]  # fleet-wide gaps (a short commitment lookback) aside
    assert [g.what for g in mine] == ["gpu-telemetry"]
    assert "48 h" in mine[0].reason


def test_gpu_memory_held_during_the_streak_is_in_the_evidence_and_raises_the_risk():
    res = resource("kernel-left-open")
    win = window(days=4)
    stamps = times(win)
    builder = FrameBuilder().gpu_util(res, stamps, np.zeros(len(stamps)))
    builder.add(res, Metric.GPU_MEM_USED, stamps, np.full(len(stamps), 6144.0), gpu=0)
    builder.add(res, Metric.CPU_UTIL, stamps, np.full(len(stamps), 1.0))
    builder.add(res, Metric.NET_IN, stamps, np.full(len(stamps), 1e3))
    [rec] = analyze(snapshot([res], builder.frame(), win)).recommendations
    assert rec.evidence["gpu_memory_used_max_mib_during_streak"] == 6144
    assert rec.risk.value == "medium" and "6.0 GiB" in rec.evidence["notes"][0]


def test_spot_stop_says_when_a_spot_instance_can_be_stopped():
    inst = replace(sim._i("spotty", "us-east-1", "g5.xlarge", 1, 22.35, sim.IDLE_ALL), spot=True)
    [rec] = analyze(simulated([inst])[0]).recommendations
    assert any("persistent" in note for note in rec.evidence["notes"])


def test_out_of_range_samples_are_reported_as_a_gap():
    res = resource("garbled")
    win = window(days=3)
    stamps = times(win)
    util = np.zeros(len(stamps))
    util[5] = 250.0
    analysis = analyze(snapshot([res], FrameBuilder().gpu_util(res, stamps, util).frame(), win))
    assert any("outside 0-100 %" in g.reason for g in analysis.gaps)


def test_powered_off_but_allocated_vm_is_told_to_deallocate():
    res = resource("parked", gpus=2, state=ResourceState.STOPPED_ALLOCATED)
    analysis = analyze(snapshot([res], FrameBuilder().frame()))
    [rec] = analysis.recommendations
    assert (rec.kind, rec.action.params, rec.monthly_savings_usd) == (Kind.STOP, {"deallocate": True}, HOURLY * HOURS_PER_MONTH)
    assert rec.evidence["power_state"] == "stopped (allocated)"


def test_deallocated_vm_gets_nothing():
    res = resource("parked", gpus=2, state=ResourceState.STOPPED)
    assert analyze(snapshot([res], FrameBuilder().frame())).recommendations == ()
