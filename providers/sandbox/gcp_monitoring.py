"""A local emulator of Cloud Monitoring's ``google.monitoring.v3.MetricService.ListTimeSeries`` over gRPC.

google-cloud-monitoring has no REST transport, so tests and the demo point the real
``MetricServiceClient`` at this gRPC server (``GcpClients(endpoints={"monitoring": emu.address})``).
Requests and responses are the library's own messages (``ListTimeSeriesRequest`` /
``ListTimeSeriesResponse``). Behaviour follows the public reference (cloud.google.com/monitoring/api/v3
filters, aggregation, ``projects.timeSeries.list``) and recorded answers (c7n ``timeSeries`` flights):

- **Filter**: selectors ``metric.type``, ``metric.labels.K`` (``metric.label.K``), ``resource.type``,
  ``resource.labels.K``, ``metadata.system_labels.K``, ``metadata.user_labels.K``, ``project``; operators
  ``=``, ``!=``, ``:`` (has substring), ``<``/``>``/``<=``/``>=``; values ``"str"``/``'str'``/bare words and
  ``starts_with``, ``ends_with``, ``has_substring``, ``one_of``, ``monitoring.regex.full_match``;
  ``AND`` (or juxtaposition), ``OR``, ``NOT``, parentheses; precedence NOT > OR > AND. The filter must pin
  exactly one ``metric.type = "..."``, else ``INVALID_ARGUMENT`` (as the API does); a bad filter too.
- **Interval**: points with ``start < t <= end``; a series without a point there is not returned.
- **Alignment**: periods end at ``end``, ``end - P``, ``end - 2P``... (anchored at the interval end, as
  the recorded answers show); one point per non-empty period stamped at the period end, newest first.
  ``ALIGN_NONE`` (raw), ``ALIGN_MAX``/``MIN``/``MEAN``/``SUM``/``COUNT`` and, for DELTA/CUMULATIVE
  metrics only, ``ALIGN_DELTA`` and ``ALIGN_RATE`` (sum of deltas in the period / period seconds; a
  CUMULATIVE series is differenced first, a reset counting from zero). Aligned GAUGE output has
  ``start_time == end_time``; ``alignment_period`` under 60 s is refused. Cross-series reduction and
  secondary aggregation answer ``UNIMPLEMENTED`` (not emulated, rather than silently wrong).
- **View / paging**: ``FULL`` pages hold at most ``page_size`` points, ``HEADERS`` pages ``page_size``
  series, each capped by the server's ``max_points_per_page`` / ``max_series_per_page`` (small by default
  so that paging is exercised; the real cap is 100,000); whole series per page; ``next_page_token`` is
  opaque and bound to the query (another query's token is ``INVALID_ARGUMENT``).
- **Failures**: ``fail_next(code, count)`` answers the next calls with any gRPC status
  (``PERMISSION_DENIED``, ``UNAUTHENTICATED``, ``RESOURCE_EXHAUSTED``, ...). ``requests`` / ``count()``
  record every call.

Seeding is plain Python (``add_series`` and the Ops Agent / DCGM / dcgm-exporter / Compute Engine helpers
below); samples are stored as numpy arrays and aligned vectorized, so a demo fleet of ~20 instances x 14
days of 1-minute samples answers in milliseconds per page. The filter parser, the alignment and the point
encoding live in ``gcp_monitoring_query``; this module holds the server, request checks, paging and seeding.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import re
import threading
from collections.abc import Mapping
from concurrent import futures
from typing import Any, Self

import grpc
import numpy as np
import pandas as pd
from google.cloud import monitoring_v3

from providers.sandbox.gcp_monitoring_query import (CUMULATIVE, DELTA_ONLY, GAUGE, KINDS, NS, SUPPORTED, VALUE_TYPES,
                                                    Aligner, FilterParser, Series, align, fill_time_series, matches,
                                                    pinned_metric_type, timestamp_ns, to_ns)

log = logging.getLogger(__name__)

SERVICE = "google.monitoring.v3.MetricService"
API_MAX_PAGE = 100_000
_REQ, _RESP = monitoring_v3.ListTimeSeriesRequest, monitoring_v3.ListTimeSeriesResponse


class _Abort(Exception):
    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code


class GcpMonitoringEmulator:
    """Cloud Monitoring ``ListTimeSeries`` on ``127.0.0.1:PORT`` (``address``); a context manager.

    ``max_points_per_page`` / ``max_series_per_page``: the server's page caps for the FULL and HEADERS
    views (the real API: 100,000). ``requests`` lists one line per call ("ListTimeSeries <name> <filter>").
    """

    name = "gcp-monitoring"

    def __init__(self, *, max_points_per_page: int = 10_000, max_series_per_page: int = 50, workers: int = 8) -> None:
        self.max_points_per_page = max_points_per_page
        self.max_series_per_page = max_series_per_page
        self.requests: list[str] = []
        self._workers = workers
        self._series: dict[tuple[Any, ...], Series] = {}
        self._matched: dict[tuple[str, str, int], list[Series]] = {}  # (project, filter, version) -> series
        self._version = 0  # bumped by every seeding call
        self._failures: list[tuple[grpc.StatusCode, str]] = []
        self._lock = threading.RLock()
        self._server: grpc.Server | None = None
        self._port = 0

    # -- seeding -------------------------------------------------------------------------------
    def add_series(self, project: str, metric_type: str, resource_labels: Mapping[str, str],
                   metric_labels: Mapping[str, str] | None = None, points: Any = None, *,
                   times: Any = None, values: Any = None, value_type: str = "DOUBLE", metric_kind: str = "GAUGE",
                   resource_type: str = "gce_instance", unit: str = "",
                   system_labels: Mapping[str, str] | None = None,
                   user_labels: Mapping[str, str] | None = None) -> None:
        """Add samples to one time series (created on first use; samples at an existing time replace it).

        ``points``: a ``pandas.Series`` indexed by time, or a sequence of ``(datetime, value)``; or give
        ``times`` (datetimes, ``DatetimeIndex``, datetime64 array) and ``values`` arrays. Naive times are
        taken as UTC. ``metric_kind``: ``GAUGE`` (a sample), ``DELTA`` (the change since the previous
        sample, e.g. bytes sent in the last minute) or ``CUMULATIVE`` (a running total).
        ``value_type``: ``DOUBLE``, ``INT64`` or ``BOOL``. ``system_labels`` becomes the series'
        ``metadata.system_labels`` (for ``gce_instance``: ``name``, the instance name).
        """
        if points is not None:
            if isinstance(points, pd.Series):
                times, values = points.index, points.to_numpy()
            else:
                pairs = list(points)
                times, values = [p[0] for p in pairs], [p[1] for p in pairs]
        t = to_ns(times if times is not None else [])
        dtype = np.int64 if value_type == "INT64" else np.float64
        v = np.asarray(values if values is not None else [], dtype=dtype)
        if len(t) != len(v):
            raise ValueError(f"{len(t)} times but {len(v)} values")
        key = (project, metric_type, resource_type, tuple(sorted(resource_labels.items())),
               tuple(sorted((metric_labels or {}).items())))
        with self._lock:
            old = self._series.get(key)
            if old is not None:
                t, v = np.concatenate([old.times, t]), np.concatenate([old.values, v]).astype(dtype)
            order = np.argsort(t, kind="stable")
            t, v = t[order], v[order]
            last = np.append(t[1:] != t[:-1], True) if len(t) else np.zeros(0, bool)  # keep the newest write
            self._matched.clear()
            self._version += 1
            self._series[key] = Series(project, metric_type, dict(metric_labels or {}), resource_type,
                                        dict(resource_labels), KINDS[metric_kind], VALUE_TYPES[value_type], unit,
                                        dict(system_labels or {}), dict(user_labels or {}), t[last], v[last], key)

    def clear(self) -> None:
        with self._lock:
            self._series.clear()
            self._matched.clear()
            self._version += 1

    # -- control -------------------------------------------------------------------------------
    @property
    def address(self) -> str:
        if self._server is None:
            raise RuntimeError(f"{self.name} not started")
        return f"127.0.0.1:{self._port}"

    def start(self) -> Self:
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=self._workers, thread_name_prefix=self.name))
        handler = grpc.method_handlers_generic_handler(SERVICE, {
            "ListTimeSeries": grpc.unary_unary_rpc_method_handler(
                self._list_time_series, request_deserializer=_REQ.deserialize, response_serializer=_RESP.serialize)})
        self._server.add_generic_rpc_handlers((handler,))
        self._port = self._server.add_insecure_port("127.0.0.1:0")
        self._server.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop(grace=None)
            self._server = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def fail_next(self, code: grpc.StatusCode | str, count: int = 1, message: str = "injected failure") -> None:
        """Answer the next ``count`` calls with gRPC status ``code`` (e.g. ``"RESOURCE_EXHAUSTED"``)."""
        status = code if isinstance(code, grpc.StatusCode) else grpc.StatusCode[code]
        with self._lock:
            self._failures.extend([(status, message)] * count)

    def count(self, fragment: str = "") -> int:
        """How many calls were answered whose request line contains ``fragment``."""
        with self._lock:
            return sum(fragment in r for r in self.requests)

    # -- the RPC -------------------------------------------------------------------------------
    def _list_time_series(self, request: Any, context: grpc.ServicerContext) -> Any:
        raw = _REQ.pb(request)
        with self._lock:
            self.requests.append(f"ListTimeSeries {raw.name} {raw.filter} page_token={raw.page_token}")
            failure = self._failures.pop(0) if self._failures else None
        if failure is not None:
            context.abort(*failure)
        try:
            return _RESP.wrap(self._answer(raw))
        except _Abort as exc:
            context.abort(exc.code, str(exc))
        except Exception as exc:  # an emulator bug must answer, not hang the client
            log.exception("event=emulator_error server=%s", self.name)
            context.abort(grpc.StatusCode.INTERNAL, f"emulator error: {exc}")

    def _answer(self, req: Any) -> Any:
        bad = grpc.StatusCode.INVALID_ARGUMENT
        if not req.name.startswith("projects/"):
            raise _Abort(bad, f"Field name had an invalid value of {req.name!r}: expected projects/[PROJECT_ID]")
        try:
            tree = FilterParser(req.filter).parse()
            metric_type = pinned_metric_type(tree)
        except (ValueError, re.error) as exc:
            raise _Abort(bad, f"Field filter had an invalid value of {req.filter!r}: {exc}") from exc
        if metric_type is None:
            raise _Abort(bad, f"Field filter had an invalid value of {req.filter!r}: "
                              "the filter must specify a single metric type (metric.type = \"...\")")
        if not req.interval.HasField("end_time"):
            raise _Abort(bad, "Field interval.end_time had an invalid value: an end time is required")
        end = timestamp_ns(req.interval.end_time)
        start = timestamp_ns(req.interval.start_time) if req.interval.HasField("start_time") else end
        if start > end:
            raise _Abort(bad, "Field interval.start_time had an invalid value: the start is after the end")
        agg = req.aggregation
        aligner, period = Aligner(agg.per_series_aligner), timestamp_ns(agg.alignment_period)
        if agg.cross_series_reducer or agg.group_by_fields or req.HasField("secondary_aggregation"):
            raise _Abort(grpc.StatusCode.UNIMPLEMENTED, "cross-series reduction is not emulated")
        if aligner not in SUPPORTED:
            raise _Abort(grpc.StatusCode.UNIMPLEMENTED, f"{aligner.name} is not emulated")
        if aligner != Aligner.ALIGN_NONE and period < 60 * NS:
            raise _Abort(bad, "Field aggregation.alignment_period had an invalid value: must be at least 60 s")
        project = req.name.split("/", 1)[1]
        with self._lock:
            cache_key = (project, req.filter, self._version)
            series = self._matched.get(cache_key)  # every page of a query asks the same
            candidates = [] if series is not None else [
                s for s in self._series.values() if s.project == project and s.metric_type == metric_type]
        if series is None:
            try:
                series = sorted((s for s in candidates if matches(tree, s)), key=lambda s: s.order)
            except ValueError as exc:
                raise _Abort(bad, f"Field filter had an invalid value of {req.filter!r}: {exc}") from exc
            with self._lock:
                self._matched[cache_key] = series
        for s in series[:1]:
            if aligner in DELTA_ONLY and s.kind == GAUGE or aligner in (Aligner.ALIGN_MEAN, Aligner.ALIGN_SUM) \
                    and s.kind == CUMULATIVE:
                kind = {v: k for k, v in KINDS.items()}[s.kind]
                vtype = {v: k for k, v in VALUE_TYPES.items()}[s.value_type]
                raise _Abort(bad, f"The aligner {aligner.name} cannot be applied to metrics with kind {kind} "
                                  f"and value type {vtype}.")
        digest = hashlib.sha256(b"|".join([req.name.encode(), req.filter.encode(), req.interval.SerializeToString(),
                                           agg.SerializeToString(), str(req.view).encode()])).hexdigest()[:16]
        offset = 0
        if req.page_token:
            try:
                got_offset, got_digest = base64.urlsafe_b64decode(req.page_token.encode()).decode().split(":")
                offset = int(got_offset)
            except ValueError as exc:
                raise _Abort(bad, "Field page_token had an invalid value") from exc
            if got_digest != digest:
                raise _Abort(bad, "Field page_token had an invalid value: it belongs to another query")
        headers = req.view == _REQ.TimeSeriesView.HEADERS
        cap = self.max_series_per_page if headers else self.max_points_per_page
        limit = min(req.page_size or API_MAX_PAGE, cap, API_MAX_PAGE)
        resp = _RESP.pb()()
        used, i = 0, offset
        while i < len(series):
            s = series[i]
            ends, starts, vals, kind, vtype = align(s, start, end, aligner, period)
            n = 1 if headers else len(ends)
            if n and used and used + n > limit:
                break
            i += 1
            if len(ends):
                fill_time_series(resp.time_series.add(), s, ends, starts, vals, kind, vtype, headers)
                used += n
                resp.unit = resp.unit or s.unit
        if i < len(series):
            resp.next_page_token = base64.urlsafe_b64encode(f"{i}:{digest}".encode()).decode()
        return resp


# -- seeding helpers for Compute Engine fleets -------------------------------------------------
def gce_labels(project: str, zone: str, instance_id: str | int) -> dict[str, str]:
    """The ``gce_instance`` monitored resource's labels."""
    return {"project_id": project, "zone": zone, "instance_id": str(instance_id)}


def add_ops_agent_gpu(emu: GcpMonitoringEmulator, project: str, zone: str, instance_id: str | int, gpu: int,
                      times: Any, util_pct: Any, mem_used_mib: Any = None, mem_total_mib: float | None = None, *,
                      model: str = "NVIDIA L4", uuid: str | None = None, instance_name: str | None = None) -> None:
    """What the Ops Agent's built-in NVML receiver writes for one GPU: ``agent.googleapis.com/gpu/utilization``
    (GAUGE DOUBLE, percent 0-100) and ``gpu/memory/bytes_used`` (GAUGE INT64 bytes, ``memory_state``
    used / free; used + free = the GPU's memory), labels ``gpu_number``, ``model``, ``uuid``."""
    res = gce_labels(project, zone, instance_id)
    meta = {"name": instance_name} if instance_name else None
    labels = {"gpu_number": str(gpu), "model": model, "uuid": uuid or f"GPU-{instance_id}-{gpu}"}
    emu.add_series(project, "agent.googleapis.com/gpu/utilization", res, labels, times=times, values=util_pct,
                   unit="%", system_labels=meta)
    if mem_used_mib is not None and mem_total_mib is not None:
        used = np.rint(np.asarray(mem_used_mib, dtype=np.float64) * 2**20).astype(np.int64)
        for state, vals in (("used", used), ("free", int(mem_total_mib * 2**20) - used)):
            emu.add_series(project, "agent.googleapis.com/gpu/memory/bytes_used", res,
                           {**labels, "memory_state": state}, times=times, values=vals, value_type="INT64",
                           unit="By", system_labels=meta)


def add_dcgm_gpu(emu: GcpMonitoringEmulator, project: str, zone: str, instance_id: str | int, gpu: int,
                 times: Any, util_pct: Any, mem_used_mib: Any = None, mem_total_mib: float | None = None, *,
                 model: str = "NVIDIA A100-SXM4-40GB", uuid: str | None = None,
                 instance_name: str | None = None) -> None:
    """What the Ops Agent's DCGM receiver (version 2) writes for one GPU:
    ``workload.googleapis.com/gpu.dcgm.utilization`` (GAUGE DOUBLE, a ratio 0-1: ``util_pct`` / 100) and
    ``gpu.dcgm.memory.bytes_used`` (GAUGE INT64 bytes, ``state`` used / free / reserved)."""
    res = gce_labels(project, zone, instance_id)
    meta = {"name": instance_name} if instance_name else None
    labels = {"gpu_number": str(gpu), "model": model, "uuid": uuid or f"GPU-{instance_id}-{gpu}",
              "instrumentation_source": "agent.googleapis.com/dcgm", "instrumentation_version": "2.0"}
    emu.add_series(project, "workload.googleapis.com/gpu.dcgm.utilization", res, labels, times=times,
                   values=np.asarray(util_pct, dtype=np.float64) / 100.0, unit="1", system_labels=meta)
    if mem_used_mib is not None and mem_total_mib is not None:
        used = np.rint(np.asarray(mem_used_mib, dtype=np.float64) * 2**20).astype(np.int64)
        reserved = np.full(len(used), 512 * 2**20, dtype=np.int64)
        free = int(mem_total_mib * 2**20) - used - reserved
        for state, vals in (("used", used), ("reserved", reserved), ("free", free)):
            emu.add_series(project, "workload.googleapis.com/gpu.dcgm.memory.bytes_used", res,
                           {**labels, "state": state}, times=times, values=vals, value_type="INT64", unit="By",
                           system_labels=meta)


def prometheus_target_labels(project: str, zone: str, instance_id: str | int, instance_name: str, *,
                             job: str = "dcgm-exporter", target: str = "localhost:9400") -> dict[str, str]:
    """The ``prometheus_target`` monitored resource's labels as the Ops Agent's Prometheus receiver sets them
    on a VM: ``location`` = the zone, ``cluster`` = ``"__gce__"``, ``namespace`` = ``"<instance id>/<name>"``,
    ``job`` = the scrape job, ``instance`` = the scraped ``host:port``."""
    return {"project_id": project, "location": zone, "cluster": "__gce__",
            "namespace": f"{instance_id}/{instance_name}", "job": job, "instance": target}


def add_dcgm_exporter_gpu(emu: GcpMonitoringEmulator, project: str, zone: str, instance_id: str | int, gpu: int,
                          times: Any, util_pct: Any, fb_used_mib: Any = None, fb_free_mib: Any = None, *,
                          fb_reserved_mib: Any = None, engine_active: Any = None, via: str = "prometheus",
                          model: str = "NVIDIA L4", uuid: str | None = None, instance_name: str | None = None,
                          hostname: str | None = None, machine_type: str = "g2-standard-8",
                          job: str = "dcgm-exporter", target: str = "localhost:9400") -> None:
    """What NVIDIA dcgm-exporter's default counters become in Cloud Monitoring for one GPU of a VM.

    Gauges (DOUBLE): ``DCGM_FI_DEV_GPU_UTIL`` (``util_pct``, percent 0-100; None: not exported),
    ``DCGM_FI_DEV_FB_USED`` / ``FB_FREE`` / ``FB_RESERVED`` (MiB; each only when given) and
    ``DCGM_FI_PROF_GR_ENGINE_ACTIVE`` (``engine_active``, a ratio 0-1, a profiling counter: only when given).
    Values are arrays over ``times`` or scalars. Labels are the exporter's: ``gpu`` (the index, a string),
    ``UUID``, ``pci_bus_id``, ``device`` (``nvidia<gpu>``), ``modelName``, ``Hostname`` (default: the instance
    name), ``DCGM_FI_DRIVER_VERSION``.

    ``via="prometheus"`` (default): scraped by the Ops Agent's Prometheus receiver, written through the
    Managed Service for Prometheus API as ``prometheus.googleapis.com/<name>/gauge`` on ``prometheus_target``
    (``prometheus_target_labels``), with the agent's metric labels ``instance_name``, ``machine_type``
    (``projects/<project>/machineTypes/<type>``), ``otel_scope_name``, ``otel_scope_version``.
    ``via="otlp"``: pushed over OTLP to the Ops Agent with ``metrics_mode: googlecloudmonitoring``:
    ``workload.googleapis.com/<name>`` on ``gce_instance``, the exporter's labels only.
    """
    name = instance_name or f"instance-{instance_id}"
    t = to_ns(times)
    labels = {"gpu": str(gpu), "UUID": uuid or f"GPU-{instance_id}-{gpu}", "pci_bus_id": f"00000000:{gpu:02x}:00.0",
              "device": f"nvidia{gpu}", "modelName": model, "Hostname": hostname or name,
              "DCGM_FI_DRIVER_VERSION": "580.105.08"}
    if via == "prometheus":
        resource_type, res = "prometheus_target", prometheus_target_labels(project, zone, instance_id, name,
                                                                           job=job, target=target)
        labels |= {"instance_name": name, "machine_type": f"projects/{project}/machineTypes/{machine_type}",
                   "otel_scope_name": "github.com/open-telemetry/opentelemetry-collector-contrib/receiver/"
                                      "prometheusreceiver", "otel_scope_version": "v0.138.0"}
        meta = None
    elif via == "otlp":
        resource_type, res = "gce_instance", gce_labels(project, zone, instance_id)
        meta = {"name": instance_name} if instance_name else None
    else:
        raise ValueError(f"via must be 'prometheus' or 'otlp', not {via!r}")
    for counter, values in (("DCGM_FI_DEV_GPU_UTIL", util_pct), ("DCGM_FI_PROF_GR_ENGINE_ACTIVE", engine_active),
                          ("DCGM_FI_DEV_FB_USED", fb_used_mib), ("DCGM_FI_DEV_FB_FREE", fb_free_mib),
                          ("DCGM_FI_DEV_FB_RESERVED", fb_reserved_mib)):
        if values is None:
            continue
        metric_type = (f"prometheus.googleapis.com/{counter}/gauge" if via == "prometheus"
                       else f"workload.googleapis.com/{counter}")
        emu.add_series(project, metric_type, res, labels, times=t,
                       values=np.broadcast_to(np.asarray(values, dtype=np.float64), t.shape),
                       resource_type=resource_type, system_labels=meta)


def add_gce_host(emu: GcpMonitoringEmulator, project: str, zone: str, instance_id: str | int, times: Any,
                 cpu_pct: Any, rx_bytes_per_s: Any, tx_bytes_per_s: Any, *, instance_name: str | None = None) -> None:
    """Compute Engine's hypervisor metrics for one VM: ``compute.googleapis.com/instance/cpu/utilization``
    (GAUGE DOUBLE, a ratio 0-1) and ``instance/network/received_bytes_count`` / ``sent_bytes_count``
    (DELTA INT64 bytes per sample interval, label ``loadbalanced``), all with ``instance_name``."""
    t = to_ns(times)
    step = float(np.median(np.diff(t)) / NS) if len(t) > 1 else 60.0
    res = gce_labels(project, zone, instance_id)
    meta = {"name": instance_name} if instance_name else None
    name = {"instance_name": instance_name} if instance_name else {}
    emu.add_series(project, "compute.googleapis.com/instance/cpu/utilization", res, name, times=t,
                   values=np.asarray(cpu_pct, dtype=np.float64) / 100.0, unit="10^2.%", system_labels=meta)
    for metric, rate in (("received_bytes_count", rx_bytes_per_s), ("sent_bytes_count", tx_bytes_per_s)):
        vals = np.rint(np.asarray(rate, dtype=np.float64) * step).astype(np.int64)
        emu.add_series(project, f"compute.googleapis.com/instance/network/{metric}", res,
                       {**name, "loadbalanced": "false"}, times=t, values=vals, value_type="INT64",
                       metric_kind="DELTA", unit="By", system_labels=meta)
