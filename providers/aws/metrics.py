"""CloudWatch utilization: the CloudWatch agent's NVIDIA metrics plus ``AWS/EC2`` CPU and network.

The agent (``nvidia_gpu`` under ``metrics_collected``) publishes to namespace ``CWAgent`` one series
per GPU, named ``nvidia_smi_<field>``, with dimensions ``index`` (GPU number) and ``name`` (the GPU
model), the host name as ``host`` unless dropped, and ``InstanceId`` (and friends) when
``append_dimensions`` is set. Which dimension sets exist differs per fleet, so they are discovered
with ``ListMetrics`` (once a region, not per instance) and then fetched with
batched ``GetMetricData`` calls: at most 500 queries and 100,800 data points per call, pages
followed. Where the agent also publishes ``nvidia_smi_power_draw`` (watts), a second ``ListMetrics``
finds it and its hourly mean is read with the other GPU series (``Metric.GPU_POWER``, per GPU).
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import numpy as np
import pandas as pd

from providers.aws.client import AwsClients, pages
from providers.model import INSTANCE_LEVEL, Cloud, Gap, Metric, Resource, ResourceRef, ResourceState, Window, usage_frame

log = logging.getLogger(__name__)

CWAGENT = "CWAgent"
EC2 = "AWS/EC2"
MAX_QUERIES_PER_CALL = 500
MAX_POINTS_PER_CALL = 100_800
#: GPU memory size never changes: one point a day is plenty.
MEMORY_TOTAL_PERIOD = timedelta(days=1)
#: Memory is read for its peak (right-sizing), and the hourly maximum keeps the peak: 12x fewer points.
MEMORY_USED_PERIOD = timedelta(hours=1)

Dims = tuple[tuple[str, str], ...]  # (name, value) pairs in the order CloudWatch lists them

GPU_UTIL_NAME = "nvidia_smi_utilization_gpu"
GPU_MEM_USED_NAME = "nvidia_smi_memory_used"
GPU_MEM_TOTAL_NAME = "nvidia_smi_memory_total"
#: Board power draw in watts, published only where the agent's ``nvidia_gpu`` measurement list names ``power_draw``.
GPU_POWER_NAME = "nvidia_smi_power_draw"
#: Energy needs the mean draw, and an hourly mean is as good as a finer one for kWh: few points.
POWER_PERIOD = timedelta(hours=1)
POWER_STAT = "Average"

#: CWAgent metric name -> (canonical metric, statistic). The maximum keeps a short burst of
#: GPU work inside a period visible: a period is idle only if every sample in it was.
GPU_SERIES = {
    GPU_UTIL_NAME: (Metric.GPU_UTIL, "Maximum"),
    GPU_MEM_USED_NAME: (Metric.GPU_MEM_USED, "Maximum"),
    GPU_MEM_TOTAL_NAME: (Metric.GPU_MEM_TOTAL, "Maximum"),
}
#: AWS/EC2 metric -> (canonical metric, statistic, whether the value is a per-period sum).
EC2_SERIES = {
    "CPUUtilization": (Metric.CPU_UTIL, "Average", False),
    "NetworkIn": (Metric.NET_IN, "Sum", True),
    "NetworkOut": (Metric.NET_OUT, "Sum", True),
}

NO_AGENT_HINT = (
    "install the CloudWatch agent with the nvidia_gpu section under metrics_collected "
    "(utilization_gpu, memory_used, memory_total) and InstanceId in append_dimensions"
)


@dataclass(frozen=True, slots=True)
class Query:
    ref: ResourceRef
    gpu: int
    metric: Metric
    namespace: str
    name: str
    dimensions: Dims
    stat: str
    period: timedelta
    per_second: bool = False

    def points(self, window: Window) -> int:
        return math.ceil(window.duration / self.period)

    def request(self, query_id: str) -> dict[str, Any]:
        return {
            "Id": query_id,
            "MetricStat": {
                "Metric": {
                    "Namespace": self.namespace,
                    "MetricName": self.name,
                    "Dimensions": [{"Name": k, "Value": v} for k, v in self.dimensions],
                },
                "Period": int(self.period.total_seconds()),
                "Stat": self.stat,
            },
            "ReturnData": True,
        }


def discover_gpu_series(clients: AwsClients, region: str, instance_ids: set[str]) -> dict[str, dict[int, list[Dims]]]:
    """``{instance_id: {gpu_index: [dimensions, ...]}}`` of the agent's GPU utilization series.

    One paginated ``ListMetrics`` a region, for ``nvidia_smi_utilization_gpu`` only: the agent
    publishes every ``nvidia_smi_*`` field of a GPU with the same dimensions, so the memory
    series are addressed with the same sets. Repeated entries are dropped (moto lists a series
    once per data point). A GPU can have several dimension sets: whenever someone edits the
    agent's ``append_dimensions`` or ``omit_hostname``, its history continues under a new set,
    and both are listed for two weeks — every set is read and the readings merged. A series
    without ``index`` is the agent's rollup over all GPUs, kept under ``INSTANCE_LEVEL`` only
    when no per-GPU series exists.
    """
    return _discover(clients, region, instance_ids, GPU_UTIL_NAME)


def discover_power_series(clients: AwsClients, region: str, instance_ids: set[str]) -> dict[str, dict[int, list[Dims]]]:
    """Like ``discover_gpu_series``, for ``nvidia_smi_power_draw``: one more ``ListMetrics`` pagination a region.

    Power draw is not in the agent's default field list, so whether an instance publishes it is
    only known by listing; call it only for regions with GPU telemetry (``instance_ids``: the
    instances ``discover_gpu_series`` found).
    """
    return _discover(clients, region, instance_ids, GPU_POWER_NAME)


def _discover(clients: AwsClients, region: str, instance_ids: set[str], name: str) -> dict[str, dict[int, list[Dims]]]:
    client = clients.client("cloudwatch", region)
    found: dict[str, dict[int, list[Dims]]] = defaultdict(lambda: defaultdict(list))
    seen: set[Dims] = set()
    for page in pages(client, "ListMetrics", region, Namespace=CWAGENT, MetricName=name):
        for metric in page.get("Metrics", []):
            if metric.get("Namespace", CWAGENT) != CWAGENT or metric.get("MetricName") != name:
                continue
            # Kept in the order CloudWatch listed them: moto matches dimension lists order-sensitively.
            dims = tuple((d["Name"], d["Value"]) for d in metric.get("Dimensions", []))
            identity = tuple(sorted(dims))
            if identity in seen:
                continue
            seen.add(identity)
            lookup = dict(dims)
            instance = lookup.get("InstanceId")
            if instance in instance_ids:
                found[instance][_gpu_index(lookup.get("index"))].append(dims)
    out: dict[str, dict[int, list[Dims]]] = {}
    for instance, per_gpu in found.items():
        if len(per_gpu) > 1:
            per_gpu.pop(INSTANCE_LEVEL, None)
        out[instance] = {gpu: sorted(sets, key=lambda d: tuple(sorted(d))) for gpu, sets in sorted(per_gpu.items())}
    return out


def _gpu_index(value: str | None) -> int:
    if value is None:
        return INSTANCE_LEVEL
    try:
        return int(value)
    except ValueError:
        return INSTANCE_LEVEL


def gpu_queries(resources: Sequence[Resource], series: dict[str, dict[int, list[Dims]]], period: timedelta,
                power: dict[str, dict[int, list[Dims]]] | None = None) -> list[Query]:
    """The agent's GPU series of the instances that have any (utilization per period; memory coarser).

    ``power`` (from ``discover_power_series``) adds the power draw of the instances that publish
    it: the hourly mean in watts per GPU, batched with the other GPU series. Without it (or for an
    instance without a power series) no power query is made.
    """
    queries: list[Query] = []
    for res in resources:
        for name, (metric, stat) in GPU_SERIES.items():
            step = {GPU_MEM_TOTAL_NAME: MEMORY_TOTAL_PERIOD, GPU_MEM_USED_NAME: max(period, MEMORY_USED_PERIOD)}.get(name, period)
            for gpu, dim_sets in series.get(res.ref.id, {}).items():
                queries += [Query(res.ref, gpu, metric, CWAGENT, name, dims, stat, step) for dims in dim_sets]
        if res.ref.id in series:
            for gpu, dim_sets in (power or {}).get(res.ref.id, {}).items():
                queries += [Query(res.ref, gpu, Metric.GPU_POWER, CWAGENT, GPU_POWER_NAME, dims, POWER_STAT,
                                  max(period, POWER_PERIOD)) for dims in dim_sets]
    return queries


def host_queries(resources: Sequence[Resource], period: timedelta) -> list[Query]:
    """``AWS/EC2`` CPU and network of each instance."""
    return [
        Query(res.ref, INSTANCE_LEVEL, metric, EC2, name, (("InstanceId", res.ref.id),), stat, period, per_second)
        for res in resources
        for name, (metric, stat, per_second) in EC2_SERIES.items()
    ]


def batches(queries: Sequence[Query], window: Window) -> list[list[Query]]:
    """Greedy packing under both GetMetricData limits (query count and data points)."""
    out: list[list[Query]] = []
    current: list[Query] = []
    points = 0
    for query in queries:
        n = min(query.points(window), MAX_POINTS_PER_CALL)
        if current and (len(current) >= MAX_QUERIES_PER_CALL or points + n > MAX_POINTS_PER_CALL):
            out.append(current)
            current, points = [], 0
        current.append(query)
        points += n
    if current:
        out.append(current)
    return out


def fetch(
    clients: AwsClients,
    region: str,
    queries: Sequence[Query],
    window: Window,
    on_batch: Callable[[int], None] | None = None,
) -> tuple[pd.DataFrame, list[Gap]]:
    """Run the queries; returns the long usage frame and a gap per series CloudWatch refused."""
    client = clients.client("cloudwatch", region)
    cols: dict[str, list[np.ndarray]] = defaultdict(list)
    gaps: list[Gap] = []
    for batch in batches(queries, window):
        by_id = {f"q{i}": q for i, q in enumerate(batch)}
        got_ts: dict[str, list[Any]] = defaultdict(list)
        got_val: dict[str, list[float]] = defaultdict(list)
        status: dict[str, str] = {}
        params = {
            "MetricDataQueries": [q.request(qid) for qid, q in by_id.items()],
            "StartTime": window.start,
            "EndTime": window.end,
            "ScanBy": "TimestampAscending",
        }
        for page in pages(client, "GetMetricData", region, **params):
            for result in page.get("MetricDataResults", []):
                qid = result["Id"]
                got_ts[qid].extend(result.get("Timestamps", []))
                got_val[qid].extend(result.get("Values", []))
                status[qid] = result.get("StatusCode", "Complete")
        for qid, query in by_id.items():
            if status.get(qid) in ("Forbidden", "InternalError"):
                gaps.append(_refused(query, region, status[qid]))
                continue
            _append(cols, query, got_ts.get(qid, []), got_val.get(qid, []), window)
        if on_batch:
            on_batch(len(batch))
    if not cols:
        return usage_frame([], [], [], [], []), gaps
    frame = usage_frame(
        np.concatenate(cols["resource"]),
        np.concatenate(cols["gpu"]),
        np.concatenate(cols["metric"]),
        pd.DatetimeIndex(np.concatenate(cols["ts"])).tz_localize("UTC"),
        np.concatenate(cols["value"]),
    )
    return _merge_series(frame, queries), gaps


def _merge_series(frame: pd.DataFrame, queries: Sequence[Query]) -> pd.DataFrame:
    """One row per (resource, GPU, metric, period): a GPU read under several dimension sets is merged.

    Where the sets overlap in time (maxima, or power means of the same GPU), the highest reading is kept.
    """
    if len({(q.ref.key, q.gpu, q.metric) for q in queries}) == len(queries):
        return frame  # one series per GPU and metric: nothing to merge
    keys = ["resource", "gpu", "metric", "ts"]
    merged = frame.groupby(keys, observed=True, sort=False, as_index=False)["value"].max()
    return usage_frame(merged["resource"].astype(str).to_numpy(), merged["gpu"], merged["metric"].astype(str).to_numpy(),
                       merged["ts"], merged["value"])


def _append(cols: dict[str, list[np.ndarray]], q: Query, ts: list[Any], values: list[float], window: Window) -> None:
    if not ts:
        return
    stamps = pd.to_datetime(ts, utc=True).as_unit("ns").tz_localize(None).to_numpy()
    vals = np.asarray(values, dtype=np.float64)
    start = np.datetime64(window.start.replace(tzinfo=None), "ns")
    end = np.datetime64(window.end.replace(tzinfo=None), "ns")
    keep = (stamps >= start) & (stamps < end) & np.isfinite(vals)
    stamps, vals = stamps[keep], vals[keep]
    if q.per_second:
        vals = vals / q.period.total_seconds()
    n = len(vals)
    cols["resource"].append(np.full(n, q.ref.key, dtype=object))
    cols["gpu"].append(np.full(n, q.gpu, dtype=np.int16))
    cols["metric"].append(np.full(n, q.metric.value, dtype=object))
    cols["ts"].append(stamps)
    cols["value"].append(vals)


def _refused(q: Query, region: str, status: str) -> Gap:
    return Gap(
        cloud=Cloud.AWS,
        what="usage",
        reason=f"CloudWatch answered {status} for {q.namespace}/{q.name}",
        region=region,
        resource_id=q.ref.id,
        account=q.ref.account,
        hint="grant cloudwatch:GetMetricData and cloudwatch:ListMetrics" if status == "Forbidden" else None,
    )


def telemetry_gaps(resources: Sequence[Resource], frame: pd.DataFrame, region: str, listed: set[str]) -> list[Gap]:
    """A gap for each running GPU instance whose GPUs said nothing in the window."""
    reported = set(map(str, frame.loc[frame["metric"] == Metric.GPU_UTIL.value, "resource"].unique()))
    gaps = []
    for res in resources:
        if res.ref.key in reported or not res.has_gpu or res.state != ResourceState.RUNNING:
            continue
        if res.ref.id in listed:
            reason = "CloudWatch agent GPU metrics exist but have no data points in the window"
        else:
            reason = f"no GPU telemetry: no {CWAGENT}/{GPU_UTIL_NAME} series for this instance"
        gaps.append(Gap(Cloud.AWS, "gpu-telemetry", reason, region, res.ref.id, res.ref.account, NO_AGENT_HINT))
    return gaps
