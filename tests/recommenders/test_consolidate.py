"""``consolidate``: mostly idle single-GPU workloads packed onto fewer instances (hand-built snapshots)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import numpy as np
import pytest

from providers.model import (
    HOURS_PER_MONTH,
    Accelerators,
    Cloud,
    Metric,
    PricingModel,
    Resource,
    ResourceRef,
    ResourceState,
)
from recommenders import consolidate
from recommenders.consolidate import ConsolidateSettings
from recommenders.idle import IdleSettings, classify
from recommenders.model import Kind, Risk
from tests.builders import FrameBuilder, snapshot, times, window

HOUR = timedelta(hours=1)
WIN = window(days=14, period=HOUR)
STAMPS = times(WIN, HOUR)
T4_HOURLY = Decimal("0.526")  # g4dn.xlarge, us-east-1


def gpu_box(name: str, region: str = "us-east-1", model: str = "T4", memory_gib: float = 16.0,
            itype: str = "g4dn.xlarge", vcpu: int = 4, gpus: int = 1) -> Resource:
    return Resource(ResourceRef(Cloud.AWS, "111122223333", region, f"i-{name}"), itype, ResourceState.RUNNING,
                    PricingModel.ON_DEMAND, Accelerators(model, gpus, memory_gib), tags={"Name": name}, vcpu=vcpu)


def steady(pct: float) -> np.ndarray:
    return np.full(len(STAMPS), pct)


def run(fleet: list[tuple[Resource, np.ndarray, float | None, float | None]], settings: ConsolidateSettings | None = None,
        exclude: tuple[Resource, ...] = ()):
    """fleet: (resource, GPU utilization per hour, peak GPU memory MiB or None, CPU % or None)."""
    builder = FrameBuilder()
    for res, util, mem, cpu in fleet:
        builder.gpu_util(res, STAMPS, util)
        if mem is not None:
            builder.add(res, Metric.GPU_MEM_USED, STAMPS, np.full(len(STAMPS), mem), gpu=0)
        if cpu is not None:
            builder.add(res, Metric.CPU_UTIL, STAMPS, np.full(len(STAMPS), cpu))
    resources = [f[0] for f in fleet]
    snap = snapshot(resources, builder.frame(), WIN, HOUR, hourly=T4_HOURLY)
    idle = classify(snap.usage, resources, snap.window, IdleSettings())
    return consolidate.recommend(snap, idle, {r.ref.key: r for r in resources}, settings or ConsolidateSettings(),
                                 IdleSettings(), exclude={r.ref.key for r in exclude})


def by_name(recs):
    return {r.name: r for r in recs}


def test_three_mostly_idle_t4_workloads_are_packed_onto_the_busiest():
    a, b, c = gpu_box("a"), gpu_box("b"), gpu_box("c")
    recs = run([(a, steady(28), 3000, 10), (b, steady(25), 3000, 10), (c, steady(20), 3000, 10)])

    assert set(by_name(recs)) == {"b", "c"}  # 73 % x 1.2 = 87.6 % <= 100 %: one GPU holds all three
    for rec in recs:
        assert rec.kind == Kind.CONSOLIDATE and rec.action is None and rec.risk == Risk.MEDIUM
        assert rec.evidence["move_onto"]["resource_id"] == "i-a"
        assert rec.monthly_savings_usd == (T4_HOURLY * HOURS_PER_MONTH).quantize(Decimal("0.01"))  # 383.98
        assert 0.5 <= rec.confidence <= 0.7
    assert sum(r.monthly_savings_usd for r in recs) == Decimal("767.96")


def test_evidence_names_the_bin_the_method_and_the_cost_of_sharing():
    a, b = gpu_box("a"), gpu_box("b")
    [rec] = run([(a, steady(22), 4000, 10), (b, steady(12), 2000, 20)])

    ev = rec.evidence
    assert [m["resource_id"] for m in ev["members"]] == ["i-a", "i-b"]
    assert ev["combined_gpu_util_pct"] == pytest.approx(34.0)
    assert ev["combined_gpu_memory_peak_mib"] == 6000
    assert ev["combined_cpu_vcpus"] == pytest.approx(0.4 + 0.8)
    assert ev["method"] == "first-fit-decreasing"
    assert ev["packing"] == [{"host": "i-a", "host_name": "a", "members": ["i-a", "i-b"], "combined_gpu_util_pct": 34.0,
                              "combined_gpu_memory_peak_mib": 6000.0, "combined_cpu_vcpus": 1.2}]
    assert (ev["instances_before"], ev["instances_after"]) == (2, 1)
    assert "MPS" in ev["notes"][0] and "contention" in ev["notes"][0]


def test_bursts_at_different_times_share_a_gpu_that_summed_peaks_would_not_fit():
    """Each bursts to 30 % a third of the time, at its own hours: summed peaks 90 % x 1.2 > 100 %, the series 40 %."""
    hour = np.arange(len(STAMPS)) % 3
    fleet = [(gpu_box(n), np.where(hour == i, 30.0, 5.0), 2000, 5) for i, n in enumerate("abc")]

    recs = run(fleet)

    assert len(recs) == 2
    assert recs[0].evidence["combined_gpu_util_pct"] == pytest.approx(40.0)


def test_a_busy_workload_is_never_packed():
    busy, b, c = gpu_box("busy"), gpu_box("b"), gpu_box("c")
    recs = run([(busy, steady(80), 3000, 10), (b, steady(20), 3000, 10), (c, steady(15), 3000, 10)])

    assert [r.name for r in recs] == ["c"]
    assert recs[0].evidence["move_onto"]["resource_id"] == "i-b"
    assert all("i-busy" not in b["members"] for b in recs[0].evidence["packing"])


def test_nothing_when_the_only_other_workload_is_busy():
    recs = run([(gpu_box("busy"), steady(31), 1000, 5), (gpu_box("quiet"), steady(2), 1000, 5)])
    assert recs == []


@pytest.mark.parametrize(("mem_mib", "packed"), [(7000, False), (6000, True)], ids=["7-GiB-each", "6-GiB-each"])
def test_memory_that_does_not_fit_two_on_one_gpu_keeps_separate_bins(mem_mib, packed):
    """T4: 16,384 MiB. 2 x 7,000 x 1.2 = 16,800 does not fit; 2 x 6,000 x 1.2 = 14,400 does."""
    recs = run([(gpu_box("a"), steady(10), mem_mib, 5), (gpu_box("b"), steady(10), mem_mib, 5)])
    assert bool(recs) is packed


def test_cpu_demand_must_fit_the_host():
    """4 vCPUs each at 50 %: 2 + 2 vCPUs x 1.2 = 4.8 > 4 on the host."""
    recs = run([(gpu_box("a"), steady(10), 1000, 50), (gpu_box("b"), steady(10), 1000, 50)])
    assert recs == []


def test_different_gpu_models_are_not_mixed():
    t4 = gpu_box("t4")
    a10g = gpu_box("a10g", model="A10G", memory_gib=22.35, itype="g5.xlarge")
    assert run([(t4, steady(10), 1000, 5), (a10g, steady(10), 1000, 5)]) == []


def test_different_regions_are_not_mixed():
    east, west = gpu_box("east"), gpu_box("west", region="us-west-2")
    assert run([(east, steady(10), 1000, 5), (west, steady(10), 1000, 5)]) == []


@pytest.mark.parametrize("missing", ["memory", "cpu"])
def test_a_workload_without_memory_or_cpu_data_is_not_a_candidate(missing):
    quiet = (gpu_box("quiet"), steady(10), None if missing == "memory" else 1000, None if missing == "cpu" else 5)
    assert run([(gpu_box("a"), steady(10), 1000, 5), quiet]) == []


def test_multi_gpu_instances_are_left_out():
    big = gpu_box("big", itype="g4dn.12xlarge", vcpu=48, gpus=4)
    assert run([(gpu_box("a"), steady(10), 1000, 5), (big, [steady(10)] * 4, 1000, 5)]) == []


def test_excluded_instances_are_left_out():
    a, b = gpu_box("a"), gpu_box("b")
    fleet = [(a, steady(10), 1000, 5), (b, steady(10), 1000, 5)]
    assert len(run(fleet)) == 1
    assert run(fleet, exclude=(b,)) == []


def test_too_little_data_is_no_candidate():
    """168 h of known telemetry are needed; this one has 100 h."""
    young = np.where(np.arange(len(STAMPS)) >= len(STAMPS) - 100, 10.0, np.nan)
    assert run([(gpu_box("a"), steady(10), 1000, 5), (gpu_box("young"), young, 1000, 5)]) == []


def test_host_metrics_are_wanted_for_possible_candidates_only():
    quiet, busy, big = gpu_box("quiet"), gpu_box("busy"), gpu_box("big", gpus=4)
    frame = FrameBuilder().gpu_util(quiet, STAMPS, steady(10)).gpu_util(busy, STAMPS, steady(60)) \
        .gpu_util(big, STAMPS, [steady(10)] * 4).frame()
    assert consolidate.host_metrics_keys(frame, ConsolidateSettings()) == {quiet.ref.key}
