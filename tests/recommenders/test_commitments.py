"""``commitment``: the level that maximizes savings, the instrument, and billing's coverage figures.

Fleets are hand-built at one-hour periods with an on-demand price of $10/h, so every saving is
checked by hand: ``730 x (mean(min(u, q)) - d q)``.
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from providers.model import CommitmentUse, Instrument, PricingModel, ResourceBilling
from recommenders import commitment_levels as levels
from recommenders.commitments import (
    HOURLY_USAGE_COLUMNS,
    CommitmentSettings,
    billing_commitment_summary,
    hourly_usage,
    pool_of,
    recommend,
)
from recommenders.model import Kind
from tests.recommenders.commitment_support import (
    ITYPE,
    ON_DEMAND,
    billing,
    billing_hourly,
    diurnal,
    fleet,
    rates,
    snapshot_of,
)

DAYS = 14
HOURS = DAYS * 24


def steady(n: int, days: int = DAYS) -> np.ndarray:
    return np.full(days * 24, n)


def only(recs):
    assert len(recs) == 1, [r.summary for r in recs]
    return recs[0]


# ------------------------------------------------------------------------------------------ the math


def test_argmax_level_is_the_quantile_where_the_exceedance_probability_meets_the_rate_ratio():
    """u = 0,1,1,2,3,3,3,5,8,10 and d = 0.35: P(u > 2) = 0.4 > d >= P(u > 3) = 0.3, so q* = 3.

    s(2) = 1.6 - 0.70 = 0.90, s(3) = 2.2 - 1.05 = 1.15, s(5) = 2.8 - 1.75 = 1.05.
    """
    u = np.array([0, 1, 1, 2, 3, 3, 3, 5, 8, 10], dtype=float)
    assert levels.optimal_level(u, 0.35) == 3.0
    assert levels.quantile_level(u, 0.35) == 3.0
    assert levels.savings_per_hour(u, 0.35, [2.0, 3.0, 5.0]) == pytest.approx([0.90, 1.15, 1.05])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 12), min_size=1, max_size=60), st.floats(0.05, 0.95))
def test_argmax_and_quantile_agree_on_any_distribution(values, ratio):
    u = np.array(values, dtype=float) * 1.7
    best = levels.optimal_level(u, ratio)
    assert best == levels.quantile_level(u, ratio)
    candidates = np.unique(np.concatenate(([0.0], u)))
    assert levels.savings_per_hour(u, ratio, best)[0] == pytest.approx(levels.savings_per_hour(u, ratio, candidates).max())


def test_no_commitment_when_the_rate_is_not_below_on_demand():
    assert levels.optimal_level(np.array([3.0, 4.0]), 1.0) == 0.0


def test_payback_of_a_fully_used_commitment_is_the_term_times_the_rate_ratio():
    """d = 0.6 used every hour: 12 months x 0.6 = 7.2 months to repay an all-upfront year."""
    res = levels.outcome(np.full(100, 40.0), 0.6, 40.0)
    assert res.payback_months(1) == pytest.approx(7.2)
    assert res.payback_months(3) == pytest.approx(21.6)


# ------------------------------------------------------------------------------------- hourly usage


def test_hourly_usage_counts_an_instance_in_each_hour_it_published_and_fills_the_rest_with_zero():
    counts = np.zeros(HOURS, dtype=int)
    counts[5:9] = 1
    res, builder = fleet(counts, DAYS)
    frame = hourly_usage(snapshot_of(res, builder, DAYS))
    assert tuple(frame.columns) == HOURLY_USAGE_COLUMNS
    assert len(frame) == HOURS  # every hour of the window, one type
    assert frame["instances"].to_numpy().tolist() == counts.tolist()


def test_spot_instances_are_not_committed_to():
    res, builder = fleet(steady(3), DAYS)
    res[0] = replace(res[0], pricing_model=PricingModel.SPOT)
    frame = hourly_usage(snapshot_of(res, builder, DAYS))
    assert (frame["instances"] == 2).all()


# ----------------------------------------------------------------------------------------- the level


def test_a_steady_fleet_of_four_is_committed_at_four_with_exact_savings():
    """4 x $10/h always on, d = 0.6: 730 x (40 - 24) = $11,680 a month, 100 % utilized and covered."""
    res, builder = fleet(steady(4), DAYS)
    rec = only(recommend(snapshot_of(res, builder, DAYS, rates(ec2_sp_1=0.6)))[0])
    ev = rec.evidence
    assert ev["level_instances"] == 4.0
    assert ev["level_gpus"] == 32.0
    assert ev["hourly_commitment_usd"] == 24.0
    assert rec.monthly_savings_usd == Decimal("11680.00")
    assert ev["expected_utilization"] == 1.0
    assert ev["coverage"] == 1.0
    assert ev["payback_months"] == 7.2


def test_diurnal_fleet_at_a_shallow_discount_commits_to_the_always_on_base():
    """2 always + 2 for 10 h a day: P(u >= 4) = 10/24 < d = 0.6, so q = 2; 730 x (20 - 12) = $5,840."""
    res, builder = fleet(diurnal(DAYS, 2, 2), DAYS)
    rec = only(recommend(snapshot_of(res, builder, DAYS, rates(ec2_sp_1=0.6)))[0])
    assert rec.evidence["level_instances"] == 2.0
    assert rec.monthly_savings_usd == Decimal("5840.00")
    assert rec.evidence["coverage"] == pytest.approx(20 / (20 + 20 * 10 / 24), abs=1e-4)


def test_diurnal_fleet_at_a_deep_discount_commits_to_the_peak():
    """d = 0.3 < 10/24: q = 4; 730 x (20 + 20 x 10/24 - 12) = $11,923.33; utilization 28.33/40."""
    res, builder = fleet(diurnal(DAYS, 2, 2), DAYS)
    rec = only(recommend(snapshot_of(res, builder, DAYS, rates(ec2_sp_1=0.3)))[0])
    assert rec.evidence["level_instances"] == 4.0
    assert rec.monthly_savings_usd == Decimal("11923.33")
    assert rec.evidence["expected_utilization"] == pytest.approx(0.7083, abs=1e-4)


def test_too_short_a_lookback_gives_no_finding_and_says_why():
    res, builder = fleet(steady(4, days=5), 5)
    recs, gaps = recommend(snapshot_of(res, builder, 5, rates(ec2_sp_1=0.6)))
    assert recs == []
    [gap] = gaps
    assert gap.what == "analysis" and "7 days" in gap.reason and "5.0 days" in gap.reason


def test_pools_without_commitment_rates_are_named_in_one_gap_per_cloud():
    p4d, b1 = fleet(steady(4), DAYS)
    p5, b2 = fleet(steady(2), DAYS, itype="p5.48xlarge", prefix="h")
    b1.parts += b2.parts
    recs, gaps = recommend(snapshot_of(p4d + p5, b1, DAYS))
    assert recs == []
    [gap] = gaps
    assert gap.what == "prices" and "p4d in us-east-1" in gap.reason and "p5 in us-east-1" in gap.reason


def test_savings_below_the_minimum_give_no_finding():
    res, builder = fleet(steady(1), DAYS)
    snap = snapshot_of(res, builder, DAYS, rates(ec2_sp_1=0.99))  # 730 x 0.1 = $73 a month
    assert recommend(snap)[0] != []
    assert recommend(snap, CommitmentSettings(min_monthly_savings_usd=Decimal(100)))[0] == []


# ------------------------------------------------------------------------------- sources and coverage


def test_existing_billing_coverage_is_taken_off_before_sizing():
    """4 instances, 1 already under a commitment every hour: the new commitment covers the other 3."""
    res, builder = fleet(steady(4), DAYS)
    bill = billing(billing_hourly(steady(4), DAYS, committed=1.0))
    rec = only(recommend(snapshot_of(res, builder, DAYS, rates(ec2_sp_1=0.6), billing=bill))[0])
    assert rec.evidence["level_instances"] == 3.0
    assert rec.monthly_savings_usd == Decimal("8760.00")  # 730 x (30 - 18)
    assert rec.evidence["existing_coverage"]["coverage"] == 0.25
    assert rec.evidence["existing_coverage"]["committed_instance_hours"] == HOURS


def test_billing_hourly_usage_wins_over_telemetry():
    """Telemetry sees 4 instances, billing bills 2 an hour: billing is the source."""
    res, builder = fleet(steady(4), DAYS)
    bill = billing(billing_hourly(steady(2), DAYS))
    rec = only(recommend(snapshot_of(res, builder, DAYS, rates(ec2_sp_1=0.6), billing=bill))[0])
    assert rec.evidence["usage_source"] == "billing"
    assert rec.evidence["level_instances"] == 2.0


def test_billing_speaks_only_for_the_hours_its_exports_span():
    """Billing rows for the last 10 days of a 14-day window: the lookback is those 240 hours, not 336
    with 4 days of zeros (which would have sized the level below the 3 billed instances)."""
    res, builder = fleet(steady(4), DAYS)
    hourly = billing_hourly(steady(3), DAYS).iloc[4 * 24:]
    rec = only(recommend(snapshot_of(res, builder, DAYS, rates(ec2_sp_1=0.75), billing=billing(hourly)))[0])
    assert rec.evidence["lookback_hours"] == 240
    assert rec.evidence["level_instances"] == 3.0


def test_telemetry_is_the_source_when_billing_has_no_hourly_rows():
    res, builder = fleet(steady(4), DAYS)
    rec = only(recommend(snapshot_of(res, builder, DAYS, rates(ec2_sp_1=0.6), billing=billing()))[0])
    assert rec.evidence["usage_source"] == "telemetry"
    assert rec.evidence["level_instances"] == 4.0


def test_instances_being_stopped_are_not_committed_to():
    res, builder = fleet(steady(4), DAYS)
    snap = snapshot_of(res, builder, DAYS, rates(ec2_sp_1=0.6))
    rec = only(recommend(snap, exclude={res[0].ref.key})[0])
    assert rec.evidence["level_instances"] == 3.0
    assert rec.evidence["excluded_instances"] == [res[0].ref.key]


def test_instances_being_stopped_come_off_the_billed_hours_too():
    res, builder = fleet(steady(4), DAYS)
    snap = snapshot_of(res, builder, DAYS, rates(ec2_sp_1=0.6), billing=billing(billing_hourly(steady(4), DAYS)))
    rec = only(recommend(snap, exclude={res[0].ref.key})[0])
    assert rec.evidence["usage_source"] == "billing"
    assert rec.evidence["level_instances"] == 3.0


# ---------------------------------------------------------------------------------------- instruments


def test_the_instrument_saving_most_within_the_allowed_terms_is_chosen():
    res, builder = fleet(steady(4), DAYS)
    snap = snapshot_of(res, builder, DAYS, rates(compute_sp_1=0.7, ec2_sp_1=0.6, ri_1=0.55, ec2_sp_3=0.4))
    rec = only(recommend(snap)[0])
    assert rec.evidence["instrument"] == Instrument.AWS_RI.value
    assert rec.evidence["term_years"] == 1
    assert rec.monthly_savings_usd == Decimal("13140.00")  # 730 x 40 x 0.45
    alternatives = {(a["instrument"], a["term_years"]): a["monthly_savings_usd"] for a in rec.evidence["alternatives"]}
    assert alternatives == {(Instrument.AWS_EC2_INSTANCE_SP.value, 3): 17520.0,
                            (Instrument.AWS_EC2_INSTANCE_SP.value, 1): 11680.0,
                            (Instrument.AWS_COMPUTE_SP.value, 1): 8760.0}

    three = only(recommend(snap, CommitmentSettings(term_years=(1, 3)))[0])
    assert (three.evidence["instrument"], three.evidence["term_years"]) == (Instrument.AWS_EC2_INSTANCE_SP.value, 3)


def test_the_recommendation_is_advice_on_the_pool():
    res, builder = fleet(steady(4), DAYS)
    rec = only(recommend(snapshot_of(res, builder, DAYS, rates(ec2_sp_1=0.6)))[0])
    assert rec.kind == Kind.COMMITMENT and rec.action is None
    assert (rec.ref.account, rec.ref.region, rec.ref.id) == (res[0].ref.account, "us-east-1", "commitment:p4d")
    assert rec.instance_type == ITYPE
    assert rec.summary.startswith("Buy a 1-year EC2 Instance Savings Plan for p4d in us-east-1: $24.00/h")


def test_a_family_of_mixed_sizes_is_one_pool_in_on_demand_dollars():
    """2 x g5.xlarge ($1/h) + 1 x g5.12xlarge ($5/h) always on: u = $7/h, q = $7/h, no single type."""
    small, b1 = fleet(steady(2), DAYS, itype="g5.xlarge", prefix="s", gpus=1)
    big, b2 = fleet(steady(1), DAYS, itype="g5.12xlarge", prefix="b", gpus=4)
    b1.parts += b2.parts
    snap = snapshot_of(small + big, b1, DAYS, rates("g5.xlarge", on_demand=Decimal(1), ec2_sp_1=0.6)
                       + rates("g5.12xlarge", on_demand=Decimal(5), ec2_sp_1=0.6),
                       prices={("us-east-1", "g5.xlarge"): Decimal(1), ("us-east-1", "g5.12xlarge"): Decimal(5)})
    rec = only(recommend(snap)[0])
    assert rec.ref.id == "commitment:g5" and rec.instance_type is None
    assert rec.evidence["level_usd_per_hour"] == 7.0 and rec.evidence["level_instances"] is None
    assert rec.monthly_savings_usd == Decimal("2044.00")  # 730 x 7 x 0.4


@pytest.mark.parametrize(("cloud", "itype", "pool"), [
    ("aws", "p4d.24xlarge", "p4d"),
    ("gcp", "a2-highgpu-8g", "a2"),
    ("gcp", "g2-standard-8", "g2"),
    ("gcp", "n1-standard-8+1xnvidia-tesla-t4", "nvidia-tesla-t4"),
    ("azure", "Standard_NC24ads_A100_v4", "Standard_NC24ads_A100_v4"),
])
def test_pools_are_families_series_gpu_types_and_sizes(cloud, itype, pool):
    assert pool_of(cloud, itype) == pool


def test_a_longer_steadier_lookback_earns_more_confidence():
    long_res, b1 = fleet(steady(4, days=30), 30)
    short_res, b2 = fleet(steady(4, days=8), 8)
    long_rec = only(recommend(snapshot_of(long_res, b1, 30, rates(ec2_sp_1=0.6)))[0])
    short_rec = only(recommend(snapshot_of(short_res, b2, 8, rates(ec2_sp_1=0.6)))[0])
    assert long_rec.confidence > short_rec.confidence


# ---------------------------------------------------------------------------------------------- billing


def test_billing_summary_from_the_focus_commitment_scenarios():
    """FOCUS scenarios: a large VM fully covered (list $3.00, effective $1.50, commitment 100 % used), a
    medium VM on demand ($2.00) beside a commitment 0 % used ($1.50 unused), and usage scenario 3
    (a commitment 75 % used: $0.75 used, $0.25 unused)."""
    data = billing(
        resources=[
            ResourceBilling("Cloud", "my-large-vm-id", "us-east-1", "VM_LARGE", 1.0, 1.0, Decimal("0.00"),
                            Decimal("1.50"), Decimal("3.00"), ("c-full",)),
            ResourceBilling("Cloud", "my-medium-vm-id", "us-east-1", "VM_MEDIUM", 1.0, 0.0, Decimal("2.00"),
                            Decimal("2.00"), Decimal("2.00")),
        ],
        commitments=[
            CommitmentUse("c-full", "Cloud", "Reserved Instance", Decimal("1.50"), Decimal(0)),
            CommitmentUse("c-idle", "Cloud", "Reserved Instance", Decimal(0), Decimal("1.50")),
            CommitmentUse("c-75", "Cloud", "Savings Plan", Decimal("0.75"), Decimal("0.25")),
        ],
    )
    summary = billing_commitment_summary(data)
    assert summary["coverage"] == 0.5  # 1 committed hour of 2
    assert summary["utilization"] == 0.5625  # 2.25 used of 4.00
    assert summary["effective_savings_rate"] == 0.3  # 1 - 3.50 / 5.00
    assert [c["utilization"] for c in summary["commitments"]] == [1.0, 0.0, 0.75]
    assert billing_commitment_summary(None) is None


def test_billing_from_another_period_leaves_the_telemetry_in_charge():
    # exports of an older month share no hour with the window: sizing falls back to telemetry, no error
    days = 10
    res, builder = fleet(np.full(days * 24, 2), days)
    old = billing_hourly(np.full(days * 24, 5), days)
    old["ts"] = old["ts"] - pd.Timedelta(days=400)
    snap = snapshot_of(res, builder, days, rates(ec2_sp_1=0.6), billing=billing(old))
    recs, _ = recommend(snap)
    assert [r.evidence["usage_source"] for r in recs] == ["telemetry"]
    assert recs[0].evidence["level_instances"] == 2


def _sized(instances: np.ndarray, ratio: float = 0.6):
    rate = rates(ri_1=ratio)
    od = float(ON_DEMAND)
    return levels.size(instances * od, np.array([1.0]), [od], rate), od


def test_a_pool_shrinking_through_the_lookback_is_sized_below_its_lookback_optimum():
    days = 14
    instances = np.repeat(np.linspace(12, 6, days).round(), 24)  # the floor falls from 12 to 6 instances
    option, od = _sized(instances)
    assert option.uncapped_level == pytest.approx(levels.whole_units_level(instances * od, 0.6, od))
    assert option.result.level < option.uncapped_level
    assert option.result.level / od <= 6  # no more than the latest week runs, carried down the trend
    assert option.figures()["capped_by_recent_decline"] is True


def test_a_burst_early_in_the_lookback_does_not_read_as_a_decline():
    days = 14
    instances = np.full(days * 24, 5.0)
    instances[24:96] = 9  # three days of a burst in the first week; the floor stays at 5
    option, od = _sized(instances)
    assert option.uncapped_level is None
    assert option.result.level == pytest.approx(5 * od)


def test_steady_usage_keeps_the_exact_optimum():
    option, od = _sized(np.full(21 * 24, 4.0))
    assert option.uncapped_level is None and option.result.level == pytest.approx(4 * od)
