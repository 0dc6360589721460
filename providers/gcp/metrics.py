"""Cloud Monitoring utilization of Compute Engine GPU instances, batched per metric type and region.

Metrics (Cloud Monitoring's "Ops Agent metrics" and "Compute Engine metrics" references), all on the
``gce_instance`` monitored resource (labels ``project_id``, ``zone``, ``instance_id``: the numeric id):

- Ops Agent, built-in NVML receiver, on by default for NVIDIA GPUs: ``agent.googleapis.com/gpu/utilization``
  (GAUGE DOUBLE, percent 0-100) and ``agent.googleapis.com/gpu/memory/bytes_used`` (GAUGE INT64 bytes,
  ``memory_state`` used / free; the states sum to the GPU's memory), labels ``gpu_number``, ``model``, ``uuid``.
- Ops Agent DCGM receiver (version 2; version 1 publishes profiling metrics only):
  ``workload.googleapis.com/gpu.dcgm.utilization`` (GAUGE DOUBLE, a ratio 0-1) and
  ``workload.googleapis.com/gpu.dcgm.memory.bytes_used`` (GAUGE INT64 bytes, ``state`` used / free /
  reserved). Read only for GPUs the NVML metric does not cover.
- Compute Engine (hypervisor, no agent): ``compute.googleapis.com/instance/cpu/utilization`` (GAUGE
  DOUBLE, a ratio 0-1) and ``instance/network/received_bytes_count`` / ``sent_bytes_count`` (DELTA
  INT64 bytes, one series per ``loadbalanced`` value, summed here).

Every read is one paginated ``ListTimeSeries`` per metric type and region (GPU metrics: the zones
``starts_with("<region>-")``; CPU and network: ``one_of`` the instance ids, 100 a call), aligned on the
server with ``alignment_period = period``: the maximum for GPU utilization (a burst keeps a period
busy), the mean for CPU, the rate (bytes/s) for network; memory coarser (hourly peak of used, daily
mean of the states' sum for the total). Cloud Monitoring anchors the periods at the interval end and
stamps each aligned point with its period's end; a row's ``ts`` is that end minus the period.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import numpy as np
import pandas as pd

from providers.base import UsageResult
from providers.gcp.client import GcpClients, translated
from providers.model import (INSTANCE_LEVEL, Cloud, Gap, Metric, Resource, ResourceState, Usage, Window,
                             empty_usage_frame, usage_frame)

log = logging.getLogger(__name__)

OPERATION = "monitoring.TimeSeries.List"
OPS_GPU_UTIL = "agent.googleapis.com/gpu/utilization"
OPS_GPU_MEMORY = "agent.googleapis.com/gpu/memory/bytes_used"
DCGM_GPU_UTIL = "workload.googleapis.com/gpu.dcgm.utilization"
DCGM_GPU_MEMORY = "workload.googleapis.com/gpu.dcgm.memory.bytes_used"
CPU_UTIL = "compute.googleapis.com/instance/cpu/utilization"
NET_IN = "compute.googleapis.com/instance/network/received_bytes_count"
NET_OUT = "compute.googleapis.com/instance/network/sent_bytes_count"
#: Instance ids per ``one_of`` filter (the filter has a length limit; one call per chunk).
IDS_PER_CALL = 100
#: GPU memory size never changes: one point a day; used memory is read for its peak, hourly.
MEMORY_TOTAL_PERIOD = timedelta(days=1)
MEMORY_USED_PERIOD = timedelta(hours=1)
MIB = float(2**20)
_INT64, _DOUBLE, _BOOL = 2, 3, 1  # google.api.MetricDescriptor.ValueType

NO_TELEMETRY_HINT = (
    "install the Ops Agent on the VM (it collects NVIDIA GPU metrics, agent.googleapis.com/gpu/*, by default; "
    "`gcloud compute ssh VM -- 'curl -sSO https://dl.google.com/cloudagents/add-google-cloud-ops-agent-repo.sh "
    "&& sudo bash add-google-cloud-ops-agent-repo.sh --also-install'`), or enable its DCGM integration "
    "(a dcgm receiver with receiver_version: 2)")


@dataclass(frozen=True, slots=True)
class Query:
    """One metric type read for a set of instances: what to ask and how to turn it into rows."""

    metric_type: str
    metric: Metric
    aligner: str
    period: timedelta
    scale: float = 1.0  # value x scale = canonical unit
    extra: str = ""  # more filter terms, e.g. a memory state
    combine: str = "max"  # several series of one (resource, GPU, period): "max" or "sum"
    per_gpu: bool = True


@dataclass(frozen=True, slots=True)
class _Read:
    resource: Resource
    gpu: int
    ends: np.ndarray  # int64 ns, the aligned points' end times
    values: np.ndarray


class _Index:
    """Series -> resource: the numeric ``instance_id``, else (zone, instance name) for resources whose
    numeric id is not known (from ``metadata.system_labels.name`` or the ``instance_name`` metric label)."""

    def __init__(self, resources: Sequence[Resource]) -> None:
        self.by_id = {r.native_id: r for r in resources if r.native_id}
        self.by_name = {(r.zone, r.ref.id): r for r in resources if not r.native_id}

    def find(self, ts: Any) -> Resource | None:
        labels = ts.resource.labels
        found = self.by_id.get(labels.get("instance_id", ""))
        if found is not None or not self.by_name:
            return found
        meta = ts.metadata.system_labels.fields.get("name")
        name = meta.string_value if meta is not None else ts.metric.labels.get("instance_name", "")
        return self.by_name.get((labels.get("zone", ""), name))


class _Progress:
    """``on_progress(done, total)`` per ``ListTimeSeries`` query; the total is re-planned as answers narrow it."""

    def __init__(self, callback: Callable[[int, int], None] | None, total: int) -> None:
        self.callback, self.done, self.total = callback, 0, total

    def step(self) -> None:
        self.done += 1
        if self.callback:
            self.callback(self.done, max(self.total, self.done))


def list_series(clients: GcpClients, project: str, window: Window, query: Query, scope: str) -> list[Any]:
    """Every time series (raw protobuf, pages followed and counted) of one ``ListTimeSeries`` query."""
    flt = f'metric.type = "{query.metric_type}" AND {scope}' + (f" AND {query.extra}" if query.extra else "")
    request = {
        "name": f"projects/{project}",
        "filter": flt,
        "interval": {"start_time": window.start, "end_time": window.end},
        "aggregation": {"alignment_period": query.period, "per_series_aligner": query.aligner},
        "view": "FULL",
    }
    out: list[Any] = []
    with translated(OPERATION, clients.where("monitoring")):
        pager = clients.monitoring().list_time_series(request=request, retry=clients.retry, timeout=clients.timeout)
        for page in pager.pages:
            clients.count(OPERATION)
            out.extend(type(page).pb(page).time_series)
    return out


def _decode(ts: Any) -> tuple[np.ndarray, np.ndarray]:
    points = ts.points
    n = len(points)
    ends = np.fromiter((p.interval.end_time.seconds * 1_000_000_000 + p.interval.end_time.nanos for p in points),
                       dtype=np.int64, count=n)
    if ts.value_type == _INT64:
        values = np.fromiter((p.value.int64_value for p in points), dtype=np.float64, count=n)
    elif ts.value_type == _BOOL:
        values = np.fromiter((p.value.bool_value for p in points), dtype=np.float64, count=n)
    else:
        values = np.fromiter((p.value.double_value for p in points), dtype=np.float64, count=n)
    return ends, values


def read(clients: GcpClients, project: str, window: Window, query: Query, scopes: Sequence[str], index: _Index,
         keep: Callable[[Resource, int], bool] | None = None) -> list[_Read]:
    """The query's series over every scope, mapped to resources; series of unknown instances are dropped."""
    out: list[_Read] = []
    unknown = 0
    for scope in scopes:
        for ts in list_series(clients, project, window, query, scope):
            resource = index.find(ts)
            if resource is None:
                unknown += 1
                continue
            gpu = _gpu_number(ts.metric.labels.get("gpu_number")) if query.per_gpu else INSTANCE_LEVEL
            if keep is not None and not keep(resource, gpu):
                continue
            ends, values = _decode(ts)
            out.append(_Read(resource, gpu, ends, values))
    if unknown:
        log.debug("event=monitoring_unknown_series metric=%s project=%s series=%d", query.metric_type, project, unknown)
    return out


def _gpu_number(value: str | None) -> int:
    try:
        return int(value) if value is not None else INSTANCE_LEVEL
    except ValueError:
        return INSTANCE_LEVEL


def frame(reads: Sequence[_Read], query: Query, window: Window) -> pd.DataFrame:
    """The canonical rows of one query: ``ts`` = the aligned point's end minus the period (clipped to the
    window start), values scaled; series meeting on one (resource, GPU, period) combined."""
    reads = [r for r in reads if len(r.ends)]
    if not reads:
        return empty_usage_frame()
    sizes = [len(r.ends) for r in reads]
    ends = np.concatenate([r.ends for r in reads])
    start = pd.Timestamp(window.start).value
    ts = np.maximum(ends - pd.Timedelta(query.period).value, start).astype("datetime64[ns]")
    values = np.concatenate([r.values for r in reads]) * query.scale
    out = usage_frame(np.repeat(np.array([r.resource.ref.key for r in reads], dtype=object), sizes),
                      np.repeat(np.array([r.gpu for r in reads], dtype=np.int16), sizes),
                      np.full(len(values), query.metric.value, dtype=object), ts, values)
    keys = ["resource", "gpu", "metric", "ts"]
    if not out.duplicated(keys).any():
        return out
    merged = out.groupby(keys, observed=True, sort=False, as_index=False)["value"].agg(query.combine)
    return usage_frame(merged["resource"].astype(str).to_numpy(), merged["gpu"], merged["metric"].astype(str).to_numpy(),
                       merged["ts"], merged["value"])


def _memory_queries(util_type: str, period: timedelta) -> tuple[Query, Query]:
    memory_type, state = (OPS_GPU_MEMORY, "memory_state") if util_type == OPS_GPU_UTIL else (DCGM_GPU_MEMORY, "state")
    used = Query(memory_type, Metric.GPU_MEM_USED, "ALIGN_MAX", max(period, MEMORY_USED_PERIOD), 1 / MIB,
                 f'metric.labels.{state} = "used"')
    total = Query(memory_type, Metric.GPU_MEM_TOTAL, "ALIGN_MEAN", max(period, MEMORY_TOTAL_PERIOD), 1 / MIB,
                  combine="sum")
    return used, total


def host_queries(period: timedelta) -> list[Query]:
    return [Query(CPU_UTIL, Metric.CPU_UTIL, "ALIGN_MEAN", period, 100.0, per_gpu=False),
            Query(NET_IN, Metric.NET_IN, "ALIGN_RATE", period, combine="sum", per_gpu=False),
            Query(NET_OUT, Metric.NET_OUT, "ALIGN_RATE", period, combine="sum", per_gpu=False)]


def region_scope(region: str) -> str:
    return f'resource.type = "gce_instance" AND resource.labels.zone = starts_with("{region}-")'


def instance_scopes(region: str, resources: Sequence[Resource]) -> list[str]:
    """``one_of`` the numeric ids, ``IDS_PER_CALL`` a filter; the whole region when an id is unknown."""
    ids = sorted({r.native_id for r in resources if r.native_id})
    if not resources or len(ids) < len(resources):
        return [region_scope(region)] if resources else []
    return ['resource.type = "gce_instance" AND resource.labels.instance_id = one_of({})'.format(
        ", ".join(f'"{i}"' for i in ids[k:k + IDS_PER_CALL])) for k in range(0, len(ids), IDS_PER_CALL)]


def usage(
    clients: GcpClients,
    project: str,
    region: str,
    resources: Sequence[Resource],
    window: Window,
    period: timedelta,
    on_progress: Callable[[int, int], None] | None = None,
    host_metrics_for: Callable[[pd.DataFrame], Collection[str]] | None = None,
) -> UsageResult:
    """GPU series first (NVML, then DCGM for the GPUs NVML does not cover, then memory of the GPUs seen),
    then CPU and network of the instances with GPU telemetry that ``host_metrics_for(gpu_frame)`` names
    (all of them by default); a ``gpu-telemetry`` gap for each running GPU instance that reported nothing."""
    resources = [r for r in resources if r.ref.account == project]
    if not resources:
        return UsageResult(Usage.empty(period))
    index = _Index(resources)
    scope = [region_scope(region)]
    ops = Query(OPS_GPU_UTIL, Metric.GPU_UTIL, "ALIGN_MAX", period)
    dcgm = Query(DCGM_GPU_UTIL, Metric.GPU_UTIL, "ALIGN_MAX", period, 100.0)
    progress = _Progress(on_progress, 2 + 4 + 3 * len(instance_scopes(region, resources)))

    ops_reads = read(clients, project, window, ops, scope, index)
    progress.step()
    nvml = {(r.resource.ref.key, r.gpu) for r in ops_reads if len(r.ends)}
    dcgm_reads = read(clients, project, window, dcgm, scope, index,
                      keep=lambda res, gpu: (res.ref.key, gpu) not in nvml)
    progress.step()
    dcgm_only = {(r.resource.ref.key, r.gpu) for r in dcgm_reads if len(r.ends)}
    measured_keys = {key for key, _ in nvml | dcgm_only}
    measured = [r for r in resources if r.ref.key in measured_keys]  # no GPU telemetry: CPU alone would mislead
    progress.total = 2 + 2 * bool(nvml) + 2 * bool(dcgm_only) + 3 * len(instance_scopes(region, measured))
    parts = [frame(ops_reads, ops, window), frame(dcgm_reads, dcgm, window)]
    for util, seen in ((OPS_GPU_UTIL, nvml), (DCGM_GPU_UTIL, dcgm_only)):
        for query in _memory_queries(util, period) if seen else ():
            parts.append(frame(read(clients, project, window, query, scope, index,
                                    keep=lambda res, gpu, seen=seen: (res.ref.key, gpu) in seen), query, window))
            progress.step()
    gpu_frame = Usage.concat([Usage(p, period) for p in parts], period).frame

    if host_metrics_for is not None:
        wanted = set(host_metrics_for(gpu_frame))
        measured = [r for r in measured if r.ref.key in wanted]
    hosts = instance_scopes(region, measured)
    progress.total = progress.done + 3 * len(hosts)
    host_index = _Index(measured)
    host_parts: list[pd.DataFrame] = []
    for query in host_queries(period):
        for host_scope in hosts:
            host_parts.append(frame(read(clients, project, window, query, [host_scope], host_index), query, window))
            progress.step()
    frame_all = Usage.concat([Usage(gpu_frame, period)] + [Usage(p, period) for p in host_parts], period)
    return UsageResult(frame_all, tuple(telemetry_gaps(resources, measured_keys, region)))


def telemetry_gaps(resources: Sequence[Resource], reported: Collection[str], region: str) -> list[Gap]:
    """A gap for each running GPU instance whose GPUs said nothing in the window (missing data is never idle)."""
    reason = (f"no GPU telemetry: no {OPS_GPU_UTIL} (Ops Agent) or {DCGM_GPU_UTIL} (DCGM) series "
              "for this instance in the window")
    return [Gap(Cloud.GCP, "gpu-telemetry", reason, region, r.ref.id, r.ref.account, NO_TELEMETRY_HINT)
            for r in resources
            if r.has_gpu and r.state == ResourceState.RUNNING and r.ref.key not in reported]
