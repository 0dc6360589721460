"""Cloud Monitoring usage: the real MetricServiceClient over gRPC to the local emulator.

GPU series per GPU (Ops Agent NVML, then the Ops Agent DCGM receiver, then dcgm-exporter's DCGM_FI_* through
the Prometheus receiver or OTLP, for the GPUs the ones before miss), memory in MiB, CPU percent and network
bytes/s of the instances with GPU telemetry, gaps for silent GPUs, batching, paging, errors.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from providers.base import UsageResult
from providers.errors import AuthError, ProviderError, Throttled
from providers.gcp import metrics
from providers.model import INSTANCE_LEVEL, Metric, Resource, ResourceState, Window
from providers.sandbox.gcp_monitoring import (GcpMonitoringEmulator, add_dcgm_exporter_gpu, add_dcgm_gpu, gce_labels,
                                              prometheus_target_labels)
from tests.gcp.monitoring_support import (A100_MIB, HOUR, L4_MIB, N_HOURS, NOW, PROJECT, REGION, TIMES, WINDOW, J, K,
                                          clients, gce, mem_used, rows, rx, seed_dcgm, seed_host, seed_ops, util,
                                          util_max)

GPU_UTIL, MEM_USED, MEM_TOTAL = Metric.GPU_UTIL.value, Metric.GPU_MEM_USED.value, Metric.GPU_MEM_TOTAL.value
CPU, NET_IN, NET_OUT = Metric.CPU_UTIL.value, Metric.NET_IN.value, Metric.NET_OUT.value
LB_RATE = 50.0  # bytes/s of a second, load-balanced received series of "big"


@dataclass(frozen=True)
class Fleet:
    result: UsageResult
    res: dict[str, Resource]
    calls: dict[str, int]
    requests: list[str]

    def key(self, name: str) -> str:
        return self.res[name].ref.key


@pytest.fixture(scope="module")
def fleet() -> Iterator[Fleet]:
    """Seeded and read once; the tests using it only inspect the result."""
    res = {
        "big": gce("big", "1001", "us-central1-a", 4),
        "small": gce("small", "1002", "us-central1-b", 1, "L4", itype="g2-standard-4"),
        "dcgm": gce("dcgm", "1003", "us-central1-c", 2),
        "mixed": gce("mixed", "1004", "us-central1-a", 2),
        "dark": gce("dark", "1005", "us-central1-a", 1),
        "stopped": gce("stopped", "1006", "us-central1-b", 1, state=ResourceState.STOPPED),
        "legacy": gce("legacy", None, "us-central1-f", 1),
    }
    with GcpMonitoringEmulator() as emu:
        seed_ops(emu, "1001", "us-central1-a", range(4))
        seed_host(emu, "1001", "us-central1-a")
        emu.add_series(PROJECT, metrics.NET_IN, gce_labels(PROJECT, "us-central1-a", "1001"), {"loadbalanced": "true"},
                       times=TIMES, values=np.full(len(TIMES), int(LB_RATE * 300)), value_type="INT64",
                       metric_kind="DELTA")
        seed_ops(emu, "1002", "us-central1-b", range(1), total=L4_MIB)
        seed_host(emu, "1002", "us-central1-b")
        seed_dcgm(emu, "1003", "us-central1-c", range(2))
        seed_host(emu, "1003", "us-central1-c")
        seed_ops(emu, "1004", "us-central1-a", range(1))
        add_dcgm_gpu(emu, PROJECT, "us-central1-a", "1004", 0, TIMES, np.full(len(TIMES), 99.0))  # NVML wins
        seed_dcgm(emu, "1004", "us-central1-a", range(1, 2))
        seed_host(emu, "1005", "us-central1-a")  # CPU without GPU telemetry
        seed_ops(emu, "7777", "us-central1-f", range(1), name="legacy")  # matched by name: native id unknown
        seed_host(emu, "7777", "us-central1-f", name="legacy")
        seed_ops(emu, "9999", "us-central1-a", range(2))  # an instance the inventory does not know
        c = clients(emu)
        result = metrics.usage(c, PROJECT, REGION, list(res.values()), WINDOW, HOUR)
        yield Fleet(result, res, dict(c.calls), list(emu.requests))


def test_rows_per_resource_gpu_and_metric(fleet: Fleet) -> None:
    got = Counter((str(r), int(g), str(m)) for r, g, m in
                  fleet.result.usage.frame[["resource", "gpu", "metric"]].itertuples(index=False))
    expected: Counter = Counter()
    for name, gpus in (("big", 4), ("small", 1), ("dcgm", 2), ("mixed", 2), ("legacy", 1)):
        for gpu in range(gpus):
            expected[(fleet.key(name), gpu, GPU_UTIL)] = N_HOURS
            expected[(fleet.key(name), gpu, MEM_USED)] = N_HOURS
            expected[(fleet.key(name), gpu, MEM_TOTAL)] = 2  # daily over 2 days
        if name != "mixed":
            for metric in (CPU, NET_IN, NET_OUT):
                expected[(fleet.key(name), INSTANCE_LEVEL, metric)] = N_HOURS
    assert got == expected


def test_gpu_utilization_is_the_hourly_maximum_per_gpu(fleet: Fleet) -> None:
    frame = fleet.result.usage.frame
    for gpu in range(4):
        got = rows(frame, fleet.key("big"), GPU_UTIL, gpu)["value"].tolist()
        assert got == [util_max(k, gpu) for k in range(N_HOURS)], gpu


def test_gpu_memory_used_is_the_hourly_peak_in_mib(fleet: Fleet) -> None:
    got = rows(fleet.result.usage.frame, fleet.key("big"), MEM_USED, 3)["value"].tolist()
    assert got == [float(mem_used(k, 3, 11)) for k in range(N_HOURS)]


def test_gpu_memory_total_is_the_sum_of_the_states(fleet: Fleet) -> None:
    frame = fleet.result.usage.frame
    assert rows(frame, fleet.key("big"), MEM_TOTAL, 2)["value"].tolist() == pytest.approx([A100_MIB] * 2)
    assert rows(frame, fleet.key("small"), MEM_TOTAL, 0)["value"].tolist() == pytest.approx([L4_MIB] * 2)


def test_cpu_ratio_becomes_the_hourly_mean_percent(fleet: Fleet) -> None:
    got = rows(fleet.result.usage.frame, fleet.key("small"), CPU, INSTANCE_LEVEL)["value"].tolist()
    assert got == pytest.approx([k % 40 + 0.55 for k in range(N_HOURS)], rel=1e-9)


def test_network_delta_becomes_bytes_per_second_summed_over_series(fleet: Fleet) -> None:
    frame = fleet.result.usage.frame
    got_in = rows(frame, fleet.key("big"), NET_IN, INSTANCE_LEVEL)["value"].tolist()
    got_out = rows(frame, fleet.key("small"), NET_OUT, INSTANCE_LEVEL)["value"].tolist()
    assert got_in == pytest.approx([float(rx(k)) + LB_RATE for k in range(N_HOURS)], rel=1e-12)
    assert got_out == pytest.approx([2 * float(rx(k)) for k in range(N_HOURS)], rel=1e-12)


def test_dcgm_only_instance_reads_the_ratio_as_percent_and_memory_in_mib(fleet: Fleet) -> None:
    frame = fleet.result.usage.frame
    assert rows(frame, fleet.key("dcgm"), GPU_UTIL, 1)["value"].tolist() == pytest.approx(
        [util_max(k, 1) for k in range(N_HOURS)], rel=1e-12)
    assert rows(frame, fleet.key("dcgm"), MEM_USED, 0)["value"].tolist() == [
        float(mem_used(k, 0, 11)) for k in range(N_HOURS)]
    assert rows(frame, fleet.key("dcgm"), MEM_TOTAL, 0)["value"].tolist() == pytest.approx([A100_MIB] * 2)


def test_dcgm_fills_only_the_gpus_the_ops_agent_misses(fleet: Fleet) -> None:
    frame = fleet.result.usage.frame
    assert rows(frame, fleet.key("mixed"), GPU_UTIL, 0)["value"].tolist() == [util_max(k, 0) for k in range(N_HOURS)]
    assert rows(frame, fleet.key("mixed"), GPU_UTIL, 1)["value"].tolist() == pytest.approx(
        [util_max(k, 1) for k in range(N_HOURS)], rel=1e-12)
    assert len(rows(frame, fleet.key("mixed"), MEM_USED, 0)) == N_HOURS  # NVML memory, not DCGM's as well


def test_running_gpu_instance_without_gpu_telemetry_is_a_gap(fleet: Fleet) -> None:
    assert [(g.what, g.resource_id, g.account, g.region) for g in fleet.result.gaps] == [
        ("gpu-telemetry", "dark", PROJECT, REGION)]
    assert "Ops Agent" in (fleet.result.gaps[0].hint or "")
    assert fleet.key("dark") not in set(fleet.result.usage.frame["resource"].astype(str))  # its CPU alone would mislead


def test_series_of_unknown_instances_are_ignored(fleet: Fleet) -> None:
    keys = set(fleet.result.usage.frame["resource"].astype(str))
    assert keys == {fleet.key(n) for n in ("big", "small", "dcgm", "mixed", "legacy")}


def test_instance_without_numeric_id_is_matched_by_name_in_its_zone(fleet: Fleet) -> None:
    frame = fleet.result.usage.frame
    assert rows(frame, fleet.key("legacy"), GPU_UTIL, 0)["value"].tolist() == [util_max(k, 0) for k in range(N_HOURS)]


def test_rows_sit_on_the_utc_period_grid_of_the_window(fleet: Fleet) -> None:
    frame = fleet.result.usage.frame
    assert str(frame["ts"].dt.tz) == "UTC"
    assert frame["ts"].min() == pd.Timestamp(WINDOW.start)
    assert frame.loc[frame["metric"] != MEM_TOTAL, "ts"].max() == pd.Timestamp(WINDOW.end - HOUR)


def test_every_page_is_counted_and_calls_are_one_per_metric_type(fleet: Fleet) -> None:
    assert fleet.calls == {metrics.OPERATION: len(fleet.requests)}
    # "dark" keeps every GPU source asked: NVML, DCGM, and dcgm-exporter's GPU_UTIL and GR_ENGINE_ACTIVE in its
    # two spellings; 2 memory reads of NVML and of DCGM (the exporter has none here); CPU, network in and out
    assert len(fleet.requests) == 6 + 4 + 3
    assert all(n == 1 for n in Counter(r.split('"')[1] for r in fleet.requests if "memory" not in r).values())


def _small_fleet(emu: GcpMonitoringEmulator, n: int) -> list[Resource]:
    out = []
    for i in range(n):
        iid, zone = str(5000 + i), f"us-central1-{'abc'[i % 3]}"
        seed_ops(emu, iid, zone, range(1))
        seed_host(emu, iid, zone)
        out.append(gce(f"vm-{i}", iid, zone, 1))
    return out


def test_pages_are_followed() -> None:
    with GcpMonitoringEmulator(max_points_per_page=100) as emu:  # about two series a page
        fleet = _small_fleet(emu, 5)
        c = clients(emu)
        result = metrics.usage(c, PROJECT, REGION, fleet, WINDOW, HOUR)
    frame = result.usage.frame
    for res in fleet:
        assert rows(frame, res.ref.key, GPU_UTIL, 0)["value"].tolist() == [util_max(k, 0) for k in range(N_HOURS)]
        assert len(rows(frame, res.ref.key, CPU, INSTANCE_LEVEL)) == N_HOURS
    assert c.calls[metrics.OPERATION] == len(emu.requests) > 1 + 2 + 3
    assert any(not r.endswith("page_token=") for r in emu.requests)  # next pages asked with their token


def test_calls_do_not_grow_with_the_number_of_instances() -> None:
    counts = []
    for n in (2, 9):
        with GcpMonitoringEmulator(max_points_per_page=100_000) as emu:
            fleet = _small_fleet(emu, n)
            result = metrics.usage(clients(emu), PROJECT, REGION, fleet, WINDOW, HOUR)
            assert {str(k) for k in result.usage.frame["resource"].unique()} == {r.ref.key for r in fleet}
            counts.append(len(emu.requests))
    assert counts[0] == counts[1] == 1 + 2 + 3  # every GPU covered by NVML: the lower sources are not asked


def test_host_metrics_only_for_the_instances_named() -> None:
    with GcpMonitoringEmulator() as emu:
        fleet = _small_fleet(emu, 3)
        seen: list[pd.DataFrame] = []

        def pick(gpu_frame: pd.DataFrame) -> set[str]:
            seen.append(gpu_frame)
            return {fleet[1].ref.key}

        result = metrics.usage(clients(emu), PROJECT, REGION, fleet, WINDOW, HOUR, host_metrics_for=pick)
        host_requests = [r for r in emu.requests if "compute.googleapis.com" in r]
    frame = result.usage.frame
    assert set(seen[0]["metric"].astype(str)) == {GPU_UTIL, MEM_USED, MEM_TOTAL}
    assert set(frame.loc[frame["metric"] == CPU, "resource"].astype(str)) == {fleet[1].ref.key}
    assert len(host_requests) == 3 and all('one_of("5001")' in r for r in host_requests)


def test_instance_ids_are_batched_in_chunks() -> None:
    many = [gce(f"vm-{i}", str(10_000 + i), "us-central1-a", 1) for i in range(metrics.IDS_PER_CALL + 1)]
    scopes = metrics.instance_scopes(REGION, many)
    assert len(scopes) == 2 and scopes[1].endswith(f'one_of("{10_000 + metrics.IDS_PER_CALL}")')
    assert metrics.instance_scopes(REGION, many + [gce("legacy", None, "us-central1-a", 1)]) == [
        metrics.region_scope(REGION)]


def test_progress_reaches_the_planned_total() -> None:
    with GcpMonitoringEmulator() as emu:
        fleet = _small_fleet(emu, 2)
        seen: list[tuple[int, int]] = []
        metrics.usage(clients(emu), PROJECT, REGION, fleet, WINDOW, HOUR, on_progress=lambda d, t: seen.append((d, t)))
    assert seen[-1] == (6, 6) and [d for d, _ in seen] == list(range(1, 7))


def test_a_bad_filter_is_a_provider_error_naming_the_call() -> None:
    query = metrics.Query(metrics.CPU_UTIL, Metric.CPU_UTIL, "ALIGN_MEAN", HOUR)
    with GcpMonitoringEmulator() as emu:
        address = emu.address
        with pytest.raises(ProviderError) as err:
            metrics.list_series(clients(emu), PROJECT, WINDOW, query, 'resource.labels.zone = starts_with(')
    assert not isinstance(err.value, AuthError)
    assert "monitoring.TimeSeries.List" in str(err.value) and address in str(err.value)
    assert "filter" in str(err.value)


def test_permission_denied_is_an_auth_error() -> None:
    with GcpMonitoringEmulator() as emu:
        fleet = _small_fleet(emu, 1)
        emu.fail_next("PERMISSION_DENIED", message="Permission monitoring.timeSeries.list denied")
        with pytest.raises(AuthError, match="monitoring.timeSeries.list denied"):
            metrics.usage(clients(emu), PROJECT, REGION, fleet, WINDOW, HOUR)


def test_resource_exhausted_is_retried() -> None:
    with GcpMonitoringEmulator() as emu:
        fleet = _small_fleet(emu, 1)
        emu.fail_next("RESOURCE_EXHAUSTED", 2, "Quota exceeded for quota metric 'Time series queries'")
        c = clients(emu)
        result = metrics.usage(c, PROJECT, REGION, fleet, WINDOW, HOUR)
        assert len(emu.requests) == c.calls[metrics.OPERATION] + 2
    assert len(rows(result.usage.frame, fleet[0].ref.key, GPU_UTIL, 0)) == N_HOURS


def test_resource_exhausted_past_the_retries_is_throttled() -> None:
    with GcpMonitoringEmulator() as emu:
        fleet = _small_fleet(emu, 1)
        emu.fail_next("RESOURCE_EXHAUSTED", 1000)
        with pytest.raises(Throttled):
            metrics.usage(clients(emu, retry_timeout=0.3), PROJECT, REGION, fleet, WINDOW, HOUR)


# -- dcgm-exporter (DCGM_FI_*) through the Ops Agent's Prometheus receiver or OTLP -------------------
RESERVED_MIB = 500.0
EXPORTER_UTIL_PROM = metrics.exporter_metric_type(metrics.EXPORTER_UTIL)


def seed_exporter(emu: GcpMonitoringEmulator, instance_id: str, zone: str, gpus: range, name: str, *,
                  via: str = "prometheus", reserved: bool = True, engine_only: bool = False) -> None:
    """dcgm-exporter GPUs of one L4 VM: utilization ``util``, used memory ``mem_used``, free = the rest."""
    for g in gpus:
        used = mem_used(K, g, J)
        reserved_mib = RESERVED_MIB if reserved else 0.0
        add_dcgm_exporter_gpu(emu, PROJECT, zone, instance_id, g, TIMES, None if engine_only else util(K, g, J),
                              used, L4_MIB - used - reserved_mib, fb_reserved_mib=reserved_mib if reserved else None,
                              engine_active=util(K, g, J) / 100.0 if engine_only else None, via=via,
                              instance_name=name)


@pytest.fixture(scope="module")
def exporters() -> Iterator[Fleet]:
    res = {
        "prom": gce("prom", "2001", "us-central1-a", 2, "L4", itype="g2-standard-24"),
        "otlp": gce("otlp", "2002", "us-central1-b", 1, "L4", itype="g2-standard-4"),
        "engine": gce("engine", "2003", "us-central1-c", 1, "L4", itype="g2-standard-4"),
        "stack": gce("stack", "2004", "us-central1-a", 4),
        "legacy": gce("legacy", None, "us-central1-f", 1, "L4", itype="g2-standard-4"),
        "dark": gce("dark", "2005", "us-central1-a", 1),
    }
    with GcpMonitoringEmulator() as emu:
        seed_exporter(emu, "2001", "us-central1-a", range(2), "prom")
        seed_host(emu, "2001", "us-central1-a")
        seed_exporter(emu, "2002", "us-central1-b", range(1), "otlp", via="otlp", reserved=False)
        seed_exporter(emu, "2003", "us-central1-c", range(1), "engine", engine_only=True)
        # "stack": NVML has GPU 0, DCGM GPU 1, the exporter GPUs 0-2 (its 99 % on 0 and 1 must lose), over both
        # paths for GPU 2 (the Prometheus receiver's wins), and GPU 3 over OTLP with no "gpu" label
        seed_ops(emu, "2004", "us-central1-a", range(1))
        seed_dcgm(emu, "2004", "us-central1-a", range(1, 2))
        for g in (0, 1):
            add_dcgm_exporter_gpu(emu, PROJECT, "us-central1-a", "2004", g, TIMES, 99.0, 7777.0, 100.0,
                                  instance_name="stack")
        seed_exporter(emu, "2004", "us-central1-a", range(2, 3), "stack")
        add_dcgm_exporter_gpu(emu, PROJECT, "us-central1-a", "2004", 2, TIMES, 99.0, 7777.0, 100.0, via="otlp")
        emu.add_series(PROJECT, metrics.exporter_metric_type(metrics.EXPORTER_UTIL, "otlp"),
                       gce_labels(PROJECT, "us-central1-a", "2004"), {"device": "nvidia3", "UUID": "GPU-3"},
                       times=TIMES, values=util(K, 3, J))
        seed_exporter(emu, "8888", "us-central1-f", range(1), "legacy")  # known by name only (namespace "8888/legacy")
        seed_exporter(emu, "9998", "us-central1-a", range(1), "stranger")  # not in the inventory
        seed_host(emu, "2005", "us-central1-a")
        c = clients(emu)
        result = metrics.usage(c, PROJECT, REGION, list(res.values()), WINDOW, HOUR)
        yield Fleet(result, res, dict(c.calls), list(emu.requests))


def _hourly(fleet: Fleet, name: str, metric: str, gpu: int) -> list[float]:
    return rows(fleet.result.usage.frame, fleet.key(name), metric, gpu)["value"].tolist()


def test_exporter_only_instance_is_measured_from_the_prometheus_receiver(exporters: Fleet) -> None:
    for gpu in range(2):
        assert _hourly(exporters, "prom", GPU_UTIL, gpu) == [util_max(k, gpu) for k in range(N_HOURS)]
        assert _hourly(exporters, "prom", MEM_USED, gpu) == [float(mem_used(k, gpu, 11)) for k in range(N_HOURS)]
    assert len(_hourly(exporters, "prom", CPU, INSTANCE_LEVEL)) == N_HOURS  # its host metrics are read too


def test_exporter_memory_total_is_used_plus_free_plus_reserved(exporters: Fleet) -> None:
    assert _hourly(exporters, "prom", MEM_TOTAL, 1) == pytest.approx([L4_MIB] * 2, rel=1e-9)
    assert _hourly(exporters, "otlp", MEM_TOTAL, 0) == pytest.approx([L4_MIB] * 2, rel=1e-9)  # no reserved series


def test_exporter_over_otlp_on_gce_instance_is_measured(exporters: Fleet) -> None:
    assert _hourly(exporters, "otlp", GPU_UTIL, 0) == [util_max(k, 0) for k in range(N_HOURS)]
    assert _hourly(exporters, "otlp", MEM_USED, 0) == [float(mem_used(k, 0, 11)) for k in range(N_HOURS)]


def test_graphics_engine_activity_stands_in_for_a_missing_gpu_util(exporters: Fleet) -> None:
    assert _hourly(exporters, "engine", GPU_UTIL, 0) == pytest.approx([util_max(k, 0) for k in range(N_HOURS)],
                                                                      rel=1e-12)
    assert len(_hourly(exporters, "engine", MEM_USED, 0)) == N_HOURS


def test_precedence_is_ops_agent_then_dcgm_receiver_then_exporter(exporters: Fleet) -> None:
    assert _hourly(exporters, "stack", GPU_UTIL, 0) == [util_max(k, 0) for k in range(N_HOURS)]  # NVML
    assert _hourly(exporters, "stack", GPU_UTIL, 1) == pytest.approx([util_max(k, 1) for k in range(N_HOURS)],
                                                                     rel=1e-12)  # DCGM receiver, a ratio
    assert _hourly(exporters, "stack", GPU_UTIL, 2) == [util_max(k, 2) for k in range(N_HOURS)]  # not OTLP's 99
    for gpu in range(3):  # one memory source per GPU: never the exporter's 7777 MiB, never counted twice
        assert _hourly(exporters, "stack", MEM_USED, gpu) == [float(mem_used(k, gpu, 11)) for k in range(N_HOURS)]
    assert len(_hourly(exporters, "stack", MEM_TOTAL, 0)) == 2


def test_exporter_gpu_index_falls_back_to_the_device_digits(exporters: Fleet) -> None:
    assert _hourly(exporters, "stack", GPU_UTIL, 3) == [util_max(k, 3) for k in range(N_HOURS)]


def test_mixed_fleet_reports_every_gpu_once(exporters: Fleet) -> None:
    frame = exporters.result.usage.frame
    util_rows = frame[frame["metric"] == GPU_UTIL]
    got = Counter((str(r), int(g)) for r, g in util_rows[["resource", "gpu"]].itertuples(index=False))
    gpus = {"prom": 2, "otlp": 1, "engine": 1, "stack": 4, "legacy": 1}
    assert got == Counter({(exporters.key(n), g): N_HOURS for n, count in gpus.items() for g in range(count)})


def test_exporter_series_of_an_instance_known_by_name_only(exporters: Fleet) -> None:
    assert _hourly(exporters, "legacy", GPU_UTIL, 0) == [util_max(k, 0) for k in range(N_HOURS)]


def test_gap_when_none_of_the_three_sources_reports(exporters: Fleet) -> None:
    assert [(g.what, g.resource_id) for g in exporters.result.gaps] == [("gpu-telemetry", "dark")]
    assert exporters.key("dark") not in set(exporters.result.usage.frame["resource"].astype(str))


def test_gap_names_all_three_ways_to_get_gpu_telemetry(fleet: Fleet) -> None:
    [gap] = fleet.result.gaps
    hint = gap.hint or ""
    assert "Ops Agent" in hint and "agent.googleapis.com/gpu" in hint  # 1. the Ops Agent's NVML metrics
    assert "receiver_version: 2" in hint  # 2. its DCGM receiver
    assert "dcgm-exporter" in hint and "Prometheus receiver" in hint and EXPORTER_UTIL_PROM in hint  # 3.
    assert "workload.googleapis.com/DCGM_FI_DEV_GPU_UTIL" in hint
    for metric_type in (metrics.OPS_GPU_UTIL, metrics.DCGM_GPU_UTIL, EXPORTER_UTIL_PROM):
        assert metric_type in gap.reason


def test_exporter_calls_are_one_per_metric_type(exporters: Fleet) -> None:
    types = Counter(r.split('"')[1] for r in exporters.requests)
    exporter_memory = [metrics.exporter_metric_type(f, via) for via in ("prometheus", "otlp")
                       for f in (metrics.EXPORTER_FB_FREE, metrics.EXPORTER_FB_RESERVED)]
    assert all(types[t] == 1 for t in exporter_memory)
    assert all(types[metrics.exporter_metric_type(metrics.EXPORTER_FB_USED, via)] == 2  # hourly peak, daily total
               for via in ("prometheus", "otlp"))
    assert len(exporters.requests) == 6 + (2 + 2 + 4 + 4) + 3


def test_exporter_calls_do_not_grow_with_the_number_of_instances() -> None:
    counts = []
    for n in (2, 9):
        with GcpMonitoringEmulator(max_points_per_page=100_000) as emu:
            fleet = [gce(f"vm-{i}", str(6000 + i), "us-central1-a", 1, "L4") for i in range(n)]
            for r in fleet:
                seed_exporter(emu, r.native_id or "", r.zone or "", range(1), r.ref.id)
            result = metrics.usage(clients(emu), PROJECT, REGION, fleet, WINDOW, HOUR)
            assert {str(k) for k in result.usage.frame["resource"].unique()} == {r.ref.key for r in fleet}
            counts.append(len(emu.requests))
    # NVML, DCGM, the exporter's GPU_UTIL (every GPU covered: GR_ENGINE_ACTIVE and OTLP not asked), its 4
    # memory reads; no CPU: none seeded
    assert counts[0] == counts[1] == 3 + 4 + 3


# -- the emulator itself, through the real client ----------------------------------------------
def _list(emu: GcpMonitoringEmulator, flt: str, window: Window = WINDOW, **request: object) -> list:
    pager = clients(emu).monitoring().list_time_series(request={
        "name": f"projects/{PROJECT}", "filter": flt,
        "interval": {"start_time": window.start, "end_time": window.end}, **request})
    return [type(page).pb(page) for page in pager.pages]


@pytest.fixture(scope="module")
def emu() -> Iterator[GcpMonitoringEmulator]:
    with GcpMonitoringEmulator(max_points_per_page=1000, max_series_per_page=2) as server:
        seed_ops(server, "1", "us-central1-a", range(2))
        seed_ops(server, "2", "us-central1-b", range(1))
        seed_ops(server, "3", "europe-west4-a", range(1))
        yield server


UTIL_TYPE = f'metric.type = "{metrics.OPS_GPU_UTIL}"'


def _ids(pages: list) -> list[tuple[str, str]]:
    return [(ts.resource.labels["instance_id"], ts.metric.labels["gpu_number"]) for p in pages for ts in p.time_series]


def test_emulator_filters_with_one_of_or_not_and_parentheses(emu: GcpMonitoringEmulator) -> None:
    flt = (f'{UTIL_TYPE} AND (resource.labels.instance_id = one_of("1", "3") OR resource.labels.zone = '
           f'starts_with("us-central1-b")) AND NOT metric.labels.gpu_number = "1"')
    assert sorted(_ids(_list(emu, flt))) == [("1", "0"), ("2", "0"), ("3", "0")]


def test_emulator_refuses_a_filter_without_one_metric_type(emu: GcpMonitoringEmulator) -> None:
    from google.api_core import exceptions

    with pytest.raises(exceptions.InvalidArgument, match="single metric type"):
        _list(emu, 'resource.labels.zone = starts_with("us-")')


def test_emulator_raw_points_are_newest_first_within_start_exclusive_end_inclusive(emu: GcpMonitoringEmulator) -> None:
    window = Window(TIMES[0].to_pydatetime(), TIMES[3].to_pydatetime())  # excludes sample 0, includes sample 3
    pages = _list(emu, f'{UTIL_TYPE} AND resource.labels.instance_id = "2"', window)
    [ts] = [ts for p in pages for ts in p.time_series]
    assert [p.value.double_value for p in ts.points] == [float(util(0, 0, j)) for j in (3, 2, 1)]


def test_emulator_aligns_periods_backwards_from_the_interval_end(emu: GcpMonitoringEmulator) -> None:
    end = NOW - timedelta(minutes=20)  # not on the hour: points are stamped end, end - 1 h, ...
    window = Window(end - 3 * HOUR, end)
    pages = _list(emu, f'{UTIL_TYPE} AND resource.labels.instance_id = "2"', window,
                  aggregation={"alignment_period": HOUR, "per_series_aligner": "ALIGN_MEAN"})
    [ts] = [ts for p in pages for ts in p.time_series]
    stamps = [pd.Timestamp(p.interval.end_time.seconds, unit="s", tz="UTC") for p in ts.points]
    assert stamps == [pd.Timestamp(end - i * HOUR) for i in range(3)]
    k = N_HOURS - 1  # the newest period, (08:40, 09:40]: samples 8..11 of hour 08 and 0..7 of hour 09
    assert ts.points[0].value.double_value == pytest.approx(
        np.mean([util(k - 1, 0, j) for j in range(8, 12)] + [util(k, 0, j) for j in range(8)]))


def test_emulator_headers_view_pages_series_without_points(emu: GcpMonitoringEmulator) -> None:
    pages = _list(emu, f'{UTIL_TYPE}', view="HEADERS")
    assert [len(p.time_series) for p in pages] == [2, 2]
    assert all(len(ts.points) == 0 for p in pages for ts in p.time_series)


def test_emulator_refuses_a_rate_of_a_gauge(emu: GcpMonitoringEmulator) -> None:
    from google.api_core import exceptions

    with pytest.raises(exceptions.InvalidArgument, match="ALIGN_RATE cannot be applied"):
        _list(emu, UTIL_TYPE, aggregation={"alignment_period": HOUR, "per_series_aligner": "ALIGN_RATE"})


def test_emulator_seeding_replaces_a_sample_at_the_same_time() -> None:
    with GcpMonitoringEmulator() as server:
        labels = gce_labels(PROJECT, "us-central1-a", "1")
        server.add_series(PROJECT, metrics.CPU_UTIL, labels, points=[(TIMES[0], 0.1), (TIMES[1], 0.2)])
        server.add_series(PROJECT, metrics.CPU_UTIL, labels, points=pd.Series([0.5], index=TIMES[1:2]))
        [ts] = [ts for p in _list(server, f'metric.type = "{metrics.CPU_UTIL}"') for ts in p.time_series]
    assert [p.value.double_value for p in ts.points] == [0.5, 0.1]


def test_emulator_exporter_series_look_like_the_prometheus_receiver_wrote_them() -> None:
    with GcpMonitoringEmulator() as server:
        add_dcgm_exporter_gpu(server, PROJECT, "us-central1-a", "42", 1, TIMES[:3], [10.0, 20.0, 30.0],
                              instance_name="gpu-vm", model="NVIDIA L4")
        [ts] = [ts for p in _list(server, f'metric.type = "{EXPORTER_UTIL_PROM}"') for ts in p.time_series]
    assert ts.metric.type == "prometheus.googleapis.com/DCGM_FI_DEV_GPU_UTIL/gauge"
    assert ts.resource.type == "prometheus_target"
    assert dict(ts.resource.labels) == prometheus_target_labels(PROJECT, "us-central1-a", "42", "gpu-vm")
    assert dict(ts.resource.labels)["namespace"] == "42/gpu-vm" and ts.resource.labels["cluster"] == "__gce__"
    labels = dict(ts.metric.labels)
    assert {k: labels[k] for k in ("gpu", "device", "modelName", "Hostname", "instance_name")} == {
        "gpu": "1", "device": "nvidia1", "modelName": "NVIDIA L4", "Hostname": "gpu-vm", "instance_name": "gpu-vm"}
    assert labels["UUID"].startswith("GPU-") and labels["machine_type"].endswith("/machineTypes/g2-standard-8")
    assert [p.value.double_value for p in ts.points] == [30.0, 20.0, 10.0]
