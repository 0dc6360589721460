"""``spot``: interruptible work on on-demand GPU instances -> spot, with the overhead priced in (hand-built snapshots)."""

from __future__ import annotations

import json
import math
from decimal import ROUND_HALF_UP, Decimal

import numpy as np
import pytest

from providers.model import Accelerators, Cloud
from recommenders import batch_pattern, spot
from recommenders.economics import (
    expected_spot_hourly,
    monthly_interruption_rate,
    mtbf_hours,
    notice_seconds,
    optimal_checkpoint_interval_hours,
    spot_overhead,
)
from recommenders.model import Kind, Risk
from tests.builders import NOW, times, window
from tests.recommenders.spot_support import (
    STAMPS,
    Box,
    N,
    batch_jobs,
    box,
    build,
    inference,
    nightly,
    office_hours,
    pattern_of,
    prices,
    run,
    training,
)

TAGGED = {"costagent:interruptible": "true"}
# p4d.24xlarge, us-east-1: the shipped catalog's on-demand price and its 67 % typical spot discount.
P4D_ON_DEMAND, P4D_SPOT = "21.957642", "7.2460"


def only(recs):
    assert len(recs) == 1, [r.summary for r in recs]
    return recs[0]


def by_hand(on_demand: str, spot_hourly: str, rate: float, checkpoint_min: float, restart_min: float) -> Decimal:
    """The monthly saving worked out independently: the closed form sqrt(2C/M) + R/M of the optimum."""
    c, r, m = checkpoint_min / 60, restart_min / 60, 730 / rate
    overhead = Decimal(str(round(math.sqrt(2 * c / m) + r / m, 6)))
    saving = Decimal(730) * (Decimal(on_demand) - Decimal(spot_hourly) * (1 + overhead))
    return saving.quantize(Decimal("0.01"), ROUND_HALF_UP)


def p4d(name: str = "trainer", tags: dict | None = None, util: np.ndarray | None = None, band: str | None = "10-15%",
        spot_hourly: str | None = P4D_SPOT, on_demand: str = P4D_ON_DEMAND, **kw):
    res = box(name, "p4d.24xlarge", tags=tags, **kw)
    return res, build([Box(res, training() if util is None else util)], prices(res, on_demand, spot_hourly, band))


# --- economics: the formulas by hand


def test_checkpoint_interval_is_youngs_formula():
    assert optimal_checkpoint_interval_hours(0.1, 100) == pytest.approx(math.sqrt(20), abs=1e-12)


def test_overhead_is_checkpoint_time_plus_lost_work_plus_restart_at_the_optimum():
    tau = math.sqrt(20)
    expected = 0.1 / tau + (tau / 2 + 0.25) / 100
    assert spot_overhead(0.1, 0.25, 100) == pytest.approx(expected, abs=1e-15)
    assert expected == pytest.approx(math.sqrt(2 * 0.1 / 100) + 0.25 / 100, abs=1e-15)  # = sqrt(2C/M) + R/M


def test_any_other_checkpoint_interval_costs_more():
    best = spot_overhead(0.1, 0.25, 100)
    assert spot_overhead(0.1, 0.25, 100, interval_h=2.0) == pytest.approx(0.1 / 2 + (1 + 0.25) / 100)
    assert spot_overhead(0.1, 0.25, 100, interval_h=2.0) > best
    assert spot_overhead(0.1, 0.25, 100, interval_h=8.0) > best


def test_overhead_edge_cases():
    assert spot_overhead(0.0, 0.5, 200) == 0.5 / 200  # free checkpoints: only the restarts
    assert spot_overhead(0.1, 0.5, mtbf_hours(0)) == 0.0  # never interrupted


def test_mtbf_is_a_month_over_the_rate():
    assert mtbf_hours(0.15) == pytest.approx(730 / 0.15)
    assert math.isinf(mtbf_hours(0))


def test_expected_spot_price_adds_the_overhead_to_six_decimals():
    assert expected_spot_hourly(Decimal("2.00"), 0.05) == Decimal("2.1")
    assert expected_spot_hourly(Decimal(2), 0.0123456789) == Decimal("2.024692")


def test_band_mapping_from_the_real_spot_advisor_snapshot():
    """spot-advisor-data.json (AWS feed, June 2025): its ranges and two us-east-1 Linux entries."""
    ranges = {0: "<5%", 1: "5-10%", 2: "10-15%", 3: "15-20%", 4: ">20%"}
    us_east_1 = {"p4d.24xlarge": {"s": 67, "r": 2}, "g5.xlarge": {"s": 59, "r": 4}}
    p4d_band, g5_band = ranges[us_east_1["p4d.24xlarge"]["r"]], ranges[us_east_1["g5.xlarge"]["r"]]
    assert (p4d_band, g5_band) == ("10-15%", ">20%")
    rate, source = monthly_interruption_rate(p4d_band, Cloud.AWS)
    assert rate == 0.15 and "AWS Spot Advisor" in source and "upper bound" in source
    rate, source = monthly_interruption_rate(g5_band, Cloud.AWS)
    assert rate == 0.40 and "no upper bound" in source


@pytest.mark.parametrize("band, rate", [("<5%", 0.05), ("5-10%", 0.10), ("10-15%", 0.15), ("15-20%", 0.20),
                                        (">20%", 0.40), ("0-5", 0.05), ("20+", 0.40)])
def test_every_band_maps_to_its_documented_rate(band, rate):
    assert monthly_interruption_rate(band, Cloud.AZURE if "%" not in band else Cloud.AWS)[0] == pytest.approx(rate)


def test_documented_defaults_without_a_band():
    assert monthly_interruption_rate(None, Cloud.GCP)[0] == pytest.approx(0.15 * 730 / 24)  # 15 %/day, upper bound
    assert monthly_interruption_rate(None, Cloud.AZURE)[0] == 0.40
    assert monthly_interruption_rate(None, Cloud.AWS)[0] == 0.40
    rate, source = monthly_interruption_rate("unknown-ish", Cloud.AWS)
    assert rate == 0.40 and "not understood" in source


def test_notice_periods():
    assert (notice_seconds(Cloud.AWS), notice_seconds(Cloud.GCP), notice_seconds(Cloud.AZURE)) == (120, 30, 30)


# --- declared interruptible


def test_tagged_training_box_gets_the_exact_saving():
    _, snap = p4d(tags=TAGGED)
    rec = only(run(snap))
    assert rec.kind == Kind.SPOT and rec.recommender == spot.NAME and rec.action is None
    assert rec.monthly_savings_usd == by_hand(P4D_ON_DEMAND, P4D_SPOT, 0.15, 10, 30)
    assert isinstance(rec.monthly_savings_usd, Decimal)
    ev = rec.evidence
    m = 730 / 0.15
    assert ev["declared_by"] == "costagent:interruptible=true" and ev["pattern"] is None
    assert ev["interruption_band"] == "10-15%" and ev["monthly_interruption_rate"] == 0.15
    assert ev["mtbf_hours"] == pytest.approx(m, abs=1e-3) and ev["notice_seconds"] == 120
    assert (ev["checkpoint_minutes"], ev["restart_minutes"]) == (10.0, 30.0)
    assert ev["checkpoint_interval_minutes"] == pytest.approx(math.sqrt(2 * (10 / 60) * m) * 60, abs=0.01)
    assert ev["overhead_pct"] == pytest.approx((math.sqrt(2 * (10 / 60) / m) + 0.5 / m) * 100, abs=1e-4)
    assert ev["on_demand_hourly_usd"] == 21.957642 and ev["spot_hourly_usd"] == 7.246
    assert (rec.confidence, rec.risk) == (0.8, Risk.LOW)
    assert "10-15%" in rec.summary and f"{rec.monthly_savings_usd:,.0f}" in rec.summary


def test_evidence_reproduces_the_saving_and_is_plain_json():
    _, snap = p4d(tags=TAGGED)
    rec = only(run(snap))
    ev = json.loads(json.dumps(dict(rec.evidence)))
    expected = Decimal(str(ev["spot_hourly_usd"])) * (1 + Decimal(str(ev["overhead_pct"])) / 100)
    assert Decimal(str(ev["expected_spot_hourly_usd"])) == expected
    saving = (730 * (Decimal(str(ev["on_demand_hourly_usd"])) - expected)).quantize(Decimal("0.01"), ROUND_HALF_UP)
    assert saving == rec.monthly_savings_usd
    assert str(saving) in ev["savings_basis"]


def test_tagged_checkpoint_and_restart_times_are_used():
    tags = {**TAGGED, "costagent:checkpoint-minutes": "2", "costagent_restart_minutes": "5"}  # either spelling
    rec = only(run(p4d(tags=tags)[1]))
    assert (rec.evidence["checkpoint_minutes"], rec.evidence["restart_minutes"]) == (2.0, 5.0)
    assert rec.evidence["checkpoint_minutes_source"] == "tag costagent:checkpoint-minutes"
    assert rec.monthly_savings_usd == by_hand(P4D_ON_DEMAND, P4D_SPOT, 0.15, 2, 5)


def test_unreadable_checkpoint_tag_falls_back_to_the_default_and_says_so():
    rec = only(run(p4d(tags={**TAGGED, "costagent:checkpoint-minutes": "ten"})[1]))
    assert rec.evidence["checkpoint_minutes"] == 10.0
    assert any("not a number" in note for note in rec.evidence["notes"])


def test_gcp_without_a_band_uses_the_default_rate_and_30_second_notice():
    res = box("gcp-trainer", "a2-highgpu-1g", tags={"costagent-interruptible": "yes"}, cloud=Cloud.GCP,
              region="us-central1", gpus=Accelerators("A100", 1, 40))
    rec = only(run(build([Box(res, training())], prices(res, "3.6731", "1.1019", band=None))))
    ev = rec.evidence
    assert ev["declared_by"] == "costagent-interruptible=yes"  # the label as written (GCP keys allow no ':')
    assert ev["monthly_interruption_rate"] == pytest.approx(4.5625) and ev["notice_seconds"] == 30
    assert rec.monthly_savings_usd == by_hand("3.6731", "1.1019", 4.5625, 10, 30)
    assert (rec.confidence, rec.risk) == (0.7, Risk.MEDIUM)  # no band known: less sure, riskier


def test_an_open_band_raises_the_risk():
    rec = only(run(p4d(tags=TAGGED, band=">20%")[1]))
    assert rec.risk == Risk.MEDIUM and rec.evidence["monthly_interruption_rate"] == 0.4


# --- never without a declaration


def test_untagged_steady_inference_server_gets_nothing():
    res, snap = p4d(util=inference())
    assert run(snap) == []
    assert "complete busy run" in pattern_of(snap, res).reason


def test_busy_server_with_a_few_outages_is_not_batch_work():
    """Three 2-hour restarts make complete runs, but the GPU is busy 98 % of the time: serving, not a queue."""
    util = np.full(N, 90.0)
    for day in (3, 7, 11):
        util[day * 288 + 100: day * 288 + 124] = 0.0
    res, snap = p4d(util=util)
    assert pattern_of(snap, res).complete_runs >= 2
    assert run(snap) == []


def test_untagged_training_box_running_around_the_clock_is_not_inferred():
    assert run(p4d()[1]) == []


def test_office_hours_notebook_gets_nothing_even_when_it_works_the_gpu_hard():
    res, snap = p4d(util=office_hours())
    assert run(snap) == []
    assert "recur" in pattern_of(snap, res).reason


def test_interactive_notebook_at_random_hours_gets_nothing():
    """Sessions at no fixed time, but cells (10 min) and thinking (15 min) alternate: not saturating batch work."""
    cells = (np.arange(N) % 5) < 2
    res, snap = p4d(util=np.where(cells, batch_jobs(seed=5), 0.0))
    assert run(snap) == []
    assert "quarter of the busy time" in pattern_of(snap, res).reason


def test_nightly_job_at_a_fixed_hour_is_not_inferred():
    res, snap = p4d(util=nightly())
    assert run(snap) == []
    assert "recur" in pattern_of(snap, res).reason


def test_a_daily_routine_is_caught_within_a_single_week():
    """Six days of data: no second week to compare, the days alone show the routine."""
    win = window(days=6)
    res = box("nightly")
    util = nightly(length_h=4, stamps=times(win))
    snap = build([Box(res, util)], prices(res, P4D_ON_DEMAND, P4D_SPOT, "10-15%"), win=win)
    pattern = pattern_of(snap, res)
    assert pattern.weekly_recurrence_lift is None
    assert pattern.daily_recurrence_lift > spot.SpotSettings().max_recurrence_lift
    assert run(snap) == []


# --- evident from the pattern


def test_batch_shaped_untagged_box_gets_a_lower_confidence_finding():
    rec = only(run(p4d("queue", util=batch_jobs())[1]))
    declared = only(run(p4d("queue", tags=TAGGED, util=batch_jobs())[1]))
    assert rec.confidence < declared.confidence and rec.risk == Risk.MEDIUM
    assert rec.monthly_savings_usd == declared.monthly_savings_usd  # the same economics
    assert "confirm" in rec.summary and "costagent:interruptible=true" in rec.summary
    pattern = rec.evidence["pattern"]
    assert rec.evidence["declared_by"] is None and pattern["complete_runs"] >= 2
    assert pattern["daily_recurrence_lift"] <= spot.SpotSettings().max_recurrence_lift


def test_a_handful_of_jobs_is_too_little_to_rule_out_a_routine():
    util = np.zeros(N)
    for start_h in (100, 215, 320):  # three 2-hour jobs, days apart, the last ending 10 h before the end
        util[start_h * 12: (start_h + 2) * 12] = 95.0
    res, snap = p4d(util=util)
    assert "too little busy time" in pattern_of(snap, res).reason
    assert run(snap) == []


def test_batch_box_whose_queue_ran_dry_is_not_inferred():
    """Idle now for longer than any gap between its jobs: finished or forgotten (a stop case), not a queue."""
    assert run(p4d(util=batch_jobs(idle_tail_h=30))[1]) == []


def test_interruptible_false_vetoes_a_batch_shaped_box():
    for value in ("false", "no", "0", "maybe"):
        assert run(p4d(tags={"costagent:interruptible": value}, util=batch_jobs())[1]) == [], value


# --- who is a candidate


def test_spot_instance_gets_nothing():
    assert run(p4d(tags=TAGGED, spot_priced=True)[1]) == []


def test_excluded_instance_gets_nothing():
    res, snap = p4d(tags=TAGGED)
    assert run(snap, exclude={res.ref.key}) == []


def test_no_spot_price_no_finding():
    assert run(p4d(tags=TAGGED, spot_hourly=None)[1]) == []


def test_too_little_telemetry_no_finding():
    util = training()
    util[: N - 24 * 12] = np.nan  # one day of data, 30 h needed
    assert run(p4d(tags=TAGGED, util=util)[1]) == []


# --- thresholds and slack


def test_saving_below_the_percentage_threshold_gives_nothing():
    assert run(p4d(tags=TAGGED, spot_hourly="19.0")[1]) == []  # 13 % off before overhead


def test_saving_below_the_dollar_threshold_gives_nothing():
    res = box("tiny", "g4dn.xlarge", tags=TAGGED)
    snap = build([Box(res, training())], prices(res, "0.08", "0.02", "<5%"))  # 75 % off, ~43 USD a month
    assert run(snap) == []
    assert only(run(snap, spot.SpotSettings(min_monthly_saving_usd=Decimal(40)))).monthly_savings_usd < 50


def test_deadline_shorter_than_a_restart_gives_nothing():
    assert run(p4d(tags={**TAGGED, "costagent:deadline-hours": "0.25"})[1]) == []


def test_slack_below_the_expected_overhead_gives_nothing():
    assert run(p4d(tags={**TAGGED, "costagent:slack-pct": "0.1"})[1]) == []
    assert len(run(p4d(tags={**TAGGED, "costagent:slack-pct": "5"})[1])) == 1


def test_a_deadline_forces_more_frequent_checkpoints():
    rec = only(run(p4d(tags={**TAGGED, "costagent:deadline-hours": "4"})[1]))
    m = 730 / 0.15
    assert rec.evidence["checkpoint_interval_minutes"] == 210.0  # tau = D - R = 4 h - 30 min
    assert rec.evidence["overhead_pct"] == pytest.approx(((10 / 60) / 3.5 + (1.75 + 0.5) / m) * 100, abs=1e-4)


# --- diversification


def test_diversification_lists_only_types_with_the_same_gpus_sorted_by_expected_cost():
    res = box("a10g", "g5.2xlarge", tags=TAGGED)
    snap = build([Box(res, training())], market=True)
    rec = only(run(snap))
    listed = rec.evidence["diversification"]
    types = [d["instance_type"] for d in listed]
    assert types and set(types) <= {"g5.4xlarge", "g5.8xlarge", "g5.16xlarge"}  # 1 A10G, >= 8 vCPU, >= 32 GiB
    assert all(d["gpu_model"] == "A10G" and d["gpus"] == 1 and d["interruption_band"] for d in listed)
    costs = [d["expected_spot_hourly_usd"] for d in listed]
    assert costs == sorted(costs)
    assert rec.evidence["interruption_band"] == "15-20%"  # g5.2xlarge, us-east-1, from the Spot Advisor feed
    assert "any zone of us-east-1" in rec.evidence["zones"]


# --- recurrence


def test_recurrence_lift_is_one_for_chance_and_high_for_a_daily_routine():
    observed = np.ones((14, 24), dtype=bool)
    routine = np.zeros((14, 24), dtype=bool)
    routine[:, 9:18] = True  # the same nine hours every day
    assert batch_pattern.recurrence_lift(routine, observed, 12)[0] == pytest.approx(24 / 9)
    shifted = np.zeros((14, 24), dtype=bool)
    for day in range(14):
        shifted[day, (np.arange(12) + 7 * day) % 24] = True  # half of each day, at drifting hours
    lift, chance = batch_pattern.recurrence_lift(shifted, observed, 12)
    assert lift < spot.SpotSettings().max_recurrence_lift and chance == pytest.approx(91 * 12 * 12 / 24)


def test_a_weekly_rota_is_recurring_even_when_days_differ():
    """Mon 00-08, Tue 08-16, Wed 16-24 every week: days do not line up, weeks do."""
    dow, hour = np.asarray(STAMPS.day_of_week), np.asarray(STAMPS.hour)
    on = ((dow == 0) & (hour < 8)) | ((dow == 1) & (hour >= 8) & (hour < 16)) | ((dow == 2) & (hour >= 16))
    res, snap = p4d(util=np.where(on, 92.0, 0.0))
    pattern = pattern_of(snap, res)
    limit = spot.SpotSettings().max_recurrence_lift
    assert pattern.daily_recurrence_lift < limit < pattern.weekly_recurrence_lift
    assert run(snap) == []


def _band_quote(band: str = "10-15%"):
    from decimal import Decimal as D

    from providers.model import Cloud, PriceQuote, PricingModel
    from recommenders.spot import spot_terms
    q = PriceQuote(Cloud.AWS, "us-east-1", "p4d.24xlarge", PricingModel.SPOT, D("7"), "test", NOW, band)
    return q, spot_terms


def test_a_deadline_too_short_for_a_long_jobs_checkpoint_writes_gives_nothing():
    q, spot_terms = _band_quote()
    # L = 30 h, C = 10 min: at best 2 sqrt(L C) = 4.47 h of writes + lost interval, plus C and R > D = 2 h
    assert spot_terms(q, 1 / 6, 0.5, deadline_h=2.0, job_h=30.0) is None
    assert spot_terms(q, 1 / 6, 0.5, deadline_h=2.0) is not None  # without L only one interruption is checked


def test_a_long_job_with_enough_slack_checkpoints_at_the_interval_that_fits():
    q, spot_terms = _band_quote()
    terms = spot_terms(q, 1 / 6, 0.5, deadline_h=6.0, job_h=30.0)
    assert terms is not None
    writes_and_one_loss = 30.0 * (1 / 6) / terms.interval_h + terms.interval_h + 1 / 6 + 0.5
    assert writes_and_one_loss <= 6.0
