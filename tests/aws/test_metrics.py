"""CloudWatch usage: the agent's per-GPU series plus AWS/EC2 CPU and network, as one long frame."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from datetime import timedelta

import pandas as pd
import pytest

from providers.aws import metrics
from providers.base import UsageResult
from providers.model import INSTANCE_LEVEL, Cloud, Metric, ResourceRef, ResourceState, Window
from providers.sandbox import MotoServer
from tests.aws.support import HOUR, NOW, dims, hours, launch, make_provider, put, raw, reset

WINDOW = Window(NOW - 48 * HOUR, NOW)
PERIOD = HOUR
N_HOURS = 48
A10G = "NVIDIA A10G"
UTIL = metrics.GPU_UTIL_NAME


def gpu_dims(iid: str, gpu: int, host: str | None = None) -> list[dict[str, str]]:
    """The dimensions the CloudWatch agent's nvidia_gpu plugin publishes with InstanceId appended."""
    out = dims(InstanceId=iid, index=str(gpu), name=A10G)
    return out + dims(host=host) if host else out


def util(k: int, gpu: int) -> float:
    return float((7 * k + 13 * gpu) % 100) + 0.5


def mem_used(k: int, gpu: int) -> float:
    return 1000.0 + 10 * k + gpu


def cpu(k: int) -> float:
    return float(k % 40) + 0.25


def net_in(k: int) -> float:
    """Bytes in one 30-minute sample; an hour holds two."""
    return 300_000.0 * (k + 1)


def seed_agent(cw, iid: str, gpus: int, host: str | None = None) -> None:
    times = hours(WINDOW.start, N_HOURS)
    for gpu in range(gpus):
        d = gpu_dims(iid, gpu, host)
        put(cw, "CWAgent", UTIL, d, [(t, util(k, gpu)) for k, t in enumerate(times)], "Percent")
        put(cw, "CWAgent", metrics.GPU_MEM_USED_NAME, d, [(t, mem_used(k, gpu)) for k, t in enumerate(times)], "Megabytes")
        put(cw, "CWAgent", metrics.GPU_MEM_TOTAL_NAME, d, [(t, 22888.0) for t in times], "Megabytes")


def seed_ec2(cw, iid: str) -> None:
    d = dims(InstanceId=iid)
    half = timedelta(minutes=30)
    times = hours(WINDOW.start, N_HOURS)
    put(cw, "AWS/EC2", "CPUUtilization", d, [(t + j * half, cpu(k) + j) for k, t in enumerate(times) for j in (0, 1)], "Percent")
    put(cw, "AWS/EC2", "NetworkIn", d, [(t + j * half, net_in(k)) for k, t in enumerate(times) for j in (0, 1)], "Bytes")
    put(cw, "AWS/EC2", "NetworkOut", d, [(t + j * half, 2 * net_in(k)) for k, t in enumerate(times) for j in (0, 1)], "Bytes")


def rows(frame: pd.DataFrame, key: str, metric: Metric, gpu: int) -> pd.DataFrame:
    sel = frame[(frame["resource"] == key) & (frame["metric"] == metric.value) & (frame["gpu"] == gpu)]
    return sel.sort_values("ts")


def gpu_running(provider, region: str = "us-east-1"):
    return [r for r in provider.resources(region) if r.has_gpu and r.state == ResourceState.RUNNING]


@dataclass(frozen=True)
class Fleet:
    big: str  # resource key of a g5.12xlarge (4 GPUs, agent with host dimension)
    small: str  # resource key of a g5.xlarge (1 GPU, agent without host)
    result: UsageResult
    calls: dict[str, int]


@pytest.fixture(scope="module")
def fleet(server: MotoServer) -> Fleet:
    """Seeded and read once; the tests using it only inspect the result."""
    reset(server.url)
    ec2, cw = raw("ec2", server.url), raw("cloudwatch", server.url)
    [big] = launch(ec2, "g5.12xlarge")
    [small] = launch(ec2, "g5.xlarge")
    seed_agent(cw, big, 4, host="ip-10-0-0-1.ec2.internal")
    seed_agent(cw, small, 1)
    seed_ec2(cw, big)
    seed_ec2(cw, small)
    provider = make_provider(server.url)
    resources = {r.ref.id: r for r in gpu_running(provider)}
    result = provider.usage("us-east-1", list(resources.values()), WINDOW, PERIOD)
    return Fleet(resources[big].ref.key, resources[small].ref.key, result, provider.api_calls())


def test_rows_per_metric_and_gpu(fleet: Fleet) -> None:
    got = Counter(
        (str(r), int(g), str(m)) for r, g, m in fleet.result.usage.frame[["resource", "gpu", "metric"]].itertuples(index=False)
    )
    expected: Counter = Counter()
    for key, gpus in ((fleet.big, 4), (fleet.small, 1)):
        for gpu in range(gpus):
            expected[(key, gpu, Metric.GPU_UTIL.value)] = N_HOURS
            expected[(key, gpu, Metric.GPU_MEM_USED.value)] = N_HOURS
            expected[(key, gpu, Metric.GPU_MEM_TOTAL.value)] = 2  # daily points over 2 days
        for metric in (Metric.CPU_UTIL, Metric.NET_IN, Metric.NET_OUT):
            expected[(key, INSTANCE_LEVEL, metric.value)] = N_HOURS
    assert got == expected


def test_gpu_utilization_round_trips(fleet: Fleet) -> None:
    frame = fleet.result.usage.frame
    for key, gpus in ((fleet.big, 4), (fleet.small, 1)):
        for gpu in range(gpus):
            sel = rows(frame, key, Metric.GPU_UTIL, gpu)
            assert sel["value"].tolist() == [util(k, gpu) for k in range(N_HOURS)], (key, gpu)


def test_gpu_memory_round_trips(fleet: Fleet) -> None:
    frame = fleet.result.usage.frame
    assert rows(frame, fleet.big, Metric.GPU_MEM_USED, 3)["value"].tolist() == [mem_used(k, 3) for k in range(N_HOURS)]
    assert rows(frame, fleet.big, Metric.GPU_MEM_TOTAL, 3)["value"].tolist() == [22888.0, 22888.0]


def test_cpu_is_the_period_mean(fleet: Fleet) -> None:
    sel = rows(fleet.result.usage.frame, fleet.small, Metric.CPU_UTIL, INSTANCE_LEVEL)
    assert sel["value"].tolist() == [cpu(k) + 0.5 for k in range(N_HOURS)]


def test_network_sum_becomes_bytes_per_second(fleet: Fleet) -> None:
    frame = fleet.result.usage.frame
    seconds = PERIOD.total_seconds()
    got_in = rows(frame, fleet.big, Metric.NET_IN, INSTANCE_LEVEL)["value"].tolist()
    got_out = rows(frame, fleet.big, Metric.NET_OUT, INSTANCE_LEVEL)["value"].tolist()
    assert got_in == pytest.approx([2 * net_in(k) / seconds for k in range(N_HOURS)], rel=1e-12)
    assert got_out == pytest.approx([4 * net_in(k) / seconds for k in range(N_HOURS)], rel=1e-12)


def test_timestamps_are_utc_on_the_period_grid(fleet: Fleet) -> None:
    frame = fleet.result.usage.frame
    assert str(frame["ts"].dt.tz) == "UTC"
    assert frame["ts"].min() == pd.Timestamp(WINDOW.start)
    assert frame["ts"].max() == pd.Timestamp(WINDOW.end - PERIOD)
    hourly = frame[frame["metric"] != Metric.GPU_MEM_TOTAL.value]
    assert ((hourly["ts"] - pd.Timestamp(0, tz="UTC")) % PERIOD == pd.Timedelta(0)).all()
    daily = frame[frame["metric"] == Metric.GPU_MEM_TOTAL.value]["ts"]
    assert set(daily) == {pd.Timestamp(WINDOW.start), pd.Timestamp(WINDOW.start + timedelta(days=1))}


def test_reporting_fleet_has_no_gaps(fleet: Fleet) -> None:
    assert fleet.result.gaps == ()
    assert fleet.result.usage.period == PERIOD


def test_one_discovery_and_two_data_calls_for_a_small_fleet(fleet: Fleet) -> None:
    """One GetMetricData for the GPU series, then one for the CPU and network of the same instances.

    Two discoveries: utilization, then power draw (none published here: no power queries)."""
    assert fleet.calls["cloudwatch.ListMetrics"] == 2
    assert fleet.calls["cloudwatch.GetMetricData"] == 2


def test_rows_outside_the_window_are_dropped(moto: MotoServer) -> None:
    ec2, cw = raw("ec2", moto.url), raw("cloudwatch", moto.url)
    [iid] = launch(ec2, "g5.xlarge")
    before = hours(WINDOW.start - 3 * HOUR, 3)
    inside = hours(WINDOW.start, N_HOURS)
    after = hours(WINDOW.end, 2)  # the end is excluded: the window is half-open
    put(cw, "CWAgent", UTIL, gpu_dims(iid, 0), [(t, 99.0) for t in before + after] + [(t, 5.0) for t in inside])
    provider = make_provider(moto.url)

    frame = provider.usage("us-east-1", gpu_running(provider), WINDOW, PERIOD).usage.frame

    sel = frame[frame["metric"] == Metric.GPU_UTIL.value]
    assert len(sel) == N_HOURS
    assert set(sel["value"]) == {5.0}
    assert sel["ts"].min() == pd.Timestamp(WINDOW.start) and sel["ts"].max() == pd.Timestamp(WINDOW.end - HOUR)


def test_repeated_list_metrics_entries_are_one_series(moto: MotoServer) -> None:
    ec2, cw = raw("ec2", moto.url), raw("cloudwatch", moto.url)
    [iid] = launch(ec2, "g5.xlarge")
    series = gpu_dims(iid, 0, host="ip-10-0-0-2.ec2.internal")
    put(cw, "CWAgent", UTIL, series, [(t, 40.0) for t in hours(WINDOW.start, N_HOURS)])
    listed = cw.list_metrics(Namespace="CWAgent", MetricName=UTIL)["Metrics"]
    assert len(listed) == N_HOURS  # moto's defect: one entry per data point
    provider = make_provider(moto.url)

    found = metrics.discover_gpu_series(provider.clients, "us-east-1", {iid})

    assert found == {iid: {0: [tuple((d["Name"], d["Value"]) for d in series)]}}


def test_repeated_list_metrics_entries_give_one_row_per_period(moto: MotoServer) -> None:
    ec2, cw = raw("ec2", moto.url), raw("cloudwatch", moto.url)
    [iid] = launch(ec2, "g5.xlarge")
    put(cw, "CWAgent", UTIL, gpu_dims(iid, 0, host="h"), [(t, 40.0) for t in hours(WINDOW.start, N_HOURS)])
    provider = make_provider(moto.url)

    frame = provider.usage("us-east-1", gpu_running(provider), WINDOW, PERIOD).usage.frame

    sel = frame[frame["metric"] == Metric.GPU_UTIL.value]
    assert len(sel) == N_HOURS
    assert not sel.duplicated(["resource", "gpu", "ts"]).any()


def test_a_gpu_listed_under_two_dimension_sets_is_read_once_per_period(moto: MotoServer) -> None:
    ec2, cw = raw("ec2", moto.url), raw("cloudwatch", moto.url)
    [iid] = launch(ec2, "g5.xlarge")
    times = hours(WINDOW.start, N_HOURS)
    put(cw, "CWAgent", UTIL, gpu_dims(iid, 0), [(t, 10.0) for t in times])
    put(cw, "CWAgent", UTIL, gpu_dims(iid, 0, host="ip-10-0-0-3.ec2.internal"), [(t, 70.0) for t in times])
    provider = make_provider(moto.url)

    result = provider.usage("us-east-1", gpu_running(provider), WINDOW, PERIOD)

    sel = result.usage.frame[result.usage.frame["metric"] == Metric.GPU_UTIL.value]
    assert sel["gpu"].tolist() == [0] * N_HOURS
    assert set(sel["value"]) == {70.0}  # overlapping readings: the highest


def test_history_continues_across_a_change_of_dimension_set(moto: MotoServer) -> None:
    """Someone added ``host`` to the agent's dimensions half-way: both halves are one GPU's history."""
    ec2, cw = raw("ec2", moto.url), raw("cloudwatch", moto.url)
    [iid] = launch(ec2, "g5.xlarge")
    times = hours(WINDOW.start, N_HOURS)
    half = N_HOURS // 2
    put(cw, "CWAgent", UTIL, gpu_dims(iid, 0), [(t, 10.0) for t in times[:half]])
    put(cw, "CWAgent", UTIL, gpu_dims(iid, 0, host="ip-10-0-0-3.ec2.internal"), [(t, 70.0) for t in times[half:]])
    provider = make_provider(moto.url)

    frame = provider.usage("us-east-1", gpu_running(provider), WINDOW, PERIOD).usage.frame

    sel = frame[frame["metric"] == Metric.GPU_UTIL.value].sort_values("ts")
    assert len(sel) == N_HOURS and not sel.duplicated(["resource", "gpu", "ts"]).any()
    assert sel["value"].tolist() == [10.0] * half + [70.0] * (N_HOURS - half)


def test_rollup_only_series_is_instance_level(moto: MotoServer) -> None:
    ec2, cw = raw("ec2", moto.url), raw("cloudwatch", moto.url)
    [iid] = launch(ec2, "g5.12xlarge")
    put(cw, "CWAgent", UTIL, dims(InstanceId=iid), [(t, 33.0) for t in hours(WINDOW.start, N_HOURS)])
    provider = make_provider(moto.url)

    result = provider.usage("us-east-1", gpu_running(provider), WINDOW, PERIOD)

    sel = result.usage.frame[result.usage.frame["metric"] == Metric.GPU_UTIL.value]
    assert len(sel) == N_HOURS
    assert set(sel["gpu"]) == {INSTANCE_LEVEL}
    assert set(sel["value"]) == {33.0}
    assert result.gaps == ()


def test_rollup_is_dropped_when_per_gpu_series_exist(moto: MotoServer) -> None:
    ec2, cw = raw("ec2", moto.url), raw("cloudwatch", moto.url)
    [iid] = launch(ec2, "g5.xlarge")
    times = hours(WINDOW.start, N_HOURS)
    put(cw, "CWAgent", UTIL, dims(InstanceId=iid), [(t, 33.0) for t in times])
    put(cw, "CWAgent", UTIL, gpu_dims(iid, 0), [(t, 44.0) for t in times])
    provider = make_provider(moto.url)

    found = metrics.discover_gpu_series(provider.clients, "us-east-1", {iid})

    assert list(found[iid]) == [0]


def test_gpu_instance_without_agent_series_is_a_gap(moto: MotoServer) -> None:
    ec2, cw = raw("ec2", moto.url), raw("cloudwatch", moto.url)
    [iid] = launch(ec2, "g5.xlarge")
    seed_ec2(cw, iid)  # AWS/EC2 metrics exist; the CloudWatch agent does not
    provider = make_provider(moto.url)

    result = provider.usage("us-east-1", gpu_running(provider), WINDOW, PERIOD)

    [gap] = result.gaps
    assert (gap.cloud, gap.what, gap.region, gap.resource_id) == (Cloud.AWS, "gpu-telemetry", "us-east-1", iid)
    assert "CloudWatch agent" in gap.hint
    assert len(result.usage.frame) == 0
    assert "cloudwatch.GetMetricData" not in provider.api_calls()


def test_agent_series_silent_in_the_window_is_a_gap(moto: MotoServer) -> None:
    ec2, cw = raw("ec2", moto.url), raw("cloudwatch", moto.url)
    [iid] = launch(ec2, "g5.xlarge")
    put(cw, "CWAgent", UTIL, gpu_dims(iid, 0), [(WINDOW.start - 5 * HOUR, 50.0)])
    provider = make_provider(moto.url)

    result = provider.usage("us-east-1", gpu_running(provider), WINDOW, PERIOD)

    [gap] = result.gaps
    assert gap.what == "gpu-telemetry" and gap.resource_id == iid
    assert "no data points in the window" in gap.reason
    assert not (result.usage.frame["metric"] == Metric.GPU_UTIL.value).any()


@pytest.mark.parametrize("case", ["no GPUs", "stopped"])
def test_instances_that_cannot_report_gpu_telemetry_get_no_gpu_gap(moto: MotoServer, case: str) -> None:
    """telemetry_gaps promises a gap per *running GPU* instance; usage() takes any resources (Provider protocol)."""
    ec2, cw = raw("ec2", moto.url), raw("cloudwatch", moto.url)
    [iid] = launch(ec2, "m5.large" if case == "no GPUs" else "g5.xlarge")
    if case == "stopped":
        ec2.stop_instances(InstanceIds=[iid])
    seed_ec2(cw, iid)
    provider = make_provider(moto.url)
    resources = provider.resources("us-east-1")
    assert not any(r.has_gpu and r.state == ResourceState.RUNNING for r in resources)

    result = provider.usage("us-east-1", resources, WINDOW, PERIOD)

    assert [g for g in result.gaps if g.what == "gpu-telemetry"] == []


# --- batching: GetMetricData takes at most 500 queries and 100,800 data points a call ---------------

def _queries(n: int, points: int) -> tuple[list[metrics.Query], Window]:
    period = timedelta(minutes=5)
    window = Window(NOW - points * period, NOW)
    ref = ResourceRef(Cloud.AWS, "123456789012", "us-east-1", "i-0")
    qs = [metrics.Query(ref, i, Metric.GPU_UTIL, "CWAgent", UTIL, (("index", str(i)),), "Maximum", period)
          for i in range(n)]
    assert all(q.points(window) == points for q in qs)
    return qs, window


def _check_limits(batches: list[list[metrics.Query]], queries: list[metrics.Query], window: Window) -> None:
    assert [q for b in batches for q in b] == queries  # every query once, in order
    for batch in batches:
        assert 1 <= len(batch) <= metrics.MAX_QUERIES_PER_CALL
        assert sum(q.points(window) for q in batch) <= metrics.MAX_POINTS_PER_CALL


def test_batches_respect_the_point_limit() -> None:
    queries, window = _queries(1200, 4033)

    batches = metrics.batches(queries, window)

    _check_limits(batches, queries, window)
    assert [len(b) for b in batches] == [24] * 50  # 24 * 4033 = 96,792; 25 would be 100,825


def test_batches_respect_the_query_limit() -> None:
    queries, window = _queries(1200, 201)  # 500 * 201 = 100,500 points: the query count binds

    batches = metrics.batches(queries, window)

    _check_limits(batches, queries, window)
    assert [len(b) for b in batches] == [500, 500, 200]


def test_batches_of_day_long_five_minute_queries() -> None:
    """288 points (a day at 5 minutes): 500 * 288 = 144,000 > 100,800, so the point limit binds at 350."""
    queries, window = _queries(1200, 288)

    batches = metrics.batches(queries, window)

    _check_limits(batches, queries, window)
    assert [len(b) for b in batches] == [350, 350, 350, 150]


def test_batches_of_nothing() -> None:
    assert metrics.batches([], WINDOW) == []


def _seed_p4d_fleet(url: str, n: int) -> list[str]:
    """n p4d.24xlarge (8 GPUs) with one agent data point per GPU."""
    ec2, cw = raw("ec2", url), raw("cloudwatch", url)
    ids = launch(ec2, "p4d.24xlarge", n)
    data = [{"MetricName": UTIL, "Dimensions": gpu_dims(iid, gpu), "Timestamp": WINDOW.start + HOUR, "Value": 1.0 + gpu}
            for iid in ids for gpu in range(8)]
    for start in range(0, len(data), 1000):
        cw.put_metric_data(Namespace="CWAgent", MetricData=data[start : start + 1000])
    return ids


def test_get_metric_data_calls_follow_the_batches(moto: MotoServer) -> None:
    n, gpus = 19, 8
    _seed_p4d_fleet(moto.url, n)
    provider = make_provider(moto.url)
    resources = gpu_running(provider)
    period = timedelta(days=1)  # 2 points a query: only the 500-query limit binds
    gpu_queries, host_queries = n * 3 * gpus, n * 3  # 3 agent series per GPU; CPU, network in and out
    assert (gpu_queries, host_queries) == (456, 57)

    result = provider.usage("us-east-1", resources, WINDOW, period)

    calls = math.ceil(gpu_queries / metrics.MAX_QUERIES_PER_CALL) + math.ceil(host_queries / metrics.MAX_QUERIES_PER_CALL)
    assert provider.api_calls()["cloudwatch.GetMetricData"] == calls == 2
    assert provider.api_calls()["cloudwatch.ListMetrics"] == 2  # utilization and power draw
    assert (result.usage.frame["metric"] == Metric.GPU_UTIL.value).sum() == n * gpus


def test_progress_counts_queries_per_batch(moto: MotoServer) -> None:
    _seed_p4d_fleet(moto.url, 19)
    provider = make_provider(moto.url)
    seen: list[tuple[int, int]] = []

    provider.usage("us-east-1", gpu_running(provider), WINDOW, timedelta(days=1), on_progress=lambda d, t: seen.append((d, t)))

    assert seen == [(456, 513), (513, 513)]


def test_host_metrics_are_read_only_for_the_instances_asked_for(moto: MotoServer) -> None:
    ids = _seed_p4d_fleet(moto.url, 3)
    cw = raw("cloudwatch", moto.url)
    for iid in ids:
        seed_ec2(cw, iid)
    provider = make_provider(moto.url)
    asked: list[set[str]] = []

    def only_first(gpu_frame: pd.DataFrame) -> set[str]:
        asked.append(set(gpu_frame["resource"].astype(str)))
        return {k for k in asked[0] if k.endswith(ids[0])}

    frame = provider.usage("us-east-1", gpu_running(provider), WINDOW, timedelta(days=1),
                           host_metrics_for=only_first).usage.frame

    assert len(asked[0]) == 3  # it saw the GPU rows of all three
    cpu_owners = set(frame.loc[frame["metric"] == Metric.CPU_UTIL.value, "resource"].astype(str))
    assert len(cpu_owners) == 1 and cpu_owners.pop().endswith(ids[0])


def test_list_metrics_is_one_pagination_per_region(moto: MotoServer) -> None:
    east_ec2, east_cw = raw("ec2", moto.url), raw("cloudwatch", moto.url)
    west_ec2, west_cw = raw("ec2", moto.url, "us-west-2"), raw("cloudwatch", moto.url, "us-west-2")
    quarter = timedelta(minutes=15)
    for iid in launch(east_ec2, "g5.xlarge", 3):  # 3 x 192 = 576 listed entries (moto repeats them): 2 pages
        put(east_cw, "CWAgent", UTIL, gpu_dims(iid, 0, host="h"), [(t, 20.0) for t in hours(WINDOW.start, 192, quarter)])
    [west] = launch(west_ec2, "g5.xlarge")  # 48 entries: 1 page
    put(west_cw, "CWAgent", UTIL, gpu_dims(west, 0, host="h"), [(t, 20.0) for t in hours(WINDOW.start, N_HOURS)])
    raw_pages = {
        region: sum(1 for _ in cw.get_paginator("list_metrics").paginate(Namespace="CWAgent", MetricName=UTIL))
        for region, cw in (("us-east-1", east_cw), ("us-west-2", west_cw))
    }
    assert raw_pages == {"us-east-1": math.ceil(576 / 500), "us-west-2": 1}
    provider = make_provider(moto.url)

    for region in ("us-east-1", "us-west-2"):
        result = provider.usage(region, gpu_running(provider, region), WINDOW, PERIOD)
        assert result.gaps == ()

    power_pages = 2  # one (empty) power-draw listing per region
    assert provider.api_calls()["cloudwatch.ListMetrics"] == raw_pages["us-east-1"] + raw_pages["us-west-2"] + power_pages == 5


# --- power draw: nvidia_smi_power_draw, where the agent publishes it -------------------------------

POWER = metrics.GPU_POWER_NAME


def _read_with_power(provider, period: timedelta = PERIOD) -> tuple[pd.DataFrame, list[metrics.Query]]:
    """The GPU side of ``usage`` with the power discovery wired in (see discover_power_series)."""
    resources = gpu_running(provider)
    series = metrics.discover_gpu_series(provider.clients, "us-east-1", {r.ref.id for r in resources})
    power = metrics.discover_power_series(provider.clients, "us-east-1", set(series)) if series else {}
    queries = metrics.gpu_queries([r for r in resources if r.ref.id in series], series, period, power)
    frame, gaps = metrics.fetch(provider.clients, "us-east-1", queries, WINDOW)
    assert gaps == []
    return frame, queries


def test_power_draw_is_read_as_the_hourly_mean_per_gpu(moto: MotoServer) -> None:
    ec2, cw = raw("ec2", moto.url), raw("cloudwatch", moto.url)
    [iid] = launch(ec2, "g5.12xlarge")
    half = timedelta(minutes=30)
    n = 12  # the last 12 hours of the window: few points keep moto quick
    times = hours(WINDOW.end - n * HOUR, n)
    for gpu in (0, 1):
        put(cw, "CWAgent", UTIL, gpu_dims(iid, gpu), [(t, 50.0) for t in times], "Percent")
        # two samples an hour, 20 W apart: the hourly mean sits between them
        put(cw, "CWAgent", POWER, gpu_dims(iid, gpu), [(t + j * half, 100.0 + 50 * gpu + k + 20 * j)
                                                       for k, t in enumerate(times) for j in (0, 1)], "None")
    provider = make_provider(moto.url)

    frame, _ = _read_with_power(provider)

    key = next(r.ref.key for r in gpu_running(provider))
    for gpu in (0, 1):
        got = rows(frame, key, Metric.GPU_POWER, gpu)
        assert got["value"].tolist() == pytest.approx([100.0 + 50 * gpu + k + 10 for k in range(n)])
        assert got["ts"].tolist() == [pd.Timestamp(t) for t in times]
    calls = provider.api_calls()
    assert calls["cloudwatch.ListMetrics"] == 2  # utilization, then power draw
    assert calls["cloudwatch.GetMetricData"] == 1  # power batched with the other GPU series


def test_no_power_series_means_no_power_queries(moto: MotoServer) -> None:
    ec2, cw = raw("ec2", moto.url), raw("cloudwatch", moto.url)
    with_power, without = launch(ec2, "g5.xlarge", 2)
    times = hours(WINDOW.end - 6 * HOUR, 6)
    for iid in (with_power, without):
        put(cw, "CWAgent", UTIL, gpu_dims(iid, 0), [(t, 10.0) for t in times])
    put(cw, "CWAgent", POWER, gpu_dims(with_power, 0), [(t, 61.0) for t in times])
    provider = make_provider(moto.url)

    frame, queries = _read_with_power(provider)

    power_queries = [q for q in queries if q.metric == Metric.GPU_POWER]
    assert [q.ref.id for q in power_queries] == [with_power]
    owners = set(frame.loc[frame["metric"] == Metric.GPU_POWER.value, "resource"].astype(str))
    assert len(owners) == 1 and owners.pop().endswith(with_power)


def test_power_queries_are_hourly_means_whatever_the_period() -> None:
    from providers.model import PricingModel, Resource

    ref = ResourceRef(Cloud.AWS, "123456789012", "us-east-1", "i-0")
    res = Resource(ref, "g5.xlarge", ResourceState.RUNNING, PricingModel.ON_DEMAND, None)
    dims0 = (("InstanceId", "i-0"), ("index", "0"))
    series = {"i-0": {0: [dims0]}}

    without = metrics.gpu_queries([res], series, timedelta(minutes=5))
    with_power = metrics.gpu_queries([res], series, timedelta(minutes=5), {"i-0": {0: [dims0]}})

    [power] = [q for q in with_power if q.metric == Metric.GPU_POWER]
    assert (power.name, power.stat, power.period, power.gpu) == (POWER, "Average", HOUR, 0)
    assert with_power[: len(without)] == without and len(with_power) == len(without) + 1
