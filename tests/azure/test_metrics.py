"""Azure Monitor usage: per-GPU custom metrics (Telegraf nvidia_smi, or DCGM) plus the VM's CPU and network.

Real azure-mgmt-monitor clients against the local metrics emulator over HTTPS.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta

import pandas as pd
import pytest

from providers.azure import metrics
from providers.base import UsageResult
from providers.errors import AuthError, ProviderError, Throttled
from providers.model import INSTANCE_LEVEL, Metric, ResourceState, Window
from providers.sandbox.azure_monitor import AzureMonitorEmulator
from tests.azure.monitor_support import HOUR, NOW, REGION, SUB, hours, make_clients, vm

N_HOURS = 48
WINDOW = Window(NOW - N_HOURS * HOUR, NOW)
TEN_MIN = timedelta(minutes=10)


def util(k: int, gpu: int, j: int) -> float:
    """The j-th 10-minute sample of hour k on one GPU: the hour's maximum is the j == 5 sample."""
    return float((7 * k + 13 * gpu) % 90) + j


def seed_gpus(emu: AzureMonitorEmulator, name: str, gpus: int, *, host: str | None = None) -> None:
    rid = vm(name).ref.id
    for gpu in range(gpus):
        samples = [(t + j * TEN_MIN, util(k, gpu, j))
                   for k, t in enumerate(hours(WINDOW.start, N_HOURS)) for j in range(6)]
        emu.add_gpu_series(rid, gpu, "utilization_gpu", samples, host=host)
        emu.add_gpu_series(rid, gpu, "memory_used", [(t, 1000.0 + 10 * k + gpu) for k, t in enumerate(
            hours(WINDOW.start, N_HOURS))])
        emu.add_gpu_series(rid, gpu, "memory_total", [(t, 81920.0) for t in hours(WINDOW.start, N_HOURS)])
        emu.add_gpu_series(rid, gpu, "power_draw", [(t, 250.0 + gpu) for t in hours(WINDOW.start, N_HOURS)])


def cpu(k: int) -> float:
    return float(k % 40) + 0.25


def seed_host(emu: AzureMonitorEmulator, name: str) -> None:
    rid = vm(name).ref.id
    half = timedelta(minutes=30)
    times = hours(WINDOW.start, N_HOURS)
    emu.add_series(rid, "Percentage CPU", [(t + j * half, cpu(k) + j) for k, t in enumerate(times) for j in (0, 1)])
    for metric, per_sample in (("Network In Total", 3e5), ("Network Out Total", 6e5)):
        emu.add_series(rid, metric, [(t + j * half, per_sample * (k + 1)) for k, t in enumerate(times) for j in (0, 1)],
                       unit="Bytes")


def rows(frame: pd.DataFrame, name: str, metric: Metric, gpu: int) -> pd.DataFrame:
    key = vm(name).ref.key
    sel = frame[(frame["resource"] == key) & (frame["metric"] == metric.value) & (frame["gpu"] == gpu)]
    return sel.sort_values("ts")


@pytest.fixture
def emu() -> Iterator[AzureMonitorEmulator]:
    with AzureMonitorEmulator() as server:
        yield server


@dataclass(frozen=True)
class Fleet:
    result: UsageResult
    calls: dict[str, int]
    requests: list[str]


@pytest.fixture(scope="module")
def fleet() -> Iterator[Fleet]:
    """Seeded and read once: big (4 GPUs, host dimension), small (1 GPU), bare (no Telegraf), stopped."""
    with AzureMonitorEmulator() as emu:
        seed_gpus(emu, "big", 4, host="gpu-big-0")
        seed_gpus(emu, "small", 1)
        for name in ("big", "small", "bare"):
            seed_host(emu, name)
        emu.add_resource(vm("stopped").ref.id)
        clients = make_clients(emu)
        fleet = [vm("big", 4), vm("small"), vm("bare"), vm("stopped", state=ResourceState.STOPPED)]
        result = metrics.usage(clients, SUB, REGION, fleet, WINDOW, HOUR)
        yield Fleet(result, dict(clients.calls), list(emu.requests))


def test_rows_per_metric_and_gpu(fleet: Fleet) -> None:
    got = Counter((str(r), int(g), str(m)) for r, g, m in fleet.result.usage.frame[["resource", "gpu", "metric"]]
                  .itertuples(index=False))
    expected: Counter = Counter()
    for name, gpus in (("big", 4), ("small", 1)):
        key = vm(name).ref.key
        for gpu in range(gpus):
            expected[(key, gpu, Metric.GPU_UTIL.value)] = N_HOURS
            expected[(key, gpu, Metric.GPU_MEM_USED.value)] = N_HOURS
            expected[(key, gpu, Metric.GPU_MEM_TOTAL.value)] = 2  # one row a day
            expected[(key, gpu, Metric.GPU_POWER.value)] = N_HOURS
        for metric in (Metric.CPU_UTIL, Metric.NET_IN, Metric.NET_OUT):
            expected[(key, INSTANCE_LEVEL, metric.value)] = N_HOURS
    assert got == expected


def test_gpu_utilization_is_the_max_per_period_per_gpu(fleet: Fleet) -> None:
    frame = fleet.result.usage.frame
    for gpu in range(4):
        assert rows(frame, "big", Metric.GPU_UTIL, gpu)["value"].tolist() == [util(k, gpu, 5) for k in range(N_HOURS)]


def test_gpu_memory_round_trips(fleet: Fleet) -> None:
    frame = fleet.result.usage.frame
    assert rows(frame, "big", Metric.GPU_MEM_USED, 3)["value"].tolist() == [1003.0 + 10 * k for k in range(N_HOURS)]
    total = rows(frame, "big", Metric.GPU_MEM_TOTAL, 3)
    assert total["value"].tolist() == [81920.0, 81920.0]
    assert total["ts"].tolist() == [pd.Timestamp(WINDOW.start), pd.Timestamp(WINDOW.start + timedelta(days=1))]


def test_cpu_is_the_period_mean(fleet: Fleet) -> None:
    assert rows(fleet.result.usage.frame, "small", Metric.CPU_UTIL, INSTANCE_LEVEL)["value"].tolist() == [
        cpu(k) + 0.5 for k in range(N_HOURS)]


def test_network_total_becomes_bytes_per_second(fleet: Fleet) -> None:
    frame = fleet.result.usage.frame
    got_in = rows(frame, "big", Metric.NET_IN, INSTANCE_LEVEL)["value"].tolist()
    got_out = rows(frame, "big", Metric.NET_OUT, INSTANCE_LEVEL)["value"].tolist()
    assert got_in == pytest.approx([2 * 3e5 * (k + 1) / 3600 for k in range(N_HOURS)], rel=1e-12)
    assert got_out == pytest.approx([2 * 6e5 * (k + 1) / 3600 for k in range(N_HOURS)], rel=1e-12)


def test_timestamps_are_utc_interval_starts_inside_the_window(fleet: Fleet) -> None:
    frame = fleet.result.usage.frame
    assert str(frame["ts"].dt.tz) == "UTC"
    assert frame["ts"].min() == pd.Timestamp(WINDOW.start)
    assert frame["ts"].max() == pd.Timestamp(WINDOW.end - HOUR)


def test_running_gpu_vm_without_telegraf_is_a_gap_and_gets_no_host_rows(fleet: Fleet) -> None:
    [gap] = fleet.result.gaps  # the stopped VM has no telemetry either, but it is not running
    assert (gap.what, gap.resource_id, gap.account, gap.region) == ("gpu-telemetry", vm("bare").ref.id, SUB, REGION)
    assert "Telegraf/nvidia_smi" in gap.reason and "nvidia_smi" in gap.hint
    assert not (fleet.result.usage.frame["resource"] == vm("bare").ref.key).any()


def test_one_gpu_call_per_vm_and_one_host_call_per_measured_vm(fleet: Fleet) -> None:
    """One namespace list per VM (4); every GPU field in one request for the 2 VMs publishing Telegraf's
    namespace (the others are not asked for it), CPU and both network totals in another (2 measured VMs)."""
    assert fleet.calls == {"monitor.MetricNamespaces.List": 4, "monitor.Metrics.List": 4}
    gpu_calls = [r for r in fleet.requests if "metricnamespace=Telegraf" in r]
    assert len(gpu_calls) == 2
    assert all("metricnames=utilization_gpu%2Cmemory_used%2Cmemory_total%2Cpower_draw" in r for r in gpu_calls)
    host_calls = [r for r in fleet.requests if "Percentage%20CPU%2CNetwork%20In%20Total%2CNetwork%20Out%20Total" in r]
    assert len(host_calls) == 2


def test_host_metrics_only_for_the_vms_named(emu: AzureMonitorEmulator) -> None:
    seed_gpus(emu, "a", 1)
    seed_gpus(emu, "b", 1)
    seed_host(emu, "a")
    seed_host(emu, "b")
    seen: list[pd.DataFrame] = []

    def only_a(gpu_frame: pd.DataFrame) -> set[str]:
        seen.append(gpu_frame)
        return {vm("a").ref.key}

    clients = make_clients(emu)
    frame = metrics.usage(clients, SUB, REGION, [vm("a"), vm("b")], WINDOW, HOUR, host_metrics_for=only_a).usage.frame

    assert set(seen[0]["metric"].astype(str)) == {m.value for m in (Metric.GPU_UTIL, Metric.GPU_MEM_USED,
                                                                     Metric.GPU_MEM_TOTAL, Metric.GPU_POWER)}
    cpu_keys = set(frame.loc[frame["metric"] == Metric.CPU_UTIL.value, "resource"].astype(str))
    assert cpu_keys == {vm("a").ref.key}
    assert clients.calls["monitor.Metrics.List"] == 3


def test_progress_counts_every_call(emu: AzureMonitorEmulator) -> None:
    seed_gpus(emu, "a", 1)
    seed_host(emu, "a")
    emu.add_resource(vm("b").ref.id)
    seen: list[tuple[int, int]] = []
    metrics.usage(make_clients(emu), SUB, REGION, [vm("a"), vm("b")], WINDOW, HOUR,
                  on_progress=lambda done, total: seen.append((done, total)))
    assert seen == [(1, 4), (2, 4), (3, 3)]  # the total shrinks once the GPU answers show b has no telemetry


def test_progress_ends_complete_when_no_host_metrics_are_wanted(emu: AzureMonitorEmulator) -> None:
    emu.add_resource(vm("a").ref.id)
    seen: list[tuple[int, int]] = []
    metrics.usage(make_clients(emu), SUB, REGION, [vm("a")], WINDOW, HOUR,
                  on_progress=lambda done, total: seen.append((done, total)))
    assert seen[-1] == (1, 1)


def test_power_draw_is_the_hourly_mean(emu: AzureMonitorEmulator) -> None:
    rid = vm("p").ref.id
    emu.add_gpu_series(rid, 0, "utilization_gpu", [(t, 50.0) for t in hours(WINDOW.start, N_HOURS)])
    emu.add_gpu_series(rid, 0, "power_draw", [(t + j * TEN_MIN, 100.0 + 10 * j) for t in hours(WINDOW.start, N_HOURS)
                                              for j in range(6)])
    frame = metrics.usage(make_clients(emu), SUB, REGION, [vm("p")], WINDOW, HOUR).usage.frame
    assert rows(frame, "p", Metric.GPU_POWER, 0)["value"].tolist() == [125.0] * N_HOURS


def test_missing_telegraf_fields_fall_back_to_the_published_ones(emu: AzureMonitorEmulator) -> None:
    """A Telegraf publishing utilization only: the 400 for the other fields leads to one definitions call."""
    rid = vm("u").ref.id
    emu.add_gpu_series(rid, 0, "utilization_gpu", [(t, 42.0) for t in hours(WINDOW.start, N_HOURS)])
    emu.add_gpu_series(rid, 1, "utilization_gpu", [(t, 7.0) for t in hours(WINDOW.start, N_HOURS)])
    clients = make_clients(emu)
    result = metrics.usage(clients, SUB, REGION, [vm("u", 2)], WINDOW, HOUR, host_metrics_for=lambda f: set())
    assert rows(result.usage.frame, "u", Metric.GPU_UTIL, 1)["value"].tolist() == [7.0] * N_HOURS
    assert result.gaps == ()
    assert clients.calls == {"monitor.MetricNamespaces.List": 1, "monitor.Metrics.List": 2,
                             "monitor.MetricDefinitions.List": 1}


def test_series_without_an_index_dimension_is_instance_level(emu: AzureMonitorEmulator) -> None:
    emu.add_series(vm("n").ref.id, "utilization_gpu", [(t, 33.0) for t in hours(WINDOW.start, N_HOURS)],
                   namespace="Telegraf/nvidia_smi", dimensions={"host": "n"})
    frame = metrics.usage(make_clients(emu), SUB, REGION, [vm("n")], WINDOW, HOUR,
                          host_metrics_for=lambda f: set()).usage.frame
    assert rows(frame, "n", Metric.GPU_UTIL, INSTANCE_LEVEL)["value"].tolist() == [33.0] * N_HOURS


def test_telegraf_series_without_points_in_the_window_is_a_gap_saying_so(emu: AzureMonitorEmulator) -> None:
    emu.add_gpu_series(vm("old").ref.id, 0, "utilization_gpu", [(WINDOW.start - 5 * HOUR, 90.0)])
    result = metrics.usage(make_clients(emu), SUB, REGION, [vm("old")], WINDOW, HOUR)
    [gap] = result.gaps
    assert "no data points in the window" in gap.reason
    assert result.usage.frame.empty


def test_points_outside_the_window_are_dropped(emu: AzureMonitorEmulator) -> None:
    rid = vm("w").ref.id
    before = hours(WINDOW.start - 3 * HOUR, 3)
    after = hours(WINDOW.end, 2)  # the end is excluded: the window is half-open
    emu.add_gpu_series(rid, 0, "utilization_gpu", [(t, 99.0) for t in before + after] +
                       [(t, 5.0) for t in hours(WINDOW.start, N_HOURS)])
    frame = metrics.usage(make_clients(emu), SUB, REGION, [vm("w")], WINDOW, HOUR,
                          host_metrics_for=lambda f: set()).usage.frame
    sel = rows(frame, "w", Metric.GPU_UTIL, 0)
    assert len(sel) == N_HOURS and set(sel["value"]) == {5.0}


def test_long_windows_are_read_in_30_day_chunks(emu: AzureMonitorEmulator) -> None:
    window = Window(NOW - timedelta(days=45), NOW)
    rid = vm("long").ref.id
    for field in metrics.GPU_FIELDS:  # everything a default Telegraf publishes: no fallback call
        emu.add_gpu_series(rid, 0, field, [(t, 60.0) for t in hours(window.start, 45 * 24)])
    clients = make_clients(emu)
    frame = metrics.usage(clients, SUB, REGION, [vm("long")], window, HOUR,
                          host_metrics_for=lambda f: set()).usage.frame
    assert len(rows(frame, "long", Metric.GPU_UTIL, 0)) == 45 * 24
    assert clients.calls == {"monitor.MetricNamespaces.List": 1, "monitor.Metrics.List": 2}


@pytest.mark.parametrize("period, interval", [(timedelta(minutes=5), "PT5M"), (timedelta(days=1), "P1D")])
def test_period_maps_to_the_interval(emu: AzureMonitorEmulator, period: timedelta, interval: str) -> None:
    seed_gpus(emu, "i", 1)
    metrics.usage(make_clients(emu), SUB, REGION, [vm("i")], WINDOW, period, host_metrics_for=lambda f: set())
    assert emu.count(f"interval={interval}&") == 1


def test_unsupported_period_is_refused_naming_the_allowed_ones(emu: AzureMonitorEmulator) -> None:
    clients = make_clients(emu)
    with pytest.raises(ProviderError, match="PT1M, PT5M, PT15M, PT30M, PT1H, PT6H, PT12H, P1D"):
        metrics.usage(clients, SUB, REGION, [vm("x")], WINDOW, timedelta(minutes=10))
    assert emu.requests == []


def test_throttling_is_retried(emu: AzureMonitorEmulator) -> None:
    seed_gpus(emu, "t", 1)
    emu.throttle_next(2)
    clients = make_clients(emu)
    result = metrics.usage(clients, SUB, REGION, [vm("t")], WINDOW, HOUR, host_metrics_for=lambda f: set())
    assert len(rows(result.usage.frame, "t", Metric.GPU_UTIL, 0)) == N_HOURS
    assert emu.count("/metricNamespaces?") == 3  # the first request answered 429 twice
    assert clients.calls == {"monitor.MetricNamespaces.List": 1, "monitor.Metrics.List": 1}  # retried in azure-core


def test_throttling_past_the_retries_is_throttled(emu: AzureMonitorEmulator) -> None:
    emu.add_resource(vm("t").ref.id)
    emu.fail_next(429, count=10)
    with pytest.raises(Throttled, match="monitor.MetricNamespaces.List"):
        metrics.usage(make_clients(emu, retry_total=2), SUB, REGION, [vm("t")], WINDOW, HOUR)


def test_unknown_vm_is_a_usage_gap_not_a_failure(emu: AzureMonitorEmulator) -> None:
    seed_gpus(emu, "ok", 1)
    result = metrics.usage(make_clients(emu), SUB, REGION, [vm("gone"), vm("ok")], WINDOW, HOUR,
                           host_metrics_for=lambda f: set())
    [gap] = result.gaps
    assert (gap.what, gap.resource_id) == ("usage", vm("gone").ref.id)
    assert "404" in gap.reason and "ResourceNotFound" in gap.reason
    assert len(rows(result.usage.frame, "ok", Metric.GPU_UTIL, 0)) == N_HOURS


def test_forbidden_is_a_gap_with_the_role_to_grant(emu: AzureMonitorEmulator) -> None:
    emu.add_resource(vm("f").ref.id)
    emu.fail_next(403, message="does not have authorization to perform action 'Microsoft.Insights/metrics/read'")
    [gap] = metrics.usage(make_clients(emu), SUB, REGION, [vm("f")], WINDOW, HOUR).gaps
    assert gap.what == "usage" and "Monitoring Reader" in gap.hint


def test_unauthenticated_is_an_auth_error(emu: AzureMonitorEmulator) -> None:
    emu.fail_next(401, message="token expired")
    with pytest.raises(AuthError, match="monitor.MetricNamespaces.List"):
        metrics.usage(make_clients(emu), SUB, REGION, [vm("a")], WINDOW, HOUR)


def test_server_error_past_the_retries_is_a_provider_error(emu: AzureMonitorEmulator) -> None:
    emu.fail_next(500, count=10)
    with pytest.raises(ProviderError, match="HTTP 500"):
        metrics.usage(make_clients(emu, retry_total=1), SUB, REGION, [vm("a")], WINDOW, HOUR)


def test_no_resources_no_calls(emu: AzureMonitorEmulator) -> None:
    result = metrics.usage(make_clients(emu), SUB, REGION, [], WINDOW, HOUR)
    assert result.usage.frame.empty and result.gaps == () and emu.requests == []


def test_works_as_an_extension_of_the_arm_emulator() -> None:
    """The demo's wiring: metrics routes inside the ARM emulator, VMs known from its inventory."""
    from providers.sandbox.azure_arm import AzureArmEmulator
    from providers.sandbox.azure_monitor import AzureMonitorExtension

    ext = AzureMonitorExtension()
    with AzureArmEmulator(extensions=[ext]) as arm:
        arm.add_vm(SUB, "rg-gpu", "armvm", "Standard_NC24ads_A100_v4", REGION)
        arm.add_vm(SUB, "rg-gpu", "quiet", "Standard_NC24ads_A100_v4", REGION)
        ext.add_gpu_series(vm("armvm").ref.id, 0, "utilization_gpu", [(t, 12.0) for t in hours(WINDOW.start, N_HOURS)])
        result = metrics.usage(make_clients(arm), SUB, REGION, [vm("armvm"), vm("quiet")], WINDOW, HOUR,
                               host_metrics_for=lambda f: set())
    assert rows(result.usage.frame, "armvm", Metric.GPU_UTIL, 0)["value"].tolist() == [12.0] * N_HOURS
    [gap] = result.gaps  # the ARM VM without Telegraf is known (not a 404) and has no GPU telemetry
    assert (gap.what, gap.resource_id) == ("gpu-telemetry", vm("quiet").ref.id)


def test_seeding_takes_pairs_or_arrays() -> None:
    """The emulator's two seeding forms give the same series (outside testers seed fleets with either)."""
    times = pd.date_range(WINDOW.start, periods=N_HOURS, freq="h")
    values = [float(k % 10) for k in range(N_HOURS)]
    with AzureMonitorEmulator() as emu:
        emu.add_gpu_series(vm("pairs").ref.id, 0, "utilization_gpu", list(zip(times.to_pydatetime(), values)))
        emu.add_gpu_series(vm("arrays").ref.id, 0, "utilization_gpu", (times, values))
        emu.add_gpu_series(vm("two").ref.id, 0, "utilization_gpu", ((WINDOW.start, 1.0), (WINDOW.start + HOUR, 2.0)))
        frame = metrics.usage(make_clients(emu), SUB, REGION, [vm("pairs"), vm("arrays"), vm("two")], WINDOW, HOUR,
                              host_metrics_for=lambda f: set()).usage.frame
    assert rows(frame, "pairs", Metric.GPU_UTIL, 0)["value"].tolist() == values
    assert rows(frame, "arrays", Metric.GPU_UTIL, 0)["value"].tolist() == values
    assert rows(frame, "two", Metric.GPU_UTIL, 0)["value"].tolist() == [1.0, 2.0]


# -- DCGM (dcgm-exporter through Telegraf's prometheus input, or any custom namespace) ---------------------------
FB_TOTAL = 81920.0


def used(k: int, gpu: int, j: int) -> float:
    """Frame buffer used (MiB) at the j-th half hour of hour k: the hour's maximum is j == 1."""
    return 2000.0 + 10 * k + gpu + 500 * j


def seed_dcgm(emu: AzureMonitorEmulator, name: str, gpus: Sequence[int], *, metric_version: int = 2,
              namespace: str = "Telegraf/prometheus", util_field: str = "DCGM_FI_DEV_GPU_UTIL",
              scale: float = 1.0) -> None:
    """dcgm-exporter fields of some GPUs: utilization every 10 minutes, frame buffer used/free every 30."""
    rid = vm(name).ref.id
    times = hours(WINDOW.start, N_HOURS)
    half = timedelta(minutes=30)
    for gpu in gpus:
        series = {
            util_field: [(t + j * TEN_MIN, util(k, gpu, j) * scale) for k, t in enumerate(times) for j in range(6)],
            "DCGM_FI_DEV_FB_USED": [(t + j * half, used(k, gpu, j)) for k, t in enumerate(times) for j in (0, 1)],
            "DCGM_FI_DEV_FB_FREE": [(t + j * half, FB_TOTAL - used(k, gpu, j)) for k, t in enumerate(times)
                                    for j in (0, 1)],
        }
        for field, points in series.items():
            emu.add_dcgm_gpu_series(rid, gpu, field, points, namespace=namespace, metric_version=metric_version)


def no_hosts(frame: pd.DataFrame) -> set[str]:
    return set()


def test_vm_with_only_dcgm_metrics_is_measured_per_gpu(emu: AzureMonitorEmulator) -> None:
    """Telegraf/prometheus (metric_version 2): utilization is the period max per GPU, memory used the max,
    memory total FB_USED + FB_FREE from the averages (the sum of maxima would add 250 MiB)."""
    seed_dcgm(emu, "d", [0, 1])
    clients = make_clients(emu)
    result = metrics.usage(clients, SUB, REGION, [vm("d", 2)], WINDOW, HOUR, host_metrics_for=no_hosts)
    frame = result.usage.frame
    for gpu in (0, 1):
        assert rows(frame, "d", Metric.GPU_UTIL, gpu)["value"].tolist() == [util(k, gpu, 5) for k in range(N_HOURS)]
        assert rows(frame, "d", Metric.GPU_MEM_USED, gpu)["value"].tolist() == [used(k, gpu, 1)
                                                                                 for k in range(N_HOURS)]
        assert rows(frame, "d", Metric.GPU_MEM_TOTAL, gpu)["value"].tolist() == [FB_TOTAL, FB_TOTAL]
    assert result.gaps == ()
    # namespaces once, the definitions of Telegraf/prometheus once, one metrics call for every DCGM field
    assert clients.calls == {"monitor.MetricNamespaces.List": 1, "monitor.MetricDefinitions.List": 1,
                             "monitor.Metrics.List": 1}
    [call] = [r for r in emu.requests if "/metrics?" in r]
    assert "metricnamespace=telegraf%2fprometheus" in call.lower() and "$filter=gpu%20eq%20%27%2a%27" in call.lower()


def test_dcgm_measured_vm_gets_host_metrics(emu: AzureMonitorEmulator) -> None:
    seed_dcgm(emu, "d", [0])
    seed_host(emu, "d")
    frame = metrics.usage(make_clients(emu), SUB, REGION, [vm("d")], WINDOW, HOUR).usage.frame
    assert len(rows(frame, "d", Metric.CPU_UTIL, INSTANCE_LEVEL)) == N_HOURS


def test_telegraf_prometheus_metric_version_1_namespaces_are_read_without_definitions(
        emu: AzureMonitorEmulator) -> None:
    """One namespace per exporter metric (Telegraf/DCGM_FI_..., metric 'gauge'); unused fields are not read."""
    seed_dcgm(emu, "v1", [0, 1], metric_version=1)
    emu.add_dcgm_gpu_series(vm("v1").ref.id, 0, "DCGM_FI_DEV_GPU_TEMP", [(WINDOW.start, 60.0)], metric_version=1)
    clients = make_clients(emu)
    frame = metrics.usage(clients, SUB, REGION, [vm("v1", 2)], WINDOW, HOUR, host_metrics_for=no_hosts).usage.frame
    assert rows(frame, "v1", Metric.GPU_UTIL, 1)["value"].tolist() == [util(k, 1, 5) for k in range(N_HOURS)]
    assert rows(frame, "v1", Metric.GPU_MEM_TOTAL, 0)["value"].tolist() == [FB_TOTAL, FB_TOTAL]
    assert clients.calls == {"monitor.MetricNamespaces.List": 1, "monitor.Metrics.List": 3}
    assert emu.count("DCGM_FI_DEV_GPU_TEMP") == 0


def test_graphics_engine_active_ratio_is_the_fallback_utilization(emu: AzureMonitorEmulator) -> None:
    seed_dcgm(emu, "p", [0], util_field="DCGM_FI_PROF_GR_ENGINE_ACTIVE", scale=0.01)
    frame = metrics.usage(make_clients(emu), SUB, REGION, [vm("p")], WINDOW, HOUR, host_metrics_for=no_hosts).usage.frame
    assert rows(frame, "p", Metric.GPU_UTIL, 0)["value"].tolist() == pytest.approx(
        [util(k, 0, 5) for k in range(N_HOURS)], rel=1e-12)


def test_reserved_frame_buffer_counts_in_the_total(emu: AzureMonitorEmulator) -> None:
    seed_dcgm(emu, "r", [0])
    emu.add_dcgm_gpu_series(vm("r").ref.id, 0, "DCGM_FI_DEV_FB_RESERVED", [(t, 512.0) for t in hours(WINDOW.start,
                                                                                                      N_HOURS)])
    frame = metrics.usage(make_clients(emu), SUB, REGION, [vm("r")], WINDOW, HOUR, host_metrics_for=no_hosts).usage.frame
    assert rows(frame, "r", Metric.GPU_MEM_TOTAL, 0)["value"].tolist() == [FB_TOTAL + 512.0] * 2


def test_telegraf_covering_every_gpu_leaves_dcgm_unread(emu: AzureMonitorEmulator) -> None:
    seed_gpus(emu, "both", 2)
    seed_dcgm(emu, "both", [0, 1])
    clients = make_clients(emu)
    frame = metrics.usage(clients, SUB, REGION, [vm("both", 2)], WINDOW, HOUR, host_metrics_for=no_hosts).usage.frame
    assert rows(frame, "both", Metric.GPU_UTIL, 1)["value"].tolist() == [util(k, 1, 5) for k in range(N_HOURS)]
    assert rows(frame, "both", Metric.GPU_MEM_USED, 1)["value"].tolist() == [1001.0 + 10 * k for k in range(N_HOURS)]
    assert clients.calls == {"monitor.MetricNamespaces.List": 1, "monitor.Metrics.List": 1}


def test_dcgm_fills_only_the_gpus_telegraf_did_not_report(emu: AzureMonitorEmulator) -> None:
    """Telegraf reports GPU 0, DCGM GPUs 0 and 1: GPU 0 keeps Telegraf's numbers, GPU 1 takes DCGM's, no
    (GPU, metric, time) appears twice."""
    seed_gpus(emu, "mix", 1)
    seed_dcgm(emu, "mix", [0, 1])
    frame = metrics.usage(make_clients(emu), SUB, REGION, [vm("mix", 2)], WINDOW, HOUR,
                          host_metrics_for=no_hosts).usage.frame
    assert not frame.duplicated(["resource", "gpu", "metric", "ts"]).any()
    assert rows(frame, "mix", Metric.GPU_MEM_USED, 0)["value"].tolist() == [1000.0 + 10 * k for k in range(N_HOURS)]
    assert rows(frame, "mix", Metric.GPU_MEM_USED, 1)["value"].tolist() == [used(k, 1, 1) for k in range(N_HOURS)]
    assert len(rows(frame, "mix", Metric.GPU_UTIL, 1)) == N_HOURS


def test_first_dcgm_namespace_wins_per_gpu(emu: AzureMonitorEmulator) -> None:
    """The same GPU in Telegraf/prometheus and another publisher's namespace counts once."""
    seed_dcgm(emu, "two", [0])
    emu.add_dcgm_gpu_series(vm("two").ref.id, 0, "DCGM_FI_DEV_GPU_UTIL", [(t, 99.0) for t in hours(WINDOW.start,
                                                                                                    N_HOURS)],
                            namespace="gpu.custom")
    frame = metrics.usage(make_clients(emu), SUB, REGION, [vm("two")], WINDOW, HOUR,
                          host_metrics_for=no_hosts).usage.frame
    assert rows(frame, "two", Metric.GPU_UTIL, 0)["value"].tolist() == [util(k, 0, 5) for k in range(N_HOURS)]


def test_gpu_index_from_device_digits_in_a_user_chosen_namespace(emu: AzureMonitorEmulator) -> None:
    rid = vm("dev").ref.id
    for gpu in (2, 3):
        emu.add_dcgm_gpu_series(rid, gpu, "DCGM_FI_DEV_GPU_UTIL", [(t, 10.0 * gpu) for t in hours(WINDOW.start,
                                                                                                  N_HOURS)],
                                namespace="azure.vm.linux.guestmetrics",
                                dimensions={"device": f"nvidia{gpu}", "Hostname": "dev"})
    frame = metrics.usage(make_clients(emu), SUB, REGION, [vm("dev", 4)], WINDOW, HOUR,
                          host_metrics_for=no_hosts).usage.frame
    assert sorted(set(frame["gpu"])) == [2, 3]
    assert rows(frame, "dev", Metric.GPU_UTIL, 3)["value"].tolist() == [30.0] * N_HOURS


def test_telegraf_system_namespaces_are_not_probed(emu: AzureMonitorEmulator) -> None:
    rid = vm("sys").ref.id
    emu.add_series(rid, "usage_idle", [(WINDOW.start, 90.0)], namespace="Telegraf/cpu", dimensions={"cpu": "cpu-total"})
    emu.add_series(rid, "used_percent", [(WINDOW.start, 40.0)], namespace="Telegraf/mem")
    clients = make_clients(emu)
    [gap] = metrics.usage(clients, SUB, REGION, [vm("sys")], WINDOW, HOUR).gaps
    assert gap.what == "gpu-telemetry"
    assert clients.calls == {"monitor.MetricNamespaces.List": 1}


def test_vm_with_neither_is_a_gap_naming_both_ways_after_one_call(emu: AzureMonitorEmulator) -> None:
    emu.add_resource(vm("none").ref.id)
    clients = make_clients(emu)
    [gap] = metrics.usage(clients, SUB, REGION, [vm("none")], WINDOW, HOUR).gaps
    assert gap.what == "gpu-telemetry" and "DCGM_FI_DEV_GPU_UTIL" in gap.reason
    assert "[[inputs.nvidia_smi]]" in gap.hint and "dcgm-exporter" in gap.hint and "DCGM_FI_DEV_FB_USED" in gap.hint
    assert clients.calls == {"monitor.MetricNamespaces.List": 1}


def test_dcgm_series_without_points_in_the_window_is_a_gap_saying_so(emu: AzureMonitorEmulator) -> None:
    emu.add_dcgm_gpu_series(vm("stale").ref.id, 0, "DCGM_FI_DEV_GPU_UTIL", [(WINDOW.start - 3 * timedelta(days=1),
                                                                             80.0)])
    result = metrics.usage(make_clients(emu), SUB, REGION, [vm("stale")], WINDOW, HOUR)
    [gap] = result.gaps
    assert "no data points in the window" in gap.reason and result.usage.frame.empty


def test_emulated_namespace_list_has_the_reference_shape(emu: AzureMonitorEmulator) -> None:
    """Metric Namespaces - List: the platform namespace (escaped name) and the custom ones (lower-cased
    names), filtered by startTime."""
    rid = vm("ns").ref.id
    emu.add_gpu_series(rid, 0, "utilization_gpu", [(WINDOW.start, 1.0)])
    emu.add_dcgm_gpu_series(rid, 0, "DCGM_FI_DEV_GPU_UTIL", [(WINDOW.start - 60 * timedelta(days=1), 1.0)])
    monitor = make_clients(emu).monitor(SUB)
    listed = {n.name: n for n in monitor.metric_namespaces.list(rid)}
    assert set(listed) == {"Microsoft.Compute-virtualMachines", "telegraf/nvidia_smi", "telegraf/prometheus"}
    platform = listed["Microsoft.Compute-virtualMachines"]
    assert (platform.classification, platform.properties.metric_namespace_name, platform.type) == (
        "Platform", "Microsoft.Compute/virtualMachines", "Microsoft.Insights/metricNamespaces")
    custom = listed["telegraf/nvidia_smi"]
    assert custom.classification == "Custom"
    assert custom.id == f"{rid}/providers/microsoft.insights/metricNamespaces/Telegraf/nvidia_smi"
    recent = {n.name for n in monitor.metric_namespaces.list(rid, start_time=WINDOW.start.isoformat())}
    assert recent == {"Microsoft.Compute-virtualMachines", "telegraf/nvidia_smi"}
