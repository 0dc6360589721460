"""The spot and commitment benchmark's scoring (bench/money.py) on hand-checked cases (no full bench run)."""

from __future__ import annotations

import json
from decimal import Decimal

import numpy as np
import pytest

from bench import money as b
from providers.model import Cloud, CommitmentRate, Instrument, PriceQuote, PricingModel

# ------------------------------------------------------------------------------------------ commitments


def test_a_steady_pool_of_four_commits_all_four_and_saves_the_discount_on_them():
    usage = np.full(720, 4.0)  # 4 instances at $1/h
    level, saved = b.oracle_level(usage, 0.6)
    assert level == 4.0
    assert saved == pytest.approx(730 * (4 - 0.6 * 4))  # 1,168 $/month


def test_a_diurnal_pool_commits_its_base_unless_the_peak_is_busy_more_often_than_the_rate_ratio():
    usage = np.tile(np.r_[np.full(12, 2.0), np.full(12, 6.0)], 30)  # 2 at night, 6 by day
    # d = 0.6: the peak is used half the hours (< 0.6): commit the base, 730 x (2 - 1.2)
    assert b.oracle_level(usage, 0.6) == (2.0, pytest.approx(584.0))
    # d = 0.4: half the hours is enough: commit the peak, 730 x (mean(2, 6) - 0.4 x 6)
    assert b.oracle_level(usage, 0.4) == (6.0, pytest.approx(1168.0))


def test_an_overcommitment_loses_the_unused_part_at_the_commitment_rate():
    assert b.commitment_savings(np.full(24, 2.0), 0.6, 4.0) == pytest.approx(730 * (2 - 2.4))  # -292
    assert b.commitment_savings(np.full(24, 2.0), 0.6, 0.0) == 0.0


def _pool(counts: np.ndarray, ratio: str = "0.6") -> b.PoolSim:
    spec = b.PoolSpec(Cloud.AWS, "us-east-1", ("p4d.24xlarge",), "steady")
    quote = PriceQuote(Cloud.AWS, "us-east-1", "p4d.24xlarge", PricingModel.ON_DEMAND, Decimal(10), "test", b.AS_OF)
    rate = CommitmentRate(Cloud.AWS, "us-east-1", "p4d.24xlarge", Instrument.AWS_RI, 1, Decimal(10) * Decimal(ratio),
                          "test", b.AS_OF)
    return b.PoolSim(spec, "p4d", np.asarray(counts)[None, :], (quote,), {(Instrument.AWS_RI, 1): (rate,)}, False)


def test_the_recommender_the_vendor_lookbacks_and_the_oracle_agree_on_a_steady_pool():
    days = 30
    pool = _pool(np.full(days * 24 * 2, 4))  # 4 x $10/h for 30 days, then 30 more
    history = days * 24
    future = slice(history, None)
    oracle = b.choose_on(pool, future)
    assert oracle.level == 40.0 and oracle.predicted == pytest.approx(11_680.0)
    ts = b.pd.date_range(b.AS_OF - b.timedelta(days=days), periods=days * 24 * 2, freq="h")
    ours = b.recommender_picks([pool], ts, history, 14)["aws/us-east-1/p4d"]
    assert ours.key == (Instrument.AWS_RI, 1) and ours.level == pytest.approx(40.0)
    assert b.score_pick(pool, ours, future) == pytest.approx(11_680.0)


def test_a_pool_that_shrinks_after_the_lookback_loses_what_the_lookback_committed():
    counts = np.r_[np.full(14 * 24, 4), np.full(14 * 24, 2)]  # 4 in the history, 2 in the future
    pool = _pool(counts)
    ours = b.choose_on(pool, slice(0, 14 * 24))
    assert ours.level == 40.0
    future = slice(14 * 24, None)
    assert b.score_pick(pool, ours, future) == pytest.approx(730 * (20 - 0.6 * 40))  # -2,920
    assert b.choose_on(pool, future).level == 20.0


# ------------------------------------------------------------------------------------------------- spot


def test_a_job_interrupted_after_a_checkpoint_loses_only_the_work_since_it_and_one_restart():
    # L = 10 h, checkpoint every 4 h (0.5 h to write), restart 1 h, interrupted at 5.0 h:
    # work 0-4, write 4-4.5, work 4.5-5.0 lost, restart 5-6, work 6-10, write 10-10.5, work 10.5-12.5
    run = b.play_on_spot(np.array([0.0]), np.array([10.0]), 4.0, 0.5, 1.0, np.array([5.0]))
    assert run.finish[0] == pytest.approx(12.5)
    assert (run.checkpoints, run.checkpoint_h, run.lost_h, run.restart_h) == (2, 1.0, pytest.approx(0.5), 1.0)
    assert (run.interruptions, run.in_jobs) == (1, 1)


def test_an_interruption_during_a_checkpoint_write_loses_the_write_and_the_work_before_it():
    run = b.play_on_spot(np.array([0.0]), np.array([10.0]), 4.0, 0.5, 1.0, np.array([4.2]))
    # 4.2 h lost (4 h of work and 0.2 h of the write), restart to 5.2, then 4 + 0.5 + 4 + 0.5 + 2
    assert run.lost_h == pytest.approx(4.2)
    assert run.finish[0] == pytest.approx(16.2)


def test_an_interruption_during_a_restart_starts_it_again_and_one_while_idle_delays_the_next_job():
    run = b.play_on_spot(np.array([0.0]), np.array([10.0]), 4.0, 0.5, 1.0, np.array([5.0, 5.5]))
    assert run.restart_h == pytest.approx(1.5) and run.finish[0] == pytest.approx(13.0)
    idle = b.play_on_spot(np.array([3.0]), np.array([2.0]), 4.0, 0.5, 1.0, np.array([2.5]))
    assert idle.start[0] == pytest.approx(3.5) and idle.finish[0] == pytest.approx(5.5)
    assert (idle.interruptions, idle.in_jobs) == (1, 0)


def test_without_interruptions_a_job_pays_only_its_checkpoint_writes_and_the_queue_carries_the_delay():
    arrival, length = np.array([0.0, 5.0]), np.array([6.0, 2.0])
    start, finish = b.play_on_demand(arrival, length)
    assert list(start) == [0.0, 6.0] and list(finish) == [6.0, 8.0]
    run = b.play_on_spot(arrival, length, 4.0, 0.5, 1.0, np.zeros(0))
    assert list(run.start) == [0.0, 6.5] and list(run.finish) == [6.5, 8.5]  # one write in the 6 h job
    never = b.play_on_spot(arrival, length, float("inf"), 0.5, 1.0, np.zeros(0))
    assert list(never.finish) == [6.0, 8.0]


def test_deadlines_are_on_each_jobs_own_run_and_the_bill_covers_the_horizon_or_the_last_finish():
    run = b.play_on_spot(np.array([0.0]), np.array([10.0]), 4.0, 0.5, 1.0, np.array([5.0]))  # 2.5 h late
    assert list(b.late_jobs(run.start, run.finish, np.array([10.0]), 2.0)) == [True]
    assert list(b.late_jobs(run.start, run.finish, np.array([10.0]), 3.0)) == [False]
    assert list(b.late_jobs(run.start, run.finish, np.array([10.0]), None)) == [False]
    assert b.billed_hours(run.finish, 10.0) == pytest.approx(12.5)
    assert b.billed_hours(run.finish, 20.0) == 20.0


def test_poisson_interruptions_come_at_the_monthly_rate():
    rng = np.random.default_rng(0)
    hits = b.poisson_times(rng, 0.4, 730 * 1000)  # 400 expected
    assert np.all(np.diff(hits) >= 0) and hits.min() >= 0 and hits.max() < 730 * 1000
    assert 340 < len(hits) < 460
    assert len(b.poisson_times(rng, 0.0, 730)) == 0


def test_the_benchmark_runs_moves_no_serving_workload_and_is_json():
    summary = b.run(seed=1, spot_months=0.5)
    rows = {r["policy"]: r for r in summary["spot"]["rows"]}
    assert rows["ours"]["wrong_moves"] == 0
    assert rows["oracle"]["late_jobs"] == 0 and rows["never spot"]["realized"] == 0
    assert summary["commitments"]["plumbing_check"]
    json.dumps(b._jsonable(summary))
