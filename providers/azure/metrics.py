"""Azure Monitor utilization: Telegraf's NVIDIA custom metrics plus the VM platform CPU and network.

Azure publishes no GPU metric for N-series VMs. The documented way into Azure Monitor metrics is
Telegraf's ``nvidia_smi`` input with its ``azure_monitor`` output: custom namespace
``Telegraf/nvidia_smi``, one metric per nvidia-smi field (``utilization_gpu`` percent,
``memory_used``/``memory_total`` MiB, ``power_draw`` W) with the tags as dimensions (``index`` is the
GPU number; ``name``, ``uuid``, ``host`` ...). That is what is read here. GPUs watched only through the
DCGM exporter into Azure Managed Prometheus (an Azure Monitor workspace, PromQL) or Log Analytics
are not reachable through ``Microsoft.Insights/metrics``; such VMs get a ``gpu-telemetry`` gap with the
Telegraf hint.

Per VM, one ``Metrics - List`` call (``monitor.Metrics.List``) reads every GPU field at once, split
per GPU with ``$filter=index eq '*'`` and aggregated server-side (``Maximum`` for utilization and
memory, ``Average`` for power); a second reads ``Percentage CPU`` (Average) and ``Network In/Out
Total`` (Total per interval, turned into bytes/s) of the VMs ``host_metrics_for`` names. A 400 (a
field the VM's Telegraf does not publish, or no ``index`` tag) is answered by one ``metricDefinitions``
call and a retry with what exists. A 403/404 on one VM is a gap, not a failed run.

Not the batch API (``metrics:getBatch``, 50 resources a call, package azure-monitor-query): its
guide says it does not serve custom metrics, so the GPU series (most of the calls) could not use it;
it also needs a second, regional endpoint and token audience. Limits followed: ARM read throttling
(429s are retried by azure-core, then ``Throttled``), at most 20 metric names a call, one query spans
at most 30 days (longer windows are read in 30-day chunks), retention 93 days. The interval must be
one of the time grains the API offers (``INTERVALS``).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Collection, Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
from providers.azure.client import AzureClients, translated
from providers.base import UsageResult
from providers.errors import ProviderError
from providers.model import (
    INSTANCE_LEVEL,
    Cloud,
    Gap,
    Metric,
    Resource,
    ResourceState,
    Usage,
    Window,
    usage_frame,
)

log = logging.getLogger(__name__)

GPU_NAMESPACE = "Telegraf/nvidia_smi"
VM_NAMESPACE = "Microsoft.Compute/virtualMachines"
GPU_FILTER = "index eq '*'"
GPU_TOP = 64  # series per metric: one per GPU (the API's default is 10)
#: Telegraf nvidia_smi field -> (canonical metric, aggregation read).
GPU_FIELDS = {
    "utilization_gpu": (Metric.GPU_UTIL, "maximum"),
    "memory_used": (Metric.GPU_MEM_USED, "maximum"),
    "memory_total": (Metric.GPU_MEM_TOTAL, "maximum"),
    "power_draw": (Metric.GPU_POWER, "average"),
}
UTIL_FIELD = "utilization_gpu"
#: Platform metric -> (canonical metric, aggregation read, whether it is a per-interval total to divide).
HOST_FIELDS = {
    "Percentage CPU": (Metric.CPU_UTIL, "average", False),
    "Network In Total": (Metric.NET_IN, "total", True),
    "Network Out Total": (Metric.NET_OUT, "total", True),
}
#: The time grains Metrics - List accepts.
INTERVALS = {
    timedelta(minutes=1): "PT1M", timedelta(minutes=5): "PT5M", timedelta(minutes=15): "PT15M",
    timedelta(minutes=30): "PT30M", timedelta(hours=1): "PT1H", timedelta(hours=6): "PT6H",
    timedelta(hours=12): "PT12H", timedelta(days=1): "P1D",
}
MAX_SPAN = timedelta(days=30)
#: Coarser rows where a finer grain adds nothing: memory size per day, memory peak and power mean per hour.
COARSER = {Metric.GPU_MEM_TOTAL: (timedelta(days=1), "max"), Metric.GPU_MEM_USED: (timedelta(hours=1), "max"),
           Metric.GPU_POWER: (timedelta(hours=1), "mean")}

NO_AGENT_HINT = (
    "Azure has no platform GPU metric: run Telegraf on the VM with [[inputs.nvidia_smi]] and [[outputs.azure_monitor]] "
    "(custom namespace Telegraf/nvidia_smi: utilization_gpu, memory_used, memory_total; keep the index tag) and give "
    "the VM a managed identity with the Monitoring Metrics Publisher role"
)
READER_HINT = "grant Monitoring Reader on the VM, its resource group or the subscription"


class _Refused(Exception):
    """Metrics - List answered 400, 403 or 404 for one VM."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def interval_for(period: timedelta) -> str:
    """The ISO 8601 time grain equal to ``period``; ``ProviderError`` naming the allowed ones otherwise."""
    try:
        return INTERVALS[period]
    except KeyError:
        allowed = ", ".join(INTERVALS.values())
        raise ProviderError(f"azure: Azure Monitor has no {period} interval; it accepts {allowed}",
                            hint=f"choose a sampling period of {allowed}", code="InvalidInterval") from None


def usage(
    clients: AzureClients,
    subscription: str,
    region: str,
    resources: Sequence[Resource],
    window: Window,
    period: timedelta,
    on_progress: Callable[[int, int], None] | None = None,
    host_metrics_for: Callable[[pd.DataFrame], Collection[str]] | None = None,
) -> UsageResult:
    """GPU series of every VM first, then CPU and network of those ``host_metrics_for`` names
    (by default every VM with GPU telemetry); a gap for each running GPU VM without GPU telemetry."""
    if not resources:
        return UsageResult(Usage.empty(period))
    interval = interval_for(period)
    monitor = clients.monitor(subscription)
    gaps: list[Gap] = []
    refused: set[str] = set()
    published: set[str] = set()  # VMs whose GPU series exist (with or without points in the window)
    done, total = 0, 2 * len(resources)

    def advance() -> None:
        nonlocal done
        done += 1
        if on_progress:
            on_progress(done, total)

    cols: dict[str, list[np.ndarray]] = defaultdict(list)
    for res in resources:
        try:
            answer = _gpu_metrics(clients, monitor, res.ref.id, window, period, interval)
        except _Refused as exc:
            refused.add(res.ref.key)
            gaps.append(_refused_gap(res, region, exc))
            answer = []
        if any(m.timeseries for m in answer if _name(m).lower() == UTIL_FIELD):
            published.add(res.ref.key)
        _collect(cols, res, answer, {k: (m, agg, False) for k, (m, agg) in GPU_FIELDS.items()}, window, period,
                 per_gpu=True)
        advance()
    gpu_frame = _coarsen(_frame(cols), window)
    reported = set(map(str, gpu_frame.loc[gpu_frame["metric"] == Metric.GPU_UTIL.value, "resource"].unique()))
    wanted = set(host_metrics_for(gpu_frame)) if host_metrics_for is not None else reported
    hosts = [r for r in resources if r.ref.key in wanted and r.ref.key not in refused]
    total = len(resources) + len(hosts)
    if on_progress and not hosts:
        on_progress(done, total)  # nothing more to read: the run is complete
    cols = defaultdict(list)
    for res in hosts:
        try:
            answer = _list(clients, monitor, res.ref.id, window, period, interval, list(HOST_FIELDS), "Average,Total",
                           VM_NAMESPACE)
        except _Refused as exc:
            gaps.append(_refused_gap(res, region, exc))
            answer = []
        _collect(cols, res, answer, HOST_FIELDS, window, period, per_gpu=False)
        advance()
    frame = Usage.concat([Usage(gpu_frame, period), Usage(_frame(cols), period)], period).frame
    gaps += telemetry_gaps(resources, reported, refused, published, region)
    return UsageResult(Usage(frame, period), tuple(gaps))


def _gpu_metrics(clients: AzureClients, monitor: Any, uri: str, window: Window, period: timedelta,
                 interval: str) -> list[Any]:
    """Every Telegraf GPU field of one VM; on a 400, only the fields its definitions list."""
    try:
        return _list(clients, monitor, uri, window, period, interval, list(GPU_FIELDS), "Maximum,Average",
                     GPU_NAMESPACE, GPU_FILTER, GPU_TOP)
    except _Refused as exc:
        if exc.status != 400:
            raise
    defined = _definitions(clients, monitor, uri)
    names = [n for n in GPU_FIELDS if n in defined]
    if UTIL_FIELD not in names:
        return []
    per_gpu = "index" in defined[UTIL_FIELD]
    return _list(clients, monitor, uri, window, period, interval, names, "Maximum,Average", GPU_NAMESPACE,
                 GPU_FILTER if per_gpu else None, GPU_TOP if per_gpu else None)


def _call(clients: AzureClients, operation: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    clients.count(operation)
    try:
        with translated(operation, clients.where):
            return fn(*args, **kwargs)
    except ProviderError as exc:
        if exc.status in (400, 403, 404):
            text = str(exc).split(": ", 1)[-1] if ": " in str(exc) else str(exc)
            raise _Refused(exc.status, text.strip().splitlines()[0][:300]) from exc
        raise


def _list(clients: AzureClients, monitor: Any, uri: str, window: Window, period: timedelta, interval: str,
          names: Sequence[str], aggregation: str, namespace: str, filter: str | None = None,
          top: int | None = None) -> list[Any]:
    """``Metrics - List`` over the window, one call per 30-day chunk; the metrics of every chunk."""
    out: list[Any] = []
    for start, end in _chunks(window, period):
        answer = _call(clients, "monitor.Metrics.List", monitor.metrics.list, uri,
                       timespan=f"{_iso(start)}/{_iso(end)}", interval=interval, metricnames=",".join(names),
                       aggregation=aggregation, metricnamespace=namespace, filter=filter, top=top)
        out.extend(answer.value or [])
    return out


def _definitions(clients: AzureClients, monitor: Any, uri: str) -> dict[str, set[str]]:
    """``{metric name: {dimension names}}`` of the VM's Telegraf GPU namespace (lower-cased dimensions)."""
    found = _call(clients, "monitor.MetricDefinitions.List",
                  lambda: list(monitor.metric_definitions.list(uri, metricnamespace=GPU_NAMESPACE)))
    return {str(d.name.value).lower(): {str(x.value).lower() for x in (d.dimensions or [])}
            for d in found if d.name is not None}


def _chunks(window: Window, period: timedelta) -> Iterator[tuple[datetime, datetime]]:
    step = max(1, MAX_SPAN // period) * period
    start = window.start
    while start < window.end:
        end = min(window.end, start + step)
        yield start, end
        start = end


def _iso(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def _name(metric: Any) -> str:
    name = getattr(metric, "name", None)
    return str(getattr(name, "value", "") or "")


def _gpu_index(metadata: Sequence[Any] | None) -> int:
    for item in metadata or []:
        if str(getattr(item.name, "value", "")).lower() == "index":
            try:
                return int(item.value)
            except (TypeError, ValueError):
                return INSTANCE_LEVEL
    return INSTANCE_LEVEL


def _collect(cols: dict[str, list[np.ndarray]], res: Resource, answer: Sequence[Any],
             fields: dict[str, tuple[Metric, str, bool]], window: Window, period: timedelta, *, per_gpu: bool) -> None:
    lookup = {k.lower(): v for k, v in fields.items()}
    start = np.datetime64(window.start.replace(tzinfo=None), "ns")
    end = np.datetime64(window.end.replace(tzinfo=None), "ns")
    for metric in answer:
        spec = lookup.get(_name(metric).lower())
        if spec is None:
            continue
        canonical, aggregation, per_second = spec
        for series in metric.timeseries or []:
            gpu = _gpu_index(series.metadatavalues) if per_gpu else INSTANCE_LEVEL
            points = [(p.time_stamp, getattr(p, aggregation)) for p in series.data or []
                      if getattr(p, aggregation) is not None]
            if not points:
                continue
            stamps = pd.to_datetime([t for t, _ in points], utc=True).as_unit("ns").tz_localize(None).to_numpy()
            values = np.asarray([v for _, v in points], dtype=np.float64)
            keep = (stamps >= start) & (stamps < end) & np.isfinite(values)
            stamps, values = stamps[keep], values[keep]
            if per_second:
                values = values / period.total_seconds()
            n = len(values)
            cols["resource"].append(np.full(n, res.ref.key, dtype=object))
            cols["gpu"].append(np.full(n, gpu, dtype=np.int16))
            cols["metric"].append(np.full(n, canonical.value, dtype=object))
            cols["ts"].append(stamps)
            cols["value"].append(values)


def _frame(cols: dict[str, list[np.ndarray]]) -> pd.DataFrame:
    if not cols:
        return usage_frame([], [], [], [], [])
    frame = usage_frame(np.concatenate(cols["resource"]), np.concatenate(cols["gpu"]), np.concatenate(cols["metric"]),
                        pd.DatetimeIndex(np.concatenate(cols["ts"])).tz_localize("UTC"), np.concatenate(cols["value"]))
    # 30-day chunks never overlap, but one GPU can come back in two series (an index tag read twice): one row.
    keys = ["resource", "gpu", "metric", "ts"]
    if frame.duplicated(keys).any():
        frame = frame.groupby(keys, observed=True, sort=False, as_index=False)["value"].max()
        frame = _rebuilt(frame)
    return frame


def _coarsen(frame: pd.DataFrame, window: Window) -> pd.DataFrame:
    """Memory size per day, memory peak and power mean per hour (buckets counted from the window start)."""
    if frame.empty:
        return frame
    parts = []
    origin = pd.Timestamp(window.start)
    for metric, (step, how) in COARSER.items():
        sel = frame[frame["metric"] == metric.value]
        if sel.empty:
            continue
        bucket = origin + ((sel["ts"] - origin) // step) * step
        grouped = sel.assign(ts=bucket).groupby(["resource", "gpu", "metric", "ts"], observed=True, as_index=False)
        parts.append(grouped["value"].agg(how))
    rest = frame[~frame["metric"].isin([m.value for m in COARSER])]
    merged = pd.concat([rest, *parts], ignore_index=True)
    return _rebuilt(merged)


def _rebuilt(frame: pd.DataFrame) -> pd.DataFrame:
    """The canonical frame again after a groupby (categories and dtypes restored)."""
    return usage_frame(frame["resource"].astype(str).to_numpy(), frame["gpu"], frame["metric"].astype(str).to_numpy(),
                       frame["ts"], frame["value"])


def _refused_gap(res: Resource, region: str, exc: _Refused) -> Gap:
    return Gap(Cloud.AZURE, "usage", f"Azure Monitor answered HTTP {exc.status}: {exc}", region, res.ref.id,
               res.ref.account, READER_HINT if exc.status == 403 else None)


def telemetry_gaps(resources: Sequence[Resource], reported: set[str], refused: set[str], published: set[str],
                   region: str) -> list[Gap]:
    """A gap for each running GPU VM whose GPUs said nothing in the window (refused VMs already have one)."""
    gaps = []
    for res in resources:
        key = res.ref.key
        if key in reported or key in refused or not res.has_gpu or res.state != ResourceState.RUNNING:
            continue
        if key in published:
            reason = f"{GPU_NAMESPACE} metrics exist but have no data points in the window"
        else:
            reason = f"no GPU telemetry: no {GPU_NAMESPACE}/{UTIL_FIELD} series for this VM"
        gaps.append(Gap(Cloud.AZURE, "gpu-telemetry", reason, region, res.ref.id, res.ref.account, NO_AGENT_HINT))
    return gaps
