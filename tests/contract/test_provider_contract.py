"""The provider contract (``providers.base.Provider``), one behaviour per test, run on AWS, GCP and Azure.

Every provider is the real one over its real SDK, against the cloud's local emulators (``harness.py``):
inventory, GPU detection, usage columns and units, gaps for missing telemetry, error translation, pagination,
call counting, and the whole audit verdict path on a small fleet.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from agent.audit import AuditRequest, run_audit
from agent.clock import FixedClock
from agent.progress import QuietProgress
from providers.errors import AuthError, NotFound, ProviderError, Throttled
from providers.model import INSTANCE_LEVEL, USAGE_COLUMNS, Metric, Resource, ResourceRef, ResourceState
from recommenders.model import Kind
from tests.contract.harness import HOURS, NOW, PERIOD, TIMES, WINDOW, Harness

HOUR_OF = np.repeat(np.arange(HOURS), 2)  # the hour (0..71) of each sample in TIMES
HALF = np.tile(np.arange(2), HOURS)  # first (hh:10) or second (hh:40) sample of its hour


def by_id(resources: Sequence[Resource]) -> dict[str, Resource]:
    return {r.ref.id: r for r in resources}


def hourly(values: np.ndarray, how: str) -> pd.Series:
    """What a provider must report per period for samples on TIMES: the hour's max or mean, at the hour start."""
    return getattr(pd.Series(values, index=TIMES).resample(PERIOD), how)()


def rows(frame: pd.DataFrame, key: str, metric: Metric, gpu: int) -> pd.Series:
    sel = frame[(frame["resource"].astype(str) == key) & (frame["metric"] == metric.value) & (frame["gpu"] == gpu)]
    return sel.set_index("ts")["value"].sort_index()


# 1. inventory -------------------------------------------------------------------------------------------------
def test_inventory_lists_the_regions_vms_with_their_fields(harness: Harness) -> None:
    running = harness.add_gpu_vm_without_telemetry("train-a", tags={"team": "ml", "env": "prod"})
    cpu = harness.add_cpu_vm("web-a", tags={"team": "web"})
    stopped = harness.add_stopped_gpu_vm("train-b", tags={"team": "ml"})
    harness.add_cpu_vm("web-far", region=harness.other_region, tags={"team": "web"})

    found = by_id(harness.provider().resources(harness.region))

    assert sorted(found) == sorted([running.id, cpu.id, stopped.id])  # nothing from the other region
    for vm in (running, cpu, stopped):
        res = found[vm.id]
        assert res.ref == ResourceRef(harness.cloud, harness.account, harness.region, vm.id)
        assert res.instance_type == vm.instance_type
        assert res.state == (ResourceState.RUNNING if vm.running else ResourceState.STOPPED)
        assert dict(res.tags) == dict(vm.tags)
        assert res.has_gpu is (vm.gpus > 0)


# 2. GPU detection -------------------------------------------------------------------------------------------
def test_gpu_count_and_model_come_from_the_instance_type(harness: Harness) -> None:
    one = harness.add_gpu_vm_without_telemetry("one-gpu", 1)
    four = harness.add_gpu_vm_without_telemetry("four-gpu", 4)
    cpu = harness.add_cpu_vm("no-gpu")

    found = by_id(harness.provider().resources(harness.region))

    for vm in (one, four):
        accel = found[vm.id].accelerators
        assert accel is not None and (accel.count, accel.model) == (vm.gpus, vm.gpu_model)
    assert found[cpu.id].accelerators is None and not found[cpu.id].has_gpu


# 3. usage ---------------------------------------------------------------------------------------------------
def test_usage_rows_are_canonical_per_gpu_and_per_period(harness: Harness) -> None:
    util = np.stack([(7 * HOUR_OF + 13 * g + 40 * HALF) % 97 + 1.5 for g in range(4)])  # two different samples an hour
    cpu = (HOUR_OF % 30) + 4.0 * HALF + 1.0  # hourly mean: hour % 30 + 3
    net_in = 1_000.0 * (HOUR_OF + 1)  # bytes/s, constant within an hour
    net_out = 500.0 * (HOUR_OF % 5 + 1)
    vm = harness.add_gpu_vm("train-4", 4, util, cpu=cpu, net_in=net_in, net_out=net_out)
    provider = harness.provider()
    res = by_id(provider.resources(harness.region))[vm.id]

    result = provider.usage(harness.region, [res], WINDOW, PERIOD)
    frame = result.usage.frame

    assert tuple(frame.columns) == USAGE_COLUMNS
    assert set(frame["resource"].astype(str)) == {res.ref.key}
    assert set(frame["metric"].astype(str)) == {Metric.GPU_UTIL.value, Metric.CPU_UTIL.value, Metric.NET_IN.value,
                                                Metric.NET_OUT.value}
    assert str(frame["ts"].dt.tz) == "UTC"
    assert ((frame["ts"] - pd.Timestamp(WINDOW.start)) % PERIOD == pd.Timedelta(0)).all()
    gpus = frame.loc[frame["metric"] == Metric.GPU_UTIL.value, "gpu"]
    assert sorted(set(gpus)) == [0, 1, 2, 3]
    for g in range(4):
        pd.testing.assert_series_equal(rows(frame, res.ref.key, Metric.GPU_UTIL, g), hourly(util[g], "max"),
                                       check_names=False, check_freq=False, check_index_type=False, rtol=1e-6)
    for metric, values in ((Metric.CPU_UTIL, cpu), (Metric.NET_IN, net_in), (Metric.NET_OUT, net_out)):
        pd.testing.assert_series_equal(rows(frame, res.ref.key, metric, INSTANCE_LEVEL), hourly(values, "mean"),
                                       check_names=False, check_freq=False, check_index_type=False, rtol=1e-6,
                                       obj=metric.value)
    assert not [g for g in result.gaps if g.resource_id == vm.id]


# 4. gaps ----------------------------------------------------------------------------------------------------
def test_running_gpu_vm_without_gpu_telemetry_is_a_gap(harness: Harness) -> None:
    blind = harness.add_gpu_vm_without_telemetry("blind")
    provider = harness.provider()
    res = by_id(provider.resources(harness.region))[blind.id]

    result = provider.usage(harness.region, [res], WINDOW, PERIOD)

    gaps = [g for g in result.gaps if g.what == "gpu-telemetry"]
    assert [(g.cloud, g.account, g.region, g.resource_id) for g in gaps] == [
        (harness.cloud, harness.account, harness.region, blind.id)]
    assert gaps[0].hint and gaps[0].reason
    assert not (result.usage.frame["metric"] == Metric.GPU_UTIL.value).any()


def test_stopped_gpu_vm_without_telemetry_is_no_gap(harness: Harness) -> None:
    parked = harness.add_stopped_gpu_vm("parked")
    provider = harness.provider()
    res = by_id(provider.resources(harness.region))[parked.id]

    result = provider.usage(harness.region, [res], WINDOW, PERIOD)

    assert [g for g in result.gaps if g.resource_id == parked.id] == []


# 5. errors --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("kind", "error"), [("auth", AuthError), ("forbidden", AuthError),
                                             ("throttle_forever", Throttled)])
def test_inventory_failure_is_translated_to_one_line_naming_the_place(harness: Harness, kind: str,
                                                                     error: type[ProviderError]) -> None:
    harness.add_cpu_vm("web")
    harness.fail_next(kind)

    with pytest.raises(ProviderError) as caught:
        harness.provider().resources(harness.region)

    assert type(caught.value) is error
    text = str(caught.value)
    assert "\n" not in text and harness.operation in text


def test_inventory_of_an_account_that_does_not_exist_is_not_found(harness: Harness) -> None:
    missing = harness.missing_account()
    if missing is None:
        pytest.skip(harness.unsupported["not_found"])

    with pytest.raises(ProviderError) as caught:
        harness.provider(account=missing).resources(harness.region)

    assert type(caught.value) is NotFound
    text = str(caught.value)
    assert "\n" not in text and harness.operation in text and missing in text


def test_one_throttled_inventory_request_is_retried(harness: Harness) -> None:
    vm = harness.add_cpu_vm("web")
    harness.fail_next("throttle")

    found = harness.provider().resources(harness.region)

    assert [r.ref.id for r in found] == [vm.id]
    assert harness.inventory_requests() == 2  # the throttled one and its retry


# 6. pagination ----------------------------------------------------------------------------------------------
def test_inventory_follows_every_page(harness: Harness) -> None:
    seeded = [harness.add_cpu_vm(f"web-{i:03d}") for i in range(harness.page_size + 1)]
    provider = harness.provider()

    found = provider.resources(harness.region)

    assert sorted(r.ref.id for r in found) == sorted(vm.id for vm in seeded)
    assert harness.inventory_requests() >= 2
    assert provider.api_calls()[harness.operation] == harness.inventory_requests()  # one count per page


# 7. call counting -------------------------------------------------------------------------------------------
def test_api_calls_count_every_request_made(harness: Harness) -> None:
    vm = harness.add_gpu_vm("train", 1, np.full((1, len(TIMES)), 50.0))
    provider = harness.provider()
    res = by_id(provider.resources(harness.region))[vm.id]
    after_inventory = dict(provider.api_calls())
    provider.usage(harness.region, [res], WINDOW, PERIOD)

    calls = provider.api_calls()

    assert after_inventory.get(harness.operation) == 1
    assert calls and all(isinstance(k, str) and type(v) is int and v > 0 for k, v in calls.items())
    assert sum(calls.values()) > sum(after_inventory.values())  # the usage reads were counted too


# 8. the audit verdict path ----------------------------------------------------------------------------------
def test_audit_stops_the_idle_vm_spares_the_busy_one_and_reports_the_unmeasured_one(harness: Harness) -> None:
    idle = harness.add_gpu_vm("idle-box", 1, np.zeros((1, len(TIMES))), tags={"team": "ml"})
    busy = harness.add_gpu_vm("busy-box", 1, np.full((1, len(TIMES)), 90.0), cpu=40.0, net_in=3e7, net_out=3e7,
                              tags={"team": "ml"})
    blind = harness.add_gpu_vm_without_telemetry("blind-box", tags={"team": "ml"})
    request = AuditRequest(regions=(harness.region,), lookback=timedelta(days=3), period=timedelta(hours=1))

    outcome = run_audit(harness.provider(), request, FixedClock(NOW), QuietProgress())

    assert outcome.failures == ()
    verdicts = {vm.name: sorted(r.kind.value for r in outcome.analysis.recommendations if r.ref.id == vm.id)
                for vm in (idle, busy, blind)}
    assert verdicts == {"idle-box": [Kind.STOP.value], "busy-box": [], "blind-box": []}
    telemetry = [g for g in outcome.snapshot.gaps if g.what == "gpu-telemetry"]
    assert [g.resource_id for g in telemetry] == [blind.id]
