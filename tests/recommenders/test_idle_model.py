"""The idle model on hand-made usage: what counts as idle, busy and unknown."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from providers.model import Metric
from recommenders.idle import BUSY, IDLE, UNKNOWN, IdleSettings, classify
from tests.builders import PERIOD, FrameBuilder, resource, snapshot, times, window

DEFAULTS = IdleSettings()


def run(resources, builder, win=None, idle_settings=DEFAULTS, period=PERIOD):
    snap = snapshot(resources, builder.frame(), win or window(period=period), period)
    return classify(snap.usage, resources, snap.window, idle_settings)


def test_all_zero_utilization_is_idle_for_the_whole_window():
    res = resource("a")
    win = window(days=3)
    stamps = times(win)
    report = run([res], FrameBuilder().gpu_util(res, stamps, np.zeros(len(stamps))), win)
    row = report.per_resource.loc[res.ref.key]
    assert row["idle_hours"] == 72.0
    assert row["streak_hours"] == 72.0
    assert (report.state == IDLE).all()


def test_missing_samples_are_unknown_never_idle():
    res = resource("a")
    win = window(days=3)
    stamps = times(win)
    util = np.zeros(len(stamps))
    util[100:400] = np.nan  # 25 hours of silence
    report = run([res], FrameBuilder().gpu_util(res, stamps, util), win)
    assert (report.state[0, 100:400] == UNKNOWN).all()
    assert report.per_resource.loc[res.ref.key, "known_hours"] == 72.0 - 25.0
    # the streak after the silence is not joined to the idle stretch before it
    assert report.per_resource.loc[res.ref.key, "streak_hours"] == (len(stamps) - 400) * 5 / 60


def test_one_busy_gpu_makes_the_instance_busy():
    res = resource("a", gpus=2)
    win = window(days=2)
    stamps = times(win)
    report = run([res], FrameBuilder().gpu_util(res, stamps, [np.zeros(len(stamps)), np.full(len(stamps), 80.0)]), win)
    assert (report.state == BUSY).all()
    assert report.per_resource.loc[res.ref.key, "idle_hours"] == 0


def test_a_gpu_that_does_not_report_keeps_the_instance_unknown():
    res = resource("a", gpus=2)  # two installed, only one publishes
    win = window(days=2)
    stamps = times(win)
    report = run([res], FrameBuilder().gpu_util(res, stamps, np.zeros(len(stamps))), win)
    assert (report.state == UNKNOWN).all()
    assert report.per_resource.loc[res.ref.key, "reporting_gpus_max"] == 1


def test_idle_stretches_shorter_than_the_minimum_count_as_busy():
    res = resource("a")
    win = window(days=1)
    stamps = times(win)
    util = np.full(len(stamps), 90.0)
    util[50:59] = 0.0  # a 45-minute checkpoint/eval dip
    util[100:124] = 0.0  # a 2-hour pause
    report = run([res], FrameBuilder().gpu_util(res, stamps, util), win)
    assert (report.state[0, 50:59] == BUSY).all()
    assert (report.state[0, 100:124] == IDLE).all()
    assert report.per_resource.loc[res.ref.key, "idle_hours"] == 2.0


def test_high_cpu_or_network_vetoes_idle():
    cpu_box, net_box, quiet = resource("cpu"), resource("net"), resource("quiet")
    win = window(days=2)
    stamps = times(win)
    zeros = np.zeros(len(stamps))
    builder = FrameBuilder()
    for res in (cpu_box, net_box, quiet):
        builder.gpu_util(res, stamps, zeros)
    builder.add(cpu_box, Metric.CPU_UTIL, stamps, np.full(len(stamps), 55.0))
    builder.add(net_box, Metric.NET_IN, stamps, np.full(len(stamps), 50e6))
    builder.add(quiet, Metric.CPU_UTIL, stamps, np.full(len(stamps), 1.0))
    builder.add(quiet, Metric.NET_IN, stamps, np.full(len(stamps), 5e3))
    report = run([cpu_box, net_box, quiet], builder, win)
    idle = report.per_resource["idle_hours"]
    assert idle[cpu_box.ref.key] == 0 and idle[net_box.ref.key] == 0
    assert idle[quiet.ref.key] == 48.0


def test_hourly_publisher_is_held_for_its_cadence():
    res = resource("a")
    win = window(days=2)
    stamps = times(win)
    util = np.full(len(stamps), np.nan)
    util[::12] = 0.0  # one sample an hour, the rest of each hour unpublished
    report = run([res], FrameBuilder().gpu_util(res, stamps, util), win)
    assert (report.state == IDLE).all()
    assert report.per_resource.loc[res.ref.key, "cadence_s"] == 3600


def test_hold_is_capped_so_a_long_silence_stays_unknown():
    res = resource("a")
    win = window(days=2)
    stamps = times(win)
    util = np.full(len(stamps), np.nan)
    util[::12] = 0.0
    util[300:500] = np.nan  # ~17 h without a sample
    report = run([res], FrameBuilder().gpu_util(res, stamps, util), win)
    hold_steps = DEFAULTS.max_hold_minutes // 5
    assert (report.state[0, 288 + hold_steps : 500] == UNKNOWN).all()


def test_agent_rollup_without_gpu_index_counts_as_all_gpus():
    res = resource("a", gpus=4)
    win = window(days=2)
    stamps = times(win)
    builder = FrameBuilder().add(res, Metric.GPU_UTIL, stamps, np.zeros(len(stamps)))  # gpu = -1
    report = run([res], builder, win)
    assert (report.state == IDLE).all()
    assert report.per_resource.loc[res.ref.key, "expected_gpus"] == 1


def test_week_profile_adds_up_to_known_periods():
    res = resource("a")
    win = window(days=14)
    stamps = times(win)
    util = np.where(np.asarray(stamps.hour) < 12, 80.0, 0.0)
    util[:500] = np.nan
    report = run([res], FrameBuilder().gpu_util(res, stamps, util), win)
    assert report.week_busy.shape == (1, 2, 168)
    known_steps = report.per_resource.loc[res.ref.key, "known_hours"] * 12
    assert report.week_busy.sum() + report.week_idle.sum() == known_steps
    # busy only in the morning hours of each day
    assert report.week_busy[0][:, [h for h in range(168) if h % 24 >= 12]].sum() == 0


def test_prior_idle_stretch_is_measured_to_the_next_busy_period():
    res = resource("a")
    win = window(days=4)
    stamps = times(win)
    util = np.full(len(stamps), 90.0)
    util[100:100 + 12 * 30] = 0.0  # a 30-hour pause, then work again
    util[-12 * 10 :] = 0.0  # idle for the last 10 hours
    report = run([res], FrameBuilder().gpu_util(res, stamps, util), win)
    row = report.per_resource.loc[res.ref.key]
    assert row["prior_max_idle_hours"] == 30.0
    assert row["streak_hours"] == 10.0


def test_no_candidates_gives_an_empty_report():
    report = run([], FrameBuilder(), window(days=2))
    assert report.per_resource.empty and report.state.shape == (0, 576)


@settings(max_examples=40, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(
    util=arrays(np.float64, (2, 288), elements=st.one_of(st.just(np.nan), st.floats(0, 100), st.just(0.0))),
    threshold=st.floats(1, 20),
)
def test_idle_periods_always_have_every_gpu_measured_and_quiet(util, threshold):
    res = resource("p", gpus=2)
    win = window(days=1)
    stamps = times(win)
    cfg = IdleSettings(gpu_util_max_pct=threshold, max_hold_minutes=5)
    report = run([res], FrameBuilder().gpu_util(res, stamps, util), win, cfg)
    idle = report.state[0] == IDLE
    assert not np.isnan(util[:, idle]).any(), "a period with a silent GPU was called idle"
    assert (util[:, idle] <= threshold).all(), "a period with a GPU above the threshold was called idle"
    row = report.per_resource.loc[res.ref.key]
    assert row["idle_hours"] <= row["known_hours"]
    runs = pd.Series(idle).ne(pd.Series(idle).shift()).cumsum()[idle]
    assert (runs.value_counts() >= 12).all(), "an idle run shorter than the 60-minute minimum survived"


def test_period_length_is_respected():
    res = resource("a")
    win = window(days=3, period=timedelta(hours=1))
    stamps = times(win, timedelta(hours=1))
    report = run([res], FrameBuilder().gpu_util(res, stamps, np.zeros(len(stamps))), win, period=timedelta(hours=1))
    assert report.state.shape == (1, 72)
    assert report.per_resource.loc[res.ref.key, "idle_hours"] == 72.0


def test_quiet_gpu_screen_names_only_instances_with_a_quiet_sample():
    from recommenders.idle import quiet_gpu_keys

    busy, once_quiet, half_quiet = resource("busy", gpus=2), resource("once"), resource("half", gpus=2)
    win = window(days=1)
    stamps = times(win)
    util = np.full(len(stamps), 90.0)
    dipped = util.copy()
    dipped[7] = 0.0
    builder = (FrameBuilder().gpu_util(busy, stamps, [util, util]).gpu_util(once_quiet, stamps, dipped)
               .gpu_util(half_quiet, stamps, [np.zeros(len(stamps)), util]))  # one GPU always busy
    assert quiet_gpu_keys(builder.frame(), 5.0) == {once_quiet.ref.key}


def test_out_of_range_utilization_is_missing_not_idle():
    res = resource("sentinel")
    win = window(days=2)
    stamps = times(win)
    util = np.zeros(len(stamps))
    util[:300] = -1.0  # "N/A" written as -1
    report = run([res], FrameBuilder().gpu_util(res, stamps, util), win)
    assert (report.state[0, :300] == UNKNOWN).all()
    assert report.per_resource.loc[res.ref.key, "invalid_gpu_samples"] == 300


def test_weeks_are_exact_when_the_window_does_not_start_on_the_hour():
    from datetime import datetime, timezone

    res = resource("a")
    win = window(days=14, end=datetime(2026, 11, 23, 10, 35, tzinfo=timezone.utc))
    stamps = times(win)
    report = run([res], FrameBuilder().gpu_util(res, stamps, np.zeros(len(stamps))), win)
    # every hour of the week is seen for exactly 12 five-minute periods in each of the two weeks
    assert (report.week_idle == 12).all()
