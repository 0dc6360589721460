"""A local emulator of Azure Monitor metrics (``Microsoft.Insights/metrics``, ``metricDefinitions``, ``metricNamespaces``).

Written from the public REST reference (Metrics - List, api-version 2018-01-01 .. 2024-02-01, the last
being what azure-mgmt-monitor 7 sends) and shaped on recorded answers (cloud-custodian's
``ArmResourceTest.test_metric_filter_find*`` cassettes). This module holds the seeding, the routing and the
answers; ``azure_monitor_query`` the stored series and how a query is evaluated over them (``$filter``,
timespan, aggregation), ``azure_monitor_batch`` the ``metrics:getBatch`` route.

- ``GET {resourceUri}/providers/Microsoft.Insights/metrics?timespan=A/B&interval=PT1H&metricnames=a,b
  &aggregation=Maximum,Average&metricnamespace=...&$filter=index eq '*'&top=N`` answers
  ``{"cost", "timespan", "interval", "value": [metric...], "namespace", "resourceregion"}``; each metric
  is ``{"id", "type", "name": {"value", "localizedValue"}, "displayDescription", "errorCode", "unit",
  "timeseries": [{"metadatavalues": [...], "data": [{"timeStamp", "average", "maximum", ...}]}]}``.
- Aggregation is computed here over each interval: buckets start at the timespan start floored to the
  minute (the recorded P1D answer for ``23:59:59`` starts at ``23:59:00``) and every bucket is listed;
  a bucket without samples carries only ``timeStamp``. ``average`` = sum / count over every sample of
  the merged series (how Azure averages custom metrics across dimension values).
- ``$filter``: ``dim eq 'v'`` clauses joined by ``and``; ``or`` only between values of one dimension;
  ``'*'`` splits. Every dimension named becomes a ``metadatavalues`` entry, its name lower-cased as the
  getBatch migration guide's samples show (``apiname``). ``top`` (default 10) caps series per metric.
- Errors as the metrics API answers them (a flat ``{"code", "message"}``): 400 ``BadRequest`` "Failed to
  find metric configuration ..." for a metric name the namespace lacks (platform namespace, or a custom
  namespace the resource publishes), for a dimension the metric lacks, a bad timespan, interval or
  aggregation; 404 ``ResourceNotFound`` (ARM's ``{"error": ...}``) for an unknown resource; 429 with
  ``Retry-After`` through ``throttle_next``. A timespan over 30 days is cut to its last 30 days (users
  report the service silently answering only the last month; the docs say one query spans at most 30
  days). A custom namespace the resource never published to answers 200 with empty ``timeseries``
  (the reference does not say; the provider copes with either that or a 400).

GPU telemetry (what the Azure provider reads): Azure has no platform GPU metric for N-series VMs. The
documented way to get NVIDIA metrics into Azure Monitor metrics is Telegraf's ``nvidia_smi`` input with
its ``azure_monitor`` output: namespace ``Telegraf/nvidia_smi``, one metric per nvidia-smi field
(``utilization_gpu``, ``memory_used``, ``memory_total`` in MiB, ``power_draw`` in W, ...) and the tags as
dimensions (``index``, ``name``, ``uuid``, ``pstate``, ``compute_mode``, ``host``). ``add_gpu_series``
seeds exactly that.

DCGM (NVIDIA dcgm-exporter scraped by Telegraf's ``prometheus`` input, written by the same
``azure_monitor`` output, which names the namespace ``Telegraf/<measurement>`` and the metric after the
field): with the input's ``metric_version = 2`` the namespace is ``Telegraf/prometheus`` and the metrics
are the exporter's names (``DCGM_FI_DEV_GPU_UTIL`` percent, ``DCGM_FI_DEV_FB_USED``/``_FREE``/``_RESERVED``
MiB, ``DCGM_FI_DEV_POWER_USAGE`` W, ``DCGM_FI_PROF_GR_ENGINE_ACTIVE`` ratio); with ``metric_version = 1``
(the input's default) each exporter metric is its own namespace ``Telegraf/DCGM_FI_...`` holding one
metric ``gauge``. The exporter's labels become dimensions: ``gpu``, ``UUID``, ``device`` (``nvidia0``),
``modelName``, ``Hostname``, plus Telegraf's ``url`` and ``host``. ``add_dcgm_gpu_series`` seeds either.

``GET {resourceUri}/providers/microsoft.insights/metricNamespaces?startTime=...`` (Metric Namespaces -
List, no paging) answers ``{"value": [{"id", "name", "type": "Microsoft.Insights/metricNamespaces",
"classification": "Platform"|"Custom", "properties": {"metricNamespaceName"}}]}``: the resource type's
platform namespace (``name`` escaped with ``-`` for ``/`` as the reference's example shows) and every
custom namespace holding a sample at or after ``startTime`` (any sample without it). Custom namespace
names come back lower-cased (users report Azure lower-casing custom namespaces; a recorded NGINX answer
shows the ``id`` keeping the published case), so readers must match them case-insensitively.

``POST /subscriptions/{sub}/metrics:getBatch`` (Metrics Batch - Batch, the data plane's
``https://<region>.metrics.monitor.azure.com``; a region's data plane is the path prefix ``/{region}``):
``azure_monitor_batch`` says what it answers and refuses. ``batch_requests`` keeps each call's resource ids.

Seeding (plain Python, for tests, the demo and outside testers): ``add_series(resource_id, metric_name,
points, namespace=..., unit=..., dimensions=...)`` with ``points`` either ``[(timestamp, value), ...]``
or ``(timestamps, values)``; ``add_resource`` makes a resource known without data; ``add_gpu_series``
(Telegraf nvidia_smi) and ``add_dcgm_gpu_series`` (DCGM through Telegraf) seed one GPU's field.
"""

from __future__ import annotations

import threading
import uuid
from collections import defaultdict
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from urllib.parse import unquote

import numpy as np

from providers.sandbox.azure_monitor_batch import BATCH_PATH, MetricsBatch
from providers.sandbox.azure_monitor_batch import MAX_BATCH_IDS as MAX_BATCH_IDS
from providers.sandbox.azure_monitor_query import (
    AGGREGATIONS,
    DEFAULT_TOP,
    GRAINS,
    MetricsError,
    Series,
    StoredMetric,
    arm_error,
    iso,
    parse_filter,
    parse_time,
    resource_type,
    timeseries,
    timespan,
    to_arrays,
)
from providers.sandbox.azure_monitor_query import MAX_SPAN as MAX_SPAN
from providers.sandbox.json_server import JsonApiServer, Request, Response

VM_NAMESPACE = "Microsoft.Compute/virtualMachines"
TELEGRAF_GPU_NAMESPACE = "Telegraf/nvidia_smi"
DCGM_NAMESPACE = "Telegraf/prometheus"  # Telegraf's prometheus input (metric_version = 2) + azure_monitor output

#: Platform metrics of Microsoft.Compute/virtualMachines: name -> (unit, primary aggregation, description).
VM_METRICS: dict[str, tuple[str, str, str]] = {
    "Percentage CPU": ("Percent", "Average", "The percentage of allocated compute units in use by the VM"),
    "Network In Total": ("Bytes", "Total", "Bytes received on all network interfaces"),
    "Network Out Total": ("Bytes", "Total", "Bytes sent on all network interfaces"),
    "Network In": ("Bytes", "Total", "Billable bytes received on all network interfaces"),
    "Available Memory Bytes": ("Bytes", "Average", "Memory immediately available for allocation"),
}


class AzureMonitorExtension(MetricsBatch):
    """The metrics routes, pluggable into the ARM emulator (``handle(arm, request)``) or run standalone."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        # (rid, ns) lower -> metric name lower -> metric
        self._metrics: dict[tuple[str, str], dict[str, StoredMetric]] = defaultdict(dict)
        self._namespaces: dict[tuple[str, str], str] = {}  # (rid, ns) lower -> the namespace as first published
        self._locations: dict[str, str] = {}
        self._throttles: list[int] = []
        self.batch_requests: list[list[str]] = []  # the resource ids of each metrics:getBatch call answered

    # -- seeding -----------------------------------------------------------------------------
    def add_resource(self, resource_id: str, location: str = "eastus") -> None:
        """Make a resource known (its metrics answer empty) without seeding any series."""
        with self._lock:
            self._locations[resource_id.lower()] = location

    def add_series(self, resource_id: str, metric_name: str, points: Any, *, namespace: str = VM_NAMESPACE,
                   unit: str = "Percent", dimensions: Mapping[str, str] | None = None,
                   location: str | None = None) -> None:
        """Add samples of one series: ``points`` is ``[(timestamp, value), ...]`` or ``(timestamps, values)``.

        Timestamps are aware datetimes (or anything pandas reads as UTC); each sample counts once in
        the interval aggregates. Calling again with the same dimensions appends to that series.
        """
        ts, vals = to_arrays(points)
        dims = {str(k).lower(): str(v) for k, v in (dimensions or {}).items()}
        with self._lock:
            rid = resource_id.lower()
            if location is not None or rid not in self._locations:
                self._locations[rid] = location or self._locations.get(rid, "eastus")
            self._namespaces.setdefault((rid, namespace.lower()), namespace)
            metric = self._metrics[(rid, namespace.lower())].setdefault(metric_name.lower(),
                                                                        StoredMetric(metric_name, unit))
            for s in metric.series:
                if s.dims == dims:
                    s.ts, s.values = np.concatenate([s.ts, ts]), np.concatenate([s.values, vals])
                    return
            metric.series.append(Series(dims, ts, vals))

    def add_gpu_series(self, resource_id: str, gpu: int, field_name: str, points: Any, *,
                       model: str = "NVIDIA A100 80GB PCIe", host: str | None = None, unit: str | None = None) -> None:
        """One GPU's series as Telegraf's nvidia_smi input + azure_monitor output publish it."""
        gpu_uuid = uuid.uuid5(uuid.NAMESPACE_URL, f"{resource_id.lower()}#{gpu}")
        dims = {"index": str(gpu), "name": model, "uuid": f"GPU-{gpu_uuid}", "pstate": "P0", "compute_mode": "Default"}
        if host:
            dims["host"] = host
        default_unit = {"utilization_gpu": "Percent", "power_draw": "Count"}.get(field_name, "Count")
        self.add_series(resource_id, field_name, points, namespace=TELEGRAF_GPU_NAMESPACE, unit=unit or default_unit,
                        dimensions=dims)

    def add_dcgm_gpu_series(self, resource_id: str, gpu: int, field: str, points: Any, *,
                            namespace: str = DCGM_NAMESPACE, metric_version: int = 2,
                            model: str = "NVIDIA A100 80GB PCIe", host: str | None = None, unit: str | None = None,
                            dimensions: Mapping[str, str] | None = None) -> None:
        """One GPU's DCGM exporter field (``DCGM_FI_DEV_GPU_UTIL``, ``DCGM_FI_DEV_FB_USED``, ...) as Telegraf's
        ``prometheus`` input + ``azure_monitor`` output publish it.

        ``metric_version=2``: metric ``field`` in ``namespace`` (``Telegraf/prometheus``, or any custom
        namespace another publisher chose). ``metric_version=1``: namespace ``Telegraf/<field>`` with one
        metric ``gauge`` (``namespace`` is then ignored). Dimensions are the exporter's labels (``gpu``,
        ``UUID``, ``device``, ``modelName``, ``Hostname``) and Telegraf's ``url`` (and ``host`` when given);
        ``dimensions`` replaces them all (e.g. a series with only ``device``).
        """
        if metric_version not in (1, 2):
            raise ValueError(f"metric_version is 1 or 2, not {metric_version!r}")
        if dimensions is None:
            gpu_uuid = uuid.uuid5(uuid.NAMESPACE_URL, f"{resource_id.lower()}#{gpu}")
            dims = {"gpu": str(gpu), "UUID": f"GPU-{gpu_uuid}", "device": f"nvidia{gpu}", "modelName": model,
                    "Hostname": host or "localhost", "url": "http://localhost:9400/metrics"}
            if host:
                dims["host"] = host
        else:
            dims = dict(dimensions)
        default_unit = "Percent" if field.upper().endswith("_UTIL") else "Count"
        metric, ns = (field, namespace) if metric_version == 2 else ("gauge", f"Telegraf/{field}")
        self.add_series(resource_id, metric, points, namespace=ns, unit=unit or default_unit, dimensions=dims)

    def throttle_next(self, count: int = 1, retry_after: int = 0) -> None:
        """Answer the next ``count`` metrics requests with ARM's 429 (``Retry-After`` seconds)."""
        with self._lock:
            self._throttles.extend([retry_after] * count)

    # -- routing -----------------------------------------------------------------------------
    def _gate(self, request: Request, throttle_headers: dict[str, str]) -> Response | None:
        """What every metrics route refuses first, as Azure does: an injected 429 (``throttle_next``), a missing
        bearer token (401), a missing ``api-version`` (400); None when the request may go on."""
        with self._lock:
            if self._throttles:
                wait = self._throttles.pop(0)
                return Response(429, arm_error("TooManyRequests", "The request is being throttled."),
                                {"Retry-After": str(wait), **throttle_headers})
        header = request.headers.get("authorization", "")
        if not header.lower().startswith("bearer ") or not header[7:].strip():
            return Response(401, arm_error("AuthenticationFailed", "The 'Authorization' header is missing."))
        if not request.arg("api-version"):
            return Response(400, arm_error("MissingApiVersionParameter",
                                           "The api-version query parameter (?api-version=) is required."))
        return None

    def handle(self, arm: Any, request: Request) -> Response | None:
        path = unquote(request.path)
        lower = path.lower().rstrip("/")
        batch = BATCH_PATH.match(lower)
        if batch is not None:
            return self._batch(arm, request, batch.group(2), batch.group(1))
        for suffix, answer in (("/providers/microsoft.insights/metrics", self._metrics_answer),
                               ("/providers/microsoft.insights/metricdefinitions", self._definitions_answer),
                               ("/providers/microsoft.insights/metricnamespaces", self._namespaces_answer)):
            if lower.endswith(suffix) and lower.startswith("/subscriptions/"):
                resource_id = path.rstrip("/")[: -len(suffix)]
                break
        else:
            return None
        if request.method != "GET":
            return Response(405, arm_error("MethodNotAllowed", f"{request.method} is not supported on {path}"))
        refused = self._gate(request, {"x-ms-ratelimit-remaining-subscription-reads": "0"})
        if refused is not None:
            return refused
        if not self._known(arm, resource_id):
            return Response(404, arm_error("ResourceNotFound", f"The Resource '{resource_id}' was not found."))
        try:
            return Response(200, answer(resource_id, request))
        except MetricsError as exc:
            return Response(400, {"code": "BadRequest", "message": str(exc)})

    def _known(self, arm: Any, resource_id: str) -> bool:
        rid = resource_id.lower()
        with self._lock:
            if rid in self._locations or any(key[0] == rid for key in self._metrics):
                return True
        try:  # the ARM emulator's VM lookup raises KeyError for an unknown VM
            return callable(getattr(arm, "power_state", None)) and bool(arm.power_state(resource_id))
        except KeyError:
            return False

    # -- answers -----------------------------------------------------------------------------
    def _catalog(self, resource_id: str, namespace: str) -> tuple[dict[str, StoredMetric], bool]:
        """The metrics of (resource, namespace) and whether the namespace is the resource's platform one."""
        rid, ns = resource_id.lower(), namespace.lower()
        platform = ns == resource_type(resource_id).lower()
        with self._lock:
            seeded = dict(self._metrics.get((rid, ns), {}))
        if platform and ns == VM_NAMESPACE.lower():
            for name, (unit, _, _) in VM_METRICS.items():
                seeded.setdefault(name.lower(), StoredMetric(name, unit))
        return seeded, platform

    def _metrics_answer(self, resource_id: str, request: Request) -> dict[str, Any]:
        namespace = request.arg("metricnamespace") or resource_type(resource_id)
        start, end = timespan(request.arg("timespan"))
        grain_text = (request.arg("interval") or "PT1M").upper()
        values, cost, start, stop = self._values(resource_id, namespace, request, start, end, grain_text,
                                                 request.arg("$filter"))
        with self._lock:
            region = self._locations.get(resource_id.lower(), "eastus")
        return {"cost": cost, "timespan": f"{iso(start)}/{iso(stop)}", "interval": grain_text,
                "value": values, "namespace": namespace, "resourceregion": region}

    def _values(self, resource_id: str, namespace: str, request: Request, start: datetime, end: datetime,
                grain_text: str, filter_text: str | None) -> tuple[list[dict[str, Any]], int, int, int]:
        """The metric objects of one resource (Metrics - List's ``value``), their cost, and the first bucket's
        start and the end (epoch seconds)."""
        catalog, platform = self._catalog(resource_id, namespace)
        names = [n.strip() for n in (request.arg("metricnames") or "").split(",") if n.strip()]
        if not names:
            names = [next(iter(catalog.values())).name] if catalog else []
        aggs = [a.strip().lower() for a in (request.arg("aggregation") or "").split(",") if a.strip()]
        bad = [a for a in aggs if a not in AGGREGATIONS]
        if bad:
            raise MetricsError(f"Invalid aggregation type(s): {','.join(bad)}; "
                               "valid: Average,Minimum,Maximum,Total,Count")
        clauses = parse_filter(filter_text) if filter_text else []
        top = int(request.arg("top") or DEFAULT_TOP)
        missing = [n for n in names if n.lower() not in catalog]
        if missing and (platform or catalog):
            provider, _, rtype = resource_type(resource_id).partition("/")
            raise MetricsError(
                f"Failed to find metric configuration for provider: {provider}, resource Type: {rtype}, metric: "
                f"{','.join(missing)}, Valid metrics: {','.join(m.name for m in catalog.values())}")
        base = int(start.timestamp()) // 60 * 60
        stop = int(end.timestamp())
        grain = stop - base if grain_text == "FULL" else GRAINS.get(grain_text)
        if not grain:
            raise MetricsError(f"Invalid time grain {grain_text}; supported: {', '.join(GRAINS)}, FULL")
        values, cost = [], 0
        for name in names:
            metric = catalog.get(name.lower(), StoredMetric(name, "Count"))
            primary = VM_METRICS.get(metric.name, (metric.unit, "Average", ""))[1].lower()
            series = timeseries(metric, clauses, base, stop, grain, aggs or [primary], top, platform)
            cost += sum(len(s["data"]) for s in series)
            values.append({
                "id": f"{resource_id}/providers/Microsoft.Insights/metrics/{metric.name}",
                "type": "Microsoft.Insights/metrics",
                "name": {"value": metric.name, "localizedValue": metric.name},
                "displayDescription": VM_METRICS.get(metric.name, ("", "", ""))[2],
                "errorCode": "Success", "unit": metric.unit, "timeseries": series,
            })
        return values, cost, int(start.timestamp()), stop

    def _namespaces_answer(self, resource_id: str, request: Request) -> dict[str, Any]:
        since_text = request.arg("startTime")
        try:
            since = int(parse_time(since_text).timestamp()) if since_text else None
        except ValueError as exc:
            raise MetricsError(f"Invalid startTime {since_text!r}: expected an ISO 8601 date") from exc
        rid = resource_id.lower()
        base = f"{resource_id}/providers/microsoft.insights/metricNamespaces"
        platform = resource_type(resource_id)
        out = []
        if platform:
            escaped = platform.replace("/", "-")
            out.append({"id": f"{base}/{escaped}", "name": escaped, "type": "Microsoft.Insights/metricNamespaces",
                        "classification": "Platform", "properties": {"metricNamespaceName": platform}})
        with self._lock:
            custom = sorted((name, metrics) for (r, ns), metrics in self._metrics.items()
                            if r == rid and ns != platform.lower()
                            for name in [self._namespaces.get((r, ns), ns)])
            for name, metrics in custom:
                stamps = [s.ts for m in metrics.values() for s in m.series]
                if since is not None and not any(len(t) and int(t.max()) >= since for t in stamps):
                    continue
                out.append({"id": f"{base}/{name}", "name": name.lower(), "type": "Microsoft.Insights/metricNamespaces",
                            "classification": "Custom", "properties": {"metricNamespaceName": name.lower()}})
        return {"value": out}

    def _definitions_answer(self, resource_id: str, request: Request) -> dict[str, Any]:
        namespace = request.arg("metricnamespace") or resource_type(resource_id)
        catalog, _ = self._catalog(resource_id, namespace)
        out = []
        for metric in catalog.values():
            unit, primary, description = VM_METRICS.get(metric.name, (metric.unit, "Average", ""))
            out.append({
                "id": f"{resource_id}/providers/microsoft.insights/metricdefinitions/{metric.name}",
                "resourceId": resource_id, "namespace": namespace,
                "name": {"value": metric.name, "localizedValue": metric.name},
                "displayDescription": description, "category": "Custom" if not description else "Platform",
                "isDimensionRequired": False, "unit": unit, "primaryAggregationType": primary,
                "supportedAggregationTypes": ["None", "Average", "Minimum", "Maximum", "Total", "Count"],
                "metricAvailabilities": [{"timeGrain": g, "retention": "P93D"} for g in GRAINS],
                "dimensions": [{"value": d, "localizedValue": d} for d in metric.dimensions()],
            })
        return {"value": out}


class AzureMonitorEmulator(JsonApiServer):
    """The metrics routes alone on an HTTPS server (``url`` is what ``AzureClients(base_url=...)`` takes, and
    ``AzureClients(metrics_endpoint=...)`` for ``metrics:getBatch``)."""

    name = "azure-monitor-emulator"

    def __init__(self, extension: AzureMonitorExtension | None = None) -> None:
        super().__init__(tls=True)
        self.extension = extension or AzureMonitorExtension()
        self.add_resource = self.extension.add_resource
        self.add_series = self.extension.add_series
        self.add_gpu_series = self.extension.add_gpu_series
        self.add_dcgm_gpu_series = self.extension.add_dcgm_gpu_series
        self.throttle_next = self.extension.throttle_next
        self.batch_requests = self.extension.batch_requests

    def error_body(self, status: int, message: str) -> dict[str, Any]:
        codes = {400: "BadRequest", 401: "AuthenticationFailed", 403: "AuthorizationFailed", 404: "ResourceNotFound",
                 429: "TooManyRequests"}
        return {"code": codes.get(status, "InternalServerError"), "message": message}

    def handle(self, request: Request) -> Response:
        answer = self.extension.handle(self, request)
        if answer is None:
            return Response(404, arm_error("InvalidResourceType", f"no route for {request.method} {request.path}"))
        return answer
