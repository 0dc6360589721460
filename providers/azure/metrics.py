"""Azure Monitor utilization: NVIDIA GPU custom metrics (Telegraf nvidia_smi, or DCGM) plus the VM's CPU and network.

``usage`` reads, per VM of one subscription and location, the GPU numbers first (``gpu_metrics.py``:
Azure publishes no GPU metric for N-series VMs, so they are the custom metrics Telegraf's ``nvidia_smi``
input or NVIDIA DCGM publish; a GPU is never counted twice), then the CPU and network of the VMs
``host_metrics_for`` names. GPUs watched only through Azure Managed Prometheus (an Azure Monitor workspace,
PromQL), Log Analytics, or Application Insights (the OpenTelemetry Collector's ``azuremonitor`` exporter)
are not metrics of the VM; such VMs get a ``gpu-telemetry`` gap whose hint names both ways. A 403/404 on
one VM is a ``usage`` gap, not a failed run.

``Percentage CPU`` (Average) and ``Network In/Out Total`` (Total per interval, turned into bytes/s) of the
VMs ``host_metrics_for`` names are read through the batch metrics API (``metrics:getBatch``, 50 VMs a
call, ``metrics_batch.py``); where it is not configured or fails, and for VMs it answers without series,
by a second ``Metrics - List`` per VM (``metrics_list.py``). The GPU custom metrics stay per VM: the batch
API's guide says it does not serve custom metrics. Limits followed: ARM read throttling (429s are retried
by azure-core, then ``Throttled``), at most 20 metric names a call, one query spans at most 30 days (longer
windows are read in 30-day chunks), retention 93 days. The interval must be one of the time grains the API
offers (``INTERVALS``). Rows are the canonical usage frame; memory size, memory peak and power are kept
coarser (``COARSER``).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Collection, Sequence
from datetime import timedelta

import numpy as np
import pandas as pd

from providers.azure import metrics_batch
from providers.azure.client import AzureClients
from providers.azure.gpu_metrics import (
    DCGM_ACTIVE,
    DCGM_UTIL,
    GPU_NAMESPACE,
    UTIL_FIELD,
    vm_gpus,
)
from providers.azure.gpu_metrics import GPU_FIELDS as GPU_FIELDS
from providers.azure.metrics_list import (
    VM_NAMESPACE,
    Refused,
    chunks,
    collect,
    list_metrics,
)
from providers.base import UsageResult
from providers.errors import ProviderError
from providers.model import (
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
#: Coarser rows where a finer grain adds nothing: memory size per day, memory peak and power mean per hour.
COARSER = {Metric.GPU_MEM_TOTAL: (timedelta(days=1), "max"), Metric.GPU_MEM_USED: (timedelta(hours=1), "max"),
           Metric.GPU_POWER: (timedelta(hours=1), "mean")}

NO_AGENT_HINT = (
    "Azure has no platform GPU metric: run Telegraf on the VM with [[inputs.nvidia_smi]] and [[outputs.azure_monitor]] "
    "(custom namespace Telegraf/nvidia_smi: utilization_gpu, memory_used, memory_total; keep the index tag), or "
    "publish NVIDIA DCGM exporter metrics as custom metrics of the VM (e.g. Telegraf [[inputs.prometheus]] scraping "
    "dcgm-exporter with [[outputs.azure_monitor]]: DCGM_FI_DEV_GPU_UTIL, DCGM_FI_DEV_FB_USED, DCGM_FI_DEV_FB_FREE; "
    "keep the gpu label); give the VM a managed identity with the Monitoring Metrics Publisher role"
)
READER_HINT = "grant Monitoring Reader on the VM, its resource group or the subscription"


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
            if vm_gpus(clients, monitor, res, window, period, interval, mine):
                published.add(res.ref.key)
            for name, parts in mine.items():
                cols[name].extend(parts)
        except Refused as exc:
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
    for batch in metrics_batch.query(clients, region, [r.ref.id for r in hosts], list(chunks(window, period)),
                                     period, list(HOST_FIELDS), ("average", "total"), VM_NAMESPACE):
        for rid, found in batch.metrics.items():
            collect(cols, by_id.pop(rid), found, HOST_FIELDS, window, period, per_gpu=False)
            advance()
    for res in by_id.values():  # no batch endpoint, a batch it failed or refused, or VMs it answered without series
        try:
            answer = list_metrics(clients, monitor, res.ref.id, window, period, interval, list(HOST_FIELDS),
                                  "Average,Total", VM_NAMESPACE)
        except Refused as exc:
            gaps.append(_refused_gap(res, region, exc))
            answer = []
        collect(cols, res, answer, HOST_FIELDS, window, period, per_gpu=False)
        advance()
    frame = Usage.concat([Usage(gpu_frame, period), Usage(_frame(cols), period)], period).frame
    gaps += telemetry_gaps(resources, reported, refused, published, region)
    return UsageResult(Usage(frame, period), tuple(gaps))


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


def _refused_gap(res: Resource, region: str, exc: Refused) -> Gap:
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
