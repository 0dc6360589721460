"""The ``metrics:getBatch`` route of the Azure Monitor metrics emulator (``azure_monitor``).

``POST /subscriptions/{sub}/metrics:getBatch?metricnamespace=...&metricnames=a,b&starttime=...&endtime=...
&interval=PT1H&aggregation=average,total&top=N&filter=...`` with ``{"resourceids": [...]}`` (Metrics Batch -
Batch, the data plane's ``https://<region>.metrics.monitor.azure.com``, api-version 2024-02-01 as
azure-monitor-querymetrics' ``MetricsClient.query_resources`` sends it) answers ``{"values": [{"starttime",
"endtime", "interval", "namespace", "resourceregion", "resourceid", "value": [metric...]}]}``, one entry per
id in the order given, each ``value`` computed exactly as Metrics - List computes it (``filter`` without
the ``$``; ``top`` per resource and metric). Refused with 400 in the batch error shape ``{"error": {"code",
"message"}}``, as the migration guide lists: a body without a lower-case ``resourceids`` list, none or more
than 50 distinct ids, an id of another subscription than the path's or of another resource type than the
rest, a missing ``metricnamespace`` or ``metricnames``, and a namespace that is not the resources' type
(custom metrics are not served). The emulator is one host, so a region's data plane is a path prefix:
``metrics_endpoint = "https://127.0.0.1:PORT/{region}"`` gives ``POST /eastus/subscriptions/...``; there,
as on Azure (the guide: the API does not check regions), a resource seeded in another location answers an
entry whose metrics have empty ``timeseries``. Without the prefix every resource answers. An id the
emulator does not know answers the same empty entry (the reference does not say what an unknown id
gets). ``orderby`` and ``rollupby`` are ignored. ``batch_requests`` keeps each call's resource ids.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

from providers.sandbox.azure_monitor_query import (
    MAX_SPAN,
    MetricsError,
    arm_error,
    iso,
    parse_time,
    resource_type,
)
from providers.sandbox.json_server import Request, Response

MAX_BATCH_IDS = 50
#: ``[/{region}]/subscriptions/{sub}/metrics:getbatch`` (matched lower-cased): the region, the subscription.
BATCH_PATH = re.compile(r"^(?:/([a-z0-9]+))?/subscriptions/([^/]+)/metrics:getbatch$")


class MetricsBatch:
    """The getBatch part of ``AzureMonitorExtension`` (a mixin). The extension provides its lock, throttles,
    resource locations and ``batch_requests``, and answers each resource with ``_known`` and ``_values``
    (what Metrics - List computes)."""

    _lock: threading.RLock
    _throttles: list[int]
    _locations: dict[str, str]
    batch_requests: list[list[str]]
    _known: Callable[[Any, str], bool]
    _values: Callable[..., tuple[list[dict[str, Any]], int, int, int]]
    _gate: Callable[[Request, dict[str, str]], Response | None]

    def _batch(self, arm: Any, request: Request, subscription: str, region: str | None) -> Response:
        """``metrics:getBatch`` (of ``region``'s data plane where the path names one): the module docstring says
        what is answered and refused."""
        if request.method != "POST":
            return Response(405, arm_error("MethodNotAllowed",
                                           f"{request.method} is not supported on metrics:getBatch"))
        refused = self._gate(request, {})
        if refused is not None:
            return refused
        try:
            ids, namespace = self._batch_request(request, subscription)
            start, end = self._batch_timespan(request.arg("starttime"), request.arg("endtime"))
            grain_text = (request.arg("interval") or "PT1M").upper()
            entries = []

            def region_of(rid: str) -> str:
                with self._lock:
                    return self._locations.get(rid.lower(), "eastus").lower()

            for rid in ids:
                if self._known(arm, rid) and region in (None, region_of(rid)):
                    values, _, first, stop = self._values(rid, namespace, request, start, end, grain_text,
                                                          request.arg("filter"))
                else:  # every metric without series: what the guide says a resource of another region gets
                    values, _, first, stop = self._values(rid, namespace, request, start, end, grain_text, None)
                    for metric in values:
                        metric["timeseries"] = []
                entries.append({"starttime": iso(first), "endtime": iso(stop), "interval": grain_text,
                                "namespace": namespace, "resourceregion": region_of(rid), "resourceid": rid,
                                "value": values})
        except MetricsError as exc:
            return Response(400, arm_error("BadRequest", str(exc)))
        with self._lock:
            self.batch_requests.append(ids)
        return Response(200, {"values": entries})

    def _batch_request(self, request: Request, subscription: str) -> tuple[list[str], str]:
        """The body's resource ids (distinct, in order) and the namespace, checked as the service checks them."""
        try:
            body = request.json()
        except ValueError:
            body = None
        ids = body.get("resourceids") if isinstance(body, dict) else None
        if not isinstance(ids, list) or not all(isinstance(i, str) and i.strip() for i in ids):
            raise MetricsError('The request body must be {"resourceids": ["<resource id>", ...]} '
                               "(the property name in lower case)")
        ids = list(dict.fromkeys(i.strip() for i in ids))
        if not ids or len(ids) > MAX_BATCH_IDS:
            raise MetricsError(f"Between 1 and {MAX_BATCH_IDS} resource ids may be given; got {len(ids)}")
        namespace, names = request.arg("metricnamespace"), request.arg("metricnames")
        if not namespace or not names:
            raise MetricsError("The metricnamespace and metricnames query parameters are required")
        for rid in ids:
            parts = rid.strip("/").split("/")
            if len(parts) < 2 or parts[0].lower() != "subscriptions" or parts[1].lower() != subscription.lower():
                raise MetricsError(f"Resource {rid} is not in subscription {subscription}: all resources of a batch "
                                   "must be in the subscription of the request")
        types = {resource_type(rid).lower() for rid in ids}
        if len(types) > 1:
            raise MetricsError(f"All resources of a batch must be of one resource type; got {', '.join(sorted(types))}")
        if namespace.lower() not in types:
            raise MetricsError(f"Metric namespace {namespace} is not the resource type of the requested resources: "
                               "custom metrics are not supported by metrics:getBatch")
        return ids, namespace

    def _batch_timespan(self, first: str | None, last: str | None) -> tuple[datetime, datetime]:
        try:
            end = parse_time(last) if last else datetime.now(timezone.utc)
            start = parse_time(first) if first else end - timedelta(hours=1)
        except ValueError as exc:
            raise MetricsError(f"Invalid starttime/endtime {first!r}/{last!r}: expected ISO 8601 dates") from exc
        if end <= start:
            raise MetricsError(f"Invalid starttime/endtime {first!r}/{last!r}: the end must be after the start")
        return max(start, end - MAX_SPAN), end
