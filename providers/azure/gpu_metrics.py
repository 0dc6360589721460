"""NVIDIA GPU numbers of Azure VMs: the custom metrics Telegraf (nvidia_smi) or DCGM publish to Azure Monitor.

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
namespaces the first (in listing order) wins per GPU and field. The calls go through ``metrics_list.py``;
``metrics.py`` calls ``vm_gpus`` once per VM and turns the VMs without GPU numbers into gaps.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import numpy as np
import pandas as pd

from providers.azure.client import AzureClients
from providers.azure.metrics_list import (
    VM_NAMESPACE,
    Refused,
    append_rows,
    call,
    collect,
    definitions,
    dimension_gpu,
    iso,
    list_metrics,
    metric_name,
    points,
)
from providers.model import INSTANCE_LEVEL, Metric, Resource, Window

GPU_NAMESPACE = "Telegraf/nvidia_smi"
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


def vm_gpus(clients: AzureClients, monitor: Any, res: Resource, window: Window, period: timedelta, interval: str,
            cols: dict[str, list[np.ndarray]]) -> bool:
    """The VM's GPU rows into ``cols``: Telegraf nvidia_smi first, then DCGM for the GPUs it did not report.
    True when a GPU utilization series exists (with or without points in the window)."""
    uri = res.ref.id
    custom = _custom_namespaces(clients, monitor, uri, window)
    telegraf = next((ns for ns in custom if _last(ns) == "nvidia_smi"), None)
    published, covered = False, set[int]()
    if telegraf is not None:
        answer = _gpu_metrics(clients, monitor, uri, window, period, interval, telegraf)
        published = any(m.get("timeseries") for m in answer if metric_name(m).lower() == UTIL_FIELD)
        covered = collect(cols, res, answer, {k: (m, agg, False) for k, (m, agg) in GPU_FIELDS.items()}, window,
                          period, per_gpu=True)
    expected = res.accelerators.count if res.accelerators else 1
    if INSTANCE_LEVEL in covered or len(covered) >= max(1, expected):
        return published
    others = [ns for ns in custom if ns is not telegraf]
    return _dcgm(clients, monitor, res, window, period, interval, others, covered, cols) or published


def _custom_namespaces(clients: AzureClients, monitor: Any, uri: str, window: Window) -> list[str]:
    """``Metric Namespaces - List`` of one VM: its custom namespaces (as Azure spells them, often lower-cased)."""
    since = iso(window.start - NAMESPACE_LOOKBACK)
    found = call(clients, "monitor.MetricNamespaces.List",
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
        return list_metrics(clients, monitor, uri, window, period, interval, list(GPU_FIELDS), "Maximum,Average",
                            namespace, GPU_FILTER, GPU_TOP)
    except Refused as exc:
        if exc.status != 400:
            raise
    defined = definitions(clients, monitor, uri, namespace)
    names = [defined[n][0] for n in GPU_FIELDS if n in defined]
    if UTIL_FIELD not in defined:
        return []
    per_gpu = "index" in defined[UTIL_FIELD][1]
    return list_metrics(clients, monitor, uri, window, period, interval, names, "Maximum,Average", namespace,
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
            field = by_name.get(metric_name(metric).lower())
            if field is None:
                continue
            published |= field in (DCGM_UTIL, DCGM_ACTIVE) and bool(metric.get("timeseries"))
            for series in metric.get("timeseries") or []:
                gpu = dimension_gpu(series.get("metadatavalues"), source.split)
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
                answer = list_metrics(clients, monitor, uri, window, period, interval, [PROM_V1_METRICS[0]],
                                      "Maximum,Average", namespace, "gpu eq '*'", GPU_TOP)
                return answer, _Source(namespace, {PROM_V1_METRICS[0]: field}, "gpu")
            except Refused as exc:
                if exc.status != 400:
                    raise
        source = _dcgm_source(namespace, definitions(clients, monitor, uri, namespace), field)
        if source is None:
            return None
        flt = f"{source.split} eq '*'" if source.split else None
        return list_metrics(clients, monitor, uri, window, period, interval, list(source.metrics),
                            "Maximum,Average", namespace, flt, GPU_TOP if flt else None), source
    except Refused as exc:
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


def _reading(series: dict[str, Any], window: Window) -> _Reading | None:
    stamps, (high, mean) = points(series, window, "maximum", "average")
    return (stamps, high, mean) if len(stamps) else None


def _dcgm_rows(cols: dict[str, list[np.ndarray]], key: str, readings: dict[str, dict[int, _Reading]]) -> None:
    """Canonical rows from DCGM readings: utilization (GPU_UTIL, else GR_ENGINE_ACTIVE x 100) and memory used
    from the interval maxima; memory total (FB_USED + FB_FREE + FB_RESERVED where published) and power from the
    interval averages (the sum of maxima would overstate a constant total)."""
    util = {gpu: (t, h * 100.0, m) for gpu, (t, h, m) in readings[DCGM_ACTIVE].items()} | readings[DCGM_UTIL]
    for gpu, (t, high, _) in util.items():
        append_rows(cols, key, gpu, Metric.GPU_UTIL, t, high)
    for gpu, (t, high, mean) in readings[DCGM_USED].items():
        append_rows(cols, key, gpu, Metric.GPU_MEM_USED, t, high)
        free = readings[DCGM_FREE].get(gpu)
        if free is None:
            continue
        total = pd.Series(mean, index=t).add(pd.Series(free[2], index=free[0]))
        reserved = readings[DCGM_RESERVED].get(gpu)
        if reserved is not None:
            total = total.add(pd.Series(reserved[2], index=reserved[0]), fill_value=0.0)
        total = total.dropna()
        append_rows(cols, key, gpu, Metric.GPU_MEM_TOTAL, total.index.to_numpy(), total.to_numpy())
    for gpu, (t, _, mean) in readings[DCGM_POWER].items():
        append_rows(cols, key, gpu, Metric.GPU_POWER, t, mean)
