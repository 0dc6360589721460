"""Azure Monitor utilization: NVIDIA GPU custom metrics (Telegraf nvidia_smi, or DCGM) plus the VM's CPU and network.

Azure publishes no GPU metric for N-series VMs; GPU numbers reach ``Microsoft.Insights/metrics`` only
as custom metrics the VM publishes. Two ways are read, found per VM through ``Metric Namespaces - List``
(``monitor.MetricNamespaces.List``, once per VM, namespaces published since 30 days before the window):

- Telegraf's ``nvidia_smi`` input with its ``azure_monitor`` output (read first): namespace
  ``Telegraf/nvidia_smi``, one metric per nvidia-smi field (``utilization_gpu`` percent,
  ``memory_used``/``memory_total`` MiB, ``power_draw`` W), the tags as dimensions (``index`` is the GPU).
  One ``Metrics - List`` reads every field, split per GPU (``$filter=index eq '*'``), aggregated
  server-side (``Maximum``; ``Average`` for power); a 400 (a field not published, or no ``index``) is
  answered by one ``metricDefinitions`` call and a retry with what exists.
- NVIDIA DCGM (dcgm-exporter) numbers in any other custom namespace, for the GPUs Telegraf did not
  report: ``DCGM_FI_DEV_GPU_UTIL`` (percent; else ``DCGM_FI_PROF_GR_ENGINE_ACTIVE`` x 100), memory used
  ``DCGM_FI_DEV_FB_USED`` and total ``FB_USED + FB_FREE (+ FB_RESERVED)`` (MiB, from the interval
  averages), ``DCGM_FI_DEV_POWER_USAGE`` (W); the GPU from the ``gpu`` dimension, else ``index``, else the
  digits of ``device`` (``nvidia3``). Telegraf's ``prometheus`` input scraping the exporter writes
  ``Telegraf/prometheus`` with the exporter's names as metrics (``metric_version = 2``) or, by default
  (``metric_version = 1``), one namespace ``Telegraf/DCGM_FI_...`` per exporter metric holding ``gauge``:
  those are read directly; any other custom namespace (except Telegraf's system inputs, ``Telegraf/cpu``
  ...) costs one ``metricDefinitions`` call to see whether it holds DCGM names. Then one ``Metrics - List``
  per namespace that does. Names (namespaces, metrics, dimensions) are matched case-insensitively: Azure
  lower-cases custom namespaces and answers dimension names in either case.

A GPU is never counted twice: a GPU Telegraf reported takes nothing from DCGM, and among DCGM
namespaces the first (in listing order) wins per GPU and field. GPUs watched only through Azure
Managed Prometheus (an Azure Monitor workspace, PromQL), Log Analytics, or Application Insights (the
OpenTelemetry Collector's ``azuremonitor`` exporter) are not metrics of the VM; such VMs get a
``gpu-telemetry`` gap whose hint names both ways. A 403/404 on one VM is a ``usage`` gap, not a failed run.

``Percentage CPU`` (Average) and ``Network In/Out Total`` (Total per interval, turned into bytes/s) of the
VMs ``host_metrics_for`` names are read through the batch metrics API (``metrics:getBatch``, 50 VMs a
call, ``metrics_batch.py``); where it is not configured or fails, and for VMs it answers without series,
by a second ``Metrics - List`` per VM. The GPU custom metrics stay per VM: the batch API's guide says it
does not serve custom metrics. Limits followed: ARM read throttling (429s are retried by azure-core, then
``Throttled``), at most 20 metric names a call, one query spans at most 30 days (longer windows are read
in 30-day chunks), retention 93 days. The interval must be one of the time grains the API offers
(``INTERVALS``).
"""

from __future__ import annotations

import logging
import re
from collections import defaultdict
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

import numpy as np
import pandas as pd

from providers.azure import metrics_batch
from providers.azure.client import AzureClients, send_json, translated
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
#: The Metrics - List version azure-mgmt-monitor 7 sends (its ``build_list_request``), kept so requests stay the same.
METRICS_API_VERSION = "2024-02-01"
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

#: The dcgm-exporter fields read (Prometheus names, matched case-insensitively).
DCGM_UTIL, DCGM_ACTIVE = "DCGM_FI_DEV_GPU_UTIL", "DCGM_FI_PROF_GR_ENGINE_ACTIVE"
DCGM_USED, DCGM_FREE, DCGM_RESERVED = "DCGM_FI_DEV_FB_USED", "DCGM_FI_DEV_FB_FREE", "DCGM_FI_DEV_FB_RESERVED"
DCGM_POWER = "DCGM_FI_DEV_POWER_USAGE"
DCGM_FIELDS = (DCGM_UTIL, DCGM_ACTIVE, DCGM_USED, DCGM_FREE, DCGM_RESERVED, DCGM_POWER)
#: Dimensions naming the GPU, best first (dcgm-exporter's label is ``gpu``; ``device`` is ``nvidia<N>``).
GPU_DIMENSIONS = ("gpu", "index", "device")
#: Telegraf ``prometheus`` input, metric_version = 1: the metric names tried in a ``Telegraf/DCGM_FI_...`` namespace.
PROM_V1_METRICS = ("gauge", "value")
#: Other custom namespaces probed with one ``metricDefinitions`` call each, at most this many per VM.
MAX_PROBES = 6
#: Namespaces listed from this long before the window: a VM whose agent stopped earlier reads "no points".
NAMESPACE_LOOKBACK = timedelta(days=30)

NO_AGENT_HINT = (
    "Azure has no platform GPU metric: run Telegraf on the VM with [[inputs.nvidia_smi]] and [[outputs.azure_monitor]] "
    "(custom namespace Telegraf/nvidia_smi: utilization_gpu, memory_used, memory_total; keep the index tag), or "
    "publish NVIDIA DCGM exporter metrics as custom metrics of the VM (e.g. Telegraf [[inputs.prometheus]] scraping "
    "dcgm-exporter with [[outputs.azure_monitor]]: DCGM_FI_DEV_GPU_UTIL, DCGM_FI_DEV_FB_USED, DCGM_FI_DEV_FB_FREE; "
    "keep the gpu label); give the VM a managed identity with the Monitoring Metrics Publisher role"
)
READER_HINT = "grant Monitoring Reader on the VM, its resource group or the subscription"


class _Refused(Exception):
    """An Azure Monitor call answered 400, 403 or 404 for one VM."""

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
        mine: dict[str, list[np.ndarray]] = defaultdict(list)
        try:
            if _vm_gpus(clients, monitor, res, window, period, interval, mine):
                published.add(res.ref.key)
            for name, parts in mine.items():
                cols[name].extend(parts)
        except _Refused as exc:
            refused.add(res.ref.key)
            gaps.append(_refused_gap(res, region, exc))
        advance()
    gpu_frame = _coarsen(_frame(cols), window)
    reported = set(map(str, gpu_frame.loc[gpu_frame["metric"] == Metric.GPU_UTIL.value, "resource"].unique()))
    wanted = set(host_metrics_for(gpu_frame)) if host_metrics_for is not None else reported
    hosts = [r for r in resources if r.ref.key in wanted and r.ref.key not in refused]
    total = len(resources) + len(hosts)
    if on_progress and not hosts:
        on_progress(done, total)  # nothing more to read: the run is complete
    cols = defaultdict(list)
    by_id = {res.ref.id.lower(): res for res in hosts}
    for batch in metrics_batch.query(clients, region, [r.ref.id for r in hosts], list(_chunks(window, period)),
                                     period, list(HOST_FIELDS), ("average", "total"), VM_NAMESPACE):
        for rid, found in batch.metrics.items():
            _collect(cols, by_id.pop(rid), found, HOST_FIELDS, window, period, per_gpu=False)
            advance()
    for res in by_id.values():  # no batch endpoint, a batch it failed or refused, or VMs it answered without series
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


def _vm_gpus(clients: AzureClients, monitor: Any, res: Resource, window: Window, period: timedelta, interval: str,
             cols: dict[str, list[np.ndarray]]) -> bool:
    """The VM's GPU rows into ``cols``: Telegraf nvidia_smi first, then DCGM for the GPUs it did not report.
    True when a GPU utilization series exists (with or without points in the window)."""
    uri = res.ref.id
    custom = _custom_namespaces(clients, monitor, uri, window)
    telegraf = next((ns for ns in custom if _last(ns) == "nvidia_smi"), None)
    published, covered = False, set[int]()
    if telegraf is not None:
        answer = _gpu_metrics(clients, monitor, uri, window, period, interval, telegraf)
        published = any(m.get("timeseries") for m in answer if _name(m).lower() == UTIL_FIELD)
        covered = _collect(cols, res, answer, {k: (m, agg, False) for k, (m, agg) in GPU_FIELDS.items()}, window,
                           period, per_gpu=True)
    expected = res.accelerators.count if res.accelerators else 1
    if INSTANCE_LEVEL in covered or len(covered) >= max(1, expected):
        return published
    others = [ns for ns in custom if ns is not telegraf]
    return _dcgm(clients, monitor, res, window, period, interval, others, covered, cols) or published


def _custom_namespaces(clients: AzureClients, monitor: Any, uri: str, window: Window) -> list[str]:
    """``Metric Namespaces - List`` of one VM: its custom namespaces (as Azure spells them, often lower-cased)."""
    since = _iso(window.start - NAMESPACE_LOOKBACK)
    found = _call(clients, "monitor.MetricNamespaces.List",
                  lambda: list(monitor.metric_namespaces.list(uri, start_time=since)))
    out = []
    for ns in found:
        name = getattr(ns.properties, "metric_namespace_name", None) or ns.name
        if name and str(ns.classification or "Custom").lower() == "custom" and name.lower() != VM_NAMESPACE.lower():
            out.append(str(name))
    return out


def _last(namespace: str) -> str:
    return namespace.rsplit("/", 1)[-1].lower()


def _gpu_metrics(clients: AzureClients, monitor: Any, uri: str, window: Window, period: timedelta,
                 interval: str, namespace: str = GPU_NAMESPACE) -> list[dict[str, Any]]:
    """Every Telegraf GPU field of one VM; on a 400, only the fields its definitions list."""
    namespace = GPU_NAMESPACE if namespace.lower() == GPU_NAMESPACE.lower() else namespace
    try:
        return _list(clients, monitor, uri, window, period, interval, list(GPU_FIELDS), "Maximum,Average",
                     namespace, GPU_FILTER, GPU_TOP)
    except _Refused as exc:
        if exc.status != 400:
            raise
    defined = _definitions(clients, monitor, uri, namespace)
    names = [defined[n][0] for n in GPU_FIELDS if n in defined]
    if UTIL_FIELD not in defined:
        return []
    per_gpu = "index" in defined[UTIL_FIELD][1]
    return _list(clients, monitor, uri, window, period, interval, names, "Maximum,Average", namespace,
                 GPU_FILTER if per_gpu else None, GPU_TOP if per_gpu else None)


@dataclass(frozen=True)
class _Source:
    """What to read in one namespace holding DCGM numbers."""

    namespace: str
    metrics: dict[str, str]  # metric name as Azure spells it -> DCGM field
    split: str | None  # the dimension naming the GPU


#: One GPU's points of one DCGM field: (timestamps, interval maximum, interval average).
_Reading = tuple[np.ndarray, np.ndarray, np.ndarray]


def _dcgm(clients: AzureClients, monitor: Any, res: Resource, window: Window, period: timedelta, interval: str,
          namespaces: Sequence[str], covered: set[int], cols: dict[str, list[np.ndarray]]) -> bool:
    """DCGM rows of the GPUs not in ``covered``; True when a DCGM utilization series exists."""
    v1 = [ns for ns in namespaces if _last(ns).upper() in DCGM_FIELDS]  # Telegraf prometheus, metric_version 1
    probe = [ns for ns in namespaces if not _last(ns).startswith("dcgm_fi_")
             and (_last(ns) == "prometheus" or not ns.lower().startswith("telegraf/"))]
    probe.sort(key=lambda ns: _last(ns) != "prometheus")
    readings: dict[str, dict[int, _Reading]] = defaultdict(dict)
    published = False
    for ns in v1 + probe[:MAX_PROBES]:
        read = _read_dcgm(clients, monitor, res.ref.id, ns, window, period, interval)
        if read is None:
            continue
        answer, source = read
        by_name = {k.lower(): v for k, v in source.metrics.items()}
        for metric in answer:
            field = by_name.get(_name(metric).lower())
            if field is None:
                continue
            published |= field in (DCGM_UTIL, DCGM_ACTIVE) and bool(metric.get("timeseries"))
            for series in metric.get("timeseries") or []:
                gpu = _dimension_gpu(series.get("metadatavalues"), source.split)
                if gpu in covered or (gpu == INSTANCE_LEVEL and covered):
                    continue  # Telegraf reported this GPU: never counted twice
                reading = _reading(series, window)
                if reading is not None:
                    readings[field].setdefault(gpu, reading)  # the first namespace wins
    _dcgm_rows(cols, res.ref.key, readings)
    return published


def _read_dcgm(clients: AzureClients, monitor: Any, uri: str, namespace: str, window: Window, period: timedelta,
               interval: str) -> tuple[list[dict[str, Any]], _Source] | None:
    """The DCGM metrics of one namespace (a ``Telegraf/DCGM_FI_...`` one read straight away, split by ``gpu``;
    any other after its definitions); None where it holds none or refuses them (400)."""
    field = _last(namespace).upper() if _last(namespace).upper() in DCGM_FIELDS else None
    try:
        if field is not None:
            try:
                return _list(clients, monitor, uri, window, period, interval, [PROM_V1_METRICS[0]], "Maximum,Average",
                             namespace, "gpu eq '*'", GPU_TOP), _Source(namespace, {PROM_V1_METRICS[0]: field}, "gpu")
            except _Refused as exc:
                if exc.status != 400:
                    raise
        source = _dcgm_source(namespace, _definitions(clients, monitor, uri, namespace), field)
        if source is None:
            return None
        flt = f"{source.split} eq '*'" if source.split else None
        return _list(clients, monitor, uri, window, period, interval, list(source.metrics), "Maximum,Average",
                     namespace, flt, GPU_TOP if flt else None), source
    except _Refused as exc:
        if exc.status != 400:
            raise
        return None


def _dcgm_source(namespace: str, defined: dict[str, tuple[str, set[str]]], field: str | None) -> _Source | None:
    """The DCGM metrics a namespace defines and the dimension splitting them per GPU (one all of them carry,
    else the best one of the first metric, keeping the metrics that carry it)."""
    if field is not None:
        name = next((n for n in PROM_V1_METRICS if n in defined), None)
        metrics = {defined[name][0]: field} if name else {}
    else:
        metrics = {orig: low.upper() for low, (orig, _) in defined.items() if low.upper() in DCGM_FIELDS}
    if not metrics:
        return None
    dims = {orig: defined[orig.lower()][1] for orig in metrics}
    split = next((d for d in GPU_DIMENSIONS if all(d in ds for ds in dims.values())), None)
    if split is None:
        lead = min(metrics, key=lambda n: DCGM_FIELDS.index(metrics[n]))
        split = next((d for d in GPU_DIMENSIONS if d in dims[lead]), None)
        if split is not None:
            metrics = {n: f for n, f in metrics.items() if split in dims[n]}
    return _Source(namespace, metrics, split)


def _dimension_gpu(metadata: Sequence[dict[str, Any]] | None, split: str | None) -> int:
    """The GPU index a series' dimension names (``metadatavalues``: ``[{"name": {"value": ...}, "value": ...}]``):
    ``gpu``/``index`` values, the digits ending ``device``."""
    for item in metadata or []:
        name = item.get("name")
        if split is not None and str(name.get("value", "") if isinstance(name, dict) else "").lower() == split:
            match = re.search(r"(\d+)\s*$", str(item.get("value")))
            return int(match.group(1)) if match else INSTANCE_LEVEL
    return INSTANCE_LEVEL


def _points(series: dict[str, Any], window: Window, *aggregations: str) -> tuple[np.ndarray, list[np.ndarray]]:
    """A series' timestamps inside the window and, per aggregation, its values (NaN where absent or null).
    ``series`` is the answer's JSON: ``{"data": [{"timeStamp": "2026-11-20T00:00:00Z", "average": 1.0, ...}]}``
    (Metrics - List and metrics:getBatch alike)."""
    data = series.get("data") or []
    stamps = _timestamps([p.get("timeStamp") for p in data])
    values = [np.array([p.get(agg) for p in data], dtype=np.float64) for agg in aggregations]  # None -> NaN
    keep = ((stamps >= np.datetime64(window.start.replace(tzinfo=None), "ns"))
            & (stamps < np.datetime64(window.end.replace(tzinfo=None), "ns"))
            & np.logical_or.reduce([np.isfinite(v) for v in values]))
    return stamps[keep], [v[keep] for v in values]


def _timestamps(texts: list[Any]) -> np.ndarray:
    """ISO 8601 timestamps (any offset, any fraction) as naive UTC ``datetime64[ns]``; NaT where unreadable."""
    if not texts:
        return np.array([], dtype="datetime64[ns]")
    try:
        parsed = pd.to_datetime(texts, utc=True, format="ISO8601")
    except (ValueError, TypeError):  # one odd stamp: parse one by one, NaT where unreadable
        parsed = pd.to_datetime(pd.Series(texts, dtype=object), utc=True, format="ISO8601", errors="coerce")
        parsed = pd.DatetimeIndex(parsed)
    return parsed.as_unit("ns").tz_localize(None).to_numpy()


def _reading(series: dict[str, Any], window: Window) -> _Reading | None:
    stamps, (high, mean) = _points(series, window, "maximum", "average")
    return (stamps, high, mean) if len(stamps) else None


def _dcgm_rows(cols: dict[str, list[np.ndarray]], key: str, readings: dict[str, dict[int, _Reading]]) -> None:
    """Canonical rows from DCGM readings: utilization (GPU_UTIL, else GR_ENGINE_ACTIVE x 100) and memory used
    from the interval maxima; memory total (FB_USED + FB_FREE + FB_RESERVED where published) and power from the
    interval averages (the sum of maxima would overstate a constant total)."""
    util = {gpu: (t, h * 100.0, m) for gpu, (t, h, m) in readings[DCGM_ACTIVE].items()} | readings[DCGM_UTIL]
    for gpu, (t, high, _) in util.items():
        _append(cols, key, gpu, Metric.GPU_UTIL, t, high)
    for gpu, (t, high, mean) in readings[DCGM_USED].items():
        _append(cols, key, gpu, Metric.GPU_MEM_USED, t, high)
        free = readings[DCGM_FREE].get(gpu)
        if free is None:
            continue
        total = pd.Series(mean, index=t).add(pd.Series(free[2], index=free[0]))
        reserved = readings[DCGM_RESERVED].get(gpu)
        if reserved is not None:
            total = total.add(pd.Series(reserved[2], index=reserved[0]), fill_value=0.0)
        total = total.dropna()
        _append(cols, key, gpu, Metric.GPU_MEM_TOTAL, total.index.to_numpy(), total.to_numpy())
    for gpu, (t, _, mean) in readings[DCGM_POWER].items():
        _append(cols, key, gpu, Metric.GPU_POWER, t, mean)


def _append(cols: dict[str, list[np.ndarray]], key: str, gpu: int, metric: Metric, stamps: np.ndarray,
            values: np.ndarray) -> int:
    keep = np.isfinite(values)
    stamps, values = stamps[keep], values[keep]
    n = len(values)
    cols["resource"].append(np.full(n, key, dtype=object))
    cols["gpu"].append(np.full(n, gpu, dtype=np.int16))
    cols["metric"].append(np.full(n, metric.value, dtype=object))
    cols["ts"].append(stamps)
    cols["value"].append(values)
    return n


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
          top: int | None = None) -> list[dict[str, Any]]:
    """``Metrics - List`` over the window, one call per 30-day chunk; the metrics of every chunk (the answer's
    ``value`` entries as JSON dicts).

    The request is the one ``monitor.metrics.list`` builds (azure-mgmt-monitor 7, ``build_list_request``):
    ``GET {resourceUri}/providers/Microsoft.Insights/metrics`` with its query parameters in its order and
    encoding, sent through the client's pipeline; only the answer is read as plain JSON, not into models."""
    url = "/" + uri.lstrip("/").replace("{", "%7B").replace("}", "%7D") + "/providers/Microsoft.Insights/metrics"
    out: list[dict[str, Any]] = []
    for start, end in _chunks(window, period):
        params = {"timespan": f"{_iso(start)}/{_iso(end)}", "interval": interval, "metricnames": ",".join(names),
                  "aggregation": aggregation}
        if top is not None:
            params["top"] = str(int(top))
        if filter is not None:
            params["$filter"] = filter
        params["api-version"] = METRICS_API_VERSION
        params["metricnamespace"] = namespace
        answer = _call(clients, "monitor.Metrics.List", send_json, monitor, "GET", url,
                       params={k: quote(v, safe="") for k, v in params.items()},
                       headers={"Accept": "application/json"}, expected=(200,))
        found = answer.get("value") if isinstance(answer, dict) else None
        out.extend(m for m in found or [] if isinstance(m, dict))
    return out


def _definitions(clients: AzureClients, monitor: Any, uri: str, namespace: str) -> dict[str, tuple[str, set[str]]]:
    """``{metric name lower-cased: (name as Azure spells it, {dimension names lower-cased})}`` of one namespace."""
    found = _call(clients, "monitor.MetricDefinitions.List",
                  lambda: list(monitor.metric_definitions.list(uri, metricnamespace=namespace)))
    return {str(d.name.value).lower(): (str(d.name.value), {str(x.value).lower() for x in (d.dimensions or [])})
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


def _name(metric: dict[str, Any]) -> str:
    """A metric's name in the answer's JSON: ``{"name": {"value": ..., "localizedValue": ...}}``."""
    name = metric.get("name")
    if isinstance(name, dict):
        return str(name.get("value") or "")
    return name if isinstance(name, str) else ""


def _collect(cols: dict[str, list[np.ndarray]], res: Resource, answer: Sequence[dict[str, Any]],
             fields: dict[str, tuple[Metric, str, bool]], window: Window, period: timedelta, *,
             per_gpu: bool) -> set[int]:
    """Rows of the metrics named in ``fields``; the GPUs (indexes) that got utilization rows."""
    lookup = {k.lower(): v for k, v in fields.items()}
    util: set[int] = set()
    for metric in answer:
        spec = lookup.get(_name(metric).lower())
        if spec is None:
            continue
        canonical, aggregation, per_second = spec
        for series in metric.get("timeseries") or []:
            gpu = _dimension_gpu(series.get("metadatavalues"), "index") if per_gpu else INSTANCE_LEVEL
            stamps, [values] = _points(series, window, aggregation)
            if per_second:
                values = values / period.total_seconds()
            if _append(cols, res.ref.key, gpu, canonical, stamps, values) and canonical == Metric.GPU_UTIL:
                util.add(gpu)
    return util


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
            reason = (f"GPU custom metrics ({GPU_NAMESPACE} or DCGM) exist but have no data points in the window")
        else:
            reason = (f"no GPU telemetry: no {GPU_NAMESPACE}/{UTIL_FIELD} and no {DCGM_UTIL} (or {DCGM_ACTIVE}) "
                      "custom metric for this VM")
        gaps.append(Gap(Cloud.AZURE, "gpu-telemetry", reason, region, res.ref.id, res.ref.account, NO_AGENT_HINT))
    return gaps
