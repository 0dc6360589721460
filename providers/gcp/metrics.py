"""Cloud Monitoring utilization of Compute Engine GPU instances, batched per metric type and region.

GPU metrics come from three agents; per GPU the first source below with a series in the window is used and
the later ones are not read for it (never counted twice):

1. Ops Agent, built-in NVML receiver, on by default (``gce_instance``: ``project_id``, ``zone``,
   ``instance_id`` = the numeric id): ``agent.googleapis.com/gpu/utilization`` (GAUGE DOUBLE, percent) and
   ``agent.googleapis.com/gpu/memory/bytes_used`` (GAUGE INT64 bytes, ``memory_state`` used / free, summing
   to the GPU's memory), labels ``gpu_number``, ``model``, ``uuid``.
2. Ops Agent DCGM receiver, version 2 (``gce_instance``): ``workload.googleapis.com/gpu.dcgm.utilization``
   (GAUGE DOUBLE, a ratio 0-1) and ``gpu.dcgm.memory.bytes_used`` (INT64 bytes, ``state`` used / free / reserved).
3. NVIDIA dcgm-exporter's default counters: ``DCGM_FI_DEV_GPU_UTIL`` (percent), ``DCGM_FI_DEV_FB_USED`` /
   ``FB_FREE`` / ``FB_RESERVED`` (MiB), ``DCGM_FI_PROF_GR_ENGINE_ACTIVE`` (a ratio, read for GPUs without
   GPU_UTIL), all gauges, labels ``gpu`` (the index; else the digits of ``device``, "nvidia0"), ``UUID``,
   ``pci_bus_id``, ``device``, ``modelName``, ``Hostname`` (label keys are kept: ``[a-zA-Z][a-zA-Z0-9_]*``).
   Memory total = used + free (+ reserved). Two spellings, in this order:

   a. scraped by the Ops Agent's Prometheus receiver, which writes through the Managed Service for Prometheus
      API, not ``workload.googleapis.com``: ``prometheus.googleapis.com/<name>/gauge`` (DOUBLE) on
      ``prometheus_target`` with ``location`` = the zone, ``cluster`` = ``"__gce__"``, ``namespace`` =
      ``"<instance id>/<instance name>"``, ``job``, ``instance`` (host:port); the agent adds the metric labels
      ``instance_name``, ``machine_type``, ``otel_scope_name``, ``otel_scope_version``;
   b. pushed over OTLP to the Ops Agent with ``metrics_mode: googlecloudmonitoring`` (or by an OpenTelemetry
      Collector's googlecloud exporter): ``workload.googleapis.com/DCGM_FI_...`` on ``gce_instance``.

Compute Engine (hypervisor, no agent): ``compute.googleapis.com/instance/cpu/utilization`` (GAUGE DOUBLE, a
ratio) and ``instance/network/received_bytes_count`` / ``sent_bytes_count`` (DELTA INT64 bytes, one series
per ``loadbalanced`` value, summed here).

Every read is one paginated ``ListTimeSeries`` per metric type (a filter names exactly one) and region (GPU
metrics: zones ``starts_with("<region>-")``; CPU and network: ``one_of`` the instance ids, 100 a call), so
calls do not grow with the fleet; later GPU sources are skipped once every GPU asked about is covered.
Alignment is server-side with ``alignment_period = period``: the maximum for GPU utilization (a burst keeps a
period busy), the mean for CPU, the rate (bytes/s) for network; memory coarser (hourly peak of used, daily
mean of the parts' sum for the total). Periods are anchored at the interval end and each aligned point is
stamped with its period's end; a row's ``ts`` is that end minus the period.
"""

from __future__ import annotations

import logging
import re
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
GCE_INSTANCE, PROMETHEUS_TARGET = "gce_instance", "prometheus_target"
OPS_GPU_UTIL = "agent.googleapis.com/gpu/utilization"
OPS_GPU_MEMORY = "agent.googleapis.com/gpu/memory/bytes_used"
DCGM_GPU_UTIL = "workload.googleapis.com/gpu.dcgm.utilization"
DCGM_GPU_MEMORY = "workload.googleapis.com/gpu.dcgm.memory.bytes_used"
#: dcgm-exporter field names (its default counters); see ``exporter_metric_type`` for the metric types.
EXPORTER_UTIL, EXPORTER_ENGINE = "DCGM_FI_DEV_GPU_UTIL", "DCGM_FI_PROF_GR_ENGINE_ACTIVE"
EXPORTER_FB_USED, EXPORTER_FB_FREE, EXPORTER_FB_RESERVED = "DCGM_FI_DEV_FB_USED", "DCGM_FI_DEV_FB_FREE", \
    "DCGM_FI_DEV_FB_RESERVED"
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
_TRAILING_DIGITS = re.compile(r"(\d+)$")

NO_TELEMETRY_HINT = (
    "install the Ops Agent on the VM: its default configuration collects NVIDIA GPU metrics "
    "(agent.googleapis.com/gpu/*; cloud.google.com/monitoring/agent/ops-agent/installation), "
    "or enable its DCGM integration (a dcgm receiver with receiver_version: 2), "
    "or run NVIDIA dcgm-exporter and scrape it with the Ops Agent's Prometheus receiver "
    "(prometheus.googleapis.com/DCGM_FI_DEV_GPU_UTIL/gauge; cloud.google.com/monitoring/agent/ops-agent/prometheus) "
    "or send it over OTLP with metrics_mode: googlecloudmonitoring (workload.googleapis.com/DCGM_FI_DEV_GPU_UTIL)")


def exporter_metric_type(field: str, via: str = "prometheus") -> str:
    """The Cloud Monitoring metric type of a dcgm-exporter gauge: ``via="prometheus"`` (Ops Agent Prometheus
    receiver, on ``prometheus_target``) or ``via="otlp"`` (``workload.googleapis.com``, on ``gce_instance``)."""
    if via == "prometheus":
        return f"prometheus.googleapis.com/{field}/gauge"
    if via == "otlp":
        return f"workload.googleapis.com/{field}"
    raise ValueError(f"via must be 'prometheus' or 'otlp', not {via!r}")


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
    resource_type: str = GCE_INSTANCE


@dataclass(frozen=True, slots=True)
class Source:
    """One way GPU metrics reach Cloud Monitoring: utilization queries (a GPU is taken by the first that has
    it), the used-memory query and the total-memory queries (summed; the first one must be there)."""

    name: str
    util: tuple[Query, ...]
    used: Query
    total: tuple[Query, ...]


def gpu_sources(period: timedelta) -> list[Source]:
    """The GPU sources in precedence order (see the module docstring)."""
    used_period, total_period = max(period, MEMORY_USED_PERIOD), max(period, MEMORY_TOTAL_PERIOD)
    out = []
    for name, util, scale, memory, state in (("ops-agent", OPS_GPU_UTIL, 1.0, OPS_GPU_MEMORY, "memory_state"),
                                             ("dcgm", DCGM_GPU_UTIL, 100.0, DCGM_GPU_MEMORY, "state")):
        out.append(Source(name, (Query(util, Metric.GPU_UTIL, "ALIGN_MAX", period, scale),),
                          Query(memory, Metric.GPU_MEM_USED, "ALIGN_MAX", used_period, 1 / MIB,
                                f'metric.labels.{state} = "used"'),
                          (Query(memory, Metric.GPU_MEM_TOTAL, "ALIGN_MEAN", total_period, 1 / MIB, combine="sum"),)))
    for via, resource_type in (("prometheus", PROMETHEUS_TARGET), ("otlp", GCE_INSTANCE)):
        def q(field: str, metric: Metric, p: timedelta, aligner: str = "ALIGN_MAX", scale: float = 1.0,
              via: str = via, resource_type: str = resource_type) -> Query:
            return Query(exporter_metric_type(field, via), metric, aligner, p, scale,
                         combine="sum" if metric == Metric.GPU_MEM_TOTAL else "max", resource_type=resource_type)
        out.append(Source(f"dcgm-exporter/{via}", (q(EXPORTER_UTIL, Metric.GPU_UTIL, period),
                                                    q(EXPORTER_ENGINE, Metric.GPU_UTIL, period, scale=100.0)),
                          q(EXPORTER_FB_USED, Metric.GPU_MEM_USED, used_period),
                          tuple(q(f, Metric.GPU_MEM_TOTAL, total_period, "ALIGN_MEAN")
                                for f in (EXPORTER_FB_FREE, EXPORTER_FB_USED, EXPORTER_FB_RESERVED))))
    return out


@dataclass(frozen=True, slots=True)
class _Read:
    resource: Resource
    gpu: int
    ends: np.ndarray  # int64 ns, the aligned points' end times
    values: np.ndarray


class _Index:
    """Series -> resource: the numeric instance id (``gce_instance``: ``instance_id``; ``prometheus_target``
    written by the Ops Agent: ``namespace`` = ``"<id>/<name>"``), else (zone, instance name) for resources
    whose numeric id is not known (the name from ``namespace``, ``metadata.system_labels.name`` or the
    ``instance_name`` metric label)."""

    def __init__(self, resources: Sequence[Resource]) -> None:
        self.by_id = {r.native_id: r for r in resources if r.native_id}
        self.by_name = {(r.zone, r.ref.id): r for r in resources if not r.native_id}

    def find(self, ts: Any) -> Resource | None:
        labels = ts.resource.labels
        if ts.resource.type == PROMETHEUS_TARGET:
            instance_id, _, name = labels.get("namespace", "").partition("/")
            zone = labels.get("location", "")
        else:
            instance_id, name, zone = labels.get("instance_id", ""), "", labels.get("zone", "")
        found = self.by_id.get(instance_id)
        if found is not None or not self.by_name:
            return found
        if not name:
            meta = ts.metadata.system_labels.fields.get("name")
            name = meta.string_value if meta is not None else ts.metric.labels.get("instance_name", "")
        return self.by_name.get((zone, name))


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


def _decode(ts: Any, end_ns: int, period_ns: int) -> tuple[np.ndarray, np.ndarray]:
    """(end times in ns, values) of one aligned series. Aligned points sit on the grid ``end - k * period``:
    only their whole seconds are read (each protobuf attribute read costs; this is the hot loop) and
    snapped to the grid."""
    points = ts.points
    n = len(points)
    seconds = np.fromiter((p.interval.end_time.seconds for p in points), dtype=np.int64, count=n)
    steps = np.rint((end_ns - seconds * 1_000_000_000) / period_ns).astype(np.int64)
    if ts.value_type == _INT64:
        values = np.fromiter((p.value.int64_value for p in points), dtype=np.float64, count=n)
    elif ts.value_type == _BOOL:
        values = np.fromiter((p.value.bool_value for p in points), dtype=np.float64, count=n)
    else:
        values = np.fromiter((p.value.double_value for p in points), dtype=np.float64, count=n)
    return end_ns - steps * period_ns, values


def read(clients: GcpClients, project: str, window: Window, query: Query, scopes: Sequence[str], index: _Index,
         keep: Callable[[Resource, int], bool] | None = None) -> list[_Read]:
    """The query's series over every scope, mapped to resources; series of unknown instances, and GPU series
    naming no GPU, are dropped."""
    out: list[_Read] = []
    unknown = 0
    end_ns, period_ns = pd.Timestamp(window.end).value, pd.Timedelta(query.period).value
    for scope in scopes:
        for ts in list_series(clients, project, window, query, scope):
            resource = index.find(ts)
            gpu = gpu_index(ts.metric.labels) if query.per_gpu else INSTANCE_LEVEL
            if resource is None or query.per_gpu and gpu == INSTANCE_LEVEL:
                unknown += 1
                continue
            if keep is not None and not keep(resource, gpu):
                continue
            ends, values = _decode(ts, end_ns, period_ns)
            out.append(_Read(resource, gpu, ends, values))
    if unknown:
        log.debug("event=monitoring_unknown_series metric=%s project=%s series=%d", query.metric_type, project, unknown)
    return out


def gpu_index(labels: Any) -> int:
    """The GPU of a series: ``gpu_number`` (Ops Agent), ``gpu`` (dcgm-exporter), else the digits ending
    ``device`` ("nvidia3" -> 3); ``INSTANCE_LEVEL`` when none says."""
    for key in ("gpu_number", "gpu"):
        value = labels.get(key)
        if value is not None and value.isdigit():
            return int(value)
    digits = _TRAILING_DIGITS.search(labels.get("device", ""))
    return int(digits.group(1)) if digits else INSTANCE_LEVEL


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
    return usage_frame(merged["resource"].astype(str).to_numpy(), merged["gpu"],
                       merged["metric"].astype(str).to_numpy(), merged["ts"], merged["value"])


def host_queries(period: timedelta) -> list[Query]:
    return [Query(CPU_UTIL, Metric.CPU_UTIL, "ALIGN_MEAN", period, 100.0, per_gpu=False),
            Query(NET_IN, Metric.NET_IN, "ALIGN_RATE", period, combine="sum", per_gpu=False),
            Query(NET_OUT, Metric.NET_OUT, "ALIGN_RATE", period, combine="sum", per_gpu=False)]


def region_scope(region: str, resource_type: str = GCE_INSTANCE) -> str:
    """Every instance of the region: ``gce_instance`` by ``zone``; ``prometheus_target`` series written by the
    Ops Agent (``cluster = "__gce__"``) by ``location``, which the agent sets to the VM's zone."""
    if resource_type == PROMETHEUS_TARGET:
        return (f'resource.type = "{PROMETHEUS_TARGET}" AND resource.labels.cluster = "__gce__" AND '
                f'resource.labels.location = starts_with("{region}-")')
    return f'resource.type = "{GCE_INSTANCE}" AND resource.labels.zone = starts_with("{region}-")'


def instance_scopes(region: str, resources: Sequence[Resource]) -> list[str]:
    """``one_of`` the numeric ids, ``IDS_PER_CALL`` a filter; the whole region when an id is unknown."""
    ids = sorted({r.native_id for r in resources if r.native_id})
    if not resources or len(ids) < len(resources):
        return [region_scope(region)] if resources else []
    return ['resource.type = "gce_instance" AND resource.labels.instance_id = one_of({})'.format(
        ", ".join(f'"{i}"' for i in ids[k:k + IDS_PER_CALL])) for k in range(0, len(ids), IDS_PER_CALL)]


GpuKey = tuple[str, int]  # (resource key, GPU index)


def _gpu_usage(clients: GcpClients, project: str, region: str, resources: Sequence[Resource], window: Window,
               period: timedelta, progress: _Progress) -> tuple[pd.DataFrame, set[str]]:
    """GPU utilization by source precedence, then each source's memory for the GPUs it won; the frame and
    the keys of the resources with GPU telemetry."""
    index = _Index(resources)
    sources = gpu_sources(period)
    # every GPU of the instances asked about; when the inventory knows them all, later sources are skipped
    # once these are covered
    known = all(r.accelerators is not None for r in resources)
    wanted = {(r.ref.key, g) for r in resources if r.accelerators for g in range(r.accelerators.count)}
    won: dict[GpuKey, Source] = {}
    parts: list[pd.DataFrame] = []
    for source in sources:
        for query in source.util:
            if known and won and wanted <= won.keys():
                continue
            reads = read(clients, project, window, query, [region_scope(region, query.resource_type)], index,
                         keep=lambda res, gpu: (res.ref.key, gpu) not in won)
            progress.step()
            for r in reads:
                if len(r.ends):
                    won.setdefault((r.resource.ref.key, r.gpu), source)
            parts.append(frame(reads, query, window))
    winners = [s for s in sources if s in won.values()]
    progress.total = progress.done + sum(1 + len(s.total) for s in winners) + 3
    for source in winners:
        mine = {key for key, s in won.items() if s is source}
        parts += _memory(clients, project, region, window, source, mine, index, progress)
    return Usage.concat([Usage(p, period) for p in parts], period).frame, {key for key, _ in won}


def _memory(clients: GcpClients, project: str, region: str, window: Window, source: Source, mine: set[GpuKey],
            index: _Index, progress: _Progress) -> list[pd.DataFrame]:
    """Used (peak) and total memory of the GPUs ``source`` won; the total only where its first query (the
    free memory, or the sum of all states) is there, the other parts added to it."""
    def get(query: Query, keys: set[GpuKey]) -> list[_Read]:
        reads = read(clients, project, window, query, [region_scope(region, query.resource_type)], index,
                     keep=lambda res, gpu: (res.ref.key, gpu) in keys)
        progress.step()
        return reads

    used = frame(get(source.used, mine), source.used, window)
    first, *rest = source.total
    totals = get(first, mine)
    with_total = {(r.resource.ref.key, r.gpu) for r in totals if len(r.ends)}
    for query in rest if with_total else ():
        totals += get(query, with_total)
    if not with_total:
        progress.total -= len(rest)
    return [used, frame(totals, first, window)]


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
    """GPU series first (Ops Agent, DCGM receiver, dcgm-exporter: per GPU the first that reports, then memory
    of the GPUs each source won), then CPU and network of the instances with GPU telemetry that
    ``host_metrics_for(gpu_frame)`` names (all of them by default); a ``gpu-telemetry`` gap for each running
    GPU instance that reported nothing."""
    resources = [r for r in resources if r.ref.account == project]
    if not resources:
        return UsageResult(Usage.empty(period))
    progress = _Progress(on_progress, 1 + 2 + 3 * len(instance_scopes(region, resources)))
    gpu_frame, measured_keys = _gpu_usage(clients, project, region, resources, window, period, progress)
    measured = [r for r in resources if r.ref.key in measured_keys]  # no GPU telemetry: CPU alone would mislead
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
    reason = (f"no GPU telemetry: no {OPS_GPU_UTIL} (Ops Agent), {DCGM_GPU_UTIL} (Ops Agent DCGM receiver) or "
              f"{EXPORTER_UTIL} (dcgm-exporter: {exporter_metric_type(EXPORTER_UTIL)} or "
              f"{exporter_metric_type(EXPORTER_UTIL, 'otlp')}) series for this instance in the window")
    return [Gap(Cloud.GCP, "gpu-telemetry", reason, region, r.ref.id, r.ref.account, NO_TELEMETRY_HINT)
            for r in resources
            if r.has_gpu and r.state == ResourceState.RUNNING and r.ref.key not in reported]
