"""Azure Monitor's batch metrics API (``Metrics Batch - Batch``, ``metrics:getBatch``) for the VMs' platform metrics.

``metrics.py`` reads ``Percentage CPU`` and ``Network In/Out Total`` of the VMs ``host_metrics_for``
names through here first. What the API's reference and its migration guide say, and what follows:

- ``POST {endpoint}/subscriptions/{sub}/metrics:getBatch?metricnamespace=&metricnames=&starttime=&endtime=
  &interval=&aggregation=`` with ``{"resourceids": [...]}``: up to 50 resource ids a call, all of one
  subscription, one region and one resource type. The endpoint is regional
  (``https://<region>.metrics.monitor.azure.com``, ``AzureClients.metrics_batch``), its token audience
  ``https://metrics.monitor.azure.com``. So: one call per batch of at most 50 VMs of one location (one
  ``usage`` call is one subscription and one location), and one per 30-day chunk as with Metrics - List.
- The answer is ``{"values": [...]}``, one Metrics - List body per resource carrying ``resourceid``; the
  values are the same (Average, Total per interval), converted exactly as the per-VM reads are.
- Custom metrics are not served ("The metrics:getBatch API doesn't support querying custom metrics, or
  queries where the metric namespace name isn't a resource type"): the GPU numbers (Telegraf, DCGM) stay
  per VM in ``metrics.py``.
- A resource in another region than the endpoint's comes back with ``"timeseries": []`` (the API does
  not check the region): a VM answered without any series is read per VM, as is one the answer leaves out.
- Permission: Monitoring Reader (``Microsoft.Insights/Metrics/Read``) on the subscription itself, not
  only on the VMs; it answers 401/403 otherwise. Throttling answers 429 or 529: azure-core retries both,
  told that this POST is a read (``METRICS_RETRY_METHODS``). No paging.

Never lose the data: where the endpoint is not configured, cannot be reached (DNS, TLS, a sovereign cloud
or a proxy without it), refuses (401/403/404/400) or fails past its retries, the VMs not yet read go back
to the caller for ``Metrics - List`` one VM at a time, after one log line. Each request is counted as
``monitor.MetricsBatch.Query``.

The request is the one ``MetricsClient.query_resources`` (azure-monitor-querymetrics 1.0) builds, sent through
that client's own pipeline (token audience, retries, TLS trust, user agent) with ``send_request``; the answer is
read as plain JSON (the SDK's models cost far more CPU than the request for long 5-minute series).
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

from providers.azure.client import (
    METRICS_RETRY_METHODS,
    AzureClients,
    send_json,
    translated,
)
from providers.errors import ProviderError

log = logging.getLogger(__name__)

OPERATION = "monitor.MetricsBatch.Query"
MAX_IDS = 50  # resource ids per call
_METRIC_PATH = "/providers/microsoft.insights/metrics/"
#: The version azure-monitor-querymetrics 1.0 sends (``MetricsClient``'s default), kept so requests stay the same.
API_VERSION = "2024-02-01"


@dataclass
class BatchAnswer:
    """One batch read: its resource ids, and the metrics of those the answer gave series for (keyed by the
    lower-cased resource id; every 30-day chunk's metrics in order, each the answer's JSON: ``{"name": {"value":
    ...}, "timeseries": [{"data": [{"timeStamp": ..., "average": ...}]}]}``). Ids missing there are for Metrics -
    List."""

    ids: list[str]
    metrics: dict[str, list[dict[str, Any]]] = field(default_factory=dict)


def query(clients: AzureClients, region: str, resource_ids: Sequence[str], spans: Sequence[tuple[datetime, datetime]],
          granularity: timedelta, names: Sequence[str], aggregations: Sequence[str],
          namespace: str) -> Iterator[BatchAnswer]:
    """One ``BatchAnswer`` per batch of up to ``MAX_IDS`` ids, in order. Stops, after one log line, at the first
    batch the endpoint fails or refuses (or at once where there is none): the ids not yielded are the
    caller's to read one by one."""
    client = clients.metrics_batch(region) if resource_ids else None
    if client is None:
        return
    where = (clients.metrics_batch_url(region) or "").split("://", 1)[-1]
    for first in range(0, len(resource_ids), MAX_IDS):
        ids = list(resource_ids[first:first + MAX_IDS])
        try:
            metrics = _read(clients, client, where, ids, spans, granularity, names, aggregations, namespace)
        except ProviderError as exc:
            log.info("event=metrics_batch_fallback region=%s endpoint=%s vms=%d reason=%r", region, where,
                     len(resource_ids) - first, exc.one_line())
            return
        yield BatchAnswer(ids, metrics)


def _read(clients: AzureClients, client: Any, where: str, ids: list[str], spans: Sequence[tuple[datetime, datetime]],
          granularity: timedelta, names: Sequence[str], aggregations: Sequence[str],
          namespace: str) -> dict[str, list[dict[str, Any]]]:
    """Every chunk of one batch; the metrics of the resources with at least one series."""
    wanted = {rid.lower() for rid in ids}
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    url = f"/subscriptions/{quote(_subscription(ids[0], where), safe='')}/metrics:getBatch"
    body = json.dumps({"resourceids": list(ids)})
    for start, end in spans:
        clients.count(OPERATION)
        with translated(OPERATION, where):
            answer = send_json(client, "POST", url, content=body,
                               params=_params(start, end, granularity, names, aggregations, namespace),
                               headers={"content-type": "application/json", "Accept": "application/json"},
                               expected=(200,), retry_on_methods=METRICS_RETRY_METHODS)
        if isinstance(answer, str):  # the SDK's guard: the service has answered a JSON string holding the JSON
            answer = json.loads(answer)
        for item in (answer.get("values") if isinstance(answer, dict) else None) or []:
            if not isinstance(item, dict):
                continue
            metrics = [m for m in item.get("value") or [] if isinstance(m, dict)]
            rid = _resource_id(item, metrics)
            if rid in wanted:
                out[rid].extend(metrics)
    return {rid: found for rid, found in out.items() if any(m.get("timeseries") for m in found)}


def _params(start: datetime, end: datetime, granularity: timedelta | None, names: Sequence[str],
            aggregations: Sequence[str], namespace: str) -> dict[str, str]:
    """The query string ``query_resources`` sends, in its order and encoding: ``api-version``, ``starttime`` and
    ``endtime`` (ISO 8601 with milliseconds, ``Z``), ``interval`` (ISO 8601 duration), ``metricnamespace``,
    ``metricnames`` (each name encoded, commas between; a comma inside a name sent as the SDK sends it, ``%2``),
    ``aggregation`` (joined with commas, then encoded)."""
    first, last = _iso(start), _iso(end)
    if first > last:
        first, last = last, first
    params = {"api-version": API_VERSION, "starttime": quote(first, safe=""), "endtime": quote(last, safe="")}
    if granularity:
        params["interval"] = quote(_duration(granularity), safe="")
    params["metricnamespace"] = quote(namespace, safe="")
    params["metricnames"] = ",".join(quote(n.replace(",", "%2"), safe="") for n in names)
    if aggregations:
        params["aggregation"] = quote(",".join(aggregations), safe="")
    return params


def _subscription(resource_id: str, where: str) -> str:
    """The subscription of a resource id (``/subscriptions/{id}/...``), as the SDK finds it."""
    parts = resource_id.split("subscriptions/")
    if len(parts) != 2 or not parts[1].split("/")[0]:
        raise ProviderError(f"azure {OPERATION} at {where}: {resource_id!r} names no subscription")
    return parts[1].split("/")[0]


def _iso(value: datetime) -> str:
    """``2026-11-20T00:00:00.000Z``: UTC, milliseconds at least (microseconds where set), as the SDK writes it."""
    utc = value.utctimetuple()
    fraction = str(value.microsecond).rjust(6, "0").rstrip("0").ljust(3, "0")
    return (f"{utc.tm_year:04}-{utc.tm_mon:02}-{utc.tm_mday:02}T{utc.tm_hour:02}:{utc.tm_min:02}:{utc.tm_sec:02}"
            f".{fraction}Z")


def _duration(value: timedelta) -> str:
    """An ISO 8601 duration as ``isodate.duration_isoformat`` writes a timedelta: ``PT5M``, ``PT1H``, ``P1D``."""
    text = f"{abs(value.days)}D" if value.days else ""
    if value.seconds or value.microseconds:
        hours, rest = divmod(value.seconds, 3600)
        minutes, seconds = divmod(rest, 60)
        text += "T" + (f"{hours}H" if hours else "") + (f"{minutes}M" if minutes else "")
        if value.microseconds:
            text += f"{seconds}.{value.microseconds:06d}".rstrip("0") + "S"
        elif seconds:
            text += f"{seconds}S"
    return ("-P" if value.days < 0 else "P") + (text or "0D")


def _resource_id(item: dict[str, Any], metrics: list[dict[str, Any]]) -> str | None:
    """The lower-cased resource an answer entry is for: its ``resourceid``, else the prefix of a metric's id
    (``{resource}/providers/Microsoft.Insights/metrics/{name}``)."""
    rid = item.get("resourceid")
    if rid:
        return str(rid).lower()
    for metric in metrics:
        text = str(metric.get("id") or "").lower()
        if _METRIC_PATH in text:
            return text.split(_METRIC_PATH, 1)[0]
    return None
