"""Azure Monitor's ``Metrics - List`` for one resource, and its answers read into canonical rows.

Shared by ``metrics.py`` (the VMs' platform metrics, and the ``metrics:getBatch`` answers of
``metrics_batch.py``, whose entries are Metrics - List bodies) and ``gpu_metrics.py`` (the GPU custom
metrics):

- ``list_metrics``: ``GET {resourceUri}/providers/Microsoft.Insights/metrics`` as azure-mgmt-monitor 7's
  ``monitor.metrics.list`` builds it (``METRICS_API_VERSION``), sent through the client's pipeline and
  read as plain JSON, one call per 30-day chunk of the window (``chunks``: one query spans at most 30
  days). ``definitions``: ``Metric Definitions - List`` of one namespace (names and dimensions).
- ``call``: every request counted and translated (``providers.errors``); a 400, 403 or 404 for one VM
  raises ``Refused`` (the caller makes it a gap or a retry), anything else propagates.
- ``collect`` / ``points`` / ``append_rows``: an answer's series into canonical columns (points inside
  the window, null aggregates dropped, the GPU from a dimension's value with ``dimension_gpu``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

import numpy as np
import pandas as pd

from providers.azure.client import AzureClients, send_json, translated
from providers.errors import ProviderError
from providers.model import INSTANCE_LEVEL, Metric, Resource, Window

VM_NAMESPACE = "Microsoft.Compute/virtualMachines"
#: The Metrics - List version azure-mgmt-monitor 7 sends (its ``build_list_request``), kept so requests stay the same.
METRICS_API_VERSION = "2024-02-01"
MAX_SPAN = timedelta(days=30)


class Refused(Exception):
    """An Azure Monitor call answered 400, 403 or 404 for one VM."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def call(clients: AzureClients, operation: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    clients.count(operation)
    try:
        with translated(operation, clients.where):
            return fn(*args, **kwargs)
    except ProviderError as exc:
        if exc.status in (400, 403, 404):
            text = str(exc).split(": ", 1)[-1] if ": " in str(exc) else str(exc)
            raise Refused(exc.status, text.strip().splitlines()[0][:300]) from exc
        raise


def list_metrics(clients: AzureClients, monitor: Any, uri: str, window: Window, period: timedelta, interval: str,
                 names: Sequence[str], aggregation: str, namespace: str, filter: str | None = None,
                 top: int | None = None) -> list[dict[str, Any]]:
    """``Metrics - List`` over the window, one call per 30-day chunk; the metrics of every chunk (the answer's
    ``value`` entries as JSON dicts).

    The request is the one ``monitor.metrics.list`` builds (azure-mgmt-monitor 7, ``build_list_request``):
    ``GET {resourceUri}/providers/Microsoft.Insights/metrics`` with its query parameters in its order and
    encoding, sent through the client's pipeline; only the answer is read as plain JSON, not into models."""
    url = "/" + uri.lstrip("/").replace("{", "%7B").replace("}", "%7D") + "/providers/Microsoft.Insights/metrics"
    out: list[dict[str, Any]] = []
    for start, end in chunks(window, period):
        params = {"timespan": f"{iso(start)}/{iso(end)}", "interval": interval, "metricnames": ",".join(names),
                  "aggregation": aggregation}
        if top is not None:
            params["top"] = str(int(top))
        if filter is not None:
            params["$filter"] = filter
        params["api-version"] = METRICS_API_VERSION
        params["metricnamespace"] = namespace
        answer = call(clients, "monitor.Metrics.List", send_json, monitor, "GET", url,
                      params={k: quote(v, safe="") for k, v in params.items()},
                      headers={"Accept": "application/json"}, expected=(200,))
        found = answer.get("value") if isinstance(answer, dict) else None
        out.extend(m for m in found or [] if isinstance(m, dict))
    return out


def definitions(clients: AzureClients, monitor: Any, uri: str, namespace: str) -> dict[str, tuple[str, set[str]]]:
    """``{metric name lower-cased: (name as Azure spells it, {dimension names lower-cased})}`` of one namespace."""
    found = call(clients, "monitor.MetricDefinitions.List",
                 lambda: list(monitor.metric_definitions.list(uri, metricnamespace=namespace)))
    return {str(d.name.value).lower(): (str(d.name.value), {str(x.value).lower() for x in (d.dimensions or [])})
            for d in found if d.name is not None}


def chunks(window: Window, period: timedelta) -> Iterator[tuple[datetime, datetime]]:
    step = max(1, MAX_SPAN // period) * period
    start = window.start
    while start < window.end:
        end = min(window.end, start + step)
        yield start, end
        start = end


def iso(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def metric_name(metric: dict[str, Any]) -> str:
    """A metric's name in the answer's JSON: ``{"name": {"value": ..., "localizedValue": ...}}``."""
    name = metric.get("name")
    if isinstance(name, dict):
        return str(name.get("value") or "")
    return name if isinstance(name, str) else ""


def collect(cols: dict[str, list[np.ndarray]], res: Resource, answer: Sequence[dict[str, Any]],
            fields: dict[str, tuple[Metric, str, bool]], window: Window, period: timedelta, *,
            per_gpu: bool) -> set[int]:
    """Rows of the metrics named in ``fields``; the GPUs (indexes) that got utilization rows."""
    lookup = {k.lower(): v for k, v in fields.items()}
    util: set[int] = set()
    for metric in answer:
        spec = lookup.get(metric_name(metric).lower())
        if spec is None:
            continue
        canonical, aggregation, per_second = spec
        for series in metric.get("timeseries") or []:
            gpu = dimension_gpu(series.get("metadatavalues"), "index") if per_gpu else INSTANCE_LEVEL
            stamps, [values] = points(series, window, aggregation)
            if per_second:
                values = values / period.total_seconds()
            if append_rows(cols, res.ref.key, gpu, canonical, stamps, values) and canonical == Metric.GPU_UTIL:
                util.add(gpu)
    return util


def dimension_gpu(metadata: Sequence[dict[str, Any]] | None, split: str | None) -> int:
    """The GPU index a series' dimension names (``metadatavalues``: ``[{"name": {"value": ...}, "value": ...}]``):
    ``gpu``/``index`` values, the digits ending ``device``."""
    for item in metadata or []:
        name = item.get("name")
        if split is not None and str(name.get("value", "") if isinstance(name, dict) else "").lower() == split:
            match = re.search(r"(\d+)\s*$", str(item.get("value")))
            return int(match.group(1)) if match else INSTANCE_LEVEL
    return INSTANCE_LEVEL


def points(series: dict[str, Any], window: Window, *aggregations: str) -> tuple[np.ndarray, list[np.ndarray]]:
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


def append_rows(cols: dict[str, list[np.ndarray]], key: str, gpu: int, metric: Metric, stamps: np.ndarray,
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
