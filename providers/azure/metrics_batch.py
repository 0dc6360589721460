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
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from providers.azure.client import METRICS_RETRY_METHODS, AzureClients, translated
from providers.errors import ProviderError

log = logging.getLogger(__name__)

OPERATION = "monitor.MetricsBatch.Query"
MAX_IDS = 50  # resource ids per call
_METRIC_PATH = "/providers/microsoft.insights/metrics/"


@dataclass
class BatchAnswer:
    """One batch read: its resource ids, and the metrics of those the answer gave series for (keyed by the
    lower-cased resource id; every 30-day chunk's metrics in order). Ids missing there are for Metrics - List."""

    ids: list[str]
    metrics: dict[str, list[Any]] = field(default_factory=dict)


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
          namespace: str) -> dict[str, list[Any]]:
    """Every chunk of one batch; the metrics of the resources with at least one series."""
    wanted = {rid.lower() for rid in ids}
    out: dict[str, list[Any]] = defaultdict(list)
    for start, end in spans:
        raw: list[Any] = []  # the deserialized body, whose entries keep ``resourceid`` (the SDK's results do not)

        def keep(_response: Any, body: Any, _headers: Any, raw: list[Any] = raw) -> Any:
            raw.append(body)
            return body

        clients.count(OPERATION)
        with translated(OPERATION, where):
            results = client.query_resources(
                resource_ids=ids, metric_namespace=namespace, metric_names=list(names), timespan=(start, end),
                granularity=granularity, aggregations=list(aggregations), retry_on_methods=METRICS_RETRY_METHODS,
                cls=keep)
        items = list(raw[0]["values"]) if raw else [None] * len(results)
        for item, result in zip(items, results):
            rid = _resource_id(item, result)
            if rid in wanted:
                out[rid].extend(result.metrics)
    return {rid: found for rid, found in out.items() if any(m.timeseries for m in found)}


def _resource_id(item: Any, result: Any) -> str | None:
    """The lower-cased resource an answer entry is for: its ``resourceid``, else the prefix of a metric's id
    (``{resource}/providers/Microsoft.Insights/metrics/{name}``)."""
    rid = item.get("resourceid") if item is not None else None
    if rid:
        return str(rid).lower()
    for metric in result.metrics:
        text = str(getattr(metric, "id", "") or "").lower()
        if _METRIC_PATH in text:
            return text.split(_METRIC_PATH, 1)[0]
    return None
